"""Task types: a ``Type`` column names one (built in, in ``types.yaml`` beside the plan, or under
``types:`` in the settings), and the task takes its settings and the cells its row leaves empty.

Real plans in tmp_path, run as ``python -m orchestrator`` subprocesses: shell tasks for limits and
fingerprints, examples/bin/fake-claude and a stand-in codex for what reaches an agent's command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runner_helpers import cli, cli_in_process, run

from orchestrator.plan.config.tasktypes import BUILT_IN
from orchestrator.plan.parser import parse_plan

FAKE_CLAUDE = Path(__file__).resolve().parent.parent / "examples" / "bin" / "fake-claude"


def write(project: Path, text: str) -> Path:
    workspace = project / ".orchestrator"
    workspace.mkdir(exist_ok=True)
    (workspace / "master_plan.md").write_text(text, encoding="utf-8")
    return workspace


QUICK = """---
backend: shell
retries: 0
inactivity_timeout: none
types:
  quick:
    timeout: 1s
---
## Task Decomposition
| Task ID | Description | Type | Timeout | Command | Dependencies |
|---|---|---|---|---|---|
| T-01 | too slow for its type | quick | | sleep 5 | None |
| T-02 | given longer by its row | Quick | 20s | sleep 1.5 | None |
| T-03 | no type: the plan's timeout | | | sleep 1.5 | None |
"""


def test_a_types_timeout_applies_and_the_rows_own_timeout_overrides_it(tmp_path: Path) -> None:
    write(tmp_path, QUICK)
    result = run(tmp_path)
    assert result.code == 1, result.stderr
    finished = {e["task"]: e for e in result.events if e["event"] in {"task_completed", "task_failed"}}
    assert finished["T-01"]["event"] == "task_failed" and "timed out after 1s" in finished["T-01"]["reason"]
    assert finished["T-02"]["event"] == "task_completed"
    assert finished["T-03"]["event"] == "task_completed"
    status = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)
    assert [(t["id"], t["type"]) for t in status["tasks"]] == [("T-01", "quick"), ("T-02", "quick"), ("T-03", None)]


def test_validate_and_doctor_say_what_each_typed_task_ends_up_with_and_from_where(tmp_path: Path) -> None:
    write(
        tmp_path,
        QUICK.replace("retries: 0\n", "")
        .replace("| T-03 | no type: the plan's timeout | |", "| T-03 | review it | review |")
        .replace("  quick:\n", "  review: {timeout: 10m, priority: high}\n  quick:\n"),
    )
    result = cli_in_process(tmp_path, "validate")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1:] == [
        "T-01 (quick): timeout 1.0s from type quick, retries 2 by default",
        "T-02 (quick): timeout 20.0s from its row, retries 2 by default",
        "T-03 (review): timeout 10m00s from type review, retries 2 by default, access read from type review "
        "(nothing on shell: it runs with your user's rights), priority P1 from type review, "
        'section "Verdict" from type review',
        "Not reused from the cache (runs again when its inputs change): every task (a command: it may do more "
        "than answer) — declare its Output, or say cache: true (the plan's setting, or its type's), where its "
        "answer is all it does",
    ]
    data = json.loads(cli_in_process(tmp_path, "validate", "--json").stdout)
    assert data["types"][0] == {
        "task": "T-01",
        "type": "quick",
        "settings": [
            {"name": "timeout", "value": 1.0, "from": "type quick", "note": None},
            {"name": "retries", "value": 2, "from": "the default", "note": None},
        ],
    }
    doctor = cli(tmp_path, "doctor")
    assert "    T-03 (review): timeout 10m00s from type review" in doctor.stdout
    assert json.loads(cli(tmp_path, "doctor", "--json").stdout)["types"] == data["types"]
    assert json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["tasks"][2]["priority"] == "P1"


AGENTS = """---
backend: claude
permission_mode: default
retries: 0
---
## Task Decomposition
| Task ID | Description | Type | Access | Backend | Dependencies |
|---|---|---|---|---|---|
| T-01 | Review the code | review | | | None |
| T-02 | Change the code | implementation | | | None |
| T-03 | Review, but allowed to edit | review | edit | | None |
| T-04 | Review with codex | review | | codex | None |
| T-05 | Write the docs with codex | docs | | codex | None |
"""

STAND_IN_CODEX = """#!/bin/sh
# Not codex: it saves its arguments and answers nothing (the task fails, which is not the point).
printf '%s\\n' "$@" > "argv-$ORCHESTRATOR_TASK_ID.txt"
cat > /dev/null
"""


def test_a_built_in_types_access_reaches_the_agents_command_line(tmp_path: Path) -> None:
    """review reads (claude: only Read, Grep, Glob; codex: the read-only sandbox), implementation
    and docs edit (acceptEdits; workspace-write); the row's own Access cell wins over its type's."""
    workspace = write(tmp_path, AGENTS)
    codex = tmp_path / "stand-in-codex"
    codex.write_text(STAND_IN_CODEX, encoding="utf-8")
    codex.chmod(0o755)
    env = {"ORCHESTRATOR_CLAUDE_BIN": str(FAKE_CLAUDE), "ORCHESTRATOR_CODEX_BIN": str(codex)}
    result = cli(tmp_path, "run", env=env)
    assert "T-01" in result.stdout, result.stderr
    argv = {n: (tmp_path / f"argv-T-0{n}.txt").read_text(encoding="utf-8").splitlines() for n in range(1, 6)}

    def after(n: int, flag: str) -> str | None:
        return argv[n][argv[n].index(flag) + 1] if flag in argv[n] else None

    assert after(1, "--tools") == "Read,Grep,Glob" and after(1, "--permission-mode") == "default"
    assert after(2, "--tools") is None and after(2, "--permission-mode") == "acceptEdits"
    assert after(3, "--tools") is None and after(3, "--permission-mode") == "acceptEdits"
    assert after(4, "-s") == "read-only" and after(5, "-s") is None  # (edit: a profile of its own, walled)
    assert 'permissions.orchestrator.extends=":workspace"' in argv[5]
    brief = (workspace / "agent_tasks" / "agent-01.md").read_text(encoding="utf-8")
    assert "- **Type**: review" in brief and "under a `## Verdict` heading" in brief


def test_a_change_to_a_types_definition_runs_its_tasks_again_but_not_a_new_timeout(tmp_path: Path) -> None:
    plan = """---
backend: shell
types:
  check: {section: Findings}
---
## Task Decomposition
| Task ID | Description | Type | Command | Dependencies |
|---|---|---|---|---|
| T-01 | typed | check | echo one | None |
| T-02 | untyped | | echo two | None |
"""
    workspace = write(tmp_path, plan)
    assert run(tmp_path).code == 0
    plan_file = workspace / "master_plan.md"

    def to_run() -> int:
        result = run(tmp_path)
        assert result.code == 0, result.stderr
        return int(result.events[0]["to_run"])

    plan_file.write_text(plan.replace("{section: Findings}", "{section: Findings, timeout: 5m}"), encoding="utf-8")
    assert to_run() == 0  # a timeout does not change what a task does (as a Timeout cell does not)
    plan_file.write_text(plan.replace("{section: Findings}", "{section: Verdict, timeout: 5m}"), encoding="utf-8")
    stale = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["tasks"]
    assert [t["up_to_date"] for t in stale] == [False, True]
    assert to_run() == 1
    plan_file.write_text(plan.replace("{section: Findings}", "{section: Verdict, access: read, timeout: 5m}"))
    assert to_run() == 1  # (the access of a type changes nothing on shell, but what the type is: run again)


def test_types_yaml_beside_the_plan_defines_types_the_plans_settings_change(tmp_path: Path) -> None:
    workspace = write(
        tmp_path,
        "---\nbackend: shell\ntypes:\n  slow: {retries: 0}\n---\n## Task Decomposition\n"
        "| Task ID | Type | Command |\n|---|---|---|\n| T-01 | slow | echo a |\n| T-02 | review | echo b |\n",
    )
    (workspace / "types.yaml").write_text(
        "# task types of this project\nslow:\n  timeout: 2h\n  retries: 3\nreview:\n  access: default\n",
        encoding="utf-8",
    )
    result = cli_in_process(tmp_path, "validate")
    assert result.code == 0, result.stderr
    assert "T-01 (slow): timeout 2h00m00s from type slow, retries 0 from type slow" in result.stdout
    assert "T-02 (review): timeout 30m00s by default, retries 2 by default, section" in result.stdout
    (workspace / "types.yaml").write_text("slow:\n  timeout: 2h\n  retires: 3\n", encoding="utf-8")
    result = cli_in_process(tmp_path, "validate")
    assert result.code == 2
    assert result.stderr.startswith(
        ".orchestrator/types.yaml:3: type 'slow': unknown field 'retires' (did you mean 'retries'?) — use one of: "
    )


@pytest.mark.parametrize(
    ("types", "line", "message"),
    [
        ("  quick:\n    timeout: soon\n", 5, "type 'quick': bad value for 'timeout': 'soon' is not a duration"),
        ("  quick: {timeout: 1m, colour: red}\n", 4, "type 'quick': unknown field 'colour'"),
        ("  quick:\n    approval: later\n", 5, "type 'quick': bad value for 'approval': 'later' is not before"),
        ("  quick: fast\n", 4, "type 'quick': 'fast' is not a mapping"),
        ("  Quick Check: {}\n", 4, "type name 'Quick Check' is not a word"),
        ("  quick: {}\n  none: {timeout: 1m}\n", 5, "type name 'none' means no type in a Type cell"),
    ],
)
def test_a_bad_type_definition_is_one_line_naming_its_line(tmp_path: Path, types: str, line: int, message: str) -> None:
    write(
        tmp_path,
        f"---\nbackend: shell\ntypes:\n{types}---\n## Task Decomposition\n"
        "| Task ID | Type | Command |\n|---|---|---|\n| T-01 | review | echo a |\n",
    )
    before = sorted(p.name for p in (tmp_path / ".orchestrator").iterdir())
    result = cli(tmp_path, "run")
    assert result.code == 2
    assert result.stderr.startswith(f".orchestrator/master_plan.md:{line}: {message}"), result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in (tmp_path / ".orchestrator").iterdir()) == before


def test_type_priority_profile_and_approval_fill_only_the_rows_empty_cells() -> None:
    plan = parse_plan(
        "---\ntypes:\n  gate: {priority: P0, approval: before, profile: reviewer}\n---\n## Task Decomposition\n"
        "| Task ID | Description | Type | Priority | Approval | Assignee |\n|---|---|---|---|---|---|\n"
        "| T-01 | a | gate | | | |\n| T-02 | b | gate | low | after | writer |\n| T-03 | c | | | after | |\n"
        "| T-04 | d | gate | | none | none |\n"
    )
    one, two, three, four = plan.tasks.values()
    assert (one.priority, one.approval, one.profile, one.from_type) == (
        0,
        "before",
        "reviewer",
        ("priority", "profile", "approval"),
    )
    assert (two.priority, two.approval, two.profile, two.from_type) == (3, "after", "writer", ())
    assert (three.type, three.approval, three.priority) == (None, "after", 2)
    assert (four.priority, four.approval, four.profile, four.from_type) == (0, None, None, ("priority",))


def test_every_built_in_type_is_in_the_docs_table() -> None:
    text = (Path(__file__).resolve().parent.parent / "cli-integration.md").read_text(encoding="utf-8")
    for name, kind in BUILT_IN.items():
        assert f"| `{name}` |" in text, name
        assert kind.description in text, name


def test_the_type_and_approval_columns_are_not_reported_as_unread(tmp_path: Path) -> None:
    write(
        tmp_path,
        "---\nbackend: shell\n---\n## Task Decomposition\n| Task ID | Type | Approval | Command |\n"
        "|---|---|---|---|\n| T-01 | test | after | echo a |\n",
    )
    result = cli_in_process(tmp_path, "validate")
    assert result.code == 0 and "none the tool reads" not in result.stderr


def test_add_and_update_set_the_type_column(tmp_path: Path) -> None:
    workspace = write(
        tmp_path,
        "---\nbackend: shell\n---\n## Task Decomposition\n| Task ID | Command |\n|---|---|\n| T-01 | echo a |\n",
    )
    plan_file = workspace / "master_plan.md"
    before = plan_file.read_text(encoding="utf-8")
    refused = cli(tmp_path, "add", "--type", "reveiw", "--command", "echo b", "Check a")
    assert refused.code == 2 and plan_file.read_text(encoding="utf-8") == before
    assert refused.stderr.startswith("--type reveiw: no such type (did you mean 'review'?) — use one of: analysis,")
    added = cli(tmp_path, "add", "--type", "Review", "--command", "echo b", "Check a")
    assert added.code == 0, added.stderr
    assert "| Task ID | Command | Description | Type |\n" in plan_file.read_text(encoding="utf-8")
    assert cli(tmp_path, "update", "T-01", "--type", "test").code == 0
    listed = json.loads(cli_in_process(tmp_path, "list", "--json").stdout)["tasks"]
    assert [(t["id"], t["type"]) for t in listed] == [("T-01", "test"), ("T-02", "review")]
    assert cli(tmp_path, "update", "T-02", "--type", "").code == 0
    assert json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["tasks"][1]["type"] is None


def test_a_planners_answer_with_types_becomes_a_type_column() -> None:
    """``orchestrator plan``: the agent's JSON names each task's type (an enum of the built-in
    ones), and the plan written from it has a Type column only when some task has one."""
    from orchestrator.output.skeleton import plan_markdown
    from orchestrator.run.planner import PLAN_SCHEMA, _rows

    answer = {
        "goal": "g",
        "success_criteria": "c",
        "tasks": [
            {"id": "T-01", "name": "Look", "description": "d", "dependencies": [], "type": "Research", "details": "x"},
            {
                "id": "T-02",
                "name": "Fix",
                "description": "d",
                "dependencies": ["T-01"],
                "access": "edit",
                "details": "y",
            },
        ],
    }
    rows, goal, criteria = _rows(answer)
    text = plan_markdown("r", rows, backend="claude", goal=goal, criteria=criteria)
    assert "| Task ID | Task Name | Description | Dependencies | Priority | Type | Access |" in text
    plan = parse_plan(text)
    assert [(t.type, t.access) for t in plan.tasks.values()] == [("research", None), (None, "edit")]
    assert PLAN_SCHEMA["properties"]["tasks"]["items"]["properties"]["type"]["enum"] == list(BUILT_IN)
    untyped = plan_markdown("r", [{**row, "type": ""} for row in rows], backend="claude")
    assert "| Type |" not in untyped


def test_status_and_graph_show_each_tasks_type(tmp_path: Path) -> None:
    write(tmp_path, QUICK)
    table = cli_in_process(tmp_path, "status").stdout.splitlines()
    assert table[0].split()[:4] == ["Task", "Agent", "Type", "Status"]
    assert table[2].split()[:3] == ["T-01", "Agent-01", "quick"] and table[4].split()[:3] == ["T-03", "Agent-03", "-"]
    assert "T-01 [Agent-01] too slow for its type (quick)" in cli_in_process(tmp_path, "graph").stdout
    assert '"T-01: too slow for its type (quick)"' in cli_in_process(tmp_path, "graph", "--format", "dot").stdout
    untyped = QUICK.replace("| quick |", "| |").replace("| Quick |", "| |")
    write(tmp_path, untyped)
    assert "Type" not in cli_in_process(tmp_path, "status").stdout.splitlines()[0]


def test_report_counts_by_task_type(tmp_path: Path) -> None:
    write(tmp_path, QUICK)
    run(tmp_path)
    figures = json.loads(cli_in_process(tmp_path, "report", "--format", "json").stdout)
    assert [t["type"] for t in figures["tasks"]] == ["quick", "quick", None]
    assert figures["types"]["quick"]["tasks"] == 2 and figures["types"]["quick"]["attempts"] == 2
    assert (
        "## By task type\n\n| Type | Tasks | Attempts | Span | Cost | Tokens |"
        in cli_in_process(tmp_path, "report").stdout
    )


def test_a_model_cell_reaches_the_agents_command_line_or_is_refused(tmp_path: Path) -> None:
    """A per-task model: its Model cell is the agent CLI's model flag (over the plan's `model`
    setting and its type's); a task that starts no agent CLI refuses it, by line, where it was
    kept silently as a column nothing read, and `run` said nothing of it."""
    write(
        tmp_path,
        """---
backend: claude
model: sonnet
---
## Task Decomposition
| Task ID | Description | Model | Backend | Dependencies |
|---|---|---|---|---|
| T-01 | Plan the work | opus | | None |
| T-02 | Do the work | | | None |
| T-03 | Review with codex | o3 | codex | None |
""",
    )
    codex = tmp_path / "stand-in-codex"
    codex.write_text(STAND_IN_CODEX, encoding="utf-8")
    codex.chmod(0o755)
    env = {"ORCHESTRATOR_CLAUDE_BIN": str(FAKE_CLAUDE), "ORCHESTRATOR_CODEX_BIN": str(codex)}
    result = cli(tmp_path, "run", env=env)
    assert "T-01" in result.stdout, result.stderr
    argv = {n: (tmp_path / f"argv-T-0{n}.txt").read_text(encoding="utf-8").splitlines() for n in range(1, 4)}
    assert argv[1][argv[1].index("--model") + 1] == "opus"
    assert argv[2][argv[2].index("--model") + 1] == "sonnet"  # (the plan's)
    assert argv[3][argv[3].index("-m") + 1] == "o3"
    shell = """---
backend: shell
---
## Task Decomposition
| Task ID | Description | Model | Colour | Command | Dependencies |
|---|---|---|---|---|---|
| T-01 | Count | opus | red | echo 1 | None |
"""
    write(tmp_path, shell)
    for command in ("validate", "run"):
        refused = cli(tmp_path, command)
        assert refused.code == 2 and refused.stderr.splitlines()[0] == (
            ".orchestrator/master_plan.md:7: T-01: a Model cell does nothing for a shell task, which starts no agent "
            "CLI — empty the cell, or run the task on claude, codex, gemini or opencode"
        ), refused.stderr
    # A column nothing reads is said by run as by validate.
    write(tmp_path, shell.replace("| opus |", "|  |"))
    said = (
        ".orchestrator/master_plan.md:5: column 'Colour' is none the tool reads: kept for templates only "
        '(task.extra["Colour"]); it sets nothing'
    )
    assert said in cli(tmp_path, "validate").stderr
    ran = cli(tmp_path, "run")
    assert ran.code == 0 and f"ℹ️ {said}" in ran.stdout, ran.stdout


def test_a_types_field_the_plan_may_set_too_is_read_by_the_plans_own_reader() -> None:
    """A type's `retries: -1` and the plan's must meet the same reader, so the two never drift:
    the same function, not a copy (plan/config/values holds them both)."""
    import dataclasses

    from orchestrator.plan.config.settings import Settings
    from orchestrator.plan.config.tasktypes import FIELDS, SETTING_FIELDS

    plan = {f.name: f.metadata["parse"] for f in dataclasses.fields(Settings)}
    shared = [name for name in SETTING_FIELDS if name not in ("backend", "timeout")]
    assert shared and all(FIELDS[name] is plan[name] for name in shared), shared
