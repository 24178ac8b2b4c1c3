"""What the parser accepts: column and heading variants, dependency and priority spellings,
frontmatter settings, Task Details, agent numbering."""

from __future__ import annotations

import gc
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator import Plan, PlanError, Task, Workspace, load_plan, parse_plan
from orchestrator.cli.main import main
from orchestrator.plan.markdown import normalize_heading
from orchestrator.plan.table import cells as plan_module


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def plan_of(
    header: list[str], rows: list[list[str]], *, heading: str = "## Task Decomposition", extra: str = ""
) -> Plan:
    text = f"# Plan\n\n## Original Request\n> Do it.\n\n{heading}\n" + table(header, rows) + extra
    return parse_plan(text)


def edges(plan: Plan) -> set[tuple[str, str]]:
    return set(plan.graph.edges)


SEED = """# 🎯 Task Plan

## Original Request
> Analyse the sales data and write a report.

## Goal Definition
**Primary Goal**: A report.

## Task Decomposition
| Task ID | Description | Dependencies | Agent |
|---------|-------------|--------------|-------|
| T-01 | Collect data | None | Agent-01 |
| T-02 | Clean data | T-01 | Agent-02 |
| T-03 | Compute statistics | T-02 | Agent-03 |
| T-04 | Draw charts | T-02 | Agent-04 |
| T-05 | Generate report | T-02,T-03,T-04 | Agent-05 |

## Agent Assignment
(filled in by the tool)

## Dependency Graph
(filled in by the tool)
"""


def test_seed_table_unchanged() -> None:
    plan = parse_plan(SEED)
    assert list(plan.tasks) == ["T-01", "T-02", "T-03", "T-04", "T-05"]
    t5 = plan.tasks["T-05"]
    assert t5.dependencies == ("T-02", "T-03", "T-04")
    assert t5.agent == "Agent-05"
    assert t5.slug == "agent-05"
    assert t5.description == "Generate report"
    assert t5.instructions == "Generate report"
    assert t5.title == "Generate report"
    assert t5.priority == 2 and t5.priority_name == "P2"
    assert t5.line == 16
    assert edges(plan) == {
        ("T-01", "T-02"),
        ("T-02", "T-03"),
        ("T-02", "T-04"),
        ("T-02", "T-05"),
        ("T-03", "T-05"),
        ("T-04", "T-05"),
    }
    assert plan.request == "Analyse the sales data and write a report."
    assert plan.goal == "**Primary Goal**: A report."
    assert plan.upstream("T-05") == ["T-02", "T-03", "T-04"]
    assert plan.downstream("T-02") == {"T-03", "T-04", "T-05"}
    assert len(plan) == 5


def test_seed_table_through_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = tmp_path / ".orchestrator"
    workspace.mkdir()
    # validate needs no agent CLI installed; the table is the seed's, unchanged.
    (workspace / "master_plan.md").write_text("---\nbackend: claude\n---\n" + SEED, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()}
    assert main(["validate"]) == 0
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.rglob("*")) == [".orchestrator", "master_plan.md"]
    out, err = capsys.readouterr()
    assert out.startswith("OK: 5 tasks, 6 dependencies, 4 layers")
    assert err == ""
    assert load_plan(workspace).tasks["T-05"].dependencies == ("T-02", "T-03", "T-04")
    assert load_plan(workspace / "master_plan.md").tasks.keys() == load_plan(workspace).tasks.keys()


@pytest.mark.parametrize("backend", ["claude", "no-such-backend"])
def test_validate_runs_without_the_garbage_collector_and_turns_it_back_on(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator.run.checks import preflight as checks

    workspace = tmp_path / ".orchestrator"
    workspace.mkdir()
    (workspace / "master_plan.md").write_text(f"---\nbackend: {backend}\n---\n" + SEED, encoding="utf-8")
    during: list[bool] = []
    real = checks.check_plan

    def check_plan(plan: Plan, ws: Workspace, *more: Any, **options: Any) -> None:
        during.append(gc.isenabled())
        real(plan, ws, *more, **options)

    monkeypatch.setattr(checks, "check_plan", check_plan)
    assert main(["validate", str(workspace)]) == (0 if backend == "claude" else 2)  # a PlanError on the way out
    assert during == [False]
    assert gc.isenabled()
    assert capsys.readouterr().out.startswith("OK" if backend == "claude" else "")


@pytest.mark.parametrize("id_header", ["Task ID", "ID", "task id", "TASK ID", "**Task ID**", "Task"])
@pytest.mark.parametrize("deps_header", ["Dependencies", "Depends On", "Deps", "depends on"])
def test_id_and_dependency_headers(id_header: str, deps_header: str) -> None:
    plan = plan_of([id_header, "Description", deps_header], [["A1", "first", "None"], ["B2", "second", "A1"]])
    assert list(plan.tasks) == ["A1", "B2"]
    assert plan.tasks["B2"].dependencies == ("A1",)
    assert edges(plan) == {("A1", "B2")}


@pytest.mark.parametrize("name_header", ["Task Name", "Name", "Title", "title"])
def test_name_headers(name_header: str) -> None:
    plan = plan_of(["ID", name_header, "Dependencies"], [["T-01", "Scan the code", "-"]])
    task = plan.tasks["T-01"]
    assert task.name == "Scan the code"
    assert task.description == ""
    assert task.title == "Scan the code"
    assert task.instructions == "Scan the code"


@pytest.mark.parametrize("header", ["Assignee", "Profile", "assignee"])
def test_profile_headers(header: str) -> None:
    plan = plan_of(["ID", "Description", header], [["T-01", "Review", "reviewer"], ["T-02", "Write", "-"]])
    assert plan.tasks["T-01"].profile == "reviewer"
    assert plan.tasks["T-02"].profile is None


def test_every_column_at_once() -> None:
    header = [
        "Task ID",
        "Task Name",
        "Description",
        "Depends On",
        "Priority",
        "Agent",
        "Assignee",
        "Timeout",
        "Retries",
        "Tags",
        "Notes",
    ]
    rows = [
        ["T-01", "Scan", "List files", "—", "P0", "Scanner", "explorer", "5m", "0", "io, fast", "n1"],
        ["T-02", "Report", "Write it", "T-01", "low", "", "writer", "none", "-", "", "n2"],
    ]
    plan = plan_of(header, rows)
    t1, t2 = plan.tasks["T-01"], plan.tasks["T-02"]
    assert (t1.name, t1.description, t1.priority) == ("Scan", "List files", 0)
    assert (t1.agent, t1.profile) == ("Scanner", "explorer")
    assert (t1.timeout, t1.timeout_set, t1.retries, t1.tags) == (300.0, True, 0, ("io", "fast"))
    assert t1.extra == {"Notes": "n1"}
    assert (t2.priority, t2.agent, t2.profile, t2.retries, t2.tags) == (3, "Agent-01", "writer", None, ())
    assert (t2.timeout, t2.timeout_set) == (None, True)
    settings = plan.settings_for(t1)
    assert (settings.timeout, settings.retries) == (300.0, 0)
    assert plan.settings_for(t2).timeout is None  # 'none' in the cell: no limit for this task
    assert plan.settings_for(t2).retries == plan.settings.retries


def test_table_without_outer_pipes_and_escaped_pipe() -> None:
    text = (
        "## Task Decomposition\n"
        "Task ID | Description | Dependencies\n"
        "--- | --- | ---\n"
        "T-01 | grep a \\| b | None\n"
        "T-02 | summarise | T-01\n"
    )
    plan = parse_plan(text)
    assert plan.tasks["T-01"].description == "grep a | b"
    assert edges(plan) == {("T-01", "T-02")}


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("None", ()),
        ("none", ()),
        ("-", ()),
        ("—", ()),
        ("", ()),
        ("N/A", ()),
        ("A", ("A",)),
        ("A,B", ("A", "B")),
        ("A, B", ("A", "B")),
        ("A B", ("A", "B")),
        ("A ,B ,  C", ("A", "B", "C")),
        ("A,  B C", ("A", "B", "C")),
        ("`A`, **B**", ("A", "B")),
        ("A and B", ("A", "B")),
        ("a, b", ("A", "B")),  # ids in dependencies are case-insensitive; stored as spelled in Task ID
        ("A, A, a", ("A",)),
    ],
)
def test_dependency_separators(cell: str, expected: tuple[str, ...]) -> None:
    rows = [["A", "first", "None"], ["B", "second", "None"], ["C", "third", "None"], ["D", "last", cell]]
    plan = plan_of(["Task ID", "Description", "Dependencies"], rows)
    assert plan.tasks["D"].dependencies == expected
    assert edges(plan) == {(dep, "D") for dep in expected}


@pytest.mark.parametrize(
    ("cell", "level"),
    [
        ("P0", 0),
        ("P1", 1),
        ("P2", 2),
        ("P3", 3),
        ("p1", 1),
        ("critical", 0),
        ("Critical", 0),
        ("urgent", 0),
        ("high", 1),
        ("HIGH", 1),
        ("normal", 2),
        ("medium", 2),
        ("low", 3),
        ("0", 0),
        ("1", 1),
        ("7", 7),
        ("", 2),
        ("P1 (high)", 1),
        ("**high**", 1),
    ],
)
def test_priorities(cell: str, level: int) -> None:
    plan = plan_of(["Task ID", "Description", "Priority"], [["T-01", "x", cell]])
    task = plan.tasks["T-01"]
    assert task.priority == level
    assert task.priority_name == f"P{level}"


@pytest.mark.parametrize(
    "heading",
    [
        "## Task Decomposition",
        "## task decomposition",
        "## TASK DECOMPOSITION",
        "## 📋 Task Decomposition",
        "## 📋 task decomposition:",
        "##   Task   Decomposition  ",
        "## Task Decomposition ##",
    ],
)
def test_heading_variants(heading: str) -> None:
    plan = plan_of(["Task ID", "Description"], [["T-01", "x"]], heading=heading)
    assert list(plan.tasks) == ["T-01"]


def test_heading_inside_code_fence_is_not_the_section() -> None:
    text = (
        "# Plan\n\n```markdown\n## Task Decomposition\n| Task ID | Description |\n|---|---|\n| X-1 | fake |\n```\n\n"
        "## Task Decomposition\n| Task ID | Description |\n|---|---|\n| T-01 | real |\n"
    )
    assert list(parse_plan(text).tasks) == ["T-01"]


def test_task_details() -> None:
    details = (
        "\n## 📝 Task Details\n"
        "<!-- a comment -->\n\n"
        "### T-01 Scan\n"
        "Read every file.\n\n"
        "#### Notes\n"
        "- keep {{ braces }}\n\n"
        "### **t-02**: Report\n"
        "Write it up.\n\n"
        "## Agent Assignment\n"
        "not part of the details\n"
    )
    plan = plan_of(
        ["Task ID", "Task Name", "Description", "Dependencies"],
        [
            ["T-01", "Scan", "scan files", "None"],
            ["T-02", "Report", "write", "T-01"],
            ["T-03", "Name only", "", "T-02"],
        ],
        extra=details,
    )
    t1, t2, t3 = plan.tasks.values()
    assert t1.details == "Read every file.\n\n#### Notes\n- keep {{ braces }}"
    assert t1.instructions == t1.details.strip()
    assert t2.details == "Write it up."
    assert t3.details is None


@pytest.mark.parametrize(
    ("name", "description", "details", "expected"),
    [
        ("Name", "Description", "Details body", "Details body"),
        ("Name", "Description", None, "Description"),
        ("Name", "", None, "Name"),
        ("Name", "", "Details body", "Details body"),
        ("", "Description", "Details body", "Details body"),
    ],
)
def test_instructions_precedence(name: str, description: str, details: str | None, expected: str) -> None:
    extra = f"\n## Task Details\n### T-01\n{details}\n" if details is not None else ""
    plan = plan_of(["Task ID", "Task Name", "Description"], [["T-01", name or " ", description or " "]], extra=extra)
    assert plan.tasks["T-01"].instructions == expected


def test_task_dataclass_instructions_precedence() -> None:
    assert Task("T", "n", "d", details="x").instructions == "x"
    assert Task("T", "n", "d").instructions == "d"
    assert Task("T", "n", "").instructions == "n"
    assert Task("T", "", "").title == "T"


def test_agents_numbered_in_table_order() -> None:
    plan = plan_of(["Task ID", "Description", "Dependencies"], [["Z", "z", "None"], ["A", "a", "Z"], ["M", "m", "A"]])
    assert [t.agent for t in plan.tasks.values()] == ["Agent-01", "Agent-02", "Agent-03"]


def test_agents_next_free_number() -> None:
    rows = [
        ["T-01", "a", ""],
        ["T-02", "b", "Agent-01"],
        ["T-03", "c", "-"],
        ["T-04", "d", "agent-03"],
        ["T-05", "e", "Writer"],
        ["T-06", "f", ""],
    ]
    plan = plan_of(["Task ID", "Description", "Agent"], rows)
    agents = [t.agent for t in plan.tasks.values()]
    assert agents == ["Agent-02", "Agent-01", "Agent-04", "agent-03", "Writer", "Agent-05"]
    assert len({t.slug for t in plan.tasks.values()}) == 6


def test_agent_numbers_widen_past_99() -> None:
    rows = [[f"T{i}", f"task {i}"] for i in range(120)]
    plan = plan_of(["Task ID", "Description"], rows)
    agents = [t.agent for t in plan.tasks.values()]
    assert agents[0] == "Agent-001" and agents[-1] == "Agent-120"


def test_frontmatter_settings() -> None:
    text = "---\nmax_parallel: 8\ncolour: blue\n---\n"
    with pytest.raises(PlanError):  # unknown setting names are refused
        parse_plan(text + "## Task Decomposition\n| Task ID | Description |\n|---|---|\n| T-01 | x |\n")
    text = (
        "---\n"
        "max-parallel: 8\n"
        "backend: Codex\n"
        "timeout: 1h30m\n"
        "inactivity_timeout: none\n"
        "retries: 0\n"
        "fail_fast: yes\n"
        "env:\n"
        "  A: 1\n"
        "command: [my-agent, --flag]\n"
        "allowed_tools: Read, Grep\n"
        "---\n"
        "# Plan\n\n"
        "## Task Decomposition\n| Task ID | Description | Timeout | Retries |\n|---|---|---|---|\n"
        "| T-01 | x | | |\n| T-02 | y | 90 | 5 |\n"
    )
    plan = parse_plan(text)
    s = plan.settings
    assert (s.max_parallel, s.backend, s.timeout, s.inactivity_timeout, s.retries, s.fail_fast) == (
        8,
        "codex",
        5400.0,
        None,
        0,
        True,
    )
    assert s.env == {"A": "1"}
    assert s.command == ("my-agent", "--flag")
    assert s.allowed_tools == ("Read", "Grep")
    assert plan.frontmatter["max-parallel"] == 8
    assert plan.settings_for(plan.tasks["T-01"]) == s
    t2 = plan.settings_for(plan.tasks["T-02"])
    assert (t2.timeout, t2.retries, t2.max_parallel) == (90.0, 5, 8)
    assert plan.tasks["T-02"].line == 19


def test_empty_frontmatter_and_defaults() -> None:
    plan = parse_plan("---\n---\n## Task Decomposition\n| ID | Name |\n|--|--|\n| T-01 | x |\n")
    assert plan.settings.max_parallel == 4
    assert plan.tasks["T-01"].line == 6


def test_crlf_and_bom(tmp_path: Path) -> None:
    text = "---\r\nretries: 1\r\n---\r\n# Plan\r\n\r\n## Task Decomposition\r\n| ID | Name | Deps |\r\n|--|--|--|\r\n"
    text += "| T-01 | a | None |\r\n| T-02 | b | T-01 |\r\n"
    path = tmp_path / "master_plan.md"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    plan = load_plan(path)
    assert plan.settings.retries == 1
    assert plan.tasks["T-02"].name == "b"
    assert plan.tasks["T-02"].line == 10
    assert edges(plan) == {("T-01", "T-02")}


def test_allowed_id_characters() -> None:
    ids = ["T-01", "a.b", "x_y", "A1", "0", "v1.2.3", "X" * 64]
    plan = plan_of(["Task ID", "Description"], [[i, "x"] for i in ids])
    assert list(plan.tasks) == ids


def test_all_problems_at_once_in_line_order() -> None:
    rows = [["T-01", "a", "T-9", "P9"], ["T-01", "b", "None", "P1"], ["T-03", "c", "T-03", "P1"]]
    with pytest.raises(PlanError) as info:
        plan_of(["Task ID", "Description", "Dependencies", "Priority"], rows)
    lines = [p.line for p in info.value.problems]
    assert lines == sorted(lines)
    messages = " | ".join(p.message for p in info.value.problems)
    assert "unknown priority 'P9'" in messages
    assert "duplicate task id 'T-01'" in messages
    assert "T-03 depends on itself" in messages
    assert "unknown task 'T-9'" in messages


def test_ids_with_underscores_and_words_inside() -> None:
    rows = [
        ["build-and-test", "a", "None"],
        ["T_", "b", "build-and-test"],
        ["_draft", "c", "T_ and _draft_x"],
        ["_draft_x", "d", "`T_`, **build-and-test**"],
        ["x-", "e", "_draft_x"],
        ["v1.", "f", "x- v1"],
        ["v1", "g", "None"],
    ]
    plan = plan_of(["Task ID", "Description", "Dependencies"], rows)
    assert list(plan.tasks) == ["build-and-test", "T_", "_draft", "_draft_x", "x-", "v1.", "v1"]
    assert plan.tasks["T_"].dependencies == ("build-and-test",)
    assert plan.tasks["_draft"].dependencies == ("T_", "_draft_x")
    assert plan.tasks["_draft_x"].dependencies == ("T_", "build-and-test")
    assert plan.tasks["v1."].dependencies == ("x-", "v1")


def test_details_headings_for_ids_ending_in_punctuation() -> None:
    extra = "\n## Task Details\n### x- Dash\nbody x\n### v1.: Dot\nbody v1.\n### v2. Plain\nbody v2\n"
    extra += "### **T-1**: Bold\nbody t1\n### T-2 — Dash\nbody t2\n"
    rows = [["x-", "a"], ["v1.", "b"], ["v2", "c"], ["T-1", "d"], ["T-2", "e"]]
    plan = plan_of(["Task ID", "Description"], rows, extra=extra)
    assert {t.id: t.details for t in plan.tasks.values()} == {
        "x-": "body x",
        "v1.": "body v1.",
        "v2": "body v2",
        "T-1": "body t1",
        "T-2": "body t2",
    }


# --- fast paths agree with the plain rules ------------------------------------------------------------

_id_like = st.text(
    st.sampled_from("AaZz09._-*_`|/ é\n\t") | st.characters(blacklist_categories=["Cs"]), max_size=70
) | st.sampled_from(["CON", "con.x", "Lpt1.md", "aux", "T-01", "a" * 64, "a" * 65, ".x", "...", "-", "T-01\n", "_"])


def _plain_id_problem(value: str, what: str = "task id") -> str | None:
    """id_problem without its one-match fast path."""
    saved = plan_module._PLAIN_ID_RE
    plan_module._PLAIN_ID_RE = re.compile(r"(?!)")  # matches nothing
    try:
        return plan_module.id_problem(value, what)
    finally:
        plan_module._PLAIN_ID_RE = saved


@settings(max_examples=500, deadline=None)
@given(_id_like)
def test_the_id_fast_path_agrees_with_every_check(value: str) -> None:
    assert plan_module.id_problem(value) == _plain_id_problem(value)


def _plain_split_ids(cell: str) -> list[str]:
    """split_ids as it was: every part cleaned, a generator to find a digit."""
    text = cell.strip()
    lowered = text.lower()
    if lowered in plan_module._NO_DEPS:
        return []
    if not any(char.isdigit() for char in lowered) and normalize_heading(text) in plan_module._NO_DEPS:
        return []
    ids = (plan_module.clean(part) for part in plan_module._DEP_SPLIT_RE.split(text))
    return [i for i in ids if i and i.lower() != "and"]


_dep_piece = st.sampled_from(
    ["T-01", "t-02", "**T-03**", "`T-04`", "_T-05_", "T_", "_draft", "and", "AND", ",", ";", " ", "\u00a0", "None",
     "(none)", "-", "²", "*", "`", "__x__", "\t"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(_dep_piece | st.text(max_size=4), max_size=8).map("".join))
def test_split_ids_agrees_with_the_plain_rules(cell: str) -> None:
    assert plan_module.split_ids(cell) == _plain_split_ids(cell)


def test_a_table_with_unknown_columns_keeps_them_as_extra() -> None:
    plan = plan_of(["Task ID", "Description", "Owner", "Dependencies"], [["A", "a", "me", "None"], ["B", "b", "", "A"]])
    assert plan.tasks["A"].extra == {"Owner": "me"} and plan.tasks["B"].extra == {"Owner": ""}
    assert plan.tasks["B"].dependencies == ("A",)


def test_dependencies_are_spelled_as_in_the_id_column_and_named_once() -> None:
    plan = plan_of(
        ["Task ID", "Description", "Dependencies"],
        [["Ab", "a", "None"], ["Cd", "c", "ab, AB, Ab"], ["Ef", "e", "Ab, Cd, Ab"], ["Gh", "g", "Ab, Cd"]],
    )
    assert [t.dependencies for t in plan.tasks.values()] == [(), ("Ab",), ("Ab", "Cd"), ("Ab", "Cd")]


_ROWS = "## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n| T-01 | Scan | None |\n"
AFTER_THE_TABLE = {
    "a-legend-table": "\n| Symbol | Meaning |\n|---|---|\n| ✅ | done |\n",
    "rows-in-a-code-fence": "\nFor example:\n\n```\n| T-09 | not a task | None |\n```\n",
    "indented-code": "\nFor example:\n\n    | T-09 | not a task | None |\n",
    "the-tools-status-block": (
        "\n<!-- orchestrator:begin status — written by orchestrator -->\n| Task ID | Agent | Status |\n"
        "|---|---|---|\n| T-01 | Agent-01 | ✅ Completed |\n<!-- orchestrator:end status -->\n"
    ),
    "a-note": "\nNote: T-01 may take a while.\n",
    "rows-commented-out": "<!--\n| T-02 | Report | T-01 |\n-->\n",
    "rows-in-pre": "\n<pre>\n| T-02 | not | a row |\n</pre>\n",
    "exit-codes": "\nExit codes:\n| 0 | ok |\n| 1 | failed |\n",
    "a-risks-table-with-an-id-column": "\n| ID | Risk | Mitigation |\n|---|---|---|\n| R-1 | slow disk | retry |\n",
    # Under a later section: a person's notes on the tasks there are, not tasks of their own.
    "review-notes-of-known-tasks": (
        "\n## Review notes\n| Task | Verdict |\n|---|---|\n| T-01 | fine |\n<!-- more -->\n| T-01 | redo |\n"
    ),
    "a-narrower-row-of-a-new-id-in-notes": "\n## Notes\n| T-02 | later, maybe |\n",
    "a-backlog-table-of-tasks-not-planned-yet": (
        "\n## Backlog\n| Task ID | Description |\n|---|---|\n| T-07 | Someday |\n"
    ),
    "a-pasted-row-whose-third-cell-is-a-date": "\n## Notes\n| T-03 | ok | 2026-01-01 |\n",
    "a-table-of-known-tasks-in-notes": (
        "\n## Owners\n| Task ID | Description | Owner |\n|---|---|---|\n| T-01 | Scan | ana |\n"
    ),
}


@pytest.mark.parametrize("after", AFTER_THE_TABLE.values(), ids=AFTER_THE_TABLE.keys())
def test_what_follows_the_task_table_is_not_mistaken_for_cut_off_rows(after: str) -> None:
    """Rows cut off from the task table are refused (tests/bad_plans/68-71); a table of another
    kind, code, the tool's own block and notes under it are not rows of it."""
    plan = parse_plan("# Plan\n\n" + _ROWS + after)
    assert list(plan.tasks) == ["T-01"]


_WIDE_ROWS = (
    "## Task Decomposition\n| Task ID | Description | Dependencies | Command |\n|---|---|---|---|\n"
    "| T-01 | Scan | None | true |\n"
)
NARROWER_NOTES = {
    "a-note-of-two-cells": "\n## Notes\n| T-02 | later, maybe |\n",
    "a-note-whose-last-cell-is-empty": "\n## Notes\n| T-02 | later | |\n",
    "a-pasted-row-whose-third-cell-is-a-date": "\n## Notes\n| T-03 | ok | 2026-01-01 |\n",
    "a-note-that-names-a-task-in-words": "\n## Notes\n| T-02 | after T-01, maybe |\n",
    "a-table-of-your-own-with-a-header": (
        "\n## Notes\n| Task | Note | Dependencies |\n|---|---|---|\n| T-02 | x | None |\n"
    ),
}


@pytest.mark.parametrize("after", NARROWER_NOTES.values(), ids=NARROWER_NOTES.keys())
def test_a_narrower_row_under_a_later_section_that_reads_as_a_note_is_left_alone(after: str) -> None:
    plan = parse_plan("# Plan\n\n" + _WIDE_ROWS + after)
    assert list(plan.tasks) == ["T-01"]


@pytest.mark.parametrize(
    "row",
    [
        pytest.param("| T-02 | Two | None |", id="no-dependencies"),
        pytest.param("| T-02 | Two | T-01 |", id="a-dependency"),
        pytest.param("| T-02 | Two | T-01, T-03 |", id="dependencies-one-new"),
    ],
)
def test_a_narrower_row_appended_under_a_later_section_is_refused(row: str) -> None:
    """``echo '| T-02 | Two | None |' >> master_plan.md`` on a plan of four columns: a row that
    stands alone, a new id of the table's shape, a cell that says dependencies. It was ignored, the
    task never run, and nothing said."""
    text = "# Plan\n\n" + _WIDE_ROWS + "\n## Task Details\nScan it.\n" + row + "\n"
    with pytest.raises(PlanError) as caught:
        parse_plan(text)
    [problem] = caught.value.problems
    assert problem.line == 10 and "T-02 would never run" in problem.message, problem
    assert "a cell for each of its 4 columns" in problem.hint and "header row" in problem.hint, problem


def test_cut_off_rows_are_one_problem_not_one_more_per_task_details_section() -> None:
    text = "# Plan\n\n" + _ROWS + "\n| T-02 | Report | T-01 |\n\n## Task Details\n### T-02 Report\nWrite it.\n"
    with pytest.raises(PlanError) as caught:
        parse_plan(text)
    assert [(p.line, p.message.split(":")[0]) for p in caught.value.problems] == [
        (8, "this row is not part of the task table, which ends on line 6")
    ]


@pytest.mark.parametrize("value", ["0", "none", "0s", "0m"])
def test_a_time_limit_of_zero_or_none_is_no_limit_as_the_settings_table_says(value: str) -> None:
    text = (
        f"---\nbackend: shell\ntimeout: {value}\ninactivity_timeout: {value}\n---\n## Task Decomposition\n"
        "| Task ID | Command | Dependencies |\n|---|---|---|\n| T-01 | true | None |\n"
    )
    settings = parse_plan(text).settings
    assert settings.timeout is None and settings.inactivity_timeout is None


@pytest.mark.parametrize("setting", ["timeout", "inactivity_timeout", "kill_grace", "backoff_base", "backoff_cap"])
@pytest.mark.parametrize(("value", "seconds"), [("2s", 2.0), ("1s", 1.0), ("0.5s", 0.5), ("1m30s", 90.0), ("3", 3.0)])
def test_every_duration_setting_reads_a_duration_alike(setting: str, value: str, seconds: float) -> None:
    """`kill_grace: 1s` was refused ("must be a number") where `timeout: 2s` was read: every
    setting that is a time takes what `timeout` takes."""
    text = (
        f"---\nbackend: shell\n{setting}: {value}\n---\n## Task Decomposition\n"
        "| Task ID | Command | Dependencies |\n|---|---|---|\n| T-01 | true | None |\n"
    )
    assert getattr(parse_plan(text).settings, setting) == seconds


def test_a_kill_grace_in_seconds_stops_a_task_that_ignores_sigterm_and_a_bad_one_is_one_line(tmp_path: Path) -> None:
    from runner_helpers import cli

    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir()
    table = "## Task Decomposition\n| Task ID | Command | Dependencies |\n|---|---|---|\n"
    settings = "---\nbackend: shell\nretries: 0\ntimeout: 2s\nkill_grace: {grace}\n---\n"
    plan.write_text(settings.format(grace="soon") + table + "| T-01 | true | None |\n", encoding="utf-8")
    refused = cli(tmp_path, "validate")
    assert refused.code == 2 and "kill_grace" in refused.stderr and "'soon' is not a duration" in refused.stderr
    assert "Traceback" not in refused.stderr, refused.stderr
    plan.write_text(
        settings.format(grace="1s") + table + "| T-01 | `trap '' TERM; sleep 60` | None |\n", encoding="utf-8"
    )
    ran = cli(tmp_path, "run", "--json")
    assert ran.code == 1, ran.stderr
    events = [json.loads(line) for line in ran.stdout.splitlines() if line.startswith("{")]
    started = next(e for e in events if e["event"] == "run_started")
    assert started["limits"]["kill_grace"] == 1.0 and started["limits"]["timeout"] == 2.0
    failed = next(e for e in events if e["event"] == "task_failed")
    took = (_moment(failed["time"]) - _moment(started["time"])).total_seconds()
    assert "timed out after 2s" in failed["reason"] and took < 10, failed  # (SIGKILLed 1 s after its SIGTERM)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_rule_or_a_fenced_example_of_settings_above_the_table_is_no_misplaced_frontmatter() -> None:
    """Settings in a '---' block below line 1 are refused (tests/bad_plans/78, 79), not dropped; a
    markdown rule followed by prose, and settings shown in a code fence, are a person's text."""
    table = "## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n| T-01 | Scan | None |\n"
    ruled = "# Plan\n\nThe request.\n\n---\n\nNote: keep it short.\n\n" + table
    fenced = "# Plan\n\nA frontmatter looks so:\n\n```yaml\n---\nmax_cost: 1\n---\n```\n\n" + table
    for text in (ruled, fenced):
        assert list(parse_plan(text).tasks) == ["T-01"]
    with pytest.raises(PlanError, match=r"master_plan\.md:5: these settings are not read"):
        parse_plan(ruled.replace("Note: keep it short.", "max_cost: 1\n---"))


def test_a_profiles_resources_are_names_or_names_with_amounts() -> None:
    from orchestrator.plan.config.profiles import parse_resources

    assert parse_resources(["gpu", "fast"]) == (("gpu", 1.0), ("fast", 1.0))
    assert parse_resources("gpu, fast") == (("gpu", 1.0), ("fast", 1.0))
    assert parse_resources({"gpu": 2, "memory": 8e9}) == (("gpu", 2.0), ("memory", 8e9))
    for bad in ({"gpu": 0}, {"gpu": "two"}, {"gpu": True}, ["gpu=2"], ["two words"], 3):
        with pytest.raises(ValueError, match="resource"):
            parse_resources(bad)
