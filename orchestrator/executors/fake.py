"""``FakeExecutor``: attempts that run no process, for tests and demos, as httpx ships ``MockTransport``.

Each attempt gets a ``Reply``: what a process would have written and how it would have ended.
Replies come from a function of the launch, or a mapping from task id to one reply or a list (one
per attempt; the last one repeats); a task without one gets a made-up success in the format its
command speaks (its backend's: ``Launch.simulate``, else text), ending, for a task that declares
its Output fields, with a JSON object of them: a value of each declared type (``MADE_UP``), and
``"simulated": true``, so that what reads them downstream (a Condition) can be rehearsed too.
Everything it writes says it is fake: the first line of each log is ``FAKE_BANNER``, the answer
says ``[simulated]``, and the ``ProcessRun`` it returns is ``simulated``, which the runner writes
into the result's frontmatter (``simulated: true``) and body.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import anyio

from orchestrator.executors.base import Executor, Launch, LineCallback, ProcessRun, StartCallback
from orchestrator.executors.capabilities import Capabilities, Setup

FAKE_BANNER = "[fake executor: no process ran; this output is made up]"


@dataclass(frozen=True, slots=True)
class Reply:
    """What one simulated attempt does."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    delay: float = 0.0  # seconds it "runs"
    timed_out: str | None = None  # "timeout" or "inactivity"
    start_error: str | None = None


Replies = Callable[[Launch], Reply] | Mapping[str, Reply | Sequence[Reply]]


# The value a made-up answer gives a field of each type an Output cell may declare
# (``plan/table/conditions.FIELD_TYPES``): of the declared shape, and plainly no finding.
MADE_UP: dict[str, object] = {
    "str": "[simulated]",
    "string": "[simulated]",
    "int": 0,
    "integer": 0,
    "number": 0,
    "float": 0.0,
    "bool": False,
    "boolean": False,
    "list": [],
    "array": [],
    "object": {},
}


def made_up_fields(outputs: Sequence[tuple[str, str]]) -> dict[str, object]:
    """The fields a made-up answer holds: each declared one with a value of its type, and
    ``simulated``: true (unless a field of that name is declared)."""
    fields: dict[str, object] = {"simulated": True}
    fields.update({name: MADE_UP.get(kind, "[simulated]") for name, kind in outputs})
    return fields


def _default(launch: Launch) -> Reply:
    """A made-up success, in the output format of the command the launch would have run
    (``Launch.simulate``: its backend's, so that an agent's backend reads it as a finished agent),
    plain text for anything else; its last line the declared Output fields, made up. No cost and
    no tokens: none were spent."""
    text = f"[simulated] {launch.task} attempt {launch.attempt}: no agent ran; this text is made up."
    if launch.outputs:
        text += "\n" + json.dumps(made_up_fields(launch.outputs))
    if launch.simulate is None:
        return Reply(stdout=text + "\n")
    return Reply(stdout=launch.simulate(text, f"fake-{launch.task}-{launch.attempt}"))


class FakeExecutor(Executor):
    """Runs nothing. ``launches`` lists every launch it was given, in order (``record``: kept; the
    executor of `run --executor fake`, which no one asks, keeps none: each launch holds its whole
    environment, some 25 MB for a run of 10,000 tasks)."""

    name = "fake"
    can = Capabilities(simulated=True)

    def __init__(self, replies: Replies | None = None, *, record: bool = True) -> None:
        self.replies = replies
        self.record = record
        self.launches: list[Launch] = []

    @classmethod
    def made(cls, setup: Setup) -> FakeExecutor:
        """The executor of `run --executor fake`: it keeps no list of its launches."""
        return cls(record=False)

    def reply(self, launch: Launch) -> Reply:
        replies = self.replies
        if replies is None:
            return _default(launch)
        if callable(replies):
            return replies(launch)
        found = replies.get(launch.task)
        if found is None:
            return _default(launch)
        if isinstance(found, Reply):
            return found
        return found[min(launch.attempt, len(found)) - 1] if found else _default(launch)

    async def run(
        self, launch: Launch, *, on_start: StartCallback | None = None, on_line: LineCallback | None = None
    ) -> ProcessRun:
        if self.record:
            self.launches.append(launch)
        reply = self.reply(launch)
        if reply.start_error:
            return ProcessRun(None, None, 0.0, start_error=reply.start_error, simulated=True)
        began = anyio.current_time()
        if on_start is not None:
            on_start({"fake": True})
        counts = []
        for path, text in ((launch.stdout, reply.stdout), (launch.stderr, reply.stderr)):
            path.unlink(missing_ok=True)
            if text:
                path.write_text(f"{FAKE_BANNER}\n{text}", encoding="utf-8")
            counts.append(len(text.encode()))
        if on_line is not None:
            for line in reply.stdout.splitlines():
                on_line(line.encode())
        if reply.delay:
            await anyio.sleep(reply.delay)
        return ProcessRun(
            reply.exit_code if not reply.timed_out else None,
            None,
            anyio.current_time() - began,
            timed_out=reply.timed_out,
            stdout_bytes=counts[0],
            stderr_bytes=counts[1],
            simulated=True,
        )
