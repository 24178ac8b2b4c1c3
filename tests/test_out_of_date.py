"""A completed task that ``run`` would do again shows so in ``status``, ``graph``, ``check`` and the
status blocks of master_plan.md, and exactly those: each scenario asks ``status --json`` which
completed tasks are out of date, then runs, and compares with what the run started."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import Spec, cli, cli_in_process, run, start, wait_until, workspace, write_plan

from orchestrator.output.briefs import brief_body
from orchestrator.plan.graph import dependencies_first
from orchestrator.plan.model import Plan, Task
from orchestrator.run.resume import freshness
from orchestrator.state.plans import plan_of
from orchestrator.state.workspace import Workspace

CHAIN = [
    Spec("T-01", "echo one", inline=True),
    Spec("T-02", "echo two", deps=["T-01"], inline=True),
    Spec("T-03", "echo three", deps=["T-02"], inline=True),
    Spec("T-04", "echo four"),  # its script in Task Details
    Spec("T-05", "echo five", deps=["T-01"], inline=True),
]


# What a brief template needs for a shell task: its script, fenced, under "## Task Description".
SHELL_TASK = """
## Task Description
{% if task.command %}{{ task.command | fence("bash") }}{% else %}{{ task.instructions }}{% endif %}
"""


def status(project: Path) -> dict[str, Any]:
    done = cli_in_process(project, "status", "--json")
    assert done.code == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def stale(project: Path) -> dict[str, str]:
    """Task id -> why ``status --json`` says its completed result is out of date."""
    found: dict[str, str] = {}
    for task in status(project)["tasks"]:
        assert task["up_to_date"] is (None if task["status"] != "completed" else task["out_of_date"] is None)
        if task["out_of_date"] is not None:
            assert task["status"] == "completed"
            found[task["id"]] = task["out_of_date"]
    return found


def completed(project: Path) -> set[str]:
    return {t["id"] for t in status(project)["tasks"] if t["status"] == "completed"}


def agrees(project: Path, *args: str) -> dict[str, str]:
    """What status says is out of date, checked against what a run then does again of the completed
    tasks (every task it starts, or reuses from the cache, that had a completed result, and no
    other, is out of date: an upstream that printed the same leaves its dependents' kept results)."""
    said, before = stale(project), completed(project)
    again = run(project, *args)
    assert again.code == 0, again.stderr
    reused = {e["task"] for e in again.events if e["event"] == "task_completed" and e.get("reused")}
    redone = set(again.tasks("task_started")) | reused
    assert redone & before == set(said), (said, again.tasks("task_started"), reused)
    assert stale(project) == {}  # and after the run, nothing is
    return said


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_status_says_what_run_will_redo_after_each_kind_of_change(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, CHAIN)
    assert run(tmp_path).code == 0
    assert agrees(tmp_path) == {}  # nothing changed: nothing out of date, nothing runs

    edit(plan, "| echo two |", "| echo two, edited |")  # a row's command
    said = agrees(tmp_path)
    assert said.keys() == {"T-02", "T-03"}
    assert "changed since it ran" in said["T-02"] and said["T-03"] == "upstream T-02 will run again"

    edit(plan, "echo four\n", "echo four, edited\n")  # a script in Task Details
    assert agrees(tmp_path).keys() == {"T-04"}

    edit(
        plan,
        "| T-05 | Task T-05 | Run the T-05 script | T-01 | P2 |",
        "| T-05 | Task T-05 | Run the T-05 script | T-01 | P1 |",
    )
    assert agrees(tmp_path).keys() == {"T-05"}  # its priority is in its brief

    edit(plan, "timeout: 120", "timeout: 300")  # not in a fingerprint, nor in the packaged brief
    assert agrees(tmp_path) == {}

    edit(plan, "kill_grace: 1,", "kill_grace: 1, env: {GREETING: hello},")  # every task's settings
    assert agrees(tmp_path).keys() == {"T-01", "T-02", "T-03", "T-04", "T-05"}


def test_a_cell_the_brief_does_not_show_is_not_called_a_change(tmp_path: Path) -> None:
    """The digest sees a new Retries cell; the fingerprint (asked then) does not: up to date."""
    specs = [Spec("T-01", "echo one", retries=None), Spec("T-02", "echo two", deps=["T-01"], retries=1)]
    plan = write_plan(tmp_path, specs)
    assert run(tmp_path).code == 0
    edit(
        plan,
        "| T-02 | Task T-02 | Run the T-02 script | T-01 | P2 | 1 |",
        "| T-02 | Task T-02 | Run the T-02 script | T-01 | P2 | 2 |",
    )
    assert agrees(tmp_path) == {}


def test_a_brief_edited_by_hand_is_told_and_one_rewritten_by_the_tool_is_not(tmp_path: Path) -> None:
    """Where the plan changed for a task, the brief run would use is asked: one edited by hand is
    kept by run, and named as the reason. Briefs the tool wrote again (a new timeout rewrites
    every brief's header) change nothing."""
    specs = [Spec(spec.id, "unused", deps=spec.deps) for spec in CHAIN]
    plan = write_plan(tmp_path, specs, {"backend": "command", "command": ["cat"]})
    assert run(tmp_path).code == 0
    edit(
        plan,
        "| T-02 | Task T-02 | Run the T-02 script | T-01 | P2 |",
        "| T-02 | Task T-02 | Run the T-02 script | T-01 | P1 |",
    )
    brief = workspace(tmp_path) / "agent_tasks" / "agent-02.md"
    brief.write_text(brief.read_text(encoding="utf-8") + "\nAlso: HAND-EDITED LINE\n", encoding="utf-8")
    said = agrees(tmp_path)
    assert said == {"T-02": "its brief was edited by hand since it ran", "T-03": "upstream T-02 will run again"}
    edit(plan, "timeout: 120", "timeout: 301")
    before = {p.name: p.stat().st_mtime_ns for p in (workspace(tmp_path) / "agent_tasks").iterdir()}
    assert cli(tmp_path, "render").code == 0
    after = {p.name: p.stat().st_mtime_ns for p in (workspace(tmp_path) / "agent_tasks").iterdir()}
    assert all(after[name] != before[name] for name in before if name != "agent-02.md")  # (kept: edited)
    assert agrees(tmp_path) == {}


def test_a_brief_edited_by_hand_after_its_task_ran_is_out_of_date_in_status(tmp_path: Path) -> None:
    """Nothing in the plan changed, only a completed task's brief, by hand: run redoes that task
    (its fingerprint covers the brief on disk) and what depends on it, and status said nothing
    was out of date. Now status says it, with the reason, as graph does, and run agrees."""
    specs = [Spec(spec.id, "unused", deps=spec.deps) for spec in CHAIN]
    write_plan(tmp_path, specs, {"backend": "command", "command": ["cat"]})
    assert run(tmp_path).code == 0
    brief = workspace(tmp_path) / "agent_tasks" / "agent-02.md"
    brief.write_text(brief.read_text(encoding="utf-8") + "\nAlso: HAND-EDITED LINE\n", encoding="utf-8")
    assert "(out of date)" in cli_in_process(tmp_path, "graph").stdout
    said = agrees(tmp_path)
    assert said == {"T-02": "its brief was edited by hand since it ran", "T-03": "upstream T-02 will run again"}
    # A brief written again with the same words (touched) is no change: nothing is out of date.
    brief.touch()
    assert agrees(tmp_path) == {}


def test_reset_and_only_leave_what_is_downstream_out_of_date(tmp_path: Path) -> None:
    write_plan(tmp_path, CHAIN)
    assert run(tmp_path).code == 0
    assert cli(tmp_path, "reset", "T-01").code == 0
    table = cli_in_process(tmp_path, "status").stdout
    assert re.search(r"T-01 +Agent-01 +🟡 Pending", table)
    assert re.search(
        r"T-02 +Agent-02 +✅ Completed · out of date .*will run again: upstream T-01 will run again", table
    )
    assert "(3 out of date: run does them again)" in table
    blocks = (workspace(tmp_path) / "master_plan.md").read_text(encoding="utf-8")  # reset rewrote them
    assert "| T-03 | Agent-03 | ✅ Completed · out of date |" in blocks
    assert "| T-04 | Agent-04 | ✅ Completed |" in blocks
    assert agrees(tmp_path) == {"T-02": "upstream T-01 will run again", "T-03": "upstream T-02 will run again",
                                "T-05": "upstream T-01 will run again"}  # fmt: skip

    edit(workspace(tmp_path) / "master_plan.md", "| echo one |", "| echo ONE |")
    assert run(tmp_path, "--only", "T-01").code == 0  # what depends on it is left as it was
    said = stale(tmp_path)
    assert said == {"T-02": "upstream T-01 ran again since it did", "T-03": "upstream T-02 will run again",
                    "T-05": "upstream T-01 ran again since it did"}  # fmt: skip
    blocks = (workspace(tmp_path) / "master_plan.md").read_text(encoding="utf-8")  # as the run left them
    assert (
        "| T-02 | Agent-02 | ✅ Completed · out of date |" in blocks and "| T-01 | Agent-01 | ✅ Completed |" in blocks
    )
    assert agrees(tmp_path) == said


def test_the_status_blocks_a_run_writes_mark_what_status_marks(tmp_path: Path) -> None:
    """QA: a row edited while the run went on left the task it had completed shown plain ✅ in
    the blocks the run wrote, each second and at its end, while `status` said out of date."""
    write_plan(
        tmp_path, [Spec("T-01", "echo one", inline=True), Spec("T-02", "while [ ! -f go ]; do sleep 0.05; done")]
    )
    plan = workspace(tmp_path) / "master_plan.md"
    runner = start(tmp_path)
    try:
        wait_until(lambda: "task_completed" in runner.stdout.read_text(encoding="utf-8"), "T-01 to complete")
        edit(plan, "| echo one |", "| echo ONE |")
        assert stale(tmp_path) == {"T-01": freshness.PLAN_CHANGED}  # status, while the run goes on
        marked = "| T-01 | Agent-01 | ✅ Completed · out of date |"
        wait_until(lambda: marked in plan.read_text(encoding="utf-8"), "the blocks to mark T-01", timeout=20)
        (tmp_path / "go").touch()
        assert runner.wait() == 0
    finally:
        (tmp_path / "go").touch()  # (T-02 ends by itself even if the runner was killed)
        runner.cleanup()
    assert marked in plan.read_text(encoding="utf-8") and stale(tmp_path) == {"T-01": freshness.PLAN_CHANGED}
    assert "| T-02 | Agent-02 | ✅ Completed |" in plan.read_text(encoding="utf-8")


def test_graph_and_check_tell_it_and_check_still_exits_0(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, CHAIN)
    assert run(tmp_path).code == 0
    assert "out of date" not in cli_in_process(tmp_path, "graph").stdout
    assert "🔁" not in cli_in_process(tmp_path, "check").stdout
    edit(plan, "| echo one |", "| echo ONE |")
    graph = cli_in_process(tmp_path, "graph").stdout
    assert "✅ T-01 [Agent-01] Task T-01 (out of date)" in graph and "✅ T-04 [Agent-04] Task T-04\n" in graph
    mermaid = cli_in_process(tmp_path, "graph", "--format", "mermaid").stdout
    assert "T-02: Task T-02 (out of date)" in mermaid and "class n0,n1,n2,n4 outofdate" in mermaid
    nodes = json.loads(cli_in_process(tmp_path, "graph", "--json").stdout)["nodes"]  # (QA pass 3: it had neither)
    assert {node["id"]: node["status"] for node in nodes} == dict.fromkeys(
        ("T-01", "T-02", "T-03", "T-04", "T-05"), "completed"
    )
    assert [node["id"] for node in nodes if node["out_of_date"]] == ["T-01", "T-02", "T-03", "T-05"]
    assert nodes[0]["out_of_date"] == "its row, details, settings, type, profile or a template changed since it ran"
    check = cli_in_process(tmp_path, "check")
    assert check.code == 0
    assert (
        "🔁 4 completed tasks out of date (T-01, T-02, T-03, T-05): `orchestrator run` runs them again" in check.stdout
    )
    data = json.loads(cli_in_process(tmp_path, "check", "--json").stdout)
    assert data["exit_code"] == 0 and data["workspaces"][0]["ok"] is True
    assert [item["task"] for item in data["workspaces"][0]["out_of_date"]] == ["T-01", "T-02", "T-03", "T-05"]
    assert cli_in_process(tmp_path, "check", "--quiet").stdout == ""  # informational: quiet when all is well


def test_results_of_an_earlier_version_stay_up_to_date(tmp_path: Path) -> None:
    """Written before ``inputs`` was recorded: up to date, unless upstream will run again."""
    plan = write_plan(tmp_path, CHAIN)
    assert run(tmp_path).code == 0
    for path in (workspace(tmp_path) / "results").iterdir():
        text = path.read_text(encoding="utf-8")
        assert "\ninputs: " in text
        path.write_text(re.sub(r"\ninputs: [^\n]*", "", text), encoding="utf-8")
    assert stale(tmp_path) == {}
    edit(plan, "| echo two |", "| echo two, edited |")
    assert stale(tmp_path) == {}  # (not known without the digest: run finds it)
    assert cli(tmp_path, "reset", "T-01").code == 0
    assert stale(tmp_path).keys() == {"T-02", "T-03", "T-05"}


def test_a_workspace_template_that_does_not_show_a_setting(tmp_path: Path) -> None:
    """With a brief template of its own, the digest covers the plan's settings (the template
    could show them); the fingerprint, asked where they changed, says whether it does."""
    plan = write_plan(tmp_path, CHAIN)
    templates = workspace(tmp_path) / "templates"
    templates.mkdir()
    template = templates / "agent_task.md.j2"
    template.write_text(f"# Do {{{{ task.id }}}}\n{SHELL_TASK}", encoding="utf-8")
    assert run(tmp_path).code == 0
    edit(plan, "timeout: 120", "timeout: 300")
    assert agrees(tmp_path) == {}
    template.write_text(f"# Task {{{{ task.id }}}}\n{SHELL_TASK}", encoding="utf-8")
    assert agrees(tmp_path).keys() == {"T-01", "T-02", "T-03", "T-04", "T-05"}


def test_dependencies_first_walks_a_long_chain_without_recursion() -> None:
    chain = {f"T{i}": ([f"T{i + 1}"] if i < 5000 else []) for i in range(5001)}
    order = dependencies_first(chain)
    assert order == [f"T{i}" for i in range(5000, -1, -1)]
    diamond = {"d": ["b", "c"], "b": ["a"], "c": ["a"], "a": [], "e": []}
    order = dependencies_first(diamond)
    assert sorted(order) == sorted(diamond) and len(order) == len(diamond)
    assert all(order.index(dep) < order.index(task) for task, deps in diamond.items() for dep in deps)


def test_status_reads_no_brief_when_nothing_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path: every digest equal and no brief written since its attempt started: no
    brief is read or rendered. One edited row: that task's brief alone."""
    plan_file = write_plan(tmp_path, CHAIN)
    assert run(tmp_path).code == 0
    read: list[str] = []

    def edited(ws: Workspace, task: Task) -> str | None:
        read.append(task.id)
        return None

    def body(plan: Plan, ws: Workspace, task: Task, templates: object) -> str:
        read.append(task.id)
        return brief_body(plan, ws, task, templates)  # type: ignore[arg-type]

    monkeypatch.setattr(freshness, "edited_body", edited)
    monkeypatch.setattr(freshness, "brief_body", body)
    ws = Workspace.find(tmp_path)
    assert freshness.out_of_date(plan_of(ws), ws) == {}
    assert read == []
    edit(plan_file, "| echo five |", "| echo FIVE |")
    assert freshness.out_of_date(plan_of(ws), ws).keys() == {"T-05"}
    assert set(read) == {"T-05"}


def test_a_change_to_every_task_that_leaves_every_brief_as_it_was_is_not_out_of_date(tmp_path: Path) -> None:
    """The plan's goal is given to every brief's template but the packaged one does not show it:
    every task's digest changes, no fingerprint does, so run redoes nothing, and status, asking
    each fingerprint (however many tasks the change touched), says nothing is out of date."""
    specs = [Spec(f"T-{n:03d}", "true", inline=True) for n in range(1, 131)]
    plan = write_plan(tmp_path, specs, {"max_parallel": 8}, after="## Goal Definition\nOne goal.\n")
    assert run(tmp_path).code == 0
    edit(plan, "One goal.", "Another goal.")
    assert agrees(tmp_path) == {}
