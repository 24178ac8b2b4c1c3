"""Every wait the tool makes, in one record: how long it waits for an answer, drains a pipe,
batches output, polls a file or a cluster, flushes what a run shows.

Each place that waits reads ``current()`` when it waits, never a constant of its own. The
defaults are the waits a user gets. ``$ORCHESTRATOR_TIMING`` changes any of them for a process and
the processes it starts, as ``answer_wait=2,drain=0.2`` (seconds, a comma between two): the test
suite runs the same paths on short clocks so, and an operator can give a slow cluster longer.
A bad value is one line naming it (``UsageError``); ``cli.main`` reads it before any command runs.
``$ORCHESTRATOR_DASK_TIMEOUT`` still sets ``dask_timeout`` alone, over this record.

These are waits, not decisions: how long a usage limit pauses a queue, a breaker stays open or a
window ramps after a 429 is the API's answer read by ``machine/policy`` and its neighbours, not here.
Nor are the bounds on a call that hangs (a look at a cluster, a crontab command, an agent CLI's
``--version``): they pass only when something is already wrong.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from dataclasses import dataclass

from orchestrator.errors import UsageError

VARIABLE = "ORCHESTRATOR_TIMING"


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds, each. Grouped by who waits."""

    # A run (run/runner, run/inflight/live).
    flush: float = 1.0  # between two flushes of a run's results and status blocks (longer for a big plan)
    tick: float = 1.0  # between two ticks of the reporter's clock (stuck attempts, a live view's timers)
    deadline_recheck: float = 30.0  # between two judgements of the deadlines while a task runs, one still to come
    live_poll: float = 0.25  # between two looks at the plan and the event log for what a run takes as it goes
    # An attempt on this machine (executors/local, groups, reaper).
    batch: float = 0.5  # between two reads of a pipe that had something to read (a worker: two batches sent)
    drain: float = 2.0  # a grandchild that left the group may keep writing this long after the leader's exit
    stop_poll: float = 0.02  # between two looks at process groups asked to stop
    orphan_poll: float = 0.2  # between two looks at a dead runner's attempts waited for (--wait-orphans)
    tell_every: float = 10.0  # between two lines saying what --wait-orphans still waits for
    # An attempt on a Dask cluster (executors/dask, daskworker, remote, placement; run/checks/cluster).
    dask_timeout: float = 10.0  # a scheduler has to answer, then to have a worker ($ORCHESTRATOR_DASK_TIMEOUT)
    cluster_first_poll: float = 0.5  # before the first look at an attempt's output queue
    cluster_poll: float = 0.25  # between two looks at it
    cluster_orphan_poll: float = 0.5  # between two looks at a dead runner's attempts waited for on the cluster
    cluster_stop_poll: float = 0.1  # between two looks at attempts asked to stop on the cluster
    worker_poll: float = 0.1  # a worker's look at an attempt's pipes and whether it is asked to stop
    announce: float = 1.0  # an attempt silent this long says which worker runs it
    no_worker_wait: float = 30.0  # an attempt waits at most this long for a worker that can run it
    placement_poll: float = 1.0  # between two looks at an attempt's key on the scheduler
    # Commands asking a run (run/inflight/requests, run/inflight/decisions, cli/queue, run/launch/spawned,
    # cli/watching, run/launch/background).
    answer_wait: float = 10.0  # cancel, retry, approve, reject wait this long for the run's answer (beyond kill grace)
    add_wait: float = 5.0  # `add` waits this long for the run going on to take its row
    interrupt_wait: float = 0.8  # a Ctrl-C'd `spawn` gives the run going on this long to answer its cancel
    request_poll: float = 0.1  # between two looks for a run's answer, or for the workspace's lock
    ask_poll: float = 0.2  # an agent's question (run/inflight/asking): between two looks for a person's answer
    follow_poll: float = 0.2  # between two looks of `spawn` and `watch` at what a run did
    start_wait: float = 15.0  # a background run is waited for this long to hold the workspace
    start_poll: float = 0.05  # between two looks at it
    # Notifications (run/notices/delivery).
    notify_timeout: float = 5.0  # a webhook has this long to answer
    notify_retry: float = 0.5  # before the first retry of a failed delivery (then twice as long, then four times)
    notify_drain: float = 5.0  # at the end of a run, what is still queued is waited for this long
    notify_digest: float = 60.0  # a row's items' failures: one notification a row at most this often
    notify_join: float = 1.0  # then a target's thread still delivering is waited for this long to end
    notify_poll: float = 0.1  # between two looks of a target's thread at its queue
    # master_plan.md (state/planfile, state/swap).
    plan_settle: float = 1.0  # a plan that changed into no plan is told only if it stays so this long
    late_quiet: float = 0.5  # a late save is left still this long before a run puts it back
    swap_settle: float = 0.005  # for a write into the file just swapped out
    # The dashboard and API (serve/).
    serve_poll: float = 0.25  # between two looks at the workspace's files and the event log
    ping: float = 15.0  # seconds of silence after which a stream sends a comment, so proxies keep it open
    stream_wake: float = 1.0  # a stream with nothing to send wakes this often to see whether the server stops
    serve_start_poll: float = 0.02  # between two looks at whether the server has started

    def replaced(self, text: str, source: str = VARIABLE) -> Timing:
        """This record with the waits ``text`` names (``name=seconds,...``); ``UsageError``, one
        line naming ``source``, for a name it has not or a value that is not a number of seconds."""
        changes: dict[str, float] = {}
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            name, equals, value = (piece.strip() for piece in item.partition("="))
            if name not in NAMES:
                import difflib  # (only for a mistake: not in every command's start-up)

                close = difflib.get_close_matches(name, NAMES, n=1)
                hint = f"did you mean {close[0]}?" if close else f"name one of: {', '.join(NAMES)}"
                raise UsageError(f"{source}: no wait named {name!r} — {hint}")
            if not equals:
                raise UsageError(f"{source}: {item!r} gives no value — write {name}=SECONDS, e.g. {name}=0.5")
            changes[name] = seconds(value, f"{source}: {name}")
        return dataclasses.replace(self, **changes)


NAMES = tuple(f.name for f in dataclasses.fields(Timing))
DEFAULT = Timing()


def seconds(value: str, what: str) -> float:
    """``value`` as a positive, finite number of seconds; else ``UsageError`` naming ``what``."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise UsageError(f"{what} is {value!r}, not a number of seconds above 0 — write it as 0.5, 2 or 30")
    return number


def current() -> Timing:
    """The waits of this process: the defaults, changed by ``$ORCHESTRATOR_TIMING``."""
    return _parsed(os.environ.get(VARIABLE, ""))


@functools.lru_cache(maxsize=8)
def _parsed(text: str) -> Timing:
    return DEFAULT.replaced(text) if text.strip() else DEFAULT
