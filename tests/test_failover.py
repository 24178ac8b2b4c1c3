"""Fallback backends: a task whose backend is down goes to its ``fallback``, recorded as such; a
task that fails by its own fault does not. The circuit breaker's rules as plain values.

The agent CLIs are stand-ins on ``ORCHESTRATOR_CODEX_BIN`` / ``ORCHESTRATOR_GEMINI_BIN`` (as in
``test_vendor_outcomes``), printing what the real ones print; the runs are real.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from runner_helpers import cli_in_process, results, run

from orchestrator.backends.base import AgentResult
from orchestrator.machine import policy
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.table.deadlines import Deadline
from orchestrator.run.limits.failover import OPEN_FOR, SERVER_ERRORS, USAGE_FAILOVER, Breakers, breaker_facts
from orchestrator.vocabulary import ErrorClass

_CODEX = """\
import json, re, sys
mode = re.search(r"MODE=(\\w+)", sys.stdin.read()).group(1)
open("codex-ran", "a").write(mode + "\\n")
def say(**event):
    print(json.dumps(event), flush=True)
say(type="thread.started", thread_id="thread-" + mode)
say(type="turn.started")
if mode == "auth":
    say(type="error", message="unexpected status 401 Unauthorized: invalid api key")
    sys.exit(1)
command = "bash -lc 'touch out.txt'"
say(type="item.completed", item={"id": "item_0", "type": "command_execution", "command": command,
                                 "aggregated_output": "", "exit_code": None, "status": "declined"})
say(type="item.completed", item={"id": "item_9", "type": "agent_message", "text": "I created out.txt."})
say(type="turn.completed", usage={"input_tokens": 10, "cached_input_tokens": 0, "output_tokens": 5})
"""

_GEMINI = """\
import json, sys
sys.stdin.read()
open("gemini-ran", "a").write("ran\\n")
answer = {"type": "message", "role": "assistant", "content": "Gemini did it.", "delta": True}
for event in ({"type": "init", "session_id": "g-1"}, answer, {"type": "result", "status": "success", "stats": {}}):
    print(json.dumps(event))
"""


def fails_over(breakers: Breakers, settings: Settings, result: AgentResult, wall: float) -> str | None:
    """Whether the attempt fails over, as a run judges it: the breakers' facts, the machine's verdict."""
    return policy.fails_over(result, settings, *breaker_facts(breakers, settings, result, wall))


def _project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: list[str], fallback: str = "gemini") -> Path:
    for name, text in (("codex", _CODEX), ("gemini", _GEMINI)):
        program = tmp_path / "bin" / name
        program.parent.mkdir(exist_ok=True)
        program.write_text(f"#!{sys.executable}\n{text}", encoding="utf-8")
        program.chmod(0o755)
        monkeypatch.setenv(f"ORCHESTRATOR_{name.upper()}_BIN", str(program))
    project = tmp_path / "project"
    (project / ".orchestrator").mkdir(parents=True)
    (project / ".orchestrator" / "master_plan.md").write_text(
        f"---\nbackend: codex\nfallback: {fallback}\nmax_parallel: 1\nretries: 1\nbackoff_base: 0.05\ntimeout: 60\n"
        "---\n# Plan\n\n## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n"
        + "\n".join(rows)
        + "\n",
        encoding="utf-8",
    )
    return project


def test_a_backend_that_is_not_logged_in_fails_over_to_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path, monkeypatch, ["| T-01 | Work MODE=auth | None |", "| T-02 | More MODE=auth | T-01 |"])
    outcome = run(project)
    assert outcome.code == 0, outcome.stdout + outcome.stderr
    meta = results(project)
    for task in ("T-01", "T-02"):
        assert meta[task]["status"] == "completed" and meta[task]["backend"] == "gemini"
        assert meta[task]["fallback_from"] == "codex"
    assert meta["T-01"]["attempts"] == 2 and meta["T-02"]["attempts"] == 1  # T-02 went straight to gemini
    assert (project / "codex-ran").read_text().split() == ["auth"]  # the breaker stayed open: codex once
    failovers = [e for e in outcome.events if e["event"] == "task_failover"]
    assert [(e["task"], e["backend"], e["fallback_from"]) for e in failovers] == [
        ("T-01", "gemini", "codex"),
        ("T-02", "gemini", "codex"),
    ]
    assert "not authenticated" in failovers[0]["reason"]


def test_a_task_that_fails_by_its_own_fault_does_not_fail_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(tmp_path, monkeypatch, ["| T-01 | Touch a file MODE=declined | None |"])
    outcome = run(project)
    assert outcome.code == 1, outcome.stdout + outcome.stderr
    meta = results(project)["T-01"]
    assert meta["status"] == "failed" and meta["error_class"] == "denied" and meta["backend"] == "codex"
    assert "fallback_from" not in meta and not (project / "gemini-ran").exists()
    assert "task_failover" not in outcome.kinds()


def test_an_unknown_fallback_backend_is_refused_with_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(tmp_path, monkeypatch, ["| T-01 | Work MODE=auth | None |"], fallback="gemni")
    outcome = cli_in_process(project, "validate")
    assert outcome.code == 2
    assert (
        "master_plan.md:3: fallback: unknown backend 'gemni' (did you mean 'gemini'?)"
        in outcome.stderr + outcome.stdout
    )
    assert "Traceback" not in outcome.stderr


def _failed(error: ErrorClass, message: str = "boom", reset_at: float | None = None) -> AgentResult:
    return AgentResult(False, error_class=error, message=message, reset_at=reset_at)


def test_the_breaker_opens_on_repeated_server_errors_and_a_success_starts_the_count_again() -> None:
    breakers, settings = Breakers(), Settings(backend="codex", fallback=("gemini",))
    for _ in range(SERVER_ERRORS - 1):
        assert fails_over(breakers, settings, _failed(ErrorClass.TRANSIENT, "503"), 100.0) is None
    breakers.record("codex", AgentResult(True), 100.0)  # a success in between
    for _ in range(SERVER_ERRORS - 1):
        assert fails_over(breakers, settings, _failed(ErrorClass.TRANSIENT, "503"), 100.0) is None
    assert fails_over(breakers, settings, _failed(ErrorClass.TRANSIENT, "503"), 100.0) == (
        f"failing over to gemini: codex: {SERVER_ERRORS} server errors in a row"
    )
    assert breakers.choose(settings, 100.0 + OPEN_FOR - 1) == ("gemini", "codex")
    assert breakers.choose(settings, 100.0 + OPEN_FOR) == ("codex", None)  # closed again: its own


def test_a_task_s_own_failures_never_open_the_breaker() -> None:
    breakers, settings = Breakers(), Settings(backend="codex", fallback=("gemini",))
    for error in (ErrorClass.AGENT_ERROR, ErrorClass.DENIED, ErrorClass.MAX_TURNS, ErrorClass.TIMEOUT, ErrorClass.EXIT):
        for _ in range(SERVER_ERRORS + 1):
            assert fails_over(breakers, settings, _failed(error), 0.0) is None
    assert breakers.choose(settings, 0.0) == ("codex", None)


def test_a_usage_limit_fails_over_only_when_its_reset_is_far_or_past_the_deadline() -> None:
    breakers, settings = Breakers(), Settings(backend="claude", fallback=("codex", "gemini"))
    soon = _failed(ErrorClass.USAGE_LIMIT, "limit", reset_at=1000.0 + USAGE_FAILOVER / 2)
    assert fails_over(breakers, settings, soon, 1000.0) is None  # waited out, as always
    far = _failed(ErrorClass.USAGE_LIMIT, "limit", reset_at=1000.0 + 2 * USAGE_FAILOVER)
    assert (fails_over(breakers, settings, far, 1000.0) or "").startswith("failing over to codex")
    breakers.record("codex", _failed(ErrorClass.AUTH), 1000.0)
    assert breakers.choose(settings, 1001.0) == ("gemini", "claude")  # the next one not open
    assert breakers.of["codex"].open_until == math.inf
    assert breakers.choose(settings, 1001.0, blocked={"gemini"}) == ("claude", None)  # none left: its own
    # A reset 10 min away (sooner than USAGE_FAILOVER) fails over when the run's deadline comes
    # before it: a moment, or a duration from the run's start; one after it is waited out.
    ten = _failed(ErrorClass.USAGE_LIMIT, "limit", reset_at=1000.0 + 600)
    assert ten.reset_at is not None and ten.reset_at - 1000.0 < USAGE_FAILOVER
    for deadline, started in ((Deadline("moment", at=1000.0 + 300), None), (Deadline("10m", after=600), 700.0)):
        breakers, due = Breakers(started), Settings(backend="claude", fallback=("codex",), deadline=deadline)
        assert (fails_over(breakers, due, ten, 1000.0) or "").startswith("failing over to codex")
        assert breakers.choose(due, 1001.0) == ("codex", "claude")
    for deadline, started in ((Deadline("moment", at=1000.0 + 1200), None), (Deadline("1h", after=3600), 700.0)):
        breakers, due = Breakers(started), Settings(backend="claude", fallback=("codex",), deadline=deadline)
        assert fails_over(breakers, due, ten, 1000.0) is None
        assert breakers.choose(due, 1001.0) == ("claude", None)


_SLOW_CODEX = """\
import json, os, sys, time
sys.stdin.read()
open("codex-ran", "a").write(str(os.getpid()) + "\\n")
print(json.dumps({"type": "thread.started", "thread_id": "thread-slow"}), flush=True)
time.sleep(60)  # a straggler
print(json.dumps({"type": "item.completed", "item": {"id": "item_9", "type": "agent_message", "text": "late"}}))
"""


def test_a_hedge_starts_on_the_tasks_fallback_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # codex stalls; the hedge goes to the task's fallback, gemini (another vendor: the most
    # independent second try), wins, and codex is stopped.
    from runner_helpers import wait_gone

    project = _project(tmp_path, monkeypatch, [])
    (tmp_path / "bin" / "codex").write_text(f"#!{sys.executable}\n{_SLOW_CODEX}", encoding="utf-8")
    _hedged_codex_plan(project, "fallback: gemini\n")
    outcome = run(project)
    assert outcome.code == 0, outcome.stdout + outcome.stderr
    hedged = [e for e in outcome.events if e["event"] == "task_hedged"]
    assert [(e["attempt"], e["backend"]) for e in hedged] == [(2, "gemini")]
    meta = results(project)["T-01"]
    assert meta["status"] == "completed" and meta["backend"] == "gemini" and meta["fallback_from"] == "codex"
    assert meta["hedged"]["won"] == "hedge" and meta["hedged"]["lost"] == 1
    assert (project / "gemini-ran").read_text() == "ran\n"
    assert wait_gone(int((project / "codex-ran").read_text().split()[0]))  # the straggler stopped
    attempts = cli_in_process(project, "history", "--json").stdout
    assert '"hedge_lost"' in attempts


_FAILING_CODEX = """\
import json, os, sys, time
sys.stdin.read()
n = int(os.environ["ORCHESTRATOR_ATTEMPT"])
def say(**event):
    print(json.dumps(event), flush=True)
say(type="thread.started", thread_id=f"thread-{n}")
say(type="turn.started")
say(type="turn.completed", usage={"input_tokens": 10 * n, "cached_input_tokens": 0, "output_tokens": 5})
time.sleep(3 if n == 1 else 5)  # the first fails first; its hedge, started a second in, fails last
say(type="turn.failed", error={"message": f"attempt {n} gave up"})
sys.exit(1)
"""


def test_a_race_neither_attempt_completes_tells_each_its_own_spend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    project = _project(tmp_path, monkeypatch, [])
    (tmp_path / "bin" / "codex").write_text(f"#!{sys.executable}\n{_FAILING_CODEX}", encoding="utf-8")
    _hedged_codex_plan(project)
    outcome = run(project)
    assert outcome.code == 1, outcome.stdout + outcome.stderr
    failed = [e for e in outcome.events if e["event"] == "task_hedge_failed"]
    assert [(e["attempt"], e["lost"], e["hedge"], e["tokens"]) for e in failed] == [(2, 1, True, 15)]
    ended = next(e for e in outcome.events if e["event"] == "task_failed")
    assert ended["attempt_tokens"] == 25 and ended["tokens"] == 40  # the hedge's own, and both
    attempts = json.loads(cli_in_process(project, "history", "--json").stdout)["attempts"]
    told = {a["attempt"]: (a["outcome"], a["tokens"]) for a in attempts if a["task"] == "T-01"}
    assert told == {1: ("failed", 15), 2: ("failed", 25)}, attempts


def _hedged_codex_plan(project: Path, more: str = "") -> None:
    """One read-only codex task hedged after a second, two slots, no retries; ``more``: settings."""
    (project / ".orchestrator" / "master_plan.md").write_text(
        f"---\nbackend: codex\n{more}max_parallel: 2\nretries: 0\ntimeout: 120\nkill_grace: 1\n---\n"
        "# Plan\n\n## Task Decomposition\n| Task ID | Description | Dependencies | Access | Hedge |\n"
        "|---|---|---|---|---|\n| T-01 | Look around | None | read | 1s |\n",
        encoding="utf-8",
    )
