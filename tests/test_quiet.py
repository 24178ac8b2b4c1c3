"""A row over many items told as a person reads it (``output/quiet``, issue 75): counted, its
progress a line every few seconds, its first failures told; every item with ``--verbose`` or
``watch T-03``; the event log and ``--json`` keep every event."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from runner_helpers import cli

from orchestrator.output.quiet import EVERY, SHOWN_FAILURES, Quiet
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.records import read


def ev(event: str, /, **fields: object) -> EventRecord:
    return read({"event": event, "time": "2026-11-27T08:00:00.000Z", **fields})


def items_plan(project: Path, count: int, command: str, *, settings: str = "", after: bool = False) -> None:
    """A plan of one row over ``count`` items (``items.txt``'s lines) running ``command`` each, at
    ``settings`` (frontmatter lines); ``after``: a task T-02 after it."""
    (project / "items.txt").write_text("".join(f"{n}\n" for n in range(1, count + 1)))
    (project / ".orchestrator").mkdir()
    then = "| T-02 | after | `echo done` | T-01 | |\n" if after else ""
    (project / ".orchestrator" / "master_plan.md").write_text(
        f"---\nbackend: shell\nretries: 0\n{settings}---\n"
        "## Task Decomposition\n| Task ID | Description | Command | Dependencies | Each |\n|---|---|---|---|---|\n"
        f"| T-01 | per item | `{command}` | None | lines:items.txt |\n{then}"
    )


def test_items_are_counted_their_first_failures_told_and_their_progress_a_line_every_few_seconds() -> None:
    now = [0.0]
    quiet = Quiet(clock=lambda: now[0])
    assert quiet.lines(ev("items_known", task="T-03", items=100, each="a, b"), "📦 known") == ["📦 known"]
    shown: list[str] = []
    for n in range(1, 11):
        shown += quiet.lines(ev("task_started", task=f"T-03[{n}]"), f"started {n}")
    assert shown == [] and quiet.progress() == ["📦 T-03: 0 of 100 items done, 10 running"]
    for n in range(1, 11):
        kind = "task_failed" if n % 2 else "task_completed"
        shown += quiet.lines(ev(kind, task=f"T-03[{n}]", reason="boom"), f"{kind} {n}")
    assert shown[:SHOWN_FAILURES] == [f"task_failed {n}" for n in (1, 3, 5, 7, 9)]
    assert shown[SHOWN_FAILURES].startswith("📦 T-03: its items' further failures are counted, not told")
    assert len(shown) == SHOWN_FAILURES + 1
    assert quiet.progress() == []  # (told less than EVERY seconds ago)
    now[0] += EVERY
    assert quiet.progress() == ["📦 T-03: 5 of 100 items done, 5 failed"]
    now[0] += EVERY
    assert quiet.progress() == []  # (nothing changed)
    assert quiet.lines(ev("task_started", task="T-04"), "started T-04") == ["started T-04"]  # (a task: as always)
    assert quiet.lines(ev("task_completed", task="T-03"), "✅ T-03") == ["✅ T-03"] and "T-03" not in quiet.rows


def test_verbose_or_the_row_named_tells_each_item() -> None:
    for quiet in (Quiet(verbose=True), Quiet(row="T-03")):
        assert quiet.lines(ev("task_started", task="T-03[1]"), "started 1") == ["started 1"]
    assert Quiet(row="T-04").lines(ev("task_started", task="T-03[1]"), "started 1") == []


def test_a_run_of_many_items_piped_is_a_few_lines_and_verbose_or_watch_of_the_row_tells_each(tmp_path: Path) -> None:
    items_plan(
        tmp_path, 300, "test {{ item }} -ne 7", settings="max_parallel: 8\non_item_failure: continue\n", after=True
    )
    ran = cli(tmp_path, "run", timeout=300)
    assert ran.code == 1, ran.stdout + ran.stderr  # (an item failed)
    lines = ran.stdout.splitlines()
    assert len(lines) <= 30, ran.stdout  # (300 items: not 600 lines)
    assert any(line.startswith("❌ T-01[7]") for line in lines), ran.stdout
    assert not any(line.startswith(("🔵 T-01[", "✅ T-01[")) for line in lines), ran.stdout
    assert "✅ T-01 [Agent-01] completed" in ran.stdout and "1 of 300 items did not complete: T-01[7]" in ran.stdout
    watched = cli(tmp_path, "watch", "T-01")
    assert sum(line.startswith("✅ T-01[") for line in watched.stdout.splitlines()) == 299
    assert len(cli(tmp_path, "watch").stdout.splitlines()) <= 30
    as_json = cli(tmp_path, "watch", "--json").stdout.splitlines()
    assert sum(json.loads(line)["event"] == "task_completed" for line in as_json) == 301  # (every event kept)
    again = cli(tmp_path, "run", "--rerun", "T-01", "--verbose", timeout=300)
    assert sum(line.startswith("✅ T-01[") for line in again.stdout.splitlines()) == 299, again.stdout[-2000:]


def test_a_rows_failures_are_notified_as_a_digest_not_one_message_an_item(tmp_path: Path) -> None:
    """20 of 30 items fail at once: the target hears one items_failed (the first five named, 20
    counted) and the run's end, never one task_failed an item (issue 75: 20 failed items, 20
    messages, one systematic error flooding a channel)."""
    log = tmp_path / "told.jsonl"
    sink = tmp_path / "sink.py"
    sink.write_text(
        f"import pathlib, sys\npathlib.Path({str(log)!r}).open('a').write(sys.stdin.read().strip() + '\\n')\n"
    )
    (tmp_path / ".orchestrator").mkdir()
    notify = json.dumps([{"command": [sys.executable, str(sink)]}])
    (tmp_path / ".orchestrator" / "master_plan.md").write_text(
        f"---\nbackend: shell\nmax_parallel: 4\nretries: 0\non_item_failure: continue\nnotify: {notify}\n---\n"
        "## Task Decomposition\n| Task ID | Description | Command | Dependencies | Each |\n|---|---|---|---|---|\n"
        f"| T-01 | per item | `test {{{{ item }}}} -gt 20` | None | {', '.join(str(n) for n in range(1, 31))} |\n"
    )
    ran = cli(tmp_path, "run", timeout=300)
    assert ran.code == 1, ran.stdout + ran.stderr
    told = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = [t["event"] for t in told]
    assert "task_failed" not in kinds or kinds.count("task_failed") == 1, kinds  # (the row's own, if it failed)
    digests = [t for t in told if t["event"] == "items_failed"]
    assert sum(d["failed"] for d in digests) == 20 and len(digests) <= 2, digests  # (the first at once, the rest once)
    assert digests[-1]["total"] == 20 and len(digests[0]["items"]) <= 5
    assert kinds[-1] == "run_finished"
    assert digests[-1]["text"].startswith("❌ T-01: ") and " failed (T-01[" in digests[-1]["text"], digests


def test_a_rows_time_left_counts_its_items_left_over_its_slots(tmp_path: Path) -> None:
    """After a run of 200 items, and a reset: the row's time left is its items' work spread over
    max_parallel, not one item's (issue 75: "0.20s left" with 3,894 items to go)."""
    items_plan(tmp_path, 200, "sleep 0.1", settings="max_parallel: 4\n")
    assert cli(tmp_path, "run", timeout=300).code == 0
    assert cli(tmp_path, "reset", "--all").code == 0
    eta = json.loads(cli(tmp_path, "status", "--json").stdout)["eta"]
    assert eta is not None and eta["learned"] == 1, eta
    one = 0.1  # (an item sleeps 0.1 s; its measured time a little more)
    assert 200 * one / 4 <= eta["seconds_left"] <= 200 * one, eta  # (50 waves of 4, not one item's 0.1 s)


def test_the_dashboards_stream_sends_a_rows_counts_not_its_items_lives(tmp_path: Path) -> None:
    """While 300 items run, the page's stream carries no item's start or completion, the first
    five failures of the row, and a state at most each ITEMS_EVERY seconds while only items move:
    its bytes a second stay a few kB (issue 75: 3.3 MB in 20 s at 600 items)."""
    import threading
    import time

    from dashboard_helpers import Stream, served

    from orchestrator.serve.tailer import ITEMS_EVERY

    items_plan(
        tmp_path, 300, "sleep 0.05; test {{ item }} -gt 10", settings="max_parallel: 8\non_item_failure: continue\n"
    )
    got: list[tuple[str, Any, int]] = []
    with served(tmp_path) as server:
        stream = Stream.open(server.port)
        stream.next()  # (the state as the stream opens)

        def read() -> None:
            try:
                while True:
                    kind, data = stream.next()
                    got.append((kind, data, len(json.dumps(data))))
            except (EOFError, OSError, ValueError, AttributeError):  # (closed under it: http.client's words)
                return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        began = time.monotonic()
        ran = cli(tmp_path, "run", timeout=300)
        took = time.monotonic() - began
        time.sleep(ITEMS_EVERY + 1)  # (the last state)
        stream.close()
    assert ran.code == 1, ran.stdout + ran.stderr
    sent = [event for kind, data, _ in got if kind == "events" for event in data]
    items = [e for e in sent if "[" in str(e.get("task", ""))]
    assert sent and not [e for e in items if e["event"] != "task_failed"], [e["event"] for e in items][:10]
    assert len(items) == 5  # (10 failed: the first five sent)
    states = [size for kind, _, size in got if kind == "state"]
    assert len(states) <= took / ITEMS_EVERY + 8, (len(states), took)
    assert sum(size for _, _, size in got) / took < 20_000, (sum(size for _, _, size in got), took)


def test_retry_failed_puts_back_exactly_the_items_that_did_not_complete_and_the_row_follows(tmp_path: Path) -> None:
    """Item 3 fails; fixed, ``retry T-01 --failed`` puts back it alone (every door: the API too),
    the next run runs it and no other item, and the row and its dependent follow."""
    from orchestrator.commands.calling import call

    items_plan(tmp_path, 5, "test {{ item }} -ne 3 -o -e fixed", settings="on_item_failure: continue\n", after=True)
    first = cli(tmp_path, "run")
    assert first.code == 1 and "1 of 5 items did not complete: T-01[3]" in first.stdout, first.stdout
    (tmp_path / "fixed").write_text("")
    said = cli(tmp_path, "retry", "T-01", "--failed")
    assert said.code == 0 and said.stdout == "↩️ 1 item of T-01 back in the queue\n", said.stdout + said.stderr
    answered = call("retry", {"task": "T-01", "failed": True}, source="api", fixed=str(tmp_path)).data
    assert answered["retried"] == ["T-01[3]"]  # (failed still: the next run takes it)
    again = cli(tmp_path, "run", "--json")
    started = [e["task"] for e in again.events if e["event"] == "task_started"]
    assert again.code == 0 and "T-01[3]" in started and not {"T-01[1]", "T-01[2]", "T-01[4]", "T-01[5]"} & set(started)
    assert "T-02" in started  # (the row's result changed: what depends on it runs again)
    assert "did not complete" not in cli(tmp_path, "status").stdout
    refused = cli(tmp_path, "retry", "T-02", "--failed")
    assert refused.code == 2 and "T-02 is not a row run per item" in refused.stderr


def test_retry_failed_puts_back_hundreds_of_items_at_once_with_or_without_a_run_going_on(tmp_path: Path) -> None:
    """Every third of 300 items fails; ``retry T-01 --failed`` puts the 100 back in one request,
    with no run going on (one hold of the workspace, one reading of the views: it read them all
    again for each item) and then with a run going on (every request appended at once, their
    answers waited for together), which takes them all."""
    from runner_helpers import start, wait_until

    from orchestrator.run.rows import LISTED_EVERY

    (tmp_path / "bad.txt").write_text("".join(f"{n}\n" for n in range(3, 301, 3)))
    command = "test {{ item }} -ne 300 \\|\\| while test -e wait; do sleep 0.1; done; "
    command += "test -e fixed \\|\\| ! grep -qx {{ item }} bad.txt"
    items_plan(tmp_path, 300, command, settings="max_parallel: 8\non_item_failure: continue\nmin_success: 0.5\n")
    first = cli(tmp_path, "run")
    assert first.code == 1 and "100 of 300 items did not complete" in first.stdout, first.stdout
    said = cli(tmp_path, "retry", "T-01", "--failed", "--json")
    assert said.code == 0 and len(json.loads(said.stdout)["retried"]) == 100, said.stdout + said.stderr
    (tmp_path / "wait").write_text("")  # (item 300 waits: the next run goes on while its failed items are retried)
    running = start(tmp_path, name="second")
    log = tmp_path / ".orchestrator" / "state" / "events.jsonl"

    def failed_again() -> bool:  # (the second run's items failed but the one that waits)
        runs = log.read_text().split('"event": "run_started"')
        lines = runs[-1] if len(runs) > 2 else ""  # (the second run's, once it has begun: not the first's)
        return lines.count('"event": "task_failed"') >= 99 and lines.count('"task": "T-01[300]"') > 0

    def listed_failed() -> bool:  # (the run's list of its items, which ``--failed`` reads, written anew)
        from orchestrator.state import items
        from orchestrator.state.workspace import Workspace

        listed = items.instances_of(Workspace(tmp_path / ".orchestrator"), "T-01")
        running = [number for number, _, state in listed if state == "running"]
        return sum(state == "failed" for _, _, state in listed) >= 99 and running == [300]

    wait_until(failed_again, "the items failed again", timeout=120)
    wait_until(listed_failed, "the run's list of its items to show them failed", timeout=LISTED_EVERY * 6)
    (tmp_path / "fixed").write_text("")
    asked = cli(tmp_path, "retry", "T-01", "--failed", "--json")
    answered = json.loads(asked.stdout)
    assert asked.code == 0 and len(answered["retried"]) == 99 and not answered["refused"], asked.stdout  # (300 runs)
    (tmp_path / "wait").unlink()
    running.process.wait(timeout=120)
    assert "did not complete" not in cli(tmp_path, "status").stdout
