"""Workflows that branch and wait for a person: a Condition on what upstream tasks did and found,
an Approval gate before or after a task, and the one state machine every move of a task follows.

Real plans in tmp_path, real runs of shell tasks through the CLI, a real second terminal
approving while a run goes on; the expression language and the state machine tested as values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from runner_helpers import Background, cli, cli_in_process, start, wait_until

from orchestrator.plan.table.conditions import ConditionError, compile_condition, output_fields, parse_outputs
from orchestrator.vocabulary import TRANSITIONS, IllegalTransition, TaskStatus

ROOT = Path(__file__).resolve().parent.parent

PLAN = """---
backend: shell
retries: 0
---
## Task Decomposition
| Task ID | Command | Dependencies | Condition | Approval | Output |
|---------|---------|--------------|-----------|----------|--------|
{rows}
"""


def write(project: Path, *rows: str) -> Path:
    path = project / ".orchestrator" / "master_plan.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PLAN.format(rows="\n".join(rows)), encoding="utf-8")
    return path


def statuses(project: Path) -> dict[str, tuple[str, str | None]]:
    shown = json.loads(cli_in_process(project, "status", "--json").stdout)
    return {t["id"]: (t["status"], t["reason"]) for t in shown["tasks"]}


# --- the expression language ----------------------------------------------------------------------


def test_a_condition_reads_outcomes_and_fields_and_nothing_else() -> None:
    ids = ["T-01", "T-02", "T-10"]
    fallback = compile_condition("T-01 failed", ids, ["T-01"])
    assert fallback.evaluate({"T-01": "failed"}, {}) and not fallback.evaluate({"T-01": "completed"}, {})
    both = compile_condition('T-02.severity == "high" and T-01', ids, ["T-01", "T-02"])
    outcomes = {"T-01": "completed", "T-02": "completed"}
    assert both.evaluate(outcomes, {"T-02": {"severity": "high"}})
    assert not both.evaluate(outcomes, {"T-02": {"severity": "low"}})
    assert both.seen(outcomes, {"T-02": {"severity": "low"}}) == 'T-02 completed, T-01 completed, T-02.severity = "low"'
    # An id inside a string is text; T-1 is not T-10; case does not matter.
    quoted = compile_condition('t-10.name == "T-01 failed"', ids, ["T-10"])
    assert quoted.evaluate({"T-10": "completed"}, {"T-10": {"name": "T-01 failed"}})
    for bad, said in [
        ("T-1 failed", "'T-1' in 'T-1 failed' is no task of the plan (did you mean T-10?)"),
        ("T-02 failed", "names T-02, which the task does not depend on"),
        ("T-01 failed and", "cannot read"),
        ("range(3)", "calls a function"),
        ("x > 1", "'x' in 'x > 1' is no task of the plan"),
    ]:
        with pytest.raises(ConditionError, match=re.escape(said)):
            compile_condition(bad, ids, ["T-01", "T-10"])
    # A field that is not there is never a false condition.
    with pytest.raises(ConditionError, match="has no field 'count'"):
        compile_condition("T-01.count > 1", ids, ["T-01"]).evaluate({"T-01": "completed"}, {"T-01": {"n": 1}})


def test_output_fields_are_read_from_the_answer_and_declared_with_types() -> None:
    assert output_fields('{"a": 1}') == {"a": 1}
    assert output_fields('I checked it.\n{"severity": "high", "count": 2}\n') == {"severity": "high", "count": 2}
    assert output_fields('Report\n```json\n{"ok": true}\n```\nDone.') == {"ok": True}
    assert output_fields("no JSON here") is None
    assert parse_outputs("severity, count: int; ok:bool") == (("severity", "str"), ("count", "int"), ("ok", "bool"))
    with pytest.raises(ValueError, match="unknown type 'integr'"):
        parse_outputs("count:integr")


# --- the state machine ----------------------------------------------------------------------------


def test_every_arrow_of_the_state_machine_is_walked_and_no_other() -> None:
    assert set(TRANSITIONS) == set(TaskStatus)
    walked = 0
    for source in TaskStatus:
        for target in TaskStatus:
            if target == source or target in TRANSITIONS[source]:
                assert source.to(target) is target
                walked += 1
            else:
                with pytest.raises(IllegalTransition, match=f"from {source} to {target}"):
                    source.to(target)
    assert walked == len(TaskStatus) + sum(len(targets) for targets in TRANSITIONS.values())
    # What only a run may do: nothing completed starts running without going through pending first.
    assert TaskStatus.RUNNING not in TRANSITIONS[TaskStatus.COMPLETED]
    assert TaskStatus.RUNNING not in TRANSITIONS[TaskStatus.AWAITING_APPROVAL]


def test_the_diagram_in_workflow_md_is_the_state_machine() -> None:
    text = (ROOT / "workflow.md").read_text(encoding="utf-8")
    diagram = text[text.index("stateDiagram-v2") :].split("```")[0]
    drawn = set(re.findall(r"^\s*(\w+) --> (\w+)\s*$", diagram, re.MULTILINE))
    coded = {(str(a), str(b)) for a, targets in TRANSITIONS.items() for b in targets}
    assert drawn == coded


# --- conditions in a run --------------------------------------------------------------------------


def test_a_fallback_runs_when_its_upstream_fails_and_a_false_condition_is_no_failure(tmp_path: Path) -> None:
    write(
        tmp_path,
        """| T-01 | `echo '{"severity": "low", "count": 3}'` | None | | | severity, count:int |""",
        "| T-02 | exit 3 | None | | | |",
        "| T-03 | echo fallback > fallback.txt | T-02 | T-02 failed | | |",
        '| T-04 | echo urgent > urgent.txt | T-01 | T-01.severity == "high" | | |',
        "| T-05 | echo after-urgent | T-04 | | | |",
        "| T-06 | echo many > many.txt | T-01 | T-01.count > 2 | | |",
        "| T-07 | echo joined | T-03, T-04 | T-03 completed or T-04 completed | | |",
    )
    ran = cli(tmp_path, "run")
    # T-02 failed, but the fallback written for it took over: the run is a success.
    assert ran.code == 0, ran.stdout + ran.stderr
    assert '↪️ T-04 [Agent-04] bypassed: condition false: T-01.severity == "high" (T-01 completed, ' in ran.stdout
    seen = statuses(tmp_path)
    assert seen["T-02"][0] == "failed" and seen["T-03"][0] == "completed" and seen["T-06"][0] == "completed"
    assert seen["T-04"] == (
        "bypassed",
        'condition false: T-01.severity == "high" (T-01 completed, T-01.severity = "low")',
    )
    assert seen["T-05"] == ("bypassed", "upstream T-04 was bypassed")
    assert seen["T-07"][0] == "completed"  # its own condition decided, on T-03 done and T-04 bypassed
    assert (tmp_path / "fallback.txt").exists() and not (tmp_path / "urgent.txt").exists()
    final = (tmp_path / ".orchestrator" / "final_output.md").read_text(encoding="utf-8")
    assert "bypassed" in final.lower()
    graph = cli_in_process(tmp_path, "graph", "--format", "mermaid").stdout
    assert "classDef bypassed" in graph


def test_a_condition_that_cannot_be_decided_fails_its_task(tmp_path: Path) -> None:
    """A field of the wrong kind (a string compared with a number), a power past what a condition
    may compute: the task fails, said why, in bounded time; never a false condition, nor a hang."""
    write(
        tmp_path,
        """| T-01 | `echo '{"count": "many", "n": 1000000000}'` | None | | | count, n:int |""",
        "| T-02 | echo two | T-01 | T-01.count > 2 | | |",
        "| T-03 | echo three > three.txt | T-01 | T-01.n ** T-01.n > 1 | | |",
    )
    ran = cli(tmp_path, "run")
    assert ran.code == 1, ran.stdout + ran.stderr
    seen = statuses(tmp_path)
    status, reason = seen["T-02"]
    assert status == "failed" and (reason or "").startswith("its condition could not be decided: T-01.count > 2: ")
    status, reason = seen["T-03"]
    assert status == "failed" and "1000000000 ** 1000000000 is a number of more than 4096 bits" in (reason or "")
    assert not (tmp_path / "three.txt").exists() and "Traceback" not in ran.stderr


def test_a_condition_on_the_fields_of_a_failed_upstream_skips_its_task_and_fails_nothing_more(
    tmp_path: Path,
) -> None:
    """T-01 failed: T-02, which reads T-01's fields, is skipped for it as a plain dependent is (one
    failure, told once, not a second one blamed on T-02); a fallback written into the same
    condition still runs; a bypassed upstream bypasses the task reading its fields."""
    write(
        tmp_path,
        "| T-01 | exit 3 | None | | | count:int |",
        "| T-02 | echo two > two.txt | T-01 | T-01.count > 2 | | |",
        "| T-03 | echo three > three.txt | T-01 | T-01 failed or T-01.count > 2 | | |",
        """| T-04 | `echo '{"n": 1}'` | None | | | n:int |""",
        "| T-05 | echo five | T-04 | T-04.n > 5 | | n:int |",
        "| T-06 | echo six > six.txt | T-05 | T-05.n > 0 | | |",
    )
    ran = cli(tmp_path, "run")
    assert ran.code == 1, ran.stdout + ran.stderr
    seen = statuses(tmp_path)
    assert seen["T-01"][0] == "failed"
    assert seen["T-02"] == ("skipped", "upstream T-01 failed")
    assert seen["T-03"][0] == "completed" and (tmp_path / "three.txt").exists()
    assert seen["T-05"][0] == "bypassed"
    assert seen["T-06"] == ("bypassed", "upstream T-05 was bypassed")
    assert not (tmp_path / "two.txt").exists() and not (tmp_path / "six.txt").exists()
    assert "could not be decided" not in ran.stdout
    assert [t for t, (status, _) in seen.items() if status == "failed"] == ["T-01"]


def test_an_answer_without_its_declared_fields_fails_the_task(tmp_path: Path) -> None:
    write(tmp_path, """| T-01 | `echo '{"severity": "high"}'` | None | | | severity, count:int |""")
    ran = cli(tmp_path, "run")
    assert ran.code == 1
    status, reason = statuses(tmp_path)["T-01"]
    assert status == "failed" and "has no field 'count'" in (reason or "")


@pytest.mark.parametrize(
    ("row", "said"),
    [
        ("| T-02 | echo x | T-01 | T-1 failed | | |", "T-02: 'T-1' in 'T-1 failed' is no task of the plan"),
        (
            "| T-02 | echo x | None | T-01 failed | | |",
            "T-02: the condition names T-01, which the task does not depend on",
        ),
        (
            "| T-02 | echo x | T-01 | T-01.sevrity == 1 | | |",
            "T-02: T-01 has no output field 'sevrity' (did you mean severity?)",
        ),
        ("| T-02 | echo x | T-01 | | sometimes | |", "T-02: unknown approval 'sometimes'"),
        ("| T-02 | echo x | T-01 | | | n:integr |", "T-02: bad Output cell: 'n:integr': unknown type 'integr'"),
    ],
)
def test_a_bad_condition_gate_or_output_is_one_line_with_its_place(tmp_path: Path, row: str, said: str) -> None:
    plan = write(tmp_path, "| T-01 | echo one | None | | | severity |", row)
    before = plan.read_bytes()
    checked = cli_in_process(tmp_path, "validate")
    assert checked.code == 2, checked.stderr
    assert f".orchestrator/master_plan.md:9: {said}" in checked.stderr, checked.stderr
    assert "Traceback" not in checked.stderr
    assert cli(tmp_path, "run").code == 2 and plan.read_bytes() == before
    assert not (tmp_path / ".orchestrator" / "results").exists()


# --- a finished plan is a fixed point --------------------------------------------------------------

BRANCHES = (
    """| T-01 | `echo '{"n": 0}'` | None | | | n:int |""",
    "| T-02 | echo clean | T-01 | T-01.n == 0 | | |",
    "| T-03 | echo dirty | T-01 | T-01.n > 0 | | |",
    "| T-04 | date +%s%N > published.txt | T-02, T-03 | T-02 completed or T-03 completed | {gate} | |",
    "| T-05 | echo announced > announced.txt | T-04 | | | |",
)


def snapshot(project: Path) -> dict[str, bytes]:
    """Every result file and every file the tasks wrote, by name."""
    found = {p.name: p.read_bytes() for p in (project / ".orchestrator" / "results").iterdir()}
    return found | {p.name: p.read_bytes() for p in project.glob("*.txt")}


@pytest.mark.parametrize("gate", ["before", ""])
def test_a_bypassed_branch_settles_and_the_plan_is_a_fixed_point(tmp_path: Path, gate: str) -> None:
    """Check, then Clean or Dirty, then Publish (after either, at a gate or not), then Announce:
    once it has run to its end, a second run starts nothing, asks nothing and writes nothing, and
    nothing is out of date. (Before: the bypassed branch "will run again" at every run, Publish
    was called out of date, asked for again, and published again.)"""
    write(tmp_path, *(row.replace("{gate}", gate) for row in BRANCHES))
    first = cli(tmp_path, "run", "--json")
    if gate:
        assert first.code == 4, first.stdout + first.stderr
        assert cli(tmp_path, "approve", "T-04").code == 0
        first = cli(tmp_path, "run", "--json")
    assert first.code == 0, first.stdout + first.stderr
    assert (tmp_path / "announced.txt").exists()
    seen = statuses(tmp_path)
    assert seen["T-03"] == ("bypassed", "condition false: T-01.n > 0 (T-01 completed, T-01.n = 0)")
    shown = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["tasks"]
    assert [t["out_of_date"] for t in shown] == [None] * 5
    cause = next(t["cause"] for t in shown if t["id"] == "T-03")
    assert cause == {"kind": "condition", "condition": "T-01.n > 0", "seen": "T-01 completed, T-01.n = 0"}
    before = snapshot(tmp_path)
    for _ in range(2):
        again = cli(tmp_path, "run", "--json")
        assert again.code == 0, again.stdout + again.stderr
        kinds = again.kinds()
        assert "task_started" not in kinds and "approval_requested" not in kinds, kinds
        assert not {"task_bypassed", "task_skipped", "task_completed"} & set(kinds), kinds
        assert snapshot(tmp_path) == before  # (the published file's time too)
    assert "out of date" not in cli_in_process(tmp_path, "status").stdout


def test_a_bypassed_branch_is_decided_again_once_what_its_condition_reads_changes(tmp_path: Path) -> None:
    """A bypass stays only while its condition sees the same: Check's answer changed, the branches
    are decided again, and what comes after them runs again."""
    path = write(tmp_path, *(row.replace("{gate}", "") for row in BRANCHES))
    assert cli(tmp_path, "run").code == 0
    path.write_text(path.read_text(encoding="utf-8").replace('{"n": 0}', '{"n": 2}'), encoding="utf-8")
    shown = {t["id"]: t for t in json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["tasks"]}
    assert shown["T-02"]["out_of_date"] == "upstream T-01 will run again"
    assert shown["T-04"]["out_of_date"] == "upstream T-02 will run again"
    again = cli(tmp_path, "run", "--json")
    assert again.code == 0, again.stdout + again.stderr
    assert again.tasks("task_started")[:3] == ["T-01", "T-03", "T-04"]
    assert "T-05" in again.tasks("task_completed")  # (run, or its result reused: its inputs are the same)
    seen = statuses(tmp_path)
    assert seen["T-02"] == ("bypassed", "condition false: T-01.n == 0 (T-01 completed, T-01.n = 2)")
    assert seen["T-03"][0] == "completed"


def test_retry_takes_up_what_stays_as_it_is_or_says_how(tmp_path: Path) -> None:
    """A bypass that stays (settled) is decided again after `retry`; a failure a fallback took over
    stays too, and `retry` says how to run it again rather than that the next run will."""
    write(
        tmp_path,
        """| T-01 | `echo '{"n": 0}'` | None | | | n:int |""",
        "| T-02 | echo dirty | T-01 | T-01.n > 0 | | |",
        "| T-03 | exit 3 | None | | | |",
        "| T-04 | echo fallback | T-03 | T-03 failed | | |",
    )
    assert cli(tmp_path, "run").code == 0
    shown = {t["id"]: t for t in json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["tasks"]}
    assert shown["T-02"]["settled"] is True and shown["T-03"]["settled"] is True
    refused = cli(tmp_path, "retry", "T-03")
    assert refused.code == 1 and "a fallback took it over" in refused.stderr and "run --rerun T-03" in refused.stderr
    assert cli(tmp_path, "retry", "T-02").code == 0
    again = cli(tmp_path, "run", "--json")
    assert again.code == 0 and again.tasks("task_bypassed") == ["T-02"] and not again.tasks("task_started")


# --- approval gates -------------------------------------------------------------------------------


def test_a_gate_before_holds_the_task_until_approved_across_runs(tmp_path: Path) -> None:
    write(
        tmp_path,
        "| T-01 | echo built > built.txt | None | | | |",
        "| T-02 | echo deployed > deployed.txt | T-01 | | before | |",
        "| T-03 | echo announced | T-02 | | | |",
        "| T-04 | echo other | None | | | |",
    )
    first = cli(tmp_path, "run")
    assert first.code == 4, first.stdout + first.stderr  # the rest done; a person is needed
    assert "✋ T-02 [Agent-02] awaiting approval before it starts: `orchestrator approve T-02`" in first.stdout
    assert first.stdout.splitlines()[-1].startswith("next: `orchestrator approve T-02`")
    assert not (tmp_path / "deployed.txt").exists()
    assert statuses(tmp_path)["T-02"][0] == "awaiting_approval"
    assert statuses(tmp_path)["T-03"][0] == "waiting"
    again = cli(tmp_path, "run")  # a restart: still waiting, nothing run twice
    assert again.code == 4 and "T-01 [Agent-01] started" not in again.stdout
    approved = cli(tmp_path, "approve", "T-02", "--reason", "green", "--json")
    assert approved.code == 0 and json.loads(approved.stdout)["decision"] == "approved"
    assert statuses(tmp_path)["T-02"][0] == "pending"
    last = cli(tmp_path, "run")
    assert last.code == 0, last.stdout + last.stderr
    assert (tmp_path / "deployed.txt").read_text() == "deployed\n"
    log = (tmp_path / ".orchestrator" / "state" / "approvals.jsonl").read_text(encoding="utf-8")
    assert json.loads(log.splitlines()[-1])["reason"] == "green"
    # Completed now: there is nothing left to decide.
    done = cli(tmp_path, "approve", "T-02")
    assert done.code == 1 and "T-02 is completed: there is nothing to decide" in done.stderr


def test_a_gate_before_is_seen_between_runs_and_an_approval_is_told(tmp_path: Path) -> None:
    """Right after a run stops at a gate, every view says the task awaits approval (before, one
    whose dependencies were one completed and one bypassed read as waiting, with none awaiting);
    once approved, that it starts in the next run."""
    write(tmp_path, *(row.replace("{gate}", "before") for row in BRANCHES))
    assert cli(tmp_path, "run").code == 4
    shown = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)
    assert shown["counts"]["awaiting_approval"] == 1 and shown["counts"]["waiting"] == 1
    publish = next(t for t in shown["tasks"] if t["id"] == "T-04")
    assert publish["status"] == "awaiting_approval" and publish["cause"] == {"kind": "held", "gate": "before"}
    assert "✋ Awaiting approval" in cli_in_process(tmp_path, "status").stdout
    listed = cli_in_process(tmp_path, "list", "--json")
    assert {t["id"]: t["status"] for t in json.loads(listed.stdout)["tasks"]}["T-04"] == "awaiting_approval"
    assert cli(tmp_path, "approve", "T-04", env={"USER": "ann"}).code == 0
    publish = next(
        t for t in json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["tasks"] if t["id"] == "T-04"
    )
    assert publish["status"] == "pending"
    assert publish["cause"] == {"kind": "approved", "gate": "before", "by": "ann"}
    assert publish["reason"] == "approved by ann: starts in the next `orchestrator run`"
    assert "approved by ann: starts in the next `orchestrator run`" in cli_in_process(tmp_path, "status").stdout


def test_a_gate_decided_stays_decided_until_its_inputs_change(tmp_path: Path) -> None:
    """Approved on the inputs it had, a gate is not asked again when the task runs again with the
    same (``--rerun``); once what it runs from changes, it is."""
    path = write(
        tmp_path,
        "| T-01 | echo v1 | None | | | |",
        "| T-02 | date +%s%N >> deployed.txt | T-01 | | before | |",
    )
    assert cli(tmp_path, "run").code == 4
    assert cli(tmp_path, "approve", "T-02").code == 0
    assert cli(tmp_path, "run").code == 0
    again = cli(tmp_path, "run", "--json", "--rerun", "T-02")
    assert again.code == 0 and "approval_requested" not in again.kinds(), again.stdout
    assert len((tmp_path / "deployed.txt").read_text().splitlines()) == 2
    path.write_text(path.read_text(encoding="utf-8").replace("echo v1", "echo v2"), encoding="utf-8")
    changed = cli(tmp_path, "run", "--json")
    assert changed.code == 4 and changed.tasks("approval_requested") == ["T-02"], changed.stdout
    assert len((tmp_path / "deployed.txt").read_text().splitlines()) == 2


def test_reset_says_which_words_at_gates_it_keeps_and_approvals_asks_again(tmp_path: Path) -> None:
    """`reset --all` keeps an approval (the inputs are the same), so a re-run "afresh" shipped the
    gated step asking no one: its line now says which it kept and how to ask again, and
    `--approvals` takes the word back with a line of its own in state/approvals.jsonl (the
    approval stays there as history), so the gate asks again."""
    write(tmp_path, "| T-01 | echo build | None | | | |", "| T-02 | echo shipped >> shipped.txt | T-01 | | before | |")
    assert cli(tmp_path, "run").code == 4
    assert cli(tmp_path, "approve", "T-02", "--reason", "green").code == 0
    assert cli(tmp_path, "run").code == 0
    kept = cli(tmp_path, "reset", "--all")
    assert kept.code == 0 and kept.stdout.startswith("Reset 2 tasks: T-01, T-02; kept T-02's approval (approved "), (
        kept.stdout
    )
    assert kept.stdout.endswith(
        ": the next run does not ask at its gate — `orchestrator reset T-02 --approvals` asks again\n"
    ), kept.stdout
    assert cli(tmp_path, "run").code == 0  # (kept: shipped again, as the line said)
    assert (tmp_path / "shipped.txt").read_text().split() == ["shipped", "shipped"]
    approvals = tmp_path / ".orchestrator" / "state" / "approvals.jsonl"
    before = approvals.read_text(encoding="utf-8")
    asked = cli(tmp_path, "reset", "T-02", "--approvals", "--json")
    assert asked.code == 0, asked.stderr
    data = json.loads(asked.stdout)
    assert data["reset"] == ["T-02"] and [(w["task"], w["decision"]) for w in data["approvals_withdrawn"]] == [
        ("T-02", "approved")
    ]
    after = approvals.read_text(encoding="utf-8")
    assert after.startswith(before)  # nothing rewritten: a line added
    added = [json.loads(line) for line in after[len(before) :].splitlines()]
    assert [(a["task"], a["decision"], a["reason"]) for a in added] == [("T-02", "withdrawn", "reset --approvals")]
    held = cli(tmp_path, "run", "--json")
    assert held.code == 4 and held.tasks("approval_requested") == ["T-02"], held.stdout
    assert (tmp_path / "shipped.txt").read_text().split() == ["shipped", "shipped"]  # not shipped unasked
    said = cli(tmp_path, "reset", "--all", "--approvals")
    assert said.code == 0 and "withdrew" not in said.stdout  # (nothing in force to take back)


def test_the_run_and_approve_read_one_rule_for_whether_a_word_stands(tmp_path: Path) -> None:
    """Issue 65's gate that could never be passed: approve a gated task and let it run, reset it,
    edit its row, run: the run asked again (its inputs changed), and `approve` answered "approved
    already … nothing written", so every later run asked again. Both now read ``Decision.stands``."""
    write(tmp_path, "| T-01 | echo build | None | | | |", "| T-02 | echo shipped >> shipped.txt | T-01 | | before | |")
    assert cli(tmp_path, "run").code == 4
    assert cli(tmp_path, "approve", "T-02").code == 0
    assert cli(tmp_path, "run").code == 0
    assert cli(tmp_path, "reset", "--all").code == 0
    plan = tmp_path / ".orchestrator/master_plan.md"
    plan.write_text(plan.read_text().replace("echo shipped >>", "echo shipped again >>"), encoding="utf-8")
    asked = cli(tmp_path, "run", "--json")
    assert asked.code == 4 and asked.tasks("approval_requested") == ["T-02"]  # (its row changed: asked again)
    again = cli(tmp_path, "approve", "T-02")
    assert again.code == 0 and "already" not in again.stdout, again.stdout  # a new word, on the inputs now
    done = cli(tmp_path, "run")
    assert done.code == 0, done.stdout
    assert (tmp_path / "shipped.txt").read_text().splitlines() == ["shipped", "shipped again"]


def test_a_gate_after_holds_the_result_and_a_rejection_skips_what_depends_on_it(tmp_path: Path) -> None:
    write(
        tmp_path,
        "| T-01 | echo the-migration | None | | after | |",
        "| T-02 | echo next > next.txt | T-01 | | | |",
    )
    first = cli(tmp_path, "run")
    assert first.code == 4
    assert statuses(tmp_path)["T-01"][0] == "awaiting_approval"
    result = (tmp_path / ".orchestrator" / "results" / "agent-01-result.md").read_text(encoding="utf-8")
    assert "status: awaiting_approval" in result and "the-migration" in result  # the work is there to see
    rejected = cli(tmp_path, "reject", "T-01", "--reason", "wrong table")
    assert rejected.code == 0, rejected.stderr
    from orchestrator.state.approvals import local_user

    assert statuses(tmp_path)["T-01"] == ("rejected", f"rejected by {local_user()}: wrong table")
    last = cli(tmp_path, "run")
    assert last.code == 1
    seen = statuses(tmp_path)
    assert seen["T-01"][0] == "rejected" and seen["T-02"] == ("skipped", "upstream T-01 was rejected")
    assert not (tmp_path / "next.txt").exists()
    # `retry` asks again: the gate waits for a new word.
    assert cli(tmp_path, "retry", "T-01").code == 0
    asked = cli(tmp_path, "run")
    assert asked.code == 4 and statuses(tmp_path)["T-01"][0] == "awaiting_approval", asked.stdout


def test_a_word_given_while_the_run_goes_on_is_taken_at_once(tmp_path: Path) -> None:
    write(
        tmp_path,
        "| T-01 | while [ ! -f go ]; do sleep 0.05; done | None | | | |",  # (the run goes on until go)
        "| T-02 | echo gated > gated.txt | None | | before | |",
    )
    runner = start(tmp_path)
    try:
        wait_until(lambda: "approval_requested" in [e["event"] for e in runner.events()], "T-02 at its gate")
        approved = cli(tmp_path, "approve", "T-02")
        assert approved.code == 0 and "the run going on" in approved.stdout and "takes it now" in approved.stdout
        wait_until(lambda: (tmp_path / "gated.txt").exists(), "T-02 to run")
        (tmp_path / "go").touch()
        assert runner.wait() == 0, runner.stderr.read_text()
    finally:
        runner.cleanup()
    kinds = [e["event"] for e in runner.events()]
    assert kinds.count("run_started") == 1 and "approval_given" in kinds
    assert (tmp_path / "gated.txt").read_text() == "gated\n"


def told(runner: Background, kind: str, task: str) -> Callable[[], bool]:
    """Whether ``runner`` has told ``kind`` of ``task`` (an event of it, or naming it among its ``tasks``)."""
    return lambda: any(e["event"] == kind and task in (e.get("task"), *(e.get("tasks") or ())) for e in runner.events())


def test_run_wait_stays_up_for_a_person_and_takes_each_word_as_it_is_given(tmp_path: Path) -> None:
    """``run --wait``: the run does not end at a gate or a Blocked cell; it says what it waits
    for, takes an approval, a rejection and a release as they come, and ends, 0, once nothing is
    left to do or wait for."""
    path = tmp_path / ".orchestrator" / "master_plan.md"
    path.parent.mkdir(parents=True)
    path.write_text(
        "---\nbackend: shell\nretries: 0\n---\n## Task Decomposition\n"
        "| Task ID | Command | Dependencies | Approval | Blocked |\n|---|---|---|---|---|\n"
        "| T-01 | echo built | None | | legal |\n"
        "| T-02 | echo deployed > deployed.txt | T-01 | before | |\n"
        "| T-03 | echo announced > announced.txt | T-02 | | |\n"
        "| T-04 | echo risky > risky.txt | None | before | |\n",
        encoding="utf-8",
    )
    runner = start(tmp_path, "--wait")
    try:
        wait_until(told(runner, "approval_requested", "T-04"), "T-04 at its gate")
        wait_until(told(runner, "run_waiting", "T-01"), "the run waiting for a person")
        assert runner.process.poll() is None  # (without --wait it would have ended here, exit 4)
        assert cli(tmp_path, "update", "T-01", "--status", "pending").code == 0
        wait_until(told(runner, "approval_requested", "T-02"), "T-02 at its gate once T-01 ran")
        assert cli(tmp_path, "reject", "T-04", "--reason", "not today").code == 0
        assert cli(tmp_path, "approve", "T-02").code == 0
        code = runner.wait()
    finally:
        runner.stop_all()
    assert code == 1, runner.stderr.read_text()  # (T-04 rejected: the plan is not done as asked)
    kinds = [e["event"] for e in runner.events()]
    assert kinds.count("run_started") == 1 and kinds[-1] == "run_finished"
    assert (tmp_path / "announced.txt").exists() and not (tmp_path / "risky.txt").exists()
    assert statuses(tmp_path)["T-04"][0] == "rejected" and (tmp_path / "deployed.txt").exists()


def test_run_wait_timeout_ends_the_wait_as_a_run_without_it_ends(tmp_path: Path) -> None:
    write(tmp_path, "| T-01 | echo one | None | | | |", "| T-02 | echo two | T-01 | | before | |")
    waited = cli(tmp_path, "run", "--wait-timeout", "2s")
    assert waited.code == 4, waited.stdout + waited.stderr
    assert "⏳ waiting for a person (run --wait until" in waited.stdout
    assert "run --wait: no word came for T-02 by" in waited.stdout
    assert statuses(tmp_path)["T-02"][0] == "awaiting_approval"
    refused = cli(tmp_path, "run", "--wait-timeout", "none")
    assert refused.code == 2 and "'none' is no time to wait" in refused.stderr


def test_a_word_said_again_at_a_gate_is_no_second_decision(tmp_path: Path) -> None:
    """A second ``approve`` of a task wrote the approval again. Said again while the first word
    stands (not yet used by a run, or acted on: rejected), it writes nothing and says so, exit 0
    (``already`` in --json), as a second ``cancel`` does; the other word is still a decision."""
    write(
        tmp_path,
        "| T-01 | echo deployed > deployed.txt | None | | before | |",
        "| T-02 | echo migrated | None | | after | |",
        "| T-03 | echo dropped > dropped.txt | None | | before | |",
    )
    log = tmp_path / ".orchestrator" / "state" / "approvals.jsonl"

    def lines() -> list[dict[str, str]]:
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []

    assert cli(tmp_path, "run").code == 4
    for task, then in (
        ("T-01", "the next `orchestrator run` takes it"),
        ("T-02", "it is completed: its result counts"),
    ):
        first = cli(tmp_path, "approve", task, "--reason", "green")
        assert first.code == 0 and "approved" in first.stdout, first.stderr
        again = cli(tmp_path, "approve", task, "--reason", "still green")
        assert again.code == 0, again.stderr
        assert again.stdout.startswith(f"{task} is approved already (") and "green): nothing written" in again.stdout
        assert again.stdout.rstrip().endswith(then), again.stdout
        shown = json.loads(cli(tmp_path, "approve", task, "--json").stdout)
        assert shown["ok"] is True and shown["already"] is True and shown["reason"] == "green"
    assert [(d["task"], d["decision"]) for d in lines()] == [("T-01", "approved"), ("T-02", "approved")]
    assert cli(tmp_path, "reject", "T-03", "--reason", "not today").code == 0
    again = cli(tmp_path, "reject", "T-03", "--reason", "no")
    assert again.code == 0 and again.stdout.startswith("T-03 is rejected already ("), again.stdout
    assert len(lines()) == 3
    # The run takes each word once; then a third word finds the rejection acted on, the rest done.
    ran = cli(tmp_path, "run")
    assert ran.code == 1 and "Traceback" not in ran.stderr, ran.stdout + ran.stderr  # (T-03 rejected)
    assert (tmp_path / "deployed.txt").exists() and not (tmp_path / "dropped.txt").exists()
    rejected = cli(tmp_path, "reject", "T-03", "--json")
    assert rejected.code == 0 and json.loads(rejected.stdout)["already"] is True
    assert "nothing written; it is rejected" in cli(tmp_path, "reject", "T-03").stdout
    refused = cli(tmp_path, "approve", "T-03")
    assert refused.code == 1 and "T-03 is rejected: `orchestrator retry T-03` asks again" in refused.stderr
    done = cli(tmp_path, "approve", "T-01")
    assert done.code == 1 and "T-01 is completed: there is nothing to decide" in done.stderr
    assert len(lines()) == 3
    first = json.loads(cli(tmp_path, "reject", "T-03", "--json").stdout)
    assert first["already"] is True and first["decision"] == "rejected"


def test_a_task_rejected_at_its_gate_before_between_runs_ends_rejected(tmp_path: Path) -> None:
    """A run stopped at T-02's gate before; ``reject T-02`` between runs; the next run died with
    an IllegalTransition traceback (pending to rejected): the task reaches its gate, then the
    word there rejects it, and what depends on it is skipped."""
    write(
        tmp_path,
        "| T-01 | echo dropped > dropped.txt | None | | before | |",
        "| T-02 | echo after | T-01 | | | |",
    )
    assert cli(tmp_path, "run").code == 4
    assert cli(tmp_path, "reject", "T-01", "--reason", "not today").code == 0
    ran = cli(tmp_path, "run")
    assert ran.code == 1 and "Traceback" not in ran.stderr, ran.stdout + ran.stderr
    seen = statuses(tmp_path)
    assert seen["T-01"][0] == "rejected" and seen["T-02"] == ("skipped", "upstream T-01 was rejected")
    assert not (tmp_path / "dropped.txt").exists()


def test_approve_refuses_a_task_without_a_gate(tmp_path: Path) -> None:
    write(tmp_path, "| T-01 | echo one | None | | | |")
    refused = cli(tmp_path, "approve", "T-01")
    assert refused.code == 2 and "T-01: it has no Approval gate" in refused.stderr


# --- learned estimates and history --stats ----------------------------------------------------------


def test_status_estimates_the_end_from_earlier_runs_and_history_sums_them_up(tmp_path: Path) -> None:
    write(
        tmp_path,
        "| T-01 | sleep 0.4 | None | | | |",
        "| T-02 | sleep 0.2 | T-01 | | | |",
        "| T-03 | exit 1 | None | | | |",
    )
    assert cli(tmp_path, "run").code == 1
    assert cli(tmp_path, "reset", "--all").code == 0  # results forgotten; what the runs took is not
    shown = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)
    eta = shown["eta"]
    assert eta["tasks_left"] == 3 and eta["learned"] == 3  # T-03 never completed: from its kind (shell)
    assert 0.5 <= eta["seconds_left"] < 5, eta  # the chain T-01 -> T-02, about 0.6 s, not 3 x 60 s
    text = cli_in_process(tmp_path, "status").stdout
    assert re.search(r"Estimated: \S+ left \(ends about \d\d:\d\d\); 3 of 3 tasks' estimates learned", text), text
    stats = json.loads(cli_in_process(tmp_path, "history", "--stats", "--json").stdout)
    assert stats["tasks"]["T-03"]["success_rate"] == 0 and stats["most_failed"] == ["T-03"]
    assert stats["tasks"]["T-01"]["success_rate"] == 1 and stats["slowest"][0] == "T-01"
    assert stats["tasks"]["T-01"]["median_seconds"] >= 0.4
    # By kind: each task's run counts, and T-03's failure shows (it read 1 run, 100% ok: a run of the
    # plan counted once, a success when any of its tasks completed).
    shell = stats["kinds"]["shell"]
    assert (shell["runs"], shell["completed"], shell["success_rate"]) == (3, 2, 0.667)
    t01 = stats["tasks"]["T-01"]
    assert t01["p90_seconds"] >= t01["median_seconds"] and shell["p90_seconds"] >= shell["median_seconds"] > 0
    assert (t01["cost_usd"], t01["tokens"], shell["cost_usd"], shell["tokens"]) == (None, None, None, None)  # (shell)
    table = cli_in_process(tmp_path, "history", "--stats").stdout
    assert table.startswith("By task\ntask ") and "Most often failed: T-03" in table
    assert "By kind (type, else profile and backend, else backend)" in table
    # One task's figures alone: `history T-01 --stats` used to sum up every task.
    one = json.loads(cli_in_process(tmp_path, "history", "T-01", "--stats", "--json").stdout)
    assert list(one["tasks"]) == ["T-01"] and one["kinds"]["shell"]["runs"] == 1, one
    assert "T-03" not in cli_in_process(tmp_path, "history", "T-01", "--stats").stdout


def test_an_approved_step_is_done_for_real_never_taken_from_the_cache(tmp_path: Path) -> None:
    """A deploy of v1 approved, then v2, then v1 again: the third approval deploys v1 again. The
    cache would have handed back the first deploy's result and deployed nothing (QA)."""
    for version in ("v1", "v2", "v1"):
        write(tmp_path, f"| T-01 | echo {version} >> deployed.log | None | | before | |")
        assert cli(tmp_path, "run").code == 4
        assert cli(tmp_path, "approve", "T-01").code == 0
        done = cli(tmp_path, "run")
        assert done.code == 0, done.stdout + done.stderr
        assert "reused" not in done.stdout
    assert (tmp_path / "deployed.log").read_text(encoding="utf-8").split() == ["v1", "v2", "v1"]


# --- validate and graph show the branches and gates before a run ------------------------------------


def test_validate_and_graph_show_conditions_and_gates_before_a_run(tmp_path: Path) -> None:
    write(
        tmp_path,
        "| T-01 | echo one | None | | | failing:int |",
        "| T-02 | echo build | T-01 | T-01.failing == 0 | | |",
        "| T-03 | echo triage | T-01 | T-01 failed or T-01.failing > 0 | | |",
        "| T-04 | echo deploy | T-02 | | before | |",
        "| T-05 | echo migrate | T-02, T-03 | T-02 completed | after | |",
    )
    checked = cli_in_process(tmp_path, "validate")
    assert checked.code == 0, checked.stderr
    lines = checked.stdout.splitlines()
    told = [
        "T-02 runs if: T-01.failing == 0",
        "T-03 runs if: T-01 failed or T-01.failing > 0",
        "T-04: approval before it starts",
        "T-05 runs if: T-02 completed",
        "T-05: approval of its result, before what depends on it starts",
    ]
    assert [line for line in lines if line.startswith("T-0")] == told, checked.stdout
    data = json.loads(cli_in_process(tmp_path, "validate", "--json").stdout)
    assert data["conditions"] == [
        {"task": "T-02", "condition": "T-01.failing == 0", "reads": ["T-01"]},
        {"task": "T-03", "condition": "T-01 failed or T-01.failing > 0", "reads": ["T-01"]},
        {"task": "T-05", "condition": "T-02 completed", "reads": ["T-02"]},
    ]
    assert data["gates"] == [{"task": "T-04", "approval": "before"}, {"task": "T-05", "approval": "after"}]

    text = cli_in_process(tmp_path, "graph").stdout
    assert "T-02 [Agent-02] echo build  ← T-01 (runs if T-01.failing == 0)" in text, text
    assert "T-04 [Agent-04] echo deploy (✋ approval before)  ← T-02" in text, text
    assert "T-05 [Agent-05] echo migrate (✋ approval after)  ← T-02, T-03 (runs if T-02 completed)" in text, text
    mermaid = cli_in_process(tmp_path, "graph", "--format", "mermaid").stdout
    assert 'n0 -->|"if T-01.failing == 0"| n1' in mermaid, mermaid
    assert 'n1 -->|"if T-02 completed"| n4' in mermaid and "n2 --> n4" in mermaid, mermaid
    assert 'n3["⏸️ T-04: echo deploy (✋ approval before)"]' in mermaid, mermaid
    dot = cli_in_process(tmp_path, "graph", "--format", "dot").stdout
    assert '"T-01" -> "T-02" [label="if T-01.failing == 0", style=dashed];' in dot, dot
    assert '"T-04" [label="T-04: echo deploy (✋ approval before)"' in dot, dot
    nodes = {n["id"]: n for n in json.loads(cli_in_process(tmp_path, "graph", "--json").stdout)["nodes"]}
    assert nodes["T-02"]["condition"] == "T-01.failing == 0" and nodes["T-04"]["approval"] == "before"
    assert nodes["T-01"]["condition"] is None and nodes["T-01"]["approval"] is None
