"""What the tests of a run going on share (test_live_queue.py, test_live_edits.py): a task that
waits for a file named go, the run's events as they are, and letting it go."""

from __future__ import annotations

from pathlib import Path

from runner_helpers import Background, workspace

WAIT_FOR_GO = "while [ ! -f go ]; do sleep 0.05; done"


def events_of(project: Path) -> list[dict[str, object]]:
    """The project's event log as it is now, each line as written."""
    from orchestrator.state import events

    return [e.as_line() for e in events.read_all(workspace(project) / "state" / "events.jsonl")]


def has_started(project: Path, task: str) -> bool:
    return any(e["event"] == "task_started" and e.get("task") == task for e in events_of(project))


def let_go(runner: Background, project: Path) -> int:
    """Touch go (what the task of ``WAIT_FOR_GO`` waits for), and the runner's exit code."""
    (project / "go").touch()
    try:
        return runner.wait()
    finally:
        runner.cleanup()
