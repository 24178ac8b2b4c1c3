"""Notifications as effects of the ledger: real runs of ``orchestrator run`` notify a real HTTP
server on 127.0.0.1 that counts what it is handed by its ``Idempotency-Key``, and the runner is
killed -9 around a notification (its request held unanswered by the receiver, answered and not yet
recorded, recorded), then runs finish the plan.

What holds: every notification intended ends done, its key delivered (none lost); a key whose
outcome a run recorded is never delivered again; a key delivered twice is one a kill left without
its outcome, sent again by the next run under the same key.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import Spec, cli, start, wait_until, write_plan

from orchestrator.state.events import effects


class Receiver:
    """A webhook receiver on 127.0.0.1: each POST's ``Idempotency-Key`` and body kept, in order;
    ``hold``: the requests of a task_failed event wait for ``go`` before they are answered."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.hold = False
        self.arrived = threading.Event()
        self.go = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                with receiver.lock:
                    receiver.got.append((str(self.headers.get("Idempotency-Key")), body))
                    held = receiver.hold and body.get("event") == "task_failed"
                if held:
                    receiver.arrived.set()
                    receiver.go.wait(60)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.go.set()
        self.server.shutdown()
        self.server.server_close()

    def counts(self) -> Counter[str]:
        with self.lock:
            return Counter(key for key, _ in self.got)

    def failed(self) -> list[str]:
        with self.lock:
            return [key for key, body in self.got if body.get("event") == "task_failed"]


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def _log(project: Path) -> list[dict[str, Any]]:
    log = project / ".orchestrator" / "state" / "events.jsonl"
    text = log.read_text(encoding="utf-8") if log.exists() else ""
    return [json.loads(line) for line in text.splitlines()]


def _notify_effects(project: Path) -> list[dict[str, Any]]:
    return [e for e in _log(project) if str(e["event"]).startswith("effect_") and e["kind"] == "notify"]


MOMENTS = (
    "held unanswered",  # intent on disk, the receiver has it, no answer yet
    "answered, unrecorded",  # the receiver answered; the run's thread has not written it yet (at most)
    "recorded",  # its effect_done on disk
)


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_runner_killed_around_a_notification_delivers_each_key_once_done(tmp_path: Path, moment: str) -> None:
    go = tmp_path / "go"
    specs = [
        Spec("T-01", "echo broken >&2\nexit 3"),  # its failure notified at once
        Spec("T-02", f"while [ ! -f {go} ]; do sleep 0.05; done\necho done"),  # the run held alive
    ]
    with Receiver() as receiver:
        receiver.hold = moment == "held unanswered"
        write_plan(tmp_path, specs, {"notify": receiver.url, "max_parallel": 2})
        runner = start(tmp_path, name="killed")
        try:
            if moment == "held unanswered":
                wait_until(receiver.arrived.is_set, "the task_failed notification to arrive", timeout=60)
            elif moment == "answered, unrecorded":
                wait_until(lambda: bool(receiver.failed()), "the task_failed notification to arrive", timeout=60)
            else:
                recorded = lambda: any(e["event"] == "effect_done" for e in _notify_effects(tmp_path))  # noqa: E731
                wait_until(recorded, "the notification's outcome on disk", timeout=60)
            runner.kill()
        finally:
            runner.cleanup()
        receiver.go.set()
        [key] = set(receiver.failed())
        left = effects.ledger(tmp_path / ".orchestrator" / "state" / "events.jsonl")
        [entry] = left.values()
        assert entry.kind == "notify" and "task_failed T-01 attempt 1" in entry.target, entry
        if moment == "held unanswered":  # (told as unknown until the next run sends it again)
            assert entry.state == "unknown", entry
            assert "outcome unknown" in cli(tmp_path, "status").stdout
        elif moment == "recorded":
            assert entry.state == "done", entry
        expected = 1 if entry.state == "done" else 2  # (answered: recorded by the run, or not, as the kill fell)
        go.touch()
        resumed = cli(tmp_path, "run")
        assert resumed.code == 1, resumed.stdout + resumed.stderr  # (T-01 failed: its run's exit)
        counts = receiver.counts()

    # Every notification intended is done, and was delivered under the key its intent holds.
    found = _notify_effects(tmp_path)
    intents = {e["key"]: e for e in found if e["event"] == "effect_intended"}
    done = {e["key"]: e for e in found if e["event"] == "effect_done"}
    assert set(done) == set(intents) and len(intents) >= 3, found  # T-01's failure, each run's end
    for name, intent in intents.items():
        sent = intent["message"]["key"]
        assert counts[sent] >= 1, (name, counts)
        assert all(b["idempotency_key"] == k for k, b in receiver.got if k == sent)
        # Delivered more than once only when a kill left it unknown: the next run, not its own, recorded it.
        if counts[sent] > 1:
            assert done[name]["run"] != intent["run"] and counts[sent] == 2, (name, counts, found)
    assert counts[key] == expected, counts
    # The log says each once: no effect_done twice for a key.
    assert len([e for e in found if e["event"] == "effect_done"]) == len(done)
    verified = cli(tmp_path, "verify")
    assert verified.code == 0, verified.stdout + verified.stderr
    assert f"📬 {len(done)} notifications delivered" in verified.stdout, verified.stdout
    assert "notifications delivered" in cli(tmp_path, "history").stdout
    assert "outcome unknown" not in cli(tmp_path, "status").stdout
