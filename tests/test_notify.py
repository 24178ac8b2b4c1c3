"""Notifications: real runs post to a real HTTP server on loopback, and run a real command.

The server (``Hook``) records each POST's JSON and can be told to answer the first few with 500.
A dead endpoint is a port nothing listens on.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import Spec, cli_in_process, pid_gone, plan_text, run, write_plan

from orchestrator.output.reporter import JsonReporter, Recording
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.config.targets import parse_targets
from orchestrator.plan.parser import parse_plan
from orchestrator.run.notices.notify import Notifying, StuckWatch, user_targets
from orchestrator.state.events import EventLog
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.runs import RunFinished, RunPaused, RunStarted
from orchestrator.state.events.tasks import TaskFailed, TaskStarted, TaskStuck
from orchestrator.state.workspace import Workspace


class Hook:
    """An HTTP server on 127.0.0.1 that keeps what is posted to it; ``failures``: how many POSTs
    to answer with 500 first."""

    def __init__(self, failures: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.tries = 0
        self.failures = failures
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                with hook.lock:
                    hook.tries += 1
                    failing = hook.tries <= hook.failures
                    if not failing:
                        hook.bodies.append({"path": self.path, **body})
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Hook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kinds(self) -> list[str]:
        with self.lock:
            return [str(b.get("event")) for b in self.bodies]


def dead_url() -> str:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's own config file is not read: each test names its targets."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def wait_for(predicate: Any, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_the_simplest_form_posts_generic_json_for_a_failure_a_stuck_task_and_the_end(tmp_path: Path) -> None:
    specs = [
        Spec("T-01", "echo broken >&2\nexit 3"),
        # Silent for 3 s of a 4 s inactivity limit: stuck (at 2 s) before it finishes.
        Spec("T-02", "sleep 3\necho done"),
    ]
    with Hook() as hook:
        write_plan(tmp_path, specs, {"notify": hook.url + "/hook", "inactivity_timeout": "4s"})
        result = run(tmp_path)
        assert result.code == 1, result.stderr
        # run_finished is delivered before the run ends: nothing to wait for here.
        kinds = hook.kinds()
    assert sorted(kinds) == ["run_finished", "task_failed", "task_stuck"], kinds
    by_kind = {b["event"]: b for b in hook.bodies}
    assert all(b["path"] == "/hook" for b in hook.bodies)
    failed = by_kind["task_failed"]
    assert failed["task"] == "T-01" and "exit" in failed["reason"] and failed["agent"] == "Agent-01"
    assert failed["text"].startswith("❌ T-01 [Agent-01] failed") and failed["text"].endswith(tmp_path.name)
    assert failed["workspace"] == str((tmp_path / ".orchestrator").resolve())
    stuck = by_kind["task_stuck"]
    assert stuck["task"] == "T-02" and "no output for" in stuck["why"] and stuck["attempt"] == 1
    finished = by_kind["run_finished"]
    assert finished["exit_code"] == 1 and finished["counts"]["completed"] == 1 and finished["counts"]["failed"] == 1
    assert "wall_seconds" in finished and finished["text"].startswith("❌ run finished")
    # The stuck task is in the run's own events too (run --json and state/events.jsonl).
    assert "task_stuck" in result.kinds("T-02")
    assert result.events[-1]["event"] == "run_finished"


def test_slack_and_discord_targets_get_their_own_formats_and_a_command_gets_the_event(tmp_path: Path) -> None:
    got = tmp_path / "got"
    command = (f'cat > "{got}.$ORCHESTRATOR_EVENT.json"; echo "$ORCHESTRATOR_NOTIFY_TEXT" > "{got}.text"; '
               f'echo "$ORCHESTRATOR_IDEMPOTENCY_KEY" > "{got}.$ORCHESTRATOR_EVENT.key"')  # fmt: skip
    with Hook() as hook:
        targets = [
            {"url": hook.url + "/slack", "format": "slack"},
            {"url": hook.url + "/discord", "format": "discord", "events": ["run_finished"]},
            {"command": command},
        ]
        write_plan(tmp_path, [Spec("T-01", "echo 'bad *thing*' >&2; exit 1")], {"notify": targets})
        result = run(tmp_path)
        assert result.code == 1, result.stderr
        bodies = list(hook.bodies)
    slack = [b for b in bodies if b["path"] == "/slack"]
    discord = [b for b in bodies if b["path"] == "/discord"]
    assert len(slack) == 2 and len(discord) == 1  # task_failed and run_finished; discord: run_finished only
    failure = next(b for b in slack if "failed" in b["text"])
    assert set(failure) == {"path", "text", "blocks"}
    block = failure["blocks"][0]
    assert block["type"] == "section" and block["text"]["type"] == "mrkdwn"
    assert block["text"]["text"].startswith("*❌ T-01 [Agent-01] failed") and "bad *thing*" in block["text"]["text"]
    assert set(discord[0]) == {"path", "content"}
    assert discord[0]["content"].startswith("**❌ run finished") and len(discord[0]["content"]) <= 2000
    event = json.loads(Path(f"{got}.task_failed.json").read_text())
    assert event["event"] == "task_failed" and event["task"] == "T-01"
    # Its idempotency key, in the body and its environment: a message's own, the same on every try.
    key = Path(f"{got}.task_failed.key").read_text().strip()
    assert key.startswith("orch-") and event["idempotency_key"] == key
    assert key != Path(f"{got}.run_finished.key").read_text().strip()
    assert json.loads(Path(f"{got}.run_finished.json").read_text())["exit_code"] == 1
    assert "run finished" in Path(f"{got}.text").read_text()


def test_a_dead_endpoint_neither_fails_nor_holds_up_the_run_and_is_told_once(tmp_path: Path) -> None:
    specs = [Spec(f"T-0{n}", "exit 1") for n in range(1, 5)]
    write_plan(tmp_path, specs, {"notify": dead_url()})
    began = time.monotonic()
    result = run(tmp_path)
    took = time.monotonic() - began
    assert result.code == 1  # the tasks' failures, nothing of the notifications'
    notices = [e["message"] for e in result.events if e["event"] == "notice" and "notifications" in e["message"]]
    assert len(notices) <= 2, notices  # that it fails, once; maybe what was given up at the end
    assert sum("fail (" in n for n in notices) == 1, notices
    assert "127.0.0.1" in notices[0] and "/hook" not in notices[0]  # the URL's path may be a secret
    assert result.events[-1]["event"] == "run_finished"
    assert took < 40  # a hang guard: the wait at the end is bounded (5 s)


def test_an_endpoint_that_fails_twice_then_answers_gets_the_event(tmp_path: Path) -> None:
    with Hook(failures=2) as hook:
        write_plan(tmp_path, [Spec("T-01", "true")], {"notify": hook.url})
        result = run(tmp_path)
        assert result.code == 0
        assert hook.tries == 3
        assert hook.kinds() == ["run_finished"]
    assert not [e for e in result.events if e["event"] == "notice"]


def test_a_pause_notifies_and_every_kind_in_each_format(tmp_path: Path) -> None:
    """The reporter itself, fed the events a run reports (a pause needs an agent's usage limit):
    each kind reaches each format, and the shown stream gets every event."""
    ws = Workspace(tmp_path / ".orchestrator")
    plan = parse_plan(plan_text([Spec("T-01", "true")]))
    shown = io.StringIO()
    with Hook() as hook:
        targets = parse_targets([hook.url + "/g", {"url": hook.url + "/s", "format": "slack"}])
        targets += parse_targets({"url": hook.url + "/d", "format": "discord"})
        inner = Recording(JsonReporter(shown), EventLog(ws.events_file, run="r"))
        reporter = Notifying(inner, targets, StuckWatch(ws, plan, {"T-01": Settings()}), None)
        events: list[EventRecord] = [
            RunStarted(to_run=1, already_done=0, max_parallel=1, simulated=False, overrides={}, limits={},
                       workspace=str(ws.root), pid=1, pid_start=None),
            TaskStarted(task="T-01", agent="Agent-01", name="", attempt=1, in_run=1, of=1, backend="shell",
                        kind="shell", log="logs/agent-01.attempt-1"),
            RunPaused(task="T-01", until="2026-11-23T15:00:00+00:00", reason="usage limit (claude)", limit_group="x"),
            TaskStuck(task="T-01", agent="Agent-01", attempt=1, why="no output for 7m30s"),
            TaskFailed(task="T-01", agent="Agent-01", reason="exit 1", stderr_tail=("x",), cost_usd=None,
                       attempt_cost_usd=None, tokens=None, attempt_tokens=None),
            RunFinished(counts={"failed": 1}, exit_code=1, wall_seconds=3.0, cost_usd=0.5, stopped=None,
                        final_output=None, integration_branch=None),
        ]  # fmt: skip
        for event in events:
            reporter.event(event)
        reporter.flush()
        bodies = list(hook.bodies)
    for path in ("/g", "/s", "/d"):
        assert len([b for b in bodies if b["path"] == path]) == 4
    generic = {b["event"]: b for b in bodies if b["path"] == "/g"}
    assert generic["run_paused"]["until"] == "2026-11-23T15:00:00+00:00"
    assert generic["run_paused"]["text"].startswith("⏸️ run paused until 2026-11-23T15:00:00+00:00: usage limit")
    assert generic["run_finished"]["cost_usd"] == 0.5 and "$0.5000" in generic["run_finished"]["text"]
    slack = [b["text"] for b in bodies if b["path"] == "/s"]
    assert any(t.startswith("⏸️ run paused") for t in slack) and any("looks stuck" in t for t in slack)
    discord = [b["content"] for b in bodies if b["path"] == "/d"]
    assert any(c.startswith("**⏸️ run paused") for c in discord) and any("```\nx\n```" in c for c in discord)
    lines = [json.loads(line)["event"] for line in shown.getvalue().splitlines()]
    assert [kind for kind in lines if not kind.startswith("effect_")] == [e["event"] for e in events]
    # Each of the 12 messages an effect of the ledger: its intent, then (all delivered) its outcome.
    assert lines.count("effect_intended") == lines.count("effect_done") == 12, lines


def test_the_user_config_adds_targets_and_a_bad_one_is_named_by_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("# mine\nnotify:\n  - url: http://127.0.0.1:9/x\n    format: slack\n")
    targets, problem = user_targets(config)
    assert problem is None and targets[0].format == "slack" and targets[0].url == "http://127.0.0.1:9/x"
    config.write_text("# mine\nnotify: ftp://example.com/\n")
    targets, problem = user_targets(config)
    assert targets == () and problem is not None and problem.startswith(f"{config}:2: bad value for 'notify'")
    assert user_targets(tmp_path / "none.yaml") == ((), None)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("ftp://x/", "is not an http:// or https:// URL", id="scheme"),
        pytest.param({"url": "http://x/", "format": "teams"}, "is not one of generic, slack, discord", id="format"),
        pytest.param({"url": "http://x/", "events": ["task_done"]}, "unknown event", id="event"),
        pytest.param({"url": "http://x/", "command": "true"}, "either url: or command:", id="both"),
        pytest.param({"command": []}, "is not a command", id="empty-command"),
        pytest.param({"hook": "http://x/"}, "unknown key 'hook'", id="key"),
    ],
)
def test_validate_refuses_a_bad_target_on_its_line(tmp_path: Path, value: object, message: str) -> None:

    plan = write_plan(tmp_path, [Spec("T-01", "true")])
    text = plan.read_text()
    body = text.split("---\n", 2)[2]
    plan.write_text("---\nbackend: shell\nnotify: " + json.dumps(value) + "\n---\n" + body)
    line = 3
    result = cli_in_process(tmp_path, "validate")
    assert result.code == 2
    assert f"master_plan.md:{line}" in result.stderr and message in result.stderr, result.stderr


def test_a_command_that_leaves_a_child_in_the_background_is_done_when_it_exits(tmp_path: Path) -> None:
    """The command's exit decides, at once: the child it left holding its stderr is killed with
    its group and not waited for. One event, one delivery, no failure told, nothing given up."""
    from orchestrator.run.notices.delivery import Courier, Message

    log, pids = tmp_path / "cmd.log", tmp_path / "pids"
    shell = f'echo "$ORCHESTRATOR_EVENT" >> {log}; sleep 300 & echo $! >> {pids}'
    courier = Courier(parse_targets([{"command": shell, "timeout": "10s"}]), cwd=tmp_path, delays=(0.05,))
    courier.send(0, Message("task_failed", {"event": "task_failed"}, "failed"))
    wait_for(lambda: log.exists(), "the command to run")
    given_up = courier.close()
    assert given_up == 0 and courier.notices() == []
    assert log.read_text().splitlines() == ["task_failed"]
    leftovers = [int(pid) for pid in pids.read_text().split()]
    assert len(leftovers) == 1
    wait_for(lambda: all(pid_gone(pid) for pid in leftovers), "the background child to be killed")


def test_a_failing_command_s_last_line_is_told_though_a_child_holds_its_stderr(tmp_path: Path) -> None:
    from orchestrator.run.notices.delivery import Courier, Message

    shell = "echo first >&2; echo 'no such channel' >&2; sleep 300 & exit 3"
    courier = Courier(parse_targets([{"command": shell}]), cwd=tmp_path, delays=(0.05,))
    courier.send(0, Message("task_failed", {"event": "task_failed"}, "failed"))
    notices = _told(courier)
    assert len(notices) == 1 and "(exit 3: no such channel)" in notices[0], notices


def _told(courier: Any) -> list[str]:
    """The notices ``courier`` gives once it has something to tell (then it is closed)."""
    notices: list[str] = []

    def told() -> bool:
        notices.extend(courier.notices())
        return bool(notices)

    wait_for(told, "the failure to be told")
    courier.close()
    return notices


def test_temporary_files_the_system_refuses_are_a_failed_delivery_not_a_dead_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the disk full, making the command's temporary files raised in the courier's thread:
    a traceback, no notice, and the messages after it never tried."""
    import errno

    from orchestrator.run.notices import delivery

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("orchestrator.run.notices.delivery.tempfile.TemporaryFile", full)
    courier = delivery.Courier(parse_targets([{"command": "true"}]), cwd=tmp_path, delays=(0.05,))
    courier.send(0, delivery.Message("task_failed", {"event": "task_failed"}, "failed"))
    courier.send(0, delivery.Message("run_finished", {"event": "run_finished"}, "done"))
    notices = _told(courier)
    assert "cannot make its temporary files: No space left on device" in notices[0], notices


def test_a_run_notifies_a_backgrounding_command_once_per_event(tmp_path: Path) -> None:
    """The run QA saw fire task_failed four times, then call the target down."""
    log = tmp_path / "cmd.log"
    target = {"command": f'echo "$ORCHESTRATOR_EVENT" >> {log}; sleep 300 &', "timeout": "1s"}
    write_plan(tmp_path, [Spec("T-01", "exit 1"), Spec("T-02", "true")], {"notify": [target]})
    result = run(tmp_path)
    assert result.code == 1, result.stderr
    assert sorted(log.read_text().splitlines()) == ["run_finished", "task_failed"]
    assert not [e for e in result.events if e["event"] == "notice" and "notif" in e["message"]], result.events


def test_a_short_timeout_warns_of_a_stuck_task_at_80_percent_not_when_it_is_killed(tmp_path: Path) -> None:
    """The run looked for stuck tasks once a second: a 2 s timeout's 80% (1.6 s) was seen at
    2 s, when the watchdog was killing the task: the warning came too late to be one. Now the run
    looks when an attempt may come to 80% of its timeout."""
    write_plan(tmp_path, [Spec("T-01", "sleep 5 && echo late")], {"timeout": "2s", "retries": 0})
    result = run(tmp_path)
    assert result.code == 1, result.stderr
    kinds = [e["event"] for e in result.events if e.get("task") == "T-01"]
    assert kinds.index("task_stuck") < kinds.index("task_failed"), kinds
    at = {e["event"]: datetime.fromisoformat(e["time"]) for e in result.events if e.get("task") == "T-01"}
    after = (at["task_stuck"] - at["task_started"]).total_seconds()
    assert 1.55 <= after < 2.0, after  # at 80% of 2 s, before the kill (the unit test below pins the moment)
    stuck = next(e for e in result.events if e["event"] == "task_stuck")
    assert "of its 2.0s timeout" in stuck["why"], stuck


def test_the_runs_clock_ticks_when_an_attempt_comes_to_80_percent_of_its_timeout(tmp_path: Path) -> None:
    """The look for stuck tasks came once a second, at whatever offset from a task's start: a
    2 s timeout's 80% was seen anywhere from 1.6 s to 2.6 s (past the kill). The clock now ticks
    when an attempt comes to it; the rule itself says stuck from then on."""
    ws = Workspace(tmp_path / ".orchestrator")
    plan = parse_plan(plan_text([Spec("T-01", "true"), Spec("T-02", "true")]))
    settings = {"T-01": Settings(timeout=2.0, inactivity_timeout=None), "T-02": Settings(timeout=None)}
    inner = Recording(JsonReporter(io.StringIO()), EventLog(ws.events_file, run="r"))
    watch = StuckWatch(ws, plan, settings)
    reporter = Notifying(inner, (), watch, None)
    assert reporter.next_tick(time.time(), 1.0) == 1.0  # nothing runs: once a second
    reporter.event(TaskStarted(task="T-01", agent="Agent-01", name="", attempt=1, in_run=1, of=1, backend="shell",
                               kind="shell", log="logs/agent-01.attempt-1"))  # fmt: skip
    since = watch.running["T-01"].since
    assert reporter.next_tick(since + 0.1, 1.0) == 1.0  # 80% is 1.5 s away: the usual second first
    assert reporter.next_tick(since + 1.2, 1.0) == pytest.approx(0.4)  # then at 1.6 s, not at 2.2 s
    assert watch.stuck(since + 1.59) == []
    (stuck,) = watch.stuck(since + 1.61)
    assert stuck["task"] == "T-01" and "of its 2.0s timeout" in stuck["why"]
    assert reporter.next_tick(since + 1.7, 1.0) == 1.0  # told once: no hurry any more


def test_an_attempt_waiting_for_a_persons_answer_is_not_told_stuck_for_its_silence(tmp_path: Path) -> None:
    """An agent that asks a person (``ask: true``) prints nothing while it waits: that silence is
    the person's, not a hang. Once answered, its silence counts from the answer."""
    from orchestrator.state.events.tasks import PermissionAnswered, PermissionAsked

    ws = Workspace(tmp_path / ".orchestrator")
    plan = parse_plan(plan_text([Spec("T-01", "true")]))
    watch = StuckWatch(ws, plan, {"T-01": Settings(timeout=None, inactivity_timeout=10.0)})
    watch.tell(TaskStarted(task="T-01", agent="Agent-01", name="", attempt=1, in_run=1, of=1, backend="claude",
                           kind="claude", log="logs/agent-01.attempt-1"))  # fmt: skip
    since = watch.running["T-01"].since
    said = "Bash(rm -rf build)"
    asked = PermissionAsked(task="T-01", agent="Agent-01", name="", attempt=1, question="q-1", number=1, tool="Bash",
                            said=said)  # fmt: skip
    watch.tell(asked)
    assert watch.stuck(since + 60) == []
    watch.tell(PermissionAnswered(task="T-01", agent="Agent-01", question="q-1", number=1, said=said, answer="allow",
                                  by="ann", always=False))  # fmt: skip
    answered = watch.running["T-01"].answered
    assert watch.stuck(answered + 4) == []
    (stuck,) = watch.stuck(answered + 6)
    assert stuck["why"].startswith("no output for 6")


def test_task_completed_and_started_are_told_to_a_target_that_names_them_and_to_no_other(tmp_path: Path) -> None:
    """ "Tell me when each task is done" is one line of settings: ``events: [task_completed]``;
    a target that names no events keeps hearing only what needs a person."""
    done_log, default_log = tmp_path / "done.log", tmp_path / "default.log"
    named = {"command": f'echo "$ORCHESTRATOR_EVENT" >> {done_log}', "events": ["task_started", "task_completed"]}
    default = {"command": f'echo "$ORCHESTRATOR_EVENT" >> {default_log}'}
    write_plan(tmp_path, [Spec("T-01", "true"), Spec("T-02", "true", ["T-01"])], {"notify": [named, default]})
    result = run(tmp_path)
    assert result.code == 0, result.stderr
    assert done_log.read_text().splitlines() == ["task_started", "task_completed"] * 2
    assert default_log.read_text().splitlines() == ["run_finished"]


def test_an_unknown_event_names_the_ones_a_target_may_hear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown event 'task_done'.*task_started, task_completed"):
        parse_targets([{"command": "true", "events": ["task_done"]}])


def test_a_target_hears_of_a_deadline_at_risk_then_missed(tmp_path: Path) -> None:
    """A run due 1 s after its start, its task estimated at a minute: at risk from the start,
    missed while the task runs; each posted once, with the line `status` says."""
    with Hook() as hook:
        plan = tmp_path / ".orchestrator" / "master_plan.md"
        plan.parent.mkdir(parents=True)
        plan.write_text(
            f"---\nbackend: shell\nretries: 0\ndeadline: 1s\nnotify: {hook.url}/hook\n---\n## Task Decomposition\n"
            "| Task ID | Command | Dependencies | Estimate |\n|---|---|---|---|\n| T-01 | sleep 3 | None | 1m |\n",
            encoding="utf-8",
        )
        result = run(tmp_path)
        assert result.code == 0, result.stderr
        kinds = hook.kinds()
        bodies = {b["event"]: b for b in hook.bodies}
    assert sorted(kinds) == ["deadline_at_risk", "deadline_missed", "run_finished"], kinds
    assert bodies["deadline_at_risk"]["text"].startswith("⏰ the run will miss its deadline"), bodies
    assert bodies["deadline_missed"]["text"].startswith("⏰ the run missed its deadline"), bodies
    assert bodies["deadline_missed"]["written"] == "1s" and bodies["deadline_missed"]["deadline"], bodies
