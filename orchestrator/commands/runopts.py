"""``run``'s options, as data (``commands/table``'s, and what ``commands/starting`` gives the runner
it starts in the background): what it runs, its limits and parameters, how long it waits, where."""

from __future__ import annotations

from orchestrator.commands.options import DIRECTORY, Opt


def options() -> tuple[Opt, ...]:
    """``run``'s options: what it runs, its limits and parameters, how long it waits, where."""
    from orchestrator import backends

    return (
        DIRECTORY,
        Opt(
            "max_parallel",
            "at most N tasks at once (default 4, or the plan's)",
            kind="integer",
            flags=("--max-parallel",),
            metavar="N",
        ),
        Opt("only", "run just these tasks (their dependencies must be completed)", flags=("--only",), metavar="IDS"),
        Opt(
            "rerun",
            "run these tasks again for real; what is downstream of them runs too, reusing its cached result when "
            "their outputs come out the same",
            flags=("--rerun",),
            metavar="IDS",
        ),
        Opt("fail_fast", "start nothing new once a task has failed", kind="boolean", flags=("--fail-fast",)),
        Opt("backend", f"backend for tasks that do not name one ({backends.listing()})", flags=("--backend",)),
        Opt(
            "max_cost",
            "the run's budget in dollars: a forecast over it does not start; reached, the run starts nothing "
            "new and waits for `budget +USD`",
            kind="number",
            flags=("--max-cost",),
            metavar="USD",
        ),
        Opt(
            "over_forecast",
            "start though the forecast of what it runs is over max_cost (without it such a run does not start)",
            kind="boolean",
            flags=("--over-forecast",),
        ),
        Opt(
            "dry_run",
            "say what would run and what it is expected to cost (the forecast from the runs before); start "
            "nothing and write nothing",
            kind="boolean",
            flags=("--dry-run",),
        ),
        Opt(
            "aggregate",
            "how final_output.md is made (default concat)",
            flags=("--aggregate",),
            choices=("concat", "agent"),
        ),
        Opt(
            "param",
            "run with (kept for later runs) this value of a parameter the plan declares (repeatable)",
            kind="strings",
            flags=("--param",),
            metavar="NAME=VALUE",
            form="NAME=VALUE",
        ),
        Opt(
            "untrusted",
            "the --param values came from outside (a pull request, an issue, another program): data, never "
            "in an agent's instructions, this run's alone; SOURCE says where from (github, ci...)",
            flags=("--untrusted",),
            metavar="SOURCE",
            everywhere=False,  # (a program's values are untrusted always: run/launch/background says so)
        ),
        Opt(
            "read_only",
            "every agent task of this run gets Access: read, whatever its row says (a webhook's trigger "
            "with access: read starts its runs so)",
            kind="boolean",
            flags=("--read-only",),
        ),
        *_where(),
    )


def _where() -> tuple[Opt, ...]:
    """``run``'s options of how long it waits, and where its attempts run."""
    from orchestrator.commands import words
    from orchestrator.executors import registry as executors

    return (
        Opt(
            "wait",
            "stay up while tasks wait for a person (an Approval gate, a Blocked cell): take each word as it is "
            "given (approve, reject, update, the dashboard) and end once nothing is left to do or wait for",
            kind="boolean",
            flags=("--wait",),
        ),
        Opt(
            "wait_timeout",
            "with --wait (implies it): wait for a person at most this long (90s, 30m, 2h), then end as a run "
            "without --wait does (exit 4)",
            flags=("--wait-timeout",),
            metavar="DURATION",
            read=words.positive_duration,
            form="a duration: 90s, 30m, 2h",
        ),
        Opt(
            "verbose",
            "tell each item of a row run per item as any task is told (without it: counted, a progress line "
            "every few seconds, the first failures told)",
            kind="boolean",
            flags=("--verbose",),
            everywhere=False,  # (what the command line prints: a program reads the events)
        ),
        Opt(
            "wait_orphans",
            "wait for attempts a dead runner left running instead of stopping them",
            kind="boolean",
            flags=("--wait-orphans",),
        ),
        Opt(
            "executor",
            f"where attempts run: {executors.described()}",
            flags=("--executor",),
            choices=tuple(executors.names()),
        ),
        Opt(
            "scheduler",
            "with --executor dask: the Dask scheduler (tcp://HOST:8786; default the plan's `scheduler`, "
            "else $ORCHESTRATOR_DASK_SCHEDULER)",
            flags=("--scheduler",),
            metavar="ADDRESS",
        ),
    )
