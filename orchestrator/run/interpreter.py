"""The machine's instructions carried out (``machine``): each kind of instruction one method,
found in one table, ``Interpreter.carry``; and what an ended or cancelled attempt tells the
machine, read from the world once its spend is booked (``ended``, ``cancelled``).

The machine decides; this writes the result files, the events, the journal, and moves tasks on
the board (``run/board``), in the order the instructions come. What an instruction needs beyond
its own fields (the attempt that ended, the moment it began) is the ``Scene`` it was said in;
what the part that told the machine does in its own place (a race, a merge, a request's answer,
the queue) it is told back in the scene's ``Verdict`` (``run/telling``). Every kind of instruction
has its line in the table (``tests/test_machine.py`` holds it to ``machine/instructions``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio

from orchestrator.backends.base import AgentResult
from orchestrator.machine import instructions as do
from orchestrator.machine.rules import BY_NAME
from orchestrator.machine.stimuli import AttemptCancelled, AttemptEnded, Stimulus
from orchestrator.run.attempts import Attempt, Outcome, Resumable
from orchestrator.run.forecasts.spend import tokens_of
from orchestrator.run.limits.failover import breaker_facts
from orchestrator.run.parts import Parts
from orchestrator.run.telling import TOLD_BACK, Fill, Scene, Verdict
from orchestrator.state.causes import Cause
from orchestrator.state.transitions import governed


class Interpreter:
    """What each instruction does to the run's ``parts``; ``spawn`` runs an attempt that started."""

    def __init__(
        self,
        parts: Parts,
        spawn: Callable[[Attempt], None],
        tell: Callable[[Stimulus], Verdict],
        stamp: Callable[[], int],
    ) -> None:
        self.parts = parts
        self.spawn = spawn  # runs a started attempt in the loop's task group
        self.tell, self.stamp = tell, stamp  # what a start finds, told to the machine (``Starting``)
        self._table: dict[type[do.Instruction], Callable[[Any, Scene], None]] = {
            **{kind: _told_back(fill) for kind, fill in TOLD_BACK.items()}, do.Wait: self._wait,
            do.TimeCame: self._time_came,
            do.Start: self._start, do.SettleRow: self._settle_row, do.StayFailed: self._stay_failed,
            do.Reuse: self._reuse, do.Launch: self._launch, do.GiveUp: self._give_up, do.AwaitWord: self._await_word,
            do.Requeue: self._requeue, do.KeepSession: self._keep_session, do.ForgetSession: self._forget_session,
            do.Complete: self._complete, do.Release: self._release, do.RetryLater: self._retry_later,
            do.PauseGroup: self._pause_group, do.BlockBackend: self._block_backend, do.FailOver: self._fail_over,
            do.Fail: self._fail, do.SkipDownstream: self._skip_downstream, do.Halt: self._halt,
            do.StopRunning: self._stop_running,
            do.Adopt: self._adopt, do.Cancel: self._cancel, do.TakeWord: self._take_word, do.Reject: self._reject,
            do.Join: self._join,
        }  # fmt: skip

    @property
    def kinds(self) -> frozenset[type[do.Instruction]]:
        """The kinds of instruction it carries out."""
        return frozenset(self._table)

    def carry(self, said: list[do.Instruction], scene: Scene | None = None) -> Verdict:
        """Each of ``said`` carried out, in order, each move it makes held to its rule's (``governed``);
        what the teller does itself, back."""
        scene = scene if scene is not None else Scene()
        for instruction in said:
            rule = BY_NAME.get(instruction.rule)
            if rule is None:
                self._table[type(instruction)](instruction, scene)
                continue
            with governed(rule.name, getattr(instruction, "task", None), frozenset(rule.moves)):
                self._table[type(instruction)](instruction, scene)
        return scene.verdict

    # --- what an attempt tells the machine ------------------------------------------------------------

    def ended(self, outcome: Outcome, stimulus: int) -> tuple[AttemptEnded, Scene]:
        """``outcome``'s attempt off the board, journaled as ended, its spend booked (a hedged
        task's: the attempt it raced counted first, ``Hedger.count``); its backend's breaker told."""
        p, attempt = self.parts, outcome.attempt
        task, result = attempt.task, outcome.result
        del p.board.running[task.id]
        began = p.admission.ended(task.id, tokens_of(result.tokens))  # (before the purse makes them the task's)
        p.journal.ended(task.id, attempt.number, outcome.run.worker)
        first = p.hedger.count(outcome, attempt.in_run == 1, p.purse)
        p.purse.book(task.id, first, result, attempt.job.resume_session)  # (the run's total: what its attempts spent)
        backend = attempt.settings.backend
        now = anyio.current_time()
        breaker, fallback = breaker_facts(p.breakers, attempt.settings, result, time.time(), p.admission.blocked)
        told = AttemptEnded(id=stimulus, task=task.id, result=result, attempt=attempt.in_run, settings=attempt.settings,
                            now=now, breaker=breaker, fallback=fallback, down=p.breakers.why(backend),
                            resumed=attempt.job.resume_session, approval=task.approval,
                            fail_fast=p.fail_fast, stopped=p.stop.why is not None,
                            budget=p.purse.budget(), added=outcome.added)  # fmt: skip
        return told, Scene(outcome=outcome, began=began, now=now)

    def cancelled(
        self, attempt: Attempt, reason: Cause, result: AgentResult | None, stimulus: int
    ) -> tuple[AttemptCancelled, Scene]:
        """``attempt``, stopped by a cancel (``result``: what it did, if it ended first; ``None``:
        its processes gone), off the board and booked as an ended attempt is."""
        p, task_id = self.parts, attempt.task.id
        del p.board.running[task_id]
        p.admission.ended(task_id)
        p.journal.ended(task_id, attempt.number)
        spent = p.launcher.stopped(attempt) if result is None else result
        first = p.hedger.stopped(attempt, attempt.in_run == 1, p.purse)  # (a race's others, stopped with it)
        p.purse.book(task_id, first, spent, attempt.job.resume_session)
        told = AttemptCancelled(id=stimulus, task=task_id, cause=reason, stopped=p.stop.why is not None,
                                budget=p.purse.budget())  # fmt: skip
        return told, Scene(attempt=attempt, spent=spent)

    # --- pending→running ------------------------------------------------------------------------------

    def _start(self, i: do.Start, _: Scene) -> None:
        self.tell(self.parts.starts.facts(i.task, self.stamp()))

    def _settle_row(self, i: do.SettleRow, _: Scene) -> None:
        self.parts.starts.settle_row(i.task)

    def _stay_failed(self, i: do.StayFailed, _: Scene) -> None:
        self.parts.starts.stay_failed(i.task, i.why)

    def _reuse(self, i: do.Reuse, _: Scene) -> None:
        self.parts.starts.reused(i.task)

    def _launch(self, i: do.Launch, _: Scene) -> None:
        attempt = self.parts.starts.launch(i.task)
        if attempt is not None:
            self.spawn(attempt)

    def _give_up(self, i: do.GiveUp, _: Scene) -> None:
        assert i.cause is not None
        self.parts.board.give_up(i.task, i.status, i.cause)

    def _await_word(self, i: do.AwaitWord, _: Scene) -> None:
        self.parts.gates.await_approval(self.parts.plan.tasks[i.task], i.gate)

    def _requeue(self, i: do.Requeue, _: Scene) -> None:
        self.parts.board.back(i.task)

    # --- running→* --------------------------------------------------------------------------------------

    def _keep_session(self, i: do.KeepSession, scene: Scene) -> None:
        outcome = _of(scene)
        attempt = outcome.attempt
        self.parts.sessions[i.task] = Resumable(i.session, attempt.fingerprint, attempt.told, outcome.run.worker)

    def _forget_session(self, i: do.ForgetSession, _: Scene) -> None:
        self.parts.sessions.pop(i.task, None)

    def _complete(self, i: do.Complete, scene: Scene) -> None:
        p, outcome = self.parts, _of(scene)
        p.records[i.task] = p.recorder.completed(outcome, i.warning, awaiting=i.awaiting)
        if p.reuse is not None:  # (not one awaiting a person: ``Reuse.cacheable``)
            p.reuse.keep(outcome.attempt.task, outcome.attempt.job.brief)

    def _adopt(self, i: do.Adopt, _: Scene) -> None:
        assert self.parts.merges is not None
        self.parts.merges.adopt(i.added, self.parts.board.queue)

    def _release(self, i: do.Release, _: Scene) -> None:
        self.parts.board.completed(i.task)

    def _retry_later(self, i: do.RetryLater, scene: Scene) -> None:
        p, outcome = self.parts, _of(scene)
        if i.rate_limited:
            p.admission.rate_limited(i.backend, scene.now, outcome.result.retry_after or 0.0, scene.began)
        p.board.later(i.task, i.at, outcome)
        p.recorder.retrying(outcome, i.after, i.reason)

    def _pause_group(self, i: do.PauseGroup, scene: Scene) -> None:
        p, outcome = self.parts, _of(scene)
        until, new = p.pause.start(i.until, i.backend, i.reason, i.group)
        p.admission.pause(p.pause.until_for(i.group), i.group)
        p.board.later(i.task, anyio.current_time() + p.pause.remaining(i.group), outcome)
        p.recorder.paused(outcome.attempt.task, until, i.reason, i.group if new else None)

    def _block_backend(self, i: do.BlockBackend, _: Scene) -> None:
        self.parts.admission.block(i.backend, i.why)

    def _fail_over(self, i: do.FailOver, scene: Scene) -> None:
        outcome = _of(scene)
        self.parts.board.later(i.task, anyio.current_time(), outcome)
        self.parts.recorder.retrying(outcome, 0.0, i.reason)

    def _fail(self, i: do.Fail, scene: Scene) -> None:
        self.parts.recorder.failed(_of(scene), i.reason)

    def _skip_downstream(self, i: do.SkipDownstream, _: Scene) -> None:
        self.parts.board.skip_downstream(i.task, i.status)

    def _halt(self, i: do.Halt, _: Scene) -> None:
        assert i.cause is not None
        self.parts.stop.halt(i.why, i.cause)

    def _stop_running(self, i: do.StopRunning, _: Scene) -> None:
        assert i.cause is not None
        self.parts.stop.attempts(i.cause)  # (each ends cancelled for the budget; the run goes on, and waits)

    def _cancel(self, i: do.Cancel, scene: Scene) -> None:
        assert scene.attempt is not None and scene.spent is not None and i.cause is not None
        self.parts.board.cancelled(scene.attempt, i.cause, scene.spent)

    # --- a person's word, a row added -------------------------------------------------------------------

    def _take_word(self, i: do.TakeWord, _: Scene) -> None:
        self.parts.gates.take_word(i.task, i.gate, i.decision)

    def _reject(self, i: do.Reject, _: Scene) -> None:
        assert i.cause is not None
        self.parts.board.rejected(i.task, i.cause, self.parts.records.get(i.task))

    def _join(self, i: do.Join, _: Scene) -> None:
        p = self.parts
        p.board.join(p.plan.tasks[i.task], p.recorder.views[i.task])

    def _wait(self, i: do.Wait, scene: Scene) -> None:
        """A task kept in the queue: waiting for its Not before, shown so, and the loop told until
        when (``Timed``); for anything else, nothing to carry out."""
        if i.why == "not before" and i.cause is not None:
            scene.verdict.until = i.cause.until
            self.parts.timed.waits(i.task, i.cause)

    def _time_came(self, i: do.TimeCame, _: Scene) -> None:
        self.parts.timed.came(i.task)


def _told_back(fill: Fill) -> Callable[[Any, Scene], None]:
    """What the teller does in its own place (``telling.TOLD_BACK``): said in the scene's verdict."""
    return lambda instruction, scene: fill(instruction, scene.verdict)


def _of(scene: Scene) -> Outcome:
    assert scene.outcome is not None, "an instruction about an ended attempt, said of none"
    return scene.outcome
