"""Every attempt of every run, read from the event log (``state/events.jsonl``), each with how it
ended: what ``history`` shows, what ``history --stats`` sums up, and what the estimates of a
run's remaining time learn from (``run/forecasts/estimates``). A ``reset`` forgets results, never this."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.state import events, journal
from orchestrator.state.events import EventRecord
from orchestrator.state.events.reporter import EventReporter
from orchestrator.vocabulary import question_id

if TYPE_CHECKING:  # (named only: ``_Reading`` is handed each by its method, the records built as the log is read)
    from orchestrator.state.events.runs import RunFinished, RunStarted
    from orchestrator.state.events.tasks import (
        PermissionAnswered,
        TaskCancelled,
        TaskCompleted,
        TaskFailed,
        TaskHedged,
        TaskHedgeFailed,
        TaskHedgeWon,
        TaskInterrupted,
        TaskJudged,
        TaskRetrying,
        TaskStarted,
    )


def attempts_of(all_events: Iterable[EventRecord]) -> list[dict[str, Any]]:
    """Every attempt the event log tells of, oldest first (in the order each began), each with how
    it ended (``all_events`` read once, in order: ``events.each`` need not hold them all)."""
    return [attempt for _, attempt in sorted(_Reading().attempts(all_events), key=lambda found: found[0])]


def ended(all_events: Iterable[EventRecord]) -> Iterator[dict[str, Any]]:
    """``attempts_of``'s attempts, each once nothing the log says after can change it (in that
    order; those still open at its end last): for a reader that folds them (the estimates, a
    hedge's bound), which then never holds them all (10,000 attempts held are some 25 MB)."""
    for _, attempt in _Reading().attempts(all_events):
        yield attempt


Numbered = tuple[int, dict[str, Any]]  # an attempt, and its place in the order the attempts began
Spent = tuple[object, object]  # what an attempt spent on its own: its cost and its tokens, as told


class _Reading(EventReporter[None]):
    """The attempts of an event log as it is read, each event by its kind's method: those open
    (``open``, by run and task; a hedge by ``TASK+hedge``), and those that the last event ended or
    put aside (``done``: nothing later changes them)."""

    def __init__(self) -> None:
        self.open: dict[tuple[str | None, str], Numbered] = {}
        self.runs: dict[str | None, _Run] = {}
        self.done: list[Numbered] = []
        self.count = 0

    def attempts(self, all_events: Iterable[EventRecord]) -> Iterator[Numbered]:
        for event in all_events:
            self.tell(event)
            if self.done:
                yield from self.done
                self.done.clear()
        for (run, _task), (_, attempt) in self.open.items():
            state = self.runs.get(run)
            if state is not None and events.stopped_on_error(state.stopped):  # (the run said why)
                attempt["outcome"], attempt["reason"] = "interrupted", f"the run stopped on an {state.stopped}"
            elif state is not None and (state.finished or not events.runner_alive(state.started)):
                attempt["outcome"] = "lost"
                attempt["reason"] = "its runner ended without saying how it ended (killed?)"
        yield from self.open.values()

    def _new(self, attempt: dict[str, Any]) -> Numbered:
        self.count += 1
        return self.count, attempt

    def _put(self, key: tuple[str | None, str], found: Numbered) -> None:
        """``found`` open under ``key``; the attempt open there before it, if another, is put
        aside as it stands (a runner that died without a word before this one began)."""
        before = self.open.get(key)
        if before is not None and before[1] is not found[1]:
            self.done.append(before)
        self.open[key] = found

    # --- each kind of event: what it tells of the attempts ---------------------------------------

    def any_event(self, event: EventRecord) -> None:
        """Nothing of an attempt."""

    def run_started(self, event: RunStarted) -> None:
        self.runs[event.run] = _Run(event)

    def run_finished(self, event: RunFinished) -> None:
        if event.run in self.runs:
            self.runs[event.run].finished, self.runs[event.run].stopped = True, event.stopped

    def task_started(self, event: TaskStarted) -> None:
        run, task = event.run, event.task
        attempt = {"run": run, "task": task, "agent": event.agent, "attempt": event.attempt,
                   "started": event.time, "ended": None, "outcome": "running", "reason": None,
                   "cost_usd": None, "log": event.log, "simulated": False,
                   "brief": event.brief, "kind": event.kind, "backend": event.backend,
                   "expected_cost": event.expected_cost, "model": event.model}  # fmt: skip
        self._put((run, task), self._new(attempt))

    def task_hedged(self, event: TaskHedged) -> None:
        """A hedge (``run/races/hedge``): its attempt, open beside the task's own until the race is
        decided (``_decided``)."""
        run, task = event.run, event.task
        first = self.open.get((run, task))
        record = {**(first[1] if first else {}), "run": run, "task": task, "attempt": event.attempt,
                  "started": event.time, "ended": None, "outcome": "running", "reason": None,
                  "cost_usd": None, "backend": event.backend, "log": event.log}  # fmt: skip
        self._put((run, f"{task}+hedge"), self._new(record))

    def task_hedge_won(self, event: TaskHedgeWon) -> None:
        self._decided(event, f"stopped: attempt {event.attempt} completed first", "hedge_lost")

    def task_hedge_failed(self, event: TaskHedgeFailed) -> None:
        last = event.attempt  # neither completed: the one that ended first ended failed
        why, outcome = f"failed in a race neither attempt completed (attempt {last} ended last)", "failed"
        if event.stopped:  # (a cancel, the run's stop: both stopped)
            why, outcome = f"stopped with attempt {last}, its task's", "cancelled"
        self._decided(event, why, outcome)

    def permission_answered(self, event: PermissionAnswered) -> None:
        key = (event.run, event.task)
        if key in self.open:  # (who allowed what it asked)
            said = {"id": question_id(event.number), "said": event.said, "answer": event.answer, "by": event.by,
                    "via": event.via, "url": event.url}  # fmt: skip
            asked = {name: value for name, value in said.items() if value}
            self.open[key][1].setdefault("asked", []).append({**asked, "always": event.always is True})

    def task_completed(self, event: TaskCompleted) -> None:
        spent = (event.attempt_cost_usd, event.attempt_tokens)  # its last attempt's own
        self._ended(event, "completed", event.warning, spent, simulated=event.simulated is True)

    def task_failed(self, event: TaskFailed) -> None:
        spent = (event.attempt_cost_usd, event.attempt_tokens)
        self._ended(event, "failed", event.reason, spent, simulated=event.simulated is True)

    def task_retrying(self, event: TaskRetrying) -> None:
        self._ended(event, "retried", event.reason, (event.cost_usd, event.tokens))  # (the one that failed)

    def task_interrupted(self, event: TaskInterrupted) -> None:
        self._ended(event, "interrupted", event.reason, (None, None))

    def task_cancelled(self, event: TaskCancelled) -> None:
        """What its attempt spent: its own when it says it apart, else the task's (as it said then)."""
        cost = event.attempt_cost_usd if event.attempt_cost_usd is not None else event.cost_usd
        tokens = event.attempt_tokens if event.attempt_tokens is not None else event.tokens
        self._ended(event, "cancelled", event.reason, (cost, tokens))

    def _ended(
        self,
        event: TaskCompleted | TaskFailed | TaskRetrying | TaskInterrupted | TaskCancelled,
        outcome: str,
        reason: str | None,
        spent: Spent,
        *,
        simulated: bool = False,
    ) -> None:
        """The task's attempt open in ``event``'s run ended as ``outcome`` (a hedge beside it too);
        ``simulated``: the fake executor's, nothing ran."""
        run, task = event.run, event.task
        if (run, task) not in self.open:
            return
        other = self.open.pop((run, f"{task}+hedge"), None)  # a race neither attempt won: both ended
        if other is not None:
            other[1].update(ended=event.time, outcome="hedge_lost", reason="neither attempt completed")
            self.done.append(other)
        found = self.open.pop((run, task))
        attempt = found[1]
        attempt.update(ended=event.time, outcome=outcome, reason=reason or None, simulated=simulated)
        attempt["cost_usd"], attempt["tokens"] = spent
        self.done.append(found)

    def _decided(self, event: TaskHedgeWon | TaskHedgeFailed, why: str, outcome: str) -> None:
        """A hedged task's race decided: the attempt stopped (or that ended first, ``outcome``) ends
        with what it spent, and the other is the task's."""
        run, task = event.run, event.task
        hedge, first = self.open.pop((run, f"{task}+hedge"), None), self.open.get((run, task))
        if hedge is None or first is None:
            if hedge is not None:  # (out of the race, as it stands)
                self.done.append(hedge)
            return
        lost, kept = (first, hedge) if event.hedge else (hedge, first)
        lost[1].update(ended=event.time, outcome=outcome, cost_usd=event.cost_usd, tokens=event.tokens,
                       reason=why)  # fmt: skip
        self.done.append(lost)
        self.open[(run, task)] = kept

    def task_judged(self, event: TaskJudged) -> None:
        """Best of N decided (``run/races/bestof``): each candidate not chosen an attempt of its
        own, ended ``not_chosen`` (or failed, stopped) with what it spent; the chosen one the
        task's, its end the task's end."""
        run, task = event.run, event.task
        mine = self.open.get((run, task))
        if mine is None:
            return
        own = mine[1]
        shown = event.candidates
        for candidate in shown if isinstance(shown, tuple) else ():
            state, chosen = candidate.get("status"), candidate.get("chosen")
            told = {"attempt": candidate.get("attempt"), "started": candidate.get("started"),
                    "ended": None if chosen else candidate.get("ended"), "cost_usd": None,
                    "outcome": "running" if chosen else "not_chosen" if state == "completed" else state,
                    "reason": None if chosen else f"not chosen: {event.reason}"}  # fmt: skip
            if not candidate.get("chosen"):
                told.update(cost_usd=candidate.get("cost_usd"), tokens=candidate.get("tokens"))
            if candidate.get("attempt") == own.get("attempt"):
                own.update(told)
                continue
            log = own.get("log")  # (its logs are named as the task's own attempt's, with its number)
            found = self._new({**own, **told, "log": log.rsplit("-", 1)[0] + f"-{told['attempt']}" if log else None})
            if candidate.get("chosen"):
                self._put((run, task), found)
            else:
                self.done.append(found)


@dataclass(slots=True)
class _Run:
    """A run as the attempts read so far tell it: its ``run_started``, whether it finished, and why
    it stopped early (``run_finished``'s ``stopped``)."""

    started: RunStarted
    finished: bool = False
    stopped: str | None = None


def seconds(attempt: dict[str, Any]) -> float | None:
    try:
        return (datetime.fromisoformat(attempt["ended"]) - datetime.fromisoformat(attempt["started"])).total_seconds()
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Carried:
    """What the attempts of earlier runs spent, for a task whose interrupted agent session a run
    takes up: ``cost_usd``, what the attempts of the run of the task it goes on spent (their own
    costs added up; None: none told one), and ``counted``, the part of that session's running
    total (which claude reports whole on a resume) counted already; ``counted_tokens`` the same of
    its tokens (which codex reports whole)."""

    session: str
    cost_usd: float | None
    counted: float
    counted_tokens: Mapping[str, int] = field(default_factory=dict)  # its tokens, as ``counted`` (codex's)


def carried(events_path: Path, journal_path: Path, resumed: Mapping[str, str]) -> dict[str, Carried]:
    """For each task of ``resumed`` (task -> the session an interrupted attempt of an earlier run
    left), what its earlier attempts spent (``Carried``). The run of the task goes on: back from
    its last attempt to the first of its run, and on back past one that took up the session of
    the attempt before it (a run that resumed an interrupted one). Each attempt's own cost is the
    event log's (as ``history`` shows it), its session and place the journal's."""
    if not resumed:
        return {}
    found = events.read_new(events_path, events.Cursor(), only=(b'"event": "task_', b'"event": "run_'))
    places = journal.sessions_of(journal_path, resumed.keys())
    own: dict[str, dict[int, float | None]] = {task: {} for task in resumed}
    own_tokens: dict[str, dict[int, dict[str, int]]] = {task: {} for task in resumed}
    for attempt in attempts_of(found):
        if attempt["task"] in own and isinstance(attempt["attempt"], int):
            cost, tokens = attempt["cost_usd"], attempt.get("tokens")
            own[attempt["task"]][attempt["attempt"]] = float(cost) if isinstance(cost, int | float) else None
            if isinstance(tokens, dict):
                own_tokens[attempt["task"]][attempt["attempt"]] = {
                    str(k): v for k, v in tokens.items() if isinstance(v, int) and not isinstance(v, bool)
                }
    told: dict[str, Carried] = {}
    for task, session in resumed.items():
        costs = own[task]
        numbers = sorted(costs)
        in_session = [n for n in numbers if places.get((task, n), (1, None))[1] == session]
        counted = sum(costs[n] or 0.0 for n in in_session)
        counted_tokens: dict[str, int] = {}
        for number in in_session:
            for key, value in own_tokens[task].get(number, {}).items():
                counted_tokens[key] = counted_tokens.get(key, 0) + value
        chain: list[float] = []
        for index in range(len(numbers) - 1, -1, -1):
            number = numbers[index]
            cost = costs[number]
            if cost is not None:
                chain.append(cost)
            in_run, its_session = places.get((task, number), (1, None))
            if in_run != 1:
                continue
            before = places.get((task, numbers[index - 1]), (1, None))[1] if index > 0 else None
            if its_session is None or before != its_session:  # a run of the task began here
                break
        told[task] = Carried(session, round(sum(chain), 10) if chain else None, round(counted, 10), counted_tokens)
    return told
