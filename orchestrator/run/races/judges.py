"""Best of N's judges (``run/races/bestof.py``): which candidate's result becomes the task's, and why.

    first              the first to complete
    longest, shortest  the completed one with the longest (shortest) answer; a tie: the first ended
    a command          run by sh in each completed candidate's worktree (its directory, when the
                       task is not isolated), in attempt order: the first to pass (exit 0) wins,
                       else the one whose exit was lowest; ``$ORCHESTRATOR_CANDIDATE`` is its
                       attempt, ``$ORCHESTRATOR_CANDIDATE_OUTPUT`` a file holding its answer
    agent              the task's own backend, given the brief and every candidate's answer, asked
                       to answer ``{"choice": N, "reason": "..."}``; what it spent is counted

A candidate that did not complete is never chosen; none completed: no verdict (the task's outcome
is then its own attempt's).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from orchestrator.backends.base import AgentResult
from orchestrator.executors.worktree import WorktreeExecutor
from orchestrator.plan.config.bestof import is_command
from orchestrator.run.attempts import Launcher, call_agent
from orchestrator.run.races.lanes import Lane
from orchestrator.vocabulary import counted

JUDGE_TIMEOUT = 600.0  # seconds a judge command may run, when the task has no timeout
_CHOICE = re.compile(r'"choice"\s*:\s*"?(\d+)')
_REASON = re.compile(r'"reason"\s*:\s*"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True, slots=True)
class Verdict:
    winner: Lane | None
    reason: str
    spent: tuple[tuple[AgentResult, str | None], ...] = ()  # the judge's own (an agent)


def _text(lane: Lane) -> str:
    return lane.outcome.result.text if lane.outcome is not None else ""


async def choose(judge: str, lanes: Sequence[Lane], ended: Sequence[Lane], launcher: Launcher) -> Verdict:
    """The verdict of ``judge`` on ``lanes`` (in attempt order; ``ended``: in the order they ended)."""
    done = [lane for lane in ended if lane.completed]
    if not done:
        return Verdict(None, f"none of the {counted(len(lanes), 'candidate')} completed")
    if judge == "first":
        return Verdict(done[0], f"completed first, of {counted(len(lanes), 'candidate')}")
    if len(done) == 1:  # (no judge is asked, nor paid, to choose among one)
        return Verdict(done[0], f"the only one that completed, of {counted(len(lanes), 'candidate')}")
    if judge in ("longest", "shortest"):
        pick = (max if judge == "longest" else min)(done, key=lambda lane: len(_text(lane)))
        others = ", ".join(f"{len(_text(lane)):,}" for lane in done if lane is not pick) or "none completed"
        return Verdict(pick, f"the {judge} answer: {len(_text(pick)):,} characters (the others': {others})")
    if is_command(judge):
        return await anyio.to_thread.run_sync(_by_command, judge, [lane for lane in lanes if lane.completed], launcher)
    return await _by_agent(lanes, done, launcher)


def _by_command(command: str, done: list[Lane], launcher: Launcher) -> Verdict:
    exits: list[tuple[int, Lane]] = []
    for lane in done:
        code = _run_judge(command, lane, launcher)
        if code == 0:
            return Verdict(lane, f"`{command}` passed in attempt {lane.attempt.number}'s work")
        exits.append((code, lane))
    code, best = min(exits, key=lambda found: found[0])
    said = ", ".join(f"attempt {lane.attempt.number}: {exit_}" for exit_, lane in exits)
    lowest = f"the lowest exit was attempt {best.attempt.number}'s ({said})"
    return Verdict(best, f"no candidate passed `{command}`; {lowest}")


def _run_judge(command: str, lane: Lane, launcher: Launcher) -> int:
    """``command``'s exit in ``lane``'s work (its worktree), in a session of its own, its whole group
    killed past the task's timeout (-1: it could not run or did not end)."""
    attempt, executor = lane.attempt, launcher.executor
    cwd = attempt.launch.cwd
    if isinstance(executor, WorktreeExecutor) and attempt.task.id in executor.isolated:
        cwd = executor.trees.inside(cwd, executor.trees.path(attempt.launch.lane or attempt.task.id))
    answer = Path(f"{attempt.launch.stdout}.candidate")
    answer.write_text(_text(lane), encoding="utf-8")
    env = {**os.environ, "ORCHESTRATOR_CANDIDATE": str(attempt.number), "ORCHESTRATOR_CANDIDATE_OUTPUT": str(answer)}
    try:
        process = subprocess.Popen(["sh", "-c", command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)  # fmt: skip
    except OSError:
        return -1
    try:
        return process.wait(timeout=attempt.settings.timeout or JUDGE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return -1
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # (what it left running in its group)
        process.wait()


async def _by_agent(lanes: Sequence[Lane], done: list[Lane], launcher: Launcher) -> Verdict:
    own = lanes[0].attempt
    if not own.backend.reads_prompt:  # (a shell or command task: nothing to ask)
        return Verdict(done[0], f"judge: agent asks an agent; {own.backend.name} is none: the first completed kept")
    cap = max(2_000, own.settings.input_cap // max(1, len(done)))
    shown = "\n\n".join(f"## Candidate {lane.attempt.number}\n\n{_text(lane)[:cap]}" for lane in done)
    prompt = (
        f"Several attempts answered the task below. Choose the best answer.\n\n# The task\n\n{own.job.brief}\n\n"
        f"# The candidates\n\n{shown}\n\n# Your answer\n\nAnswer with one JSON object and nothing else: "
        '{"choice": <the candidate\'s number>, "reason": "<one sentence: why it is the best>"}'
    )
    job = dataclasses.replace(own.job, prompt=prompt, resume_session=None)
    stem = launcher.workspace.log_stem(own.task, own.number)
    result, _ = await call_agent(own.backend, job, stem.with_name(stem.name + ".judge"), launcher.executor)
    spent = ((result, None),)
    choice, reason = _CHOICE.search(result.text or ""), _REASON.search(result.text or "")
    pick = next((lane for lane in done if choice and lane.attempt.number == int(choice.group(1))), None)
    if pick is None:
        said = f"the judge agent chose none of them ({_said(result)}): the first completed kept"
        return Verdict(done[0], said, spent)
    why = json.loads(f'"{reason.group(1)}"') if reason else "it gave no reason"
    return Verdict(pick, f"the judge agent chose it: {why}", spent)


def _said(result: AgentResult) -> str:
    return (result.message or result.text or "no answer").strip().splitlines()[0][:120] if result else "no answer"
