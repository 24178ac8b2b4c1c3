"""A task's files belong to its task id for good, and what runs is what its brief says.

Agent ids (and so the names of briefs, results and logs) are kept in ``state/agents.json``: rows
inserted, moved or deleted keep theirs, a new task gets a number never given before, and a file
that names another task is never taken for this one's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runner_helpers import Spec, cli, cli_in_process, result_body, run, statuses, write_plan

from orchestrator.plan.identity import Book, Row, assign

THREE = [Spec("T-01", "echo one"), Spec("T-02", "echo two", deps=["T-01"]), Spec("T-03", "echo three")]


def agents(project: Path) -> dict[str, str]:
    data = json.loads(cli_in_process(project, "status", "--json").stdout)
    return {task["id"]: task["agent"] for task in data["tasks"]}


def task_status(project: Path) -> dict[str, str]:
    data = json.loads(cli_in_process(project, "status", "--json").stdout)
    return {task["id"]: task["status"] for task in data["tasks"]}


def test_a_row_inserted_in_the_middle_takes_no_other_tasks_files(tmp_path: Path) -> None:
    write_plan(tmp_path, THREE)
    assert run(tmp_path).code == 0
    before = agents(tmp_path)
    assert before == {"T-01": "Agent-01", "T-02": "Agent-02", "T-03": "Agent-03"}
    # A new row between T-01 and T-02: it is not "completed" from T-02's result file, and the rows
    # below it keep their agents, briefs and results.
    write_plan(tmp_path, [THREE[0], Spec("T-09", "echo nine"), *THREE[1:]])
    assert agents(tmp_path) == {**before, "T-09": "Agent-04"}
    assert task_status(tmp_path) == {
        "T-01": "completed",
        "T-09": "pending",
        "T-02": "completed",
        "T-03": "completed",
    }
    again = run(tmp_path)
    assert again.code == 0, again.stderr
    assert again.tasks("task_started") == ["T-09"]  # only the new task runs; nothing else changed hands
    assert result_body(tmp_path, "T-09").strip() == "nine"
    assert result_body(tmp_path, "T-02").strip() == "two"
    brief = (tmp_path / ".orchestrator" / "agent_tasks" / "agent-04.md").read_text()
    assert "task: T-09" in brief and "echo nine" in brief


def test_deleted_and_moved_rows_keep_their_numbers_and_new_ones_never_reuse_one(tmp_path: Path) -> None:
    write_plan(tmp_path, THREE)
    assert run(tmp_path).code == 0
    # T-02 deleted, T-03 moved to the top, T-10 added: T-03 keeps Agent-03; T-10 gets Agent-04,
    # not Agent-02, whose files are T-02's.
    write_plan(tmp_path, [THREE[2], THREE[0], Spec("T-10", "echo ten")])
    assert agents(tmp_path) == {"T-03": "Agent-03", "T-01": "Agent-01", "T-10": "Agent-04"}
    assert run(tmp_path).tasks("task_started") == ["T-10"]
    # T-02 comes back: its number, its result (still up to date), nothing to run.
    write_plan(tmp_path, [THREE[2], *THREE[:2], Spec("T-10", "echo ten")])
    assert agents(tmp_path)["T-02"] == "Agent-02"
    assert run(tmp_path).tasks("task_started") == []


def test_the_details_a_deleted_row_left_are_named_as_such(tmp_path: Path) -> None:
    """A row deleted but its '### T-02' section kept: not a typo of an id ('did you mean'), a
    task the workspace had: the line says so."""
    write_plan(tmp_path, THREE)
    assert run(tmp_path).code == 0
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.write_text(
        "".join(line for line in plan.read_text().splitlines(keepends=True) if not line.startswith("| T-02"))
    )
    checked = cli_in_process(tmp_path, "validate")
    assert checked.code == 2
    assert "Task Details for T-02, which is no longer in the task table — delete this section too" in checked.stderr


def test_a_workspace_made_before_the_book_keeps_its_numbers(tmp_path: Path) -> None:
    """Version 0.1 kept no book: the numbers come from what its briefs and results say."""
    write_plan(tmp_path, THREE)
    assert run(tmp_path).code == 0
    (tmp_path / ".orchestrator" / "state" / "agents.json").unlink()
    write_plan(tmp_path, [Spec("T-00", "echo zero"), *THREE])
    assert agents(tmp_path) == {"T-00": "Agent-04", "T-01": "Agent-01", "T-02": "Agent-02", "T-03": "Agent-03"}
    assert run(tmp_path).tasks("task_started") == ["T-00"]


def test_a_result_that_names_another_task_is_not_this_ones(tmp_path: Path) -> None:
    write_plan(tmp_path, THREE, {"cache": True})
    assert run(tmp_path).code == 0
    result = tmp_path / ".orchestrator" / "results" / "agent-03-result.md"
    result.write_text(result.read_text().replace("task: T-03", "task: T-77"))
    assert task_status(tmp_path)["T-03"] == "pending"
    again = run(tmp_path)
    # Its inputs are what they were: the cache brings its result back (told as reused), no process.
    [completed] = [e for e in again.events if e["event"] == "task_completed"]
    assert completed["task"] == "T-03" and completed["reused"] and not again.tasks("task_started")
    # The file that named T-77 was moved aside, not overwritten.
    kept = tmp_path / ".orchestrator" / "results" / "agent-03-result.T-77.md"
    assert "task: T-77" in kept.read_text()
    assert statuses(tmp_path)["T-03"] == "completed"


def _plan_with_agents(project: Path, rows: list[tuple[str, str]]) -> None:
    lines = ["---", "backend: shell", "---", "# Plan", "", "## Task Decomposition"]
    lines += ["| Task ID | Agent | Description | Dependencies | Command |", "|---|---|---|---|---|"]
    lines += [f"| {task} | {agent} | Say {task} | None | echo {task} |" for task, agent in rows]
    (project / ".orchestrator").mkdir(exist_ok=True)
    (project / ".orchestrator" / "master_plan.md").write_text("\n".join(lines) + "\n")


def test_an_agent_cell_may_not_take_an_id_another_task_has_or_had(tmp_path: Path) -> None:
    _plan_with_agents(tmp_path, [("T-01", ""), ("T-03", "Agent-01")])
    assert agents(tmp_path) == {"T-01": "Agent-02", "T-03": "Agent-01"}  # a new plan: the cell wins
    _plan_with_agents(tmp_path, [("T-01", ""), ("T-02", "")])
    assert run(tmp_path).code == 0
    # T-01 is deleted; T-04 claims its number in its Agent cell: its files would be taken for T-04's.
    _plan_with_agents(tmp_path, [("T-02", ""), ("T-04", "Agent-01")])
    refused = cli_in_process(tmp_path, "validate")
    assert refused.code == 2
    assert "T-04: agent 'Agent-01' was given to T-01, whose files carry it" in refused.stderr
    _plan_with_agents(tmp_path, [("T-02", ""), ("T-04", "Reviewer")])
    assert run(tmp_path).code == 0
    assert agents(tmp_path) == {"T-02": "Agent-02", "T-04": "Reviewer"}


def test_an_edited_shell_brief_runs_as_edited(tmp_path: Path) -> None:
    """What runs is what the brief says: a person who edits a shell task's brief sees the edit
    run, and the brief is kept as edited."""
    write_plan(tmp_path, [Spec("T-01", "echo original")])
    assert run(tmp_path).code == 0
    brief = tmp_path / ".orchestrator" / "agent_tasks" / "agent-01.md"
    brief.write_text(brief.read_text().replace("echo original", "echo edited by hand"))
    again = run(tmp_path)
    assert again.code == 0, again.stderr
    assert again.tasks("task_started") == ["T-01"]  # the edit changed its fingerprint
    assert result_body(tmp_path, "T-01").strip() == "edited by hand"
    assert "echo edited by hand" in brief.read_text()


def test_a_plan_change_under_an_edited_brief_is_told_not_dropped_in_silence(tmp_path: Path) -> None:
    """The brief as edited is what runs; when the plan then changes that task, the change cannot
    run, and run and render say so, once the plan has moved on from what the brief was made of."""
    write_plan(tmp_path, [Spec("T-01", "echo original", inline=True)])
    assert run(tmp_path).code == 0
    brief = tmp_path / ".orchestrator" / "agent_tasks" / "agent-01.md"
    brief.write_text(brief.read_text().replace("echo original", "echo edited by hand"))
    quiet = run(tmp_path)  # an edit alone: it runs, and nothing needs saying
    assert quiet.tasks("task_started") == ["T-01"]
    assert not [e for e in quiet.events if e["event"] == "notice"]
    write_plan(tmp_path, [Spec("T-01", "echo changed in the plan", inline=True)])
    again = run(tmp_path)
    assert again.code == 0 and again.tasks("task_started") == []
    notices = [e["message"] for e in again.events if e["event"] == "notice"]
    assert notices == [
        ".orchestrator/agent_tasks/agent-01.md: edited by hand, and what the plan gives T-01 has changed since it "
        "was rendered: the brief is kept as edited, so that change does not run (`orchestrator render --force`, or "
        "deleting the brief, takes the plan's)"
    ]
    render = cli(tmp_path, "render")
    assert render.code == 0 and "what the plan gives T-01 has changed since" in render.stderr
    as_json = json.loads(cli(tmp_path, "render", "--json").stdout)  # for a script too
    assert as_json["changed_under_edit"] == [{"task": "T-01", "brief": ".orchestrator/agent_tasks/agent-01.md"}]
    assert "echo edited by hand" in brief.read_text()


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        pytest.param(("status: completed", "status: [completed"), "its frontmatter is not valid YAML", id="bad-yaml"),
        pytest.param(("task: T-02\n", ""), "its frontmatter names no task", id="no-task"),
        pytest.param(("---\n", ""), "it does not start with a '---' frontmatter", id="no-frontmatter"),
        # QA: a typo read as failed, with no reason anywhere, and the file was written over
        pytest.param(("status: completed", "status: done"), "its status 'done' is none of: pending,", id="bad-status"),
    ],
)
def test_a_result_that_cannot_be_read_is_set_aside_not_written_over(
    tmp_path: Path, edit: tuple[str, str], problem: str
) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo one"), Spec("T-02", "echo two", deps=["T-01"])], {"cache": True})
    assert run(tmp_path).code == 0
    results = tmp_path / ".orchestrator" / "results"
    mine = results / "agent-02-result.md"
    edited = mine.read_text().replace(*edit, 1)
    mine.write_text(edited)
    shown = {t["id"]: t for t in json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["tasks"]}
    assert shown["T-02"]["status"] == "pending"
    assert shown["T-02"]["reason"].startswith(f"its result file cannot be read ({problem}")
    again = run(tmp_path)
    assert again.code == 0 and not again.tasks("task_started")  # (the cache brings its result back)
    assert [e["task"] for e in again.events if e["event"] == "task_completed" and e["reused"]] == ["T-02"]
    [notice] = [e["message"] for e in again.events if e["event"] == "notice"]
    assert notice.startswith(f".orchestrator/results/agent-02-result.md cannot be read as T-02's result ({problem}")
    assert notice.endswith("kept as agent-02-result.unreadable.md, and T-02 runs again")
    assert (results / "agent-02-result.unreadable.md").read_text() == edited
    assert result_body(tmp_path, "T-02").strip() == "two"


def test_a_status_word_a_person_capitalised_still_reads(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    assert run(tmp_path).code == 0
    mine = tmp_path / ".orchestrator" / "results" / "agent-01-result.md"
    mine.write_text(mine.read_text().replace("status: completed", "status: Completed ", 1))
    shown = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["tasks"]
    assert [(t["id"], t["status"]) for t in shown] == [("T-01", "completed")]
    assert run(tmp_path).tasks("task_started") == []


def test_a_shell_brief_without_its_script_fails_with_one_line(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo original"), Spec("T-02", "echo two", deps=["T-01"])])
    assert cli(tmp_path, "render").code == 0
    brief = tmp_path / ".orchestrator" / "agent_tasks" / "agent-01.md"
    text = brief.read_text()
    brief.write_text(text[: text.index("## Task Description")] + "## Notes\nI removed the script.\n")
    result = run(tmp_path)
    assert result.code == 1
    failed = next(e for e in result.events if e["event"] == "task_failed")
    assert failed["reason"].startswith(
        ".orchestrator/agent_tasks/agent-01.md: no code block under '## Task Description'"
    )
    assert statuses(tmp_path) == {"T-01": "failed", "T-02": "skipped"}


def test_a_workspace_template_without_the_script_is_named_in_the_failure(tmp_path: Path) -> None:
    """Deleting the brief renders the same one again when the workspace's template is the cause:
    the line says where to look."""
    write_plan(tmp_path, [Spec("T-01", "echo original")])
    templates = tmp_path / ".orchestrator" / "templates"
    templates.mkdir()
    (templates / "agent_task.md.j2").write_text("# {{ task.id }}\n\n{{ task.instructions }}\n", encoding="utf-8")
    result = run(tmp_path)
    assert result.code == 1
    failed = next(e for e in result.events if e["event"] == "task_failed")
    assert "templates/agent_task.md.j2 must keep that block" in failed["reason"]


@pytest.mark.parametrize(
    ("rows", "book", "expected"),
    [
        pytest.param(["a", "b"], Book(), {"a": "Agent-01", "b": "Agent-02"}, id="fresh"),
        pytest.param(
            ["x", "a", "b"],
            Book({"a": "Agent-01", "b": "Agent-02"}, {}, 3, 2),
            {"x": "Agent-03", "a": "Agent-01", "b": "Agent-02"},
            id="inserted",
        ),
        pytest.param(
            ["b", "c"],
            Book({"a": "Agent-01", "b": "Agent-02"}, {}, 3, 2),
            {"b": "Agent-02", "c": "Agent-03"},
            id="deleted-never-reused",
        ),
        pytest.param(
            [f"t{i}" for i in range(150)],
            Book(),
            {f"t{i}": f"Agent-{i + 1:03d}" for i in range(150)},
            id="width-from-the-first-plan",
        ),
        pytest.param(
            ["a", "new"],
            Book({"a": "Agent-99"}, {}, 100, 2),
            {"a": "Agent-99", "new": "Agent-100"},
            id="a-number-outgrows-its-width",
        ),
    ],
)
def test_assign(rows: list[str], book: Book, expected: dict[str, str]) -> None:
    assignment = assign([Row(task, "", i + 1) for i, task in enumerate(rows)], book)
    assert assignment.problems == []
    assert assignment.agents == expected
    again = assign([Row(task, "", i + 1) for i, task in enumerate(rows)], assignment.book)
    assert again.agents == expected and not again.changed


@pytest.mark.parametrize(
    ("fence", "inner"),
    [pytest.param("````", "```", id="backticks"), pytest.param("~~~~", "~~~", id="tildes")],
)
def test_a_script_holding_a_shorter_fence_runs_whole(tmp_path: Path, fence: str, inner: str) -> None:
    """A script whose here-document holds a ``` line sits in a longer fence: all of it runs."""
    script = f"cat > notes.md <<'MD'\n{inner}text\ninside\n{inner}\nMD\necho END-OF-SCRIPT"
    plan = (
        "---\nbackend: shell\n---\n# Plan\n\n## Task Decomposition\n"
        "| Task ID | Description | Dependencies |\n|---|---|---|\n| T-01 | Write notes | None |\n\n"
        f"## Task Details\n\n### T-01 Write notes\n{fence}bash\n{script}\n{fence}\n"
    )
    (tmp_path / ".orchestrator").mkdir()
    (tmp_path / ".orchestrator" / "master_plan.md").write_text(plan)
    result = run(tmp_path)
    assert result.code == 0, result.stderr
    assert result_body(tmp_path, "T-01").strip() == "END-OF-SCRIPT"
    assert (tmp_path / "notes.md").read_text() == f"{inner}text\ninside\n{inner}\n"


def test_a_task_id_whose_case_changes_keeps_its_agent_and_result(tmp_path: Path) -> None:
    """Task ids are not case-sensitive: ``T-01`` written ``t-01`` is the same task, with the same
    agent id and files; its result is not set aside as another task's. (Its brief now says
    ``t-01``, so it runs again, as after any edit of a brief.)"""
    write_plan(tmp_path, THREE)
    assert run(tmp_path).code == 0
    before = agents(tmp_path)
    write_plan(tmp_path, [Spec("t-01", "echo one"), *THREE[1:]])
    assert agents(tmp_path) == {"t-01": before["T-01"], "T-02": before["T-02"], "T-03": before["T-03"]}
    assert task_status(tmp_path)["t-01"] == "completed"
    again = run(tmp_path)
    assert again.code == 0, again.stderr
    assert "t-01" in again.tasks("task_started") and "T-03" not in again.tasks("task_started")
    book = json.loads((tmp_path / ".orchestrator" / "state" / "agents.json").read_text())
    assert "T-01" not in json.dumps(book), book  # one entry for the task, under its id as written now
    assert not list((tmp_path / ".orchestrator" / "results").glob("*.saved-*"))
    assert result_body(tmp_path, "t-01").strip() == "one"


def test_only_and_rerun_name_tasks_in_any_case_and_an_unknown_one_writes_nothing(tmp_path: Path) -> None:
    write_plan(tmp_path, THREE)
    unknown = run(tmp_path, "--only", "T-01", "--only", "T-99")
    assert unknown.code == 2
    assert "T-99" in unknown.stderr and "Traceback" not in unknown.stderr
    assert sorted(p.name for p in (tmp_path / ".orchestrator").iterdir()) == ["master_plan.md"]
    only = run(tmp_path, "--only", "t-01")
    assert only.code == 0, only.stderr
    assert only.tasks("task_started") == ["T-01"]
    rerun = run(tmp_path, "--rerun", "t-01")
    assert rerun.code == 0, rerun.stderr
    assert "T-01" in rerun.tasks("task_started")


def test_a_negative_cost_limit_is_a_usage_error(tmp_path: Path) -> None:
    write_plan(tmp_path, THREE)
    result = run(tmp_path, "--max-cost", "-1")
    assert result.code == 2
    assert result.stderr.count("\n") == 1 and "--max-cost" in result.stderr
    assert sorted(p.name for p in (tmp_path / ".orchestrator").iterdir()) == ["master_plan.md"]


def test_a_case_change_leaves_one_book_entry() -> None:
    assignment = assign([Row("t-01", "", 1), Row("T-02", "", 2)], Book({"T-01": "Agent-01"}, {}, 2, 2))
    assert assignment.agents == {"t-01": "Agent-01", "T-02": "Agent-02"}
    assert assignment.book.agents == {"t-01": "Agent-01", "T-02": "Agent-02"}
    assert assignment.book.retired == {}


def test_cancel_with_no_run_keeps_a_result_a_hand_edit_left_unreadable(tmp_path: Path) -> None:
    """Every writer of a result keeps what it would replace, not only run's start."""
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    assert run(tmp_path).code == 0
    results = tmp_path / ".orchestrator" / "results"
    edited = (results / "agent-01-result.md").read_text().replace("status: completed", "status: [completed", 1)
    (results / "agent-01-result.md").write_text(edited)
    cancelled = cli(tmp_path, "cancel", "T-01")
    assert cancelled.code == 0, cancelled.stderr
    assert "kept as agent-01-result.unreadable.md" in cancelled.stderr
    assert (results / "agent-01-result.unreadable.md").read_text() == edited
    assert statuses(tmp_path) == {"T-01": "cancelled"}


def test_a_result_edited_by_hand_is_kept_by_a_rerun_and_by_reset(tmp_path: Path) -> None:
    """QA: notes a person added to a result were written over by `run --rerun` and deleted by
    `reset`, with no copy and no word. A result's frontmatter holds a hash of its body; one that
    no longer matches is kept as .edited.md, and said, as final_output.md is."""
    write_plan(tmp_path, [Spec("T-01", "echo one"), Spec("T-02", "echo two")])
    assert run(tmp_path).code == 0
    results = tmp_path / ".orchestrator" / "results"
    for name in ("agent-01-result.md", "agent-02-result.md"):
        with open(results / name, "a", encoding="utf-8") as handle:
            handle.write("\nMY HAND NOTES\n")
    edited = (results / "agent-01-result.md").read_text(encoding="utf-8")
    again = run(tmp_path, "--rerun", "T-01")
    assert again.code == 0 and again.tasks("task_started") == ["T-01"]
    notices = [e["message"] for e in again.events if e["event"] == "notice"]
    assert notices == [
        ".orchestrator/results/agent-01-result.md was edited by hand since it was written: "
        "kept as agent-01-result.edited.md"
    ]
    assert (results / "agent-01-result.edited.md").read_text(encoding="utf-8") == edited
    assert "MY HAND NOTES" not in (results / "agent-01-result.md").read_text(encoding="utf-8")
    assert run(tmp_path, "--rerun", "T-01").events and not (results / "agent-01-result.edited.2.md").exists()
    notes_2 = (results / "agent-02-result.md").read_text(encoding="utf-8")
    reset = cli(tmp_path, "reset", "T-02")
    assert reset.code == 0 and reset.stdout.strip() == "Reset 1 task: T-02"
    assert "agent-02-result.md was edited by hand since it was written: kept as agent-02-result.edited.md" in (
        reset.stderr
    )
    assert (results / "agent-02-result.edited.md").read_text(encoding="utf-8") == notes_2
    assert not (results / "agent-02-result.md").exists()


def test_render_says_where_it_kept_a_brief_that_named_another_task(tmp_path: Path) -> None:
    """QA: a brief copied onto another task's file (to start the next one from it) was moved aside
    by `render` without a word, in text or --json; a run says so of results."""
    write_plan(tmp_path, [Spec("T-01", "echo one"), Spec("T-02", "echo two")])
    assert cli(tmp_path, "render").code == 0
    briefs = tmp_path / ".orchestrator" / "agent_tasks"
    copied = (briefs / "agent-01.md").read_text(encoding="utf-8")
    (briefs / "agent-02.md").write_text(copied, encoding="utf-8")
    shown = cli(tmp_path, "render", "--json")
    assert shown.code == 0
    assert json.loads(shown.stdout)["moved_aside"] == [
        {"brief": ".orchestrator/agent_tasks/agent-02.md", "kept_as": "agent-02.T-01.md"}
    ]
    assert ".orchestrator/agent_tasks/agent-02.md is another task's brief: kept as agent-02.T-01.md" in shown.stderr
    assert (briefs / "agent-02.T-01.md").read_text(encoding="utf-8") == copied
    (briefs / "agent-02.md").write_text(copied, encoding="utf-8")  # again, and a run says so too
    done = run(tmp_path)
    said = ".orchestrator/agent_tasks/agent-02.md is another task's brief: kept as agent-02.T-01.2.md"
    assert done.code == 0 and said in [e["message"] for e in done.events if e["event"] == "notice"]


def test_a_result_a_person_wrote_to_mark_a_task_done_is_kept_when_the_task_runs(tmp_path: Path) -> None:
    """QA: a result written from scratch (task and status only) reads as out of date, and the run
    that does the task wrote over it, no copy. No completed result the tool writes lacks an
    output_hash: one without it and without a content_hash is a person's, kept as .edited.md."""
    write_plan(tmp_path, [Spec("T-01", "echo 1"), Spec("T-02", "echo 2", deps=["T-01"])])
    results = tmp_path / ".orchestrator" / "results"
    results.mkdir(parents=True)
    mine = "---\ntask: T-01\nstatus: completed\n---\nmanual output\n"
    (results / "agent-01-result.md").write_text(mine, encoding="utf-8")
    done = run(tmp_path)
    assert done.code == 0 and done.tasks("task_started") == ["T-01", "T-02"]
    said = (
        ".orchestrator/results/agent-01-result.md was written by hand, not by a run: kept as agent-01-result.edited.md"
    )
    assert said in [e["message"] for e in done.events if e["event"] == "notice"]
    assert (results / "agent-01-result.edited.md").read_text(encoding="utf-8") == mine
    again = run(tmp_path, "--rerun", "T-01")  # the tool's own results are written over, as ever
    assert again.code == 0 and not (results / "agent-01-result.edited.2.md").exists()
