"""Every malformed plan in ``tests/bad_plans/`` is refused the same way.

Each ``NN-name.md`` is a plan exactly as a person or an LLM might write it; ``NN-name.expect`` holds
one substring per line that must appear in stderr. ``validate``, ``render`` and ``run`` must exit 2, print
only ``master_plan.md:LINE: what — what to do`` lines and a summary, never a traceback, and leave
the directory tree byte-for-byte and mtime-for-mtime as it was. Every case runs through
``cli.main`` in-process and through the library; a sample also runs as real ``python -m
orchestrator`` processes (a new interpreter costs ~0.3 s, too much for every case).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import orchestrator
from orchestrator import PlanError
from orchestrator.cli.main import main
from orchestrator.errors import shown
from orchestrator.run.checks.preflight import check_plan

CORPUS = Path(__file__).parent / "bad_plans"
# The CLI runs in the project directory: a problem names the plan as a user there opens it.
PROBLEM_LINE = re.compile(r"^\.orchestrator/master_plan\.md:\d+: .+ — .+$")
SUMMARY_LINE = re.compile(r"^\d+ problems?; nothing was written\.$")

_TABLE = b"## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n"

# Plans that cannot be stored as UTF-8 text files: (bytes, expected substrings).
GENERATED: dict[str, tuple[bytes, list[str]]] = {
    "gen-latin1-bytes": (
        b"# Task Plan\n\n" + _TABLE + b"| T-01 | R\xe9sum\xe9 the files | None |\n",
        ["master_plan.md:6: not valid UTF-8 (byte 0xe9) — save the file as UTF-8"],
    ),
    "gen-bom-then-latin1": (
        b"\xef\xbb\xbf# Task Plan\n\n" + _TABLE + b"| T-01 | Scan | None |\n| T-02 | Na\xefve report | T-01 |\n",
        ["master_plan.md:7: not valid UTF-8 (byte 0xef)"],
    ),
    "gen-utf16": (
        "# Task Plan\n\n## Task Decomposition\n| Task ID | Description |\n|---|---|\n| T-01 | Scan |\n".encode(
            "utf-16"
        ),
        ["master_plan.md:1: not valid UTF-8 (byte 0xff)"],
    ),
    "gen-cp1252-quotes-in-frontmatter": (
        b"---\nbackend: \x93claude\x94\n---\n# Task Plan\n\n" + _TABLE + b"| T-01 | Scan | None |\n",
        ["master_plan.md:2: not valid UTF-8 (byte 0x93)"],
    ),
    # NUL is valid UTF-8, but no process takes it in an argument or its environment.
    "gen-nul-byte-in-a-description": (
        b"# Task Plan\n\n" + _TABLE + b"| T-01 | Scan | None |\n| T-02 | echo a\x00b | T-01 |\n",
        ["master_plan.md:7: a NUL byte (\\0) in the plan — delete it", "1 problem"],
    ),
    # Too big to keep in the corpus as files (and under PLAN_LIMIT, which a larger plan meets first).
    "gen-shell-script-of-2-mb": (
        b"---\nbackend: shell\n---\n# Task Plan\n\n"
        + b"## Task Decomposition\n| Task ID | Command | Dependencies |\n|---|---|---|\n"
        + b"| T-01 | echo "
        + b"x" * 2_000_000
        + b" | None |\n",
        ["master_plan.md:9: T-01: the script is 2,000,005 bytes, and bash takes it as one argument of at most 130,893"],
    ),
    "gen-frontmatter-of-300-kb": (
        b"---\nbackend: shell\n"
        + b"# a comment\n" * 30_000
        + b"---\n# Task Plan\n\n"
        + _TABLE
        + b"| T-01 | Scan | None |\n",
        ["master_plan.md:1: the frontmatter is 360,015 characters, more than the 262,144 it may have"],
    ),
    "gen-append-system-prompt-of-200-kb": (
        b"---\nbackend: shell\nappend_system_prompt: "
        + b"word " * 40_000
        + b"\n---\n# Task Plan\n\n"
        + _TABLE
        + b"| T-01 | Scan | None |\n",
        ["master_plan.md:3: bad value for 'append_system_prompt': 199,999 bytes"],
    ),
    # One variable over MAX_ARG_STRLEN: no process of the task could be started with it.
    "gen-env-value-of-200-kb": (
        b"---\nbackend: shell\nenv:\n  NOTES: "
        + b"x" * 200_000
        + b"\n---\n# Task Plan\n\n"
        + _TABLE
        + b"| T-01 | Scan | None |\n",
        [
            "master_plan.md:3: bad value for 'env': NOTES is 200,006 bytes with its name, and an environment variable "
            "may be at most 131,071"
        ],
    ),
}


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    data: bytes
    expected: list[str]


def _load_cases() -> list[Case]:
    cases: list[Case] = []
    for plan in sorted(CORPUS.glob("*.md")):
        expect = plan.with_suffix(".expect")
        lines = [line.rstrip() for line in expect.read_text(encoding="utf-8").splitlines()]
        cases.append(Case(plan.stem, plan.read_bytes(), [line for line in lines if line]))
    for name, (data, expected) in GENERATED.items():
        cases.append(Case(name, data, expected))
    return cases


CASES = _load_cases()
IDS = [case.name for case in CASES]

Snapshot = dict[str, tuple[str, bytes, int, int]]


def snapshot(root: Path) -> Snapshot:
    """Every path under ``root`` (and root itself) with its kind, bytes, mtime and mode."""
    found: Snapshot = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        rel = path.relative_to(root).as_posix()
        if path.is_dir():
            found[rel] = ("dir", b"", st.st_mtime_ns, st.st_mode)
        else:
            found[rel] = ("file", path.read_bytes(), st.st_mtime_ns, st.st_mode)
    return found


def make_project(root: Path, data: bytes) -> Path:
    workspace = root / ".orchestrator"
    workspace.mkdir(parents=True)
    (workspace / "master_plan.md").write_bytes(data)
    return workspace


def check_stderr(stderr: str, expected: list[str]) -> None:
    assert "Traceback" not in stderr, stderr
    for substring in expected:
        assert substring in stderr, f"{substring!r} not in stderr:\n{stderr}"
    lines = stderr.splitlines()
    assert lines, "nothing on stderr"
    for line in lines:
        assert PROBLEM_LINE.match(line) or SUMMARY_LINE.match(line), f"badly formed line: {line!r}"
    assert SUMMARY_LINE.match(lines[-1]), lines[-1]
    problems = [line for line in lines if PROBLEM_LINE.match(line)]
    count = int(lines[-1].split()[0])
    assert count == len(problems)


# --- the corpus itself ---------------------------------------------------------------------------


def test_corpus_is_complete() -> None:
    plans = sorted(CORPUS.glob("*.md"))
    assert len(plans) >= 45
    for plan in plans:
        assert re.fullmatch(r"\d\d-[a-z0-9-]+\.md", plan.name), plan.name
        assert plan.with_suffix(".expect").is_file(), f"{plan.name} has no .expect file"
    for expect in CORPUS.glob("*.expect"):
        assert expect.with_suffix(".md").is_file(), f"{expect.name} has no plan"
    assert len({plan.name[:2] for plan in plans}) == len(plans), "two plans share a number"


# --- the CLI in-process (cli.main), every case ----------------------------------------------------


@pytest.mark.parametrize("command", ["validate", "render", "run"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cli_refuses_and_writes_nothing(
    case: Case, command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_project(tmp_path, case.data)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert main([command]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    check_stderr(err, case.expected)
    assert snapshot(tmp_path) == before


# --- the real CLI, as a subprocess: a sample, run in parallel --------------------------------------

SUBPROCESS_CASES = [
    case for case in CASES if case.name[:3] in {"03-", "13-", "15-", "25-", "51-"} or case.name == "gen-bom-then-latin1"
]


@dataclass(slots=True)
class CliRun:
    validate: subprocess.CompletedProcess[str]
    render: subprocess.CompletedProcess[str]
    before: Snapshot
    after_validate: Snapshot
    after_render: Snapshot


def run_cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=root,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def _run_case(root: Path, case: Case) -> CliRun:
    make_project(root, case.data)
    before = snapshot(root)
    validate = run_cli(root, "validate")
    after_validate = snapshot(root)
    render = run_cli(root, "render")
    return CliRun(validate, render, before, after_validate, snapshot(root))


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, CliRun]]:
    """``validate`` then ``render`` on every sampled case, the cases in parallel."""
    base = tmp_path_factory.mktemp("cli")
    with ThreadPoolExecutor(max_workers=max(4, 2 * (os.cpu_count() or 1))) as pool:
        futures = {case.name: pool.submit(_run_case, base / case.name, case) for case in SUBPROCESS_CASES}
        yield {name: future.result() for name, future in futures.items()}
    shutil.rmtree(base, ignore_errors=True)


def test_subprocess_sample_is_present() -> None:
    assert len(SUBPROCESS_CASES) == 6


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=[c.name for c in SUBPROCESS_CASES])
def test_subprocess_validate_and_render_refuse(case: Case, cli_runs: dict[str, CliRun]) -> None:
    run = cli_runs[case.name]
    for proc in (run.validate, run.render):
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stdout == ""
        check_stderr(proc.stderr, case.expected)
    assert run.after_validate == run.before
    assert run.after_render == run.before


def test_cli_json_subprocess(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.name.startswith("51-"))
    make_project(tmp_path, case.data)
    before = snapshot(tmp_path)
    proc = run_cli(tmp_path, "validate", "--json")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    data = json.loads(proc.stdout)  # exactly one JSON document
    assert proc.stdout.count("\n") == 1
    assert data["ok"] is False
    assert data["error"] == "PlanError"
    assert len(data["problems"]) == 5
    assert {"file", "line", "message", "hint"} <= set(data["problems"][0])
    assert snapshot(tmp_path) == before


# --- the library and --json, every case ------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_library_raises_plan_error(case: Case, tmp_path: Path) -> None:
    workspace = make_project(tmp_path, case.data)
    before = snapshot(tmp_path)
    with pytest.raises(PlanError) as info:
        plan = orchestrator.load_plan(workspace)
        check_plan(plan, orchestrator.Workspace.find(workspace))  # what validate and run check beyond the file
    problems = info.value.problems
    assert problems
    text = "\n".join(str(p) for p in problems)
    for substring in case.expected:
        if SUMMARY_LINE.match(substring) or re.fullmatch(r"\d+ problems?", substring):
            continue  # the summary is the CLI's
        assert substring in text, f"{substring!r} not in:\n{text}"
    for problem in problems:
        assert problem.file == shown(workspace / "master_plan.md")  # as a user here opens it
        assert problem.line >= 1
        assert problem.message and problem.hint
        assert "\n" not in str(problem)
    assert str(info.value) == text
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_json_problems(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_project(tmp_path, case.data)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert main(["validate", "--json"]) == 2
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["ok"] is False
    assert isinstance(data["problems"], list) and data["problems"]
    joined = "\n".join(f"{p['file']}:{p['line']}: {p['message']} — {p['hint']}" for p in data["problems"])
    for substring in case.expected:
        if not SUMMARY_LINE.match(substring) and not re.fullmatch(r"\d+ problems?", substring):
            assert substring in joined
    check_stderr(err, case.expected)
    assert snapshot(tmp_path) == before


def test_a_problem_names_the_plan_as_a_user_here_opens_it(tmp_path: Path) -> None:
    """``master_plan.md:21`` alone did not say which workspace's plan; the path from the current
    directory does (absolute when the plan is not below it), in the line and in ``--json``."""
    case = next(c for c in CASES if c.name.startswith("13-"))
    make_project(tmp_path / "proj", case.data)
    (tmp_path / "elsewhere").mkdir()
    below = run_cli(tmp_path, "validate", "proj")
    assert below.returncode == 2
    assert below.stderr.startswith("proj/.orchestrator/master_plan.md:"), below.stderr
    outside = run_cli(tmp_path / "elsewhere", "validate", "../proj", "--json")
    assert outside.returncode == 2
    plan = tmp_path / "proj" / ".orchestrator" / "master_plan.md"
    assert outside.stderr.startswith(f"{plan}:"), outside.stderr
    assert {p["file"] for p in json.loads(outside.stdout)["problems"]} == {str(plan)}


def test_a_backend_setting_is_blamed_on_its_own_line(tmp_path: Path) -> None:
    plan = "---\nbackend: claude\nmax_parallel: 2\npermission_mode: yolo\n---\n" + SHELL_LESS_TABLE
    make_project(tmp_path, plan.encode())
    proc = run_cli(tmp_path, "validate")
    assert proc.returncode == 2
    assert proc.stderr.startswith(".orchestrator/master_plan.md:4: backend 'claude': permission_mode 'yolo'"), (
        proc.stderr
    )
    assert "fix that setting" in proc.stderr


SHELL_LESS_TABLE = (
    "## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n| T-01 | x | None |\n"
)


EVERYTHING_WRONG = """---
backend: claude
permission_mode: acceptEdit
max_paralel: 3
---
# Plan

## Task Decomposition
| Task ID | Description | Dependencies |
|---|---|---|
| T-01 | One | T-03 |
| T-02 | Two | T-01, T-09 |
| T-03 | Three | T-02 |
| T 04 | Four | None |
"""


def test_validate_lists_every_problem_of_the_plan_at_once(tmp_path: Path) -> None:
    """SKILL.md: every problem at once. A dependency cycle among the rows that parse, and what
    the plan's backend says of its settings, are listed beside the problems that keep the plan
    from parsing, not after those are fixed; a misspelt mode gets its suggestion."""
    make_project(tmp_path, EVERYTHING_WRONG.encode())
    before = snapshot(tmp_path)
    proc = run_cli(tmp_path, "validate")
    assert proc.returncode == 2
    expected = [
        ".orchestrator/master_plan.md:3: backend 'claude': permission_mode 'acceptEdit' is not one of claude's "
        "(did you mean 'acceptEdits'?): default, manual, acceptEdits,",
        ".orchestrator/master_plan.md:4: unknown setting 'max_paralel' (did you mean 'max_parallel'?)",
        ".orchestrator/master_plan.md:11: dependency cycle: T-01 -> T-02 -> T-03 -> T-01 — ",
        ".orchestrator/master_plan.md:12: T-02 depends on unknown task 'T-09'",
        ".orchestrator/master_plan.md:14: task id 'T 04' has characters outside",
        "5 problems; nothing was written.",
    ]
    check_stderr(proc.stderr, expected)
    assert snapshot(tmp_path) == before
    # The library says the cycle with the others too (what the backend says needs the backends).
    with pytest.raises(PlanError) as raised:
        orchestrator.load_plan(tmp_path)
    assert any(p.message.startswith("dependency cycle: T-01 -> T-02 -> T-03") for p in raised.value.problems)


@pytest.mark.parametrize(
    ("backend", "mode", "words"),
    [
        ("codex", "read_only", "is not one of codex's sandboxes (-s) (did you mean 'read-only'?): read-only,"),
        ("gemini", "autoedit", "is not one of gemini's approval modes (did you mean 'auto_edit'?): default,"),
    ],
)
def test_a_misspelt_permission_mode_gets_a_suggestion(tmp_path: Path, backend: str, mode: str, words: str) -> None:
    plan = f"---\nbackend: {backend}\npermission_mode: {mode}\n---\n" + SHELL_LESS_TABLE
    make_project(tmp_path, plan.encode())
    proc = run_cli(tmp_path, "validate")
    assert proc.returncode == 2
    check_stderr(
        proc.stderr, [f".orchestrator/master_plan.md:3: backend '{backend}': permission_mode '{mode}' {words}"]
    )


def test_the_plans_own_settings_are_checked_though_every_task_names_its_backend(tmp_path: Path) -> None:
    """The plan's backend runs the aggregating agent, and any task added without a Backend cell:
    its settings must fit it even while every task runs elsewhere."""
    table = SHELL_LESS_TABLE.replace("| Dependencies |\n|---|---|---|", "| Dependencies | Backend |\n|---|---|---|---|")
    plan = "---\nbackend: gemini\npermission_mode: acceptEdits\n---\n" + table.replace("| None |", "| None | claude |")
    make_project(tmp_path, plan.encode())
    proc = run_cli(tmp_path, "validate")
    assert proc.returncode == 2
    check_stderr(proc.stderr, [".orchestrator/master_plan.md:3: backend 'gemini': permission_mode 'acceptEdits'"])
