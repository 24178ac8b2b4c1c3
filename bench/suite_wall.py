"""The test suite's wall at two commits, side by side on this machine (issue 52: at most 0.5x).

    python bench/suite_wall.py [OLD] [NEW] [--rounds N] [--workers N] [--install] [--keep] [--write] [--tests ...]

OLD defaults to 93d8223 (the commit issue 52 measured the suite at), NEW to ``HEAD``. Each commit
is cloned from this repository into a directory of its own under ``$TMPDIR`` (``git clone``,
then a detached checkout), and its suite is run there as README.md runs it, ``python -m pytest
-q -n 4``, timed from the outside (the interpreter's start, collection and every worker's
start-up included). Rounds alternate which commit goes first (A B, B A, ...), so that a load that
comes or goes during the measurement falls on both; the table gives every round's wall, each
commit's median, the test counts pytest's summary reports and the ratio NEW / OLD of the medians;
``--write`` puts it in bench/RESULTS.md, in a section of its own that ``bench/run.py`` keeps.

What each clone runs with:

- **Its own code, this interpreter.** ``PYTHONPATH`` names the clone, so the in-process tests
  and every ``python -m orchestrator`` a test starts run the clone's package with this venv's
  libraries (installed by ``pip install -e ".[test,dask]"``); the commits compared must need the
  same libraries. ``--install`` gives each clone a fresh venv of its own instead, made as
  README.md says (slower: pip resolves and installs everything once a commit).
- **The agent CLIs already installed.** The clone's ``.cache`` is a link to this repository's
  (the pinned claude, codex, gemini and opencode of ``tools/install-*.sh``, which README's
  command installs there), so nothing is downloaded and both commits run the same binaries; a
  CLI missing there makes its tests skip in both.
- **Nothing of this shell's that changes a test.** ``ORCHESTRATOR_*`` variables (a
  ``$ORCHESTRATOR_TIMING`` would change one commit's clocks and not the other's, a
  ``$ORCHESTRATOR_CLAUDE_BIN`` would point both at one claude) and ``PYTEST_ADDOPTS`` are
  removed; ``PYTHONDONTWRITEBYTECODE`` is kept as the shell has it (CI's clean clone).

The machine is shared and small: run it when nothing else runs (each round is a whole suite,
about 15 minutes at 93d8223 on 2 cores), and read the load averages printed around each run.
A suite with failures still gives its wall, and its failures are counted in the table: a
commit whose suite fails more is not faster for it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchlib import BENCH_DIR, marked_section, put_marked_section

REPO = Path(__file__).resolve().parent.parent
OLD = "93d8223"  # issue 52's reference: the suite measured at about 15 minutes on 2 cores
SUMMARY = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)")
HANG_GUARD = 3 * 3600.0  # seconds one suite may take before the measurement gives up on it
BEGIN = "<!-- suite: written by bench/suite_wall.py --write -->"
END = "<!-- /suite -->"


@dataclass(frozen=True, slots=True)
class Suite:
    """One run of one commit's suite."""

    commit: str
    wall: float  # seconds, from the outside
    counts: dict[str, int]  # pytest's summary: passed, failed, skipped, errors...
    code: int
    load: tuple[float, float]  # the 1-minute load average before and after


def resolve(commit: str) -> str:
    """``commit``'s full id in this repository (``UsageError``-like exit 2 when it has none)."""
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{commit}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"suite_wall: {commit!r} is no commit of {REPO} — name one `git log` shows")
    return done.stdout.strip()


def checkout(commit: str, into: Path) -> Path:
    """A clone of this repository at ``commit`` in ``into``, its ``.cache`` this repository's."""
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(REPO), str(into)], check=True)
    subprocess.run(["git", "-C", str(into), "checkout", "--quiet", "--detach", commit], check=True)
    cache = REPO / ".cache"
    if cache.is_dir() and not (into / ".cache").exists():
        (into / ".cache").symlink_to(cache, target_is_directory=True)
    return into


def interpreter(clone: Path, install: bool) -> str:
    """The Python that runs ``clone``'s suite: this one, or with ``install`` a venv of its own
    with the clone installed as README.md installs it."""
    if not install:
        return sys.executable
    venv = clone / ".venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "-e", ".[test,dask]"], cwd=clone, check=True)
    return python


def environment(clone: Path, install: bool) -> dict[str, str]:
    """This shell's environment without what would change one commit's tests and not the
    other's; ``PYTHONPATH`` the clone (unless it is installed in a venv of its own)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("ORCHESTRATOR_") and name not in ("PYTEST_ADDOPTS", "PYTHONPATH", "VIRTUAL_ENV")
    }
    if not install:
        env["PYTHONPATH"] = str(clone)
    return env


def run_suite(
    commit: str, clone: Path, python: str, env: dict[str, str], workers: int, tests: list[str], log: Path
) -> Suite:
    """``python -m pytest -q -n WORKERS [TESTS]`` in ``clone``, timed from the outside; its output in ``log``."""
    before = os.getloadavg()[0]
    began = time.monotonic()
    with log.open("wb") as out:
        done = subprocess.run(
            [python, "-m", "pytest", "-q", "-n", str(workers), *tests],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=HANG_GUARD,
            check=False,
        )
    wall = time.monotonic() - began
    tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] or [""]
    counts = {("errors" if kind == "error" else kind): int(number) for number, kind in SUMMARY.findall(tail[0])}
    return Suite(commit, wall, counts, done.returncode, (before, os.getloadavg()[0]))


def table(old: str, new: str, suites: list[Suite]) -> str:
    """The rounds, each commit's median and the ratio, as markdown."""
    lines = [
        "| round | commit | wall | passed | failed | skipped | errors | exit | load before → after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for number, suite in enumerate(suites, start=1):
        got = suite.counts
        lines.append(
            f"| {(number + 1) // 2} | {suite.commit[:7]} | {suite.wall:.0f} s | {got.get('passed', 0)} | "
            f"{got.get('failed', 0)} | {got.get('skipped', 0)} | {got.get('errors', 0)} | {suite.code} | "
            f"{suite.load[0]:.1f} → {suite.load[1]:.1f} |"
        )
    medians = {c: statistics.median(s.wall for s in suites if s.commit == c) for c in (old, new)}
    lines += [
        "",
        f"median wall: {old[:7]} {medians[old]:.0f} s, {new[:7]} {medians[new]:.0f} s; "
        f"ratio {new[:7]} / {old[:7]} = {medians[new] / medians[old]:.2f} (issue 52's target: at most 0.50)",
    ]
    return "\n".join(lines)


def section(old: str, new: str, suites: list[Suite], rounds: int, workers: int, install: bool) -> str:
    """RESULTS.md's section: how it was measured, and the table."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    how = "a fresh venv each (--install)" if install else "this venv's libraries"
    return "\n".join(
        [
            "## The test suite (issue 52): its wall at two commits",
            "",
            f"Written by `python bench/suite_wall.py {old[:7]} {new[:7]} --rounds {rounds} --workers {workers}"
            f"{' --install' if install else ''} --write` on {os.cpu_count()} cores, {when}. Each commit cloned"
            f" into `$TMPDIR` and its suite run as README.md runs it (`python -m pytest -q -n {workers}`), with "
            f"{how}, the agent CLIs of this repository's `.cache` and none of the shell's `ORCHESTRATOR_*`"
            " variables; rounds alternate which commit goes first. Target: the same tests or more in at most 0.5x"
            " the wall of 93d8223's suite (what the suite does for it: [README.md](README.md#the-test-suite)).",
            "",
            table(old, new, suites),
        ]
    )


def section_of(path: Path) -> str | None:
    """The suite's section a report holds, if any (``bench/run.py`` keeps it when it rewrites the file)."""
    return marked_section(path, BEGIN, END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("old", nargs="?", default=OLD, help=f"the reference commit (default {OLD})")
    parser.add_argument("new", nargs="?", default="HEAD", help="the commit measured against it (default HEAD)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each suite, alternating first (default 1)")
    parser.add_argument("--workers", type=int, default=4, help="pytest -n, as README.md runs it (default 4)")
    parser.add_argument("--install", action="store_true", help="a fresh venv for each clone, as README.md installs")
    parser.add_argument("--keep", action="store_true", help="keep the clones and logs (their directory is printed)")
    parser.add_argument("--write", action="store_true", help="put the table in bench/RESULTS.md")
    parser.add_argument(
        "--tests", nargs="+", default=[], metavar="PATH", help="only these test files (a smoke check: not the measure)"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.workers < 1:
        parser.error("--rounds and --workers are at least 1")
    old, new = resolve(args.old), resolve(args.new)
    place = Path(tempfile.mkdtemp(prefix="suite-wall-"))
    kept = "kept" if args.keep else "removed at the end; --keep keeps them"
    print(f"clones and logs in {place} ({kept}; load average now {os.getloadavg()[0]:.1f})", flush=True)
    try:
        ready = {}
        for commit in (old, new):
            clone = checkout(commit, place / commit[:12])
            ready[commit] = (clone, interpreter(clone, args.install), environment(clone, args.install))
        suites: list[Suite] = []
        for number in range(args.rounds):
            order = (old, new) if number % 2 == 0 else (new, old)
            for commit in order:
                clone, python, env = ready[commit]
                log = place / f"round-{number + 1}-{commit[:7]}.log"
                print(f"round {number + 1}: {commit[:7]} ...", end=" ", flush=True)
                suite = run_suite(commit, clone, python, env, args.workers, args.tests, log)
                print(f"{suite.wall:.0f} s, {suite.counts}", flush=True)
                suites.append(suite)
        print()
        print(table(old, new, suites))
        if args.write and not args.tests:
            body = section(old, new, suites, args.rounds, args.workers, args.install)
            put_marked_section(BENCH_DIR / "RESULTS.md", BEGIN, END, body)
            print(f"written to {BENCH_DIR / 'RESULTS.md'}")
        elif args.write:
            print("not written: --tests measures a part of the suite, not the suite")
    finally:
        if not args.keep:
            shutil.rmtree(place, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
