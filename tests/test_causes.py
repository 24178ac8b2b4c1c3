"""Why a task is in its state is data (``state/causes.py``): one record, written in its result's
frontmatter and read back field for field, its sentence rendered in one place; a result written
before causes were recorded still reads; and a task's status changes only through ``TaskView``'s
one door (``move``, checked against the state machine; a view between runs joins the machine
in the state its rule says).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from orchestrator.plan.model import Task
from orchestrator.state.causes import Cause, CauseKind, holds
from orchestrator.state.results import ResultRecord, read_record, write_result
from orchestrator.state.status import TaskView
from orchestrator.views.replay import read_view
from orchestrator.vocabulary import IllegalTransition, TaskStatus

ROOT = Path(__file__).resolve().parent.parent
S = TaskStatus

SAID = [
    (Cause.upstream("T-01", S.FAILED), "upstream T-01 failed"),
    (Cause.upstream("T-01", S.CANCELLED), "upstream T-01 was cancelled"),
    (Cause.upstream("T-04", S.BYPASSED), "upstream T-04 was bypassed"),
    (Cause.upstream("T-09", None), "upstream T-09 did not run"),
    (
        Cause.condition_false("T-01.n > 0", "T-01 completed, T-01.n = 0"),
        "condition false: T-01.n > 0 (T-01 completed, T-01.n = 0)",
    ),
    (
        Cause.undecided("T-01.n > 0", "T-01 left no output fields"),
        "its condition could not be decided: T-01 left no output fields",
    ),
    (Cause(CauseKind.REJECTED, gate="before", by="ann", said="wrong table"), "rejected by ann: wrong table"),
    (Cause(CauseKind.CANCELLED), "cancelled by `orchestrator cancel`"),
    (Cause(CauseKind.STOPPED, task="T-01"), "stopped: T-01 failed and the run fails fast"),
    (Cause(CauseKind.INTERRUPTED, pid=41), "runner (pid 41) is gone; attempt left behind"),
    (
        Cause(CauseKind.HELD, gate="before"),
        "awaiting approval before it starts: `orchestrator approve T-07` (or `reject T-07 --reason ...`)",
    ),
    (Cause(CauseKind.HELD, said="legal"), "blocked: legal — `orchestrator update T-07 --status pending` releases it"),
    (Cause(CauseKind.APPROVED, gate="before", by="ann"), "approved by ann: starts in the next `orchestrator run`"),
]


@pytest.mark.parametrize(("cause", "sentence"), SAID)
def test_a_cause_is_written_read_back_whole_and_said_in_one_wording(
    tmp_path: Path, cause: Cause, sentence: str
) -> None:
    assert cause.sentence("T-07") == sentence
    path = tmp_path / "agent-07-result.md"
    record = ResultRecord(task="T-07", agent="Agent-07", name="x", status=S.SKIPPED, reason=sentence, cause=cause)
    write_result(path, record, "# body\n")
    back = read_record(path, "T-07")
    assert back is not None and back.cause == cause and back.reason == sentence
    assert "cause:" in path.read_text(encoding="utf-8") and f"kind: {cause.kind}" in path.read_text(encoding="utf-8")


def test_a_result_written_before_causes_reads_with_its_reason_as_written(tmp_path: Path) -> None:
    """An old workspace: a reason, no cause. Nothing parses the sentence; it is shown as it is."""
    path = tmp_path / "agent-02-result.md"
    path.write_text(
        "---\ntask: T-02\nagent: Agent-02\nname: two\nstatus: skipped\nreason: upstream T-01 failed\n---\n# skipped\n",
        encoding="utf-8",
    )
    record = read_record(path, "T-02")
    assert record is not None and record.cause is None and record.reason == "upstream T-01 failed"
    view = read_view(Task(id="T-02", name="two", description="", dependencies=("T-01",), agent="Agent-02"), record,
                     path.name)  # fmt: skip
    assert view.status == S.SKIPPED and view.cause is None and view.reason == "upstream T-01 failed"
    assert view.as_json()["cause"] is None
    # A cause a person mangled reads as none, never as an error.
    assert Cause.from_mapping({"kind": "no-such-kind"}) is None and Cause.from_mapping("upstream") is None


def test_an_upstream_cause_holds_while_the_task_it_names_is_as_it_says() -> None:
    cause = Cause.upstream("T-01", S.CANCELLED)
    assert holds(cause, {"T-01": S.CANCELLED})
    assert not holds(cause, {"T-01": S.FAILED}) and not holds(cause, {"T-01": S.PENDING})
    assert holds(Cause.upstream("T-01", None), {"T-01": S.FAILED})  # (said vaguely: any state that gives up)
    assert not holds(Cause(CauseKind.CANCELLED), {"T-01": S.CANCELLED})


def test_a_view_moves_only_along_an_arrow_with_its_cause() -> None:
    view = TaskView.of(Task(id="T-03", name="three", description="", dependencies=("T-01",), agent="Agent-03"))
    view.move(S.SKIPPED, Cause.upstream("T-01", S.FAILED))
    assert view.reason == "upstream T-01 failed"
    with pytest.raises(IllegalTransition):
        view.move(S.RUNNING)
    assert view.status == S.SKIPPED and view.reason == "upstream T-01 failed"  # (nothing changed)
    with pytest.raises(AttributeError):
        view.status = S.PENDING  # type: ignore[misc]


def test_no_module_assigns_a_views_status_but_the_view_itself() -> None:
    """``TaskView.status`` has no setter; the status of the ``TaskState`` it reads (the machine's
    record of the task) is written in ``state/status.py``'s ``TaskView`` alone (``move``,
    a view's state joins a machine whole, as a new ``TaskState``): a status assigned anywhere
    else is a move no cause and no check went with."""
    offenders: list[str] = []
    assigned = 0
    for path in sorted((ROOT / "orchestrator").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else []
            targets += [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else []
            for target in targets:
                for part in ast.walk(target):
                    own = isinstance(part, ast.Attribute) and ast.unparse(part.value) == "self"  # (a class's own)
                    if isinstance(part, ast.Attribute) and part.attr == "status" and not own:
                        assigned += 1
                        if path.name != "status.py":
                            offenders.append(f"{path.relative_to(ROOT)}:{part.lineno}")
    assert offenders == [] and assigned >= 1  # (``move``'s: a test that finds none checks nothing)
