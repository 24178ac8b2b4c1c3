"""Every attempt of every run, read from the event log (``state/events.jsonl``), each with how it
ended: what ``history`` shows, what ``history --stats`` sums up, and what the estimates of a
run's remaining time learn from (``run/forecasts/estimates``). A ``reset`` forgets results, never this."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.state import events, journal

ENDS = {"task_completed", "task_failed", "task_retrying", "task_interrupted", "task_cancelled"}
_ENDS = ENDS


def attempts_of(all_events: Iterable[events.Event]) -> list[dict[str, Any]]:
    """Every attempt the event log tells of, oldest first (in the order each began), each with how
    it ended (``all_events`` read once, in order: ``events.each`` need not hold them all)."""
    return [attempt for _, attempt in sorted(_Reading().attempts(all_events), key=lambda found: found[0])]


def ended(all_events: Iterable[events.Event]) -> Iterator[dict[str, Any]]:
    """``attempts_of``'s attempts, each once nothing the log says after can change it (in that
    order; those still open at its end last): for a reader that folds them (the estimates, a
    hedge's bound), which then never holds them all (10,000 attempts held are some 25 MB)."""
    for _, attempt in _Reading().attempts(all_events):
        yield attempt


Numbered = tuple[int, dict[str, Any]]  # an attempt, and its place in the order the attempts began


class _Reading:
    """The attempts of an event log as it is read: those open (``open``, by run and task; a hedge
    by ``TASK+hedge``), and those that the last event ended or put aside (``done``: nothing
    later changes them)."""

    def __init__(self) -> None:
        self.open: dict[tuple[Any, str], Numbered] = {}
        self.runs: dict[Any, dict[str, Any]] = {}
        self.done: list[Numbered] = []
        self.count = 0

    def attempts(self, all_events: Iterable[events.Event]) -> Iterator[Numbered]:
        for event in all_events:
            self._take(event)
            if self.done:
                yield from self.done
                self.done.clear()
        for (run, _task), (_, attempt) in self.open.items():
            state = self.runs.get(run)
            if state is not None and events.stopped_on_error(state.get("stopped")):  # (the run said why)
                attempt["outcome"], attempt["reason"] = "interrupted", f"the run stopped on an {state['stopped']}"
            elif state is not None and (state["finished"] or not events.runner_alive(state["started"])):
                attempt["outcome"] = "lost"
                attempt["reason"] = "its runner ended without saying how it ended (killed?)"
        yield from self.open.values()

    def _new(self, attempt: dict[str, Any]) -> Numbered:
        self.count += 1
        return self.count, attempt

    def _put(self, key: tuple[Any, str], found: Numbered) -> None:
        """``found`` open under ``key``; the attempt open there before it, if another, is put
        aside as it stands (a runner that died without a word before this one began)."""
        before = self.open.get(key)
        if before is not None and before[1] is not found[1]:
            self.done.append(before)
        self.open[key] = found

    def _take(self, event: events.Event) -> None:
        kind, run, task = event["event"], event.get("run"), str(event.get("task", ""))
        if kind == "run_started":
            self.runs[run] = {"started": event, "finished": False}
        elif kind == "run_finished" and run in self.runs:
            self.runs[run]["finished"], self.runs[run]["stopped"] = True, event.get("stopped")
        elif kind == "task_started":
            attempt = {"run": run, "task": task, "agent": event.get("agent"), "attempt": event.get("attempt"),
                       "started": event.get("time"), "ended": None, "outcome": "running", "reason": None,
                       "cost_usd": None, "log": event.get("log"), "simulated": False,
                       "brief": event.get("brief"), "kind": event.get("kind"),
                       "backend": event.get("backend")}  # fmt: skip
            self._put((run, task), self._new(attempt))
        elif kind in ("task_hedged", "task_hedge_won", "task_hedge_failed"):
            self._hedge(event, run, task)
        elif kind == "task_judged":
            self._judged(event, run, task)
        elif kind == "permission_answered" and (run, task) in self.open:  # (who allowed what it asked)
            asked = {key: event.get(key) for key in ("said", "answer", "by", "via", "url") if event.get(key)}
            self.open[(run, task)][1].setdefault("asked", []).append({**asked, "always": event.get("always") is True})
        elif kind in _ENDS and (run, task) in self.open:
            other = self.open.pop((run, f"{task}+hedge"), None)  # a race neither attempt won: both ended
            if other is not None:
                other[1].update(ended=event.get("time"), outcome="hedge_lost", reason="neither attempt completed")
                self.done.append(other)
            found = self.open.pop((run, task))
            attempt = found[1]
            attempt["ended"] = event.get("time")
            attempt["outcome"] = {"task_retrying": "retried"}.get(kind, kind.removeprefix("task_"))
            attempt["reason"] = event.get("reason") or event.get("warning")
            attempt["cost_usd"] = event.get("attempt_cost_usd", event.get("cost_usd"))  # its own
            attempt["tokens"] = event.get("attempt_tokens", event.get("tokens"))  # its own (a retry's: tokens)
            attempt["simulated"] = event.get("simulated") is True  # the fake executor's: nothing ran
            self.done.append(found)

    def _hedge(self, event: events.Event, run: Any, task: str) -> None:
        """A hedge (``run/races/hedge``): its attempt, open beside the task's own until the race is
        decided; then the one stopped ends (``hedge_lost``, what it spent), and the winner is the
        task's; when neither completed, the one that ended first ends failed, and the other is the
        task's."""
        if event["event"] == "task_hedged":
            first = self.open.get((run, task))
            record = {**(first[1] if first else {}), "run": run, "task": task, "attempt": event.get("attempt"),
                      "started": event.get("time"), "ended": None, "outcome": "running", "reason": None,
                      "cost_usd": None, "backend": event.get("backend"), "log": event.get("log")}  # fmt: skip
            self._put((run, f"{task}+hedge"), self._new(record))
            return
        hedge, first = self.open.pop((run, f"{task}+hedge"), None), self.open.get((run, task))
        if hedge is None or first is None:
            if hedge is not None:  # (out of the race, as it stands)
                self.done.append(hedge)
            return
        lost, kept = (first, hedge) if event.get("hedge") else (hedge, first)
        why, outcome = f"stopped: attempt {event.get('attempt')} completed first", "hedge_lost"
        if event["event"] == "task_hedge_failed":  # neither completed: this one ended first, failed
            last = event.get("attempt")
            why, outcome = f"failed in a race neither attempt completed (attempt {last} ended last)", "failed"
            if event.get("stopped"):  # (a cancel, the run's stop: both stopped)
                why, outcome = f"stopped with attempt {last}, its task's", "cancelled"
        lost[1].update(ended=event.get("time"), outcome=outcome, cost_usd=event.get("cost_usd"),
                       tokens=event.get("tokens"), reason=why)  # fmt: skip
        self.done.append(lost)
        self.open[(run, task)] = kept

    def _judged(self, event: events.Event, run: Any, task: str) -> None:
        """Best of N decided (``run/races/bestof``): each candidate not chosen an attempt of its
        own, ended ``not_chosen`` (or failed, stopped) with what it spent; the chosen one the
        task's, its end the task's end."""
        mine = self.open.get((run, task))
        if mine is None:
            return
        own = mine[1]
        shown = event.get("candidates")
        for candidate in shown if isinstance(shown, list) else []:
            state, chosen = candidate.get("status"), candidate.get("chosen")
            told = {"attempt": candidate.get("attempt"), "started": candidate.get("started"),
                    "ended": None if chosen else candidate.get("ended"), "cost_usd": None,
                    "outcome": "running" if chosen else "not_chosen" if state == "completed" else state,
                    "reason": None if chosen else f"not chosen: {event.get('reason')}"}  # fmt: skip
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
