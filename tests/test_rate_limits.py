"""A rate-limited run loses nothing: the real ``claude`` CLI against a fake Messages API that turns
requests away with 429, as an API at its limit does; and the rate window (``run/limits/windows``)
keeps a fleet under each shape of limit vendors use, in a run simulated on a clock of its own.

The tests of the real CLI are skipped, with the reason shown, only where it is not installed
(``tools/install-claude.sh`` needs npm); CI installs it and runs these.
"""

from __future__ import annotations

import heapq
import json
import math
import random
import re
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeAnthropic, FixedWindow, RateLimit, Reply, RequestLimit, SlidingWindow, claude_env, find_claude

from orchestrator import documents
from orchestrator.run.limits.admission import Admission, Slot
from orchestrator.run.limits.windows import LEARNED, Window

CLAUDE = find_claude()
needs_claude = pytest.mark.skipif(
    CLAUDE is None, reason="claude CLI not installed: run tools/install-claude.sh (needs npm)"
)

TASK = re.compile(r"Task ID\*\*: (T-\d+)")


def _results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool results the agent sent back, in order."""
    return [
        block
        for message in body.get("messages") or []
        if isinstance(message.get("content"), list)
        for block in message["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]


def tool_results(body: dict[str, Any]) -> int:
    return len(_results(body))


def last_failed(body: dict[str, Any]) -> bool:
    """Whether the last tool result the agent sent says its command failed."""
    results = _results(body)
    return bool(results) and (results[-1].get("is_error") is True or "bwrap: Can't get type" in json.dumps(results[-1]))


@pytest.mark.claude
@needs_claude
def test_a_rate_limited_run_loses_no_task_spends_no_retry_and_redoes_no_step(tmp_path: Path) -> None:
    # Each task runs a command, then its next request is turned away three times: claude re-sends
    # twice itself (CLAUDE_CODE_MAX_RETRIES=2) and gives up, and its attempt ends rate-limited.
    # With `retries: 0` such a task used to fail; now it waits for the API (spending no retry)
    # and its session goes on where it stopped: the command is not run again.
    refused: Counter[str] = Counter()

    def script(body: dict[str, Any]) -> Reply:
        found = TASK.search(json.dumps(body.get("messages")))
        task = found.group(1) if found else "?"
        # (claude's own sandbox may refuse a command when two claudes share a config folder and
        # one rewrites a file the other mounts, "bwrap: Can't get type of source", or fail it some
        # other way on a loaded machine: a command that failed is asked again, as a model would;
        # the step is recorded once, by the command that ran)
        if tool_results(body) == 0 or (tool_results(body) < 3 and last_failed(body)):
            return Reply.tool("Bash", {"command": f"echo {task} >> steps.txt", "description": "Record"})
        if refused[task] < 3:
            refused[task] += 1
            return Reply.rate_limited(retry_after=1)
        return Reply.say(f"{task} done")

    workspace = tmp_path / ".orchestrator"
    workspace.mkdir()
    (workspace / "master_plan.md").write_text(
        "---\nbackend: claude\nmax_parallel: 2\nretries: 0\nallowed_tools: [Bash]\ntimeout: 90\n---\n"
        "# Plan\n\n## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n"
        "| T-01 | Record one step | None |\n| T-02 | Record another step | None |\n",
        encoding="utf-8",
    )
    assert CLAUDE is not None
    with FakeAnthropic(script) as api:
        env = claude_env(api.base_url, tmp_path / "claude-config")
        env.update(ORCHESTRATOR_CLAUDE_BIN=CLAUDE, HOME=str(tmp_path))
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "run", str(workspace), "--json"],
            env=env, capture_output=True, text=True, timeout=150,
        )  # fmt: skip
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    retried = [e for e in events if e["event"] == "task_retrying"]
    assert sorted(e["task"] for e in retried) == ["T-01", "T-02"]
    assert all(e["error_class"] == "rate_limit" and e["delay"] >= 1.0 for e in retried)
    for agent, task in (("agent-01", "T-01"), ("agent-02", "T-02")):
        document = documents.read_document(workspace / "results" / f"{agent}-result.md")
        assert document is not None
        meta, body = document
        assert meta["status"] == "completed" and meta["attempts"] == 2 and body.strip() == f"{task} done"
    # One line a task: the second attempt continued the session instead of starting over.
    assert sorted((tmp_path / "steps.txt").read_text().split()) == ["T-01", "T-02"]


@pytest.mark.claude
@needs_claude
def test_without_claude_s_own_retries_every_429_holds_the_backend_and_nothing_is_lost(tmp_path: Path) -> None:
    # CLAUDE_CODE_MAX_RETRIES=0: every 429 ends its attempt, and claude does not pass the API's
    # retry-after on. The API admits 60 requests a minute (a bucket holding 2); 10 one-request
    # tasks at max_parallel 5. The claude window is halved on the first burst, and after each 429
    # the runner sees, nothing of claude starts for at least a second (the least the API asks):
    # a window alone lets short attempts through too fast. (How few 429s that leaves is bench W7's
    # figure, not this test's: it depends on how fast the machine starts claude.)
    workspace = tmp_path / ".orchestrator"
    workspace.mkdir()
    rows = "".join(f"| T-{n:02d} | Say done | None |\n" for n in range(1, 11))
    (workspace / "master_plan.md").write_text(
        "---\nbackend: claude\nmax_parallel: 5\nretries: 0\ntimeout: 90\n"
        "env: {CLAUDE_CODE_MAX_RETRIES: '0'}\n---\n"
        "# Plan\n\n## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n" + rows,
        encoding="utf-8",
    )
    assert CLAUDE is not None
    bucket = RateLimit(60.0, burst=2)
    with FakeAnthropic(lambda body: Reply.say("done"), rate_limit=bucket) as api:
        env = claude_env(api.base_url, tmp_path / "claude-config")
        env.update(ORCHESTRATOR_CLAUDE_BIN=CLAUDE, HOME=str(tmp_path))
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "run", str(workspace), "--json"],
            env=env, capture_output=True, text=True, timeout=150,
        )  # fmt: skip
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sum(1 for e in events if e["event"] == "task_completed") == 10  # nothing lost
    assert bucket.rejected, "the test's API refused nothing: it tests nothing"
    when = [(e["event"], datetime.fromisoformat(e["time"]).timestamp()) for e in events if "time" in e]
    limited = [t for kind, t in when if kind == "task_retrying"]
    starts = [t for kind, t in when if kind == "task_started"]
    assert limited
    for seen in limited:  # (the event times are to the millisecond)
        too_soon = [round(t - seen, 3) for t in starts if seen < t < seen + 0.995]
        assert not too_soon, f"claude attempts started {too_soon} s after a 429"


# --- the window against each shape of limit, on a simulated clock ----------------------------------


@dataclass(slots=True)
class Fleet:
    """Bench W7 in miniature, the agents' own retries off unless ``resends``: 40 tasks in 4 levels
    of 10 (each after the first depending on 1-2 of the level before), 3 requests each, at most 8
    at once. An attempt starts its agent (``startup`` s, give or take ``jitter``, and ``contention``
    s more for each other agent starting then: their start-up is CPU-bound), then sends its
    task's requests one after another (the API answers each in 1 s, a tool call 0.2 s between);
    a refused request ends it (after ``resends`` re-sends, each after the retry-after), and the
    task's next attempt goes on from the requests answered, after the runner's backoff (full
    jitter). ``Admission`` decides every start, told every start, end and 429, as the runner
    tells it. ``clock``: the limit's time when the run starts (the fixed window's minute)."""

    limit: RequestLimit
    seed: int = 0
    startup: float = 1.0
    jitter: float = 0.3
    contention: float = 0.6
    clock: float = 0.0
    resends: int = 0
    requests: int = 3
    refused: int = 0
    makespan: float = 0.0
    events: list[tuple[float, int, str, str]] = field(default_factory=list)

    def run(self) -> Fleet:
        rng = random.Random(self.seed)
        deps = _layered(4, 10, random.Random(21))
        left = dict.fromkeys(deps, self.requests)
        done: set[str] = set()
        running: set[str] = set()
        starting: set[str] = set()
        due: dict[str, float] = {}
        in_row = Counter[str]()
        tries = Counter[str]()
        admission, slot = Admission(max_parallel=8), Slot(None, "claude")
        now, first, last, order = 0.0, None, 0.0, 0

        def at(time: float, what: str, task: str) -> None:
            nonlocal order
            order += 1
            heapq.heappush(self.events, (time, order, what, task))

        def fill() -> None:
            nonlocal first
            admission.tick(now)
            for task, after in deps.items():
                if len(running) >= 8 or not admission.allows(slot):
                    return
                if task in done or task in running or due.get(task, 0.0) > now or not done.issuperset(after):
                    continue
                admission.started(task, slot)
                running.add(task)
                first = now if first is None else first
                took = (self.startup + self.contention * len(starting)) * (1 + rng.uniform(-self.jitter, self.jitter))
                starting.add(task)
                at(now + took, "send", task)

        fill()
        while len(done) < len(deps):
            wakes = [t for t in (admission.ramp_at, *due.values()) if t is not None and t > now]
            if self.events and (not wakes or self.events[0][0] <= min(wakes)):
                now, _, what, task = heapq.heappop(self.events)
            else:
                assert wakes, "the run stalled"
                now = min(wakes)
                fill()
                continue
            if what == "send":
                starting.discard(task)
                wait = self.limit.take(now + self.clock)
                if wait == 0.0:
                    at(now + 1.0, "answered", task)
                elif tries[task] < self.resends:
                    self.refused += 1
                    tries[task] += 1
                    at(now + math.ceil(wait), "send", task)
                else:
                    self.refused += 1
                    at(now + 0.1, "refused", task)
            elif what == "answered":
                left[task] -= 1
                tries[task] = 0
                at(now + 0.2, "send" if left[task] else "done", task)
            else:
                admission.tick(now)
                began = admission.ended(task)
                running.discard(task)
                if what == "done":
                    done.add(task)
                    last = now
                else:
                    tries[task], in_row[task] = 0, in_row[task] + 1
                    admission.rate_limited("claude", now, 0.0, began)
                    due[task] = now + rng.uniform(0.0, min(60.0, 2.0 ** (in_row[task] - 1)))
            fill()
        self.makespan = last - (first or 0.0)
        return self

    @property
    def share(self) -> float:
        """Requests of the completed tasks a minute over the makespan, a share of the 60 admitted."""
        return 40 * self.requests / self.makespan


def _layered(levels: int, width: int, rng: random.Random) -> dict[str, tuple[str, ...]]:
    deps: dict[str, tuple[str, ...]] = {}
    previous: list[str] = []
    for level in range(levels):
        current = [f"T-{level * width + n + 1:02d}" for n in range(width)]
        for task in current:
            deps[task] = tuple(rng.sample(previous, rng.randint(1, 2))) if previous else ()
        previous = current
    return deps


MINUTE_START = 1_800_000_000.0  # a whole minute of the epoch: the fixed window's runs start 0, 30, 50 s into one
SHAPES: dict[str, Callable[[], RequestLimit]] = {
    "bucket": lambda: RateLimit(60, burst=5),
    "sliding": lambda: SlidingWindow(10, 10.0),
    "fixed": lambda: FixedWindow(60, 60.0),
}


def _runs(shape: str, resends: int = 0) -> list[Fleet]:
    return [
        Fleet(SHAPES[shape](), seed=seed, startup=startup, clock=MINUTE_START + into, resends=resends).run()
        for seed in range(2)
        for startup in (1.2, 1.8)
        for into in (0.0, 30.0, 50.0)
    ]


# Each shape's bounds, the agents' retries off: the median 429s a completed task, the median share of
# the rate the makespan shows. The window that only halved and ramped (before issue 77) gave here
# 0.31 and 90% on the bucket, 0.50 and 71% on the sliding window, 0.36 and 114% on the fixed one;
# this one 0.29 and 97%, 0.36 and 78%, 0.28 and 119%. (Bench W7, for real, is in bench/RESULTS.md:
# the simulation is a little harder on the sliding window than the real CLI is.)
BOUNDS = {"bucket": (0.30, 0.93), "sliding": (0.45, 0.75), "fixed": (0.32, 1.10)}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_window_keeps_a_fleet_without_its_agents_retries_under_each_shape_of_limit(shape: str) -> None:
    runs = _runs(shape)
    refused = statistics.median(r.refused / 40 for r in runs)
    share = statistics.median(r.share for r in runs)
    most, least = BOUNDS[shape]
    assert refused <= most and share >= least, (shape, refused, share)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_with_the_agents_own_retries_the_window_keeps_most_of_the_rate(shape: str) -> None:
    # The agents wait out each retry-after themselves; the window cut only where they gave up. Here
    # 96% on the bucket, 83% on the sliding window (89% before issue 77: pacing starts queues fewer
    # requests at the API; bench W7 measured 91%), 154% on the fixed one (two minutes' worth).
    share = statistics.median(r.share for r in _runs(shape, resends=2))
    assert share >= 0.80, (shape, share)


def test_a_cut_window_spaces_starts_by_the_usual_duration_over_it() -> None:
    window = Window(limit=8)
    window.start(0.0)
    window.start(0.0)
    window.end(0.0)
    window.end(0.0)
    window.tick(4.0)  # two attempts of 4 s each
    assert window.duration == 4.0 and window.room(7, 4.0)  # (never cut: no spacing)
    window.start(4.0)
    window.end(4.0)
    assert window.limited(5.0, started=4.0, flight=1) and window.cap == 1  # (refused: not a usual duration)
    assert window.duration == 4.0 and window.streak == 1
    assert not window.room(0, 7.9) and window.room(0, 8.0)  # 4 s / 1 after the last start
    assert not window.room(1, 8.0)  # the API refused: one attempt probes it
    window.start(8.0)
    window.end(8.0)
    window.tick(12.0)  # let in since the cut, and ended without a 429: the API admits again
    assert window.streak == 0 and window.duration == 4.0
    window.cap = 2.0  # (as if grown since)
    window.start(12.0)
    assert window.room(1, 14.0) and not window.room(1, 13.9)  # 4 s / 2 after the last start
    assert not window.room(2, 14.0) and window.next_change(13.0) == 14.0


def test_a_later_429_sets_the_window_to_what_the_api_admitted_since_the_cut_before() -> None:
    window = Window(limit=8)
    window.start(0.0)
    window.start(0.0)
    window.end(0.0)
    assert window.limited(1.0, started=0.0, flight=2) and window.cap == 1 and not window.learned  # halved
    window.end(0.0)
    window.tick(3.0)  # the other, let in before the cut, ends unrefused: no sign the API admits again
    assert window.streak == 1
    window.start(3.0)  # the fleet sends again: what the API admits is measured from here
    window.end(3.0)
    window.tick(7.0)  # let in since the cut: the API admits again
    assert window.streak == 0
    window.cap = 2.0  # (as if grown since)
    window.start(7.0)
    window.start(7.0)
    window.end(7.0)
    # From 3 s to 13 s: 1 in flight for 4 s, then 2 for 6 s: 1.6 on average.
    assert window.limited(13.0, started=7.0, flight=2)
    assert window.learned and window.ceiling == pytest.approx(1.6) and window.cap == pytest.approx(1.6 * LEARNED)
    assert window.room(0, 14.0 + 3.3 / window.cap) and not window.room(1, 100.0)  # (ceil(1.52): 2 at most)


def test_a_long_row_of_429s_without_a_retry_after_waits_no_later_than_just_past_the_clock_s_minute() -> None:
    window = Window(limit=4)
    into = 40.0  # the row starts 40 s into a clock minute
    holds = []
    for now in (0.0, 1.0, 3.0, 7.0, 15.0):  # each probe refused as the last hold ends
        window.limited(now, started=now, flight=1, wall=MINUTE_START + into + now)
        holds.append(window.hold_until - now)
    # Doubling (1, 2, 4, 8, 16 s), but from the third in a row no later than 0.5 s past the minute.
    assert holds == [1.0, 2.0, 4.0, 8.0, pytest.approx(60.0 - into - 15.0 + 0.5)]
