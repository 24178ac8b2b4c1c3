"""Where the test suite's time goes (issue 78: its wall at most 10 minutes on 2 cores, and said
where it goes), from a JUnit XML report of one run of it.

    python bench/suite_time.py [--run] [--xml FILE] [--wall S] [--cpu S] [--workers 4] [--top 25] [--write]

``--run`` runs the suite as README.md does (``python -m pytest -q -n WORKERS``) with
``--junitxml=FILE`` added, and times it from the outside; without it, ``FILE`` is a report made
before (``pytest --junitxml``). The report gives each test's own time (setup, call and teardown);
the table sums them by test file and by kind of test (the markers of ``pyproject.toml``, and
those that start ``orchestrator serve``, a browser or ``python -m orchestrator`` processes), and
says how much of the workers' time the slowest files and tests take. With ``W`` workers the wall
is at least the sum over ``W`` (and at least the slowest test, and of the slowest ``loadgroup``,
run on one worker): the table gives both bounds beside the wall. ``--write`` puts it in
bench/RESULTS.md, in a section of its own.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from benchlib import marked_section

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN, END = "<!-- suite-time: written by bench/suite_time.py --write -->", "<!-- /suite-time -->"
# What a test file does that takes time, read from its text: the first that matches names its kind.
KINDS = (
    ("browser (chromium)", re.compile(r"webdriver|chromium", re.I)),
    (
        "agent CLIs (claude, codex, gemini, opencode)",
        re.compile(r"pytest\.mark\.(claude|agents)|FakeAnthropic|agentsuite"),
    ),
    ("Dask cluster", re.compile(r"pytest\.mark\.dask|dask_helpers")),
    ("serve (HTTP on loopback)", re.compile(r"dashboard_helpers|served\(")),
    ("runs (python -m orchestrator)", re.compile(r"runner_helpers|\"-m\", \"orchestrator\"|CLI = ")),
)


@dataclass(frozen=True, slots=True)
class Case:
    file: str
    name: str
    seconds: float
    failed: bool


def cases(report: Path) -> list[Case]:
    """Every test case of a JUnit XML report: its file, its name, its time, whether it failed."""
    found: list[Case] = []
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").split(".")
        file = "/".join(module[: next((i for i, p in enumerate(module) if p.startswith("test_")), 0) + 1]) + ".py"
        failed = any(child.tag in ("failure", "error") for child in case)
        found.append(Case(file, case.get("name", ""), float(case.get("time") or 0.0), failed))
    return found


def kind_of(file: str) -> str:
    try:
        text = (ROOT / file).read_text(encoding="utf-8")
    except OSError:
        return "other"
    return next((name for name, pattern in KINDS if pattern.search(text)), "in-process only")


def table(found: list[Case], wall: float | None, workers: int, top: int, cpu: float | None = None) -> str:
    """The section: the sums by kind and by file, the slowest tests, the bounds on the wall (and
    with ``cpu``, the processes' CPU seconds, the bound the machine's cores set)."""
    total = sum(case.seconds for case in found)
    by_file: dict[str, float] = defaultdict(float)
    counted: dict[str, int] = defaultdict(int)
    for case in found:
        by_file[case.file] += case.seconds
        counted[case.file] += 1
    by_kind: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for file, seconds in by_file.items():
        entry = by_kind[kind_of(file)]
        entry[0] += seconds
        entry[1] += counted[file]
    slowest = max(found, key=lambda case: case.seconds)
    lines = [
        f"{len(found):,} tests ({sum(c.failed for c in found)} failed), {total:,.0f} s of workers' time"
        + (f", {wall:,.0f} s wall on {workers} workers" if wall is not None else ""),
        f"Bounds on the wall with {workers} workers: the sum over them {total / workers:,.0f} s; "
        f"the slowest test {slowest.seconds:,.0f} s ({slowest.file}::{slowest.name}).",
        *(
            [
                f"The processes' CPU: {cpu:,.0f} s (user + system): on {os.cpu_count()} cores the wall is at least "
                f"{cpu / (os.cpu_count() or 1):,.0f} s."
            ]
            if cpu is not None
            else []
        ),
        "",
        "| kind of test file | tests | workers' time | share |",
        "|---|---:|---:|---:|",
    ]
    for name, (seconds, tests) in sorted(by_kind.items(), key=lambda item: -item[1][0]):
        lines.append(f"| {name} | {int(tests):,} | {seconds:,.0f} s | {seconds / total:.0%} |")
    lines += ["", f"The {top} slowest files:", "", "| file | tests | time | share |", "|---|---:|---:|---:|"]
    for file, seconds in sorted(by_file.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"| `{file}` | {counted[file]:,} | {seconds:,.0f} s | {seconds / total:.1%} |")
    lines += ["", f"The {top} slowest tests:", "", "| test | time |", "|---|---:|"]
    for case in sorted(found, key=lambda case: -case.seconds)[:top]:
        lines.append(f"| `{case.file}::{case.name}` | {case.seconds:,.1f} s |")
    return "\n".join(lines) + "\n"


def run_suite(report: Path, workers: int) -> tuple[float, float]:
    """The suite as README.md runs it, with a JUnit report: its wall, and its processes' CPU
    seconds (user + system of pytest and every process it waited for)."""
    before, began = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", str(workers), "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=ROOT, check=False,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.monotonic() - began, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def section_of(path: Path) -> str | None:
    """This benchmark's section of the report at ``path``, markers included (``run.py`` keeps it)."""
    return marked_section(path, BEGIN, END)


def write(section: str, command: str) -> None:
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    said = f"Written by `{command}` on {os.cpu_count()} cores, {stamp}."
    body = f"{BEGIN}\n## Where the test suite's time goes (issue 78)\n\n{said}\n\n{section}{END}"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + body + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    RESULTS.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="run the suite (README.md's command) and time it")
    parser.add_argument("--xml", type=Path, help="the JUnit XML report (made by --run, or read)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--write", action="store_true", help="put the section in bench/RESULTS.md")
    parser.add_argument("--wall", type=float, help="a report made elsewhere: its run's wall, in seconds")
    parser.add_argument("--cpu", type=float, help="a report made elsewhere: its run's CPU seconds (user + system)")
    args = parser.parse_args(argv)
    report = args.xml or Path(tempfile.gettempdir()) / "orchestrator-suite.xml"
    wall, cpu = run_suite(report, args.workers) if args.run else (None, args.cpu)
    if not report.exists():
        parser.error(f"no report at {report}: --run makes one")
    found = cases(report)
    if not found:
        parser.error(f"{report} holds no test case")
    section = table(found, wall if wall is not None else args.wall, args.workers, args.top, cpu)
    print(section, end="")
    if args.write:
        write(section, "python bench/suite_time.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
