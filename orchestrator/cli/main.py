"""The command line: a thin shell over the library. ``main(argv) -> exit code``.

Each command lives beside its kind (``plans``, ``running``, ``skill``); this module puts them in
one parser and turns what they raise into one line and an exit code (``vocabulary.ExitCode``):
0 ok (``status``, ``graph`` and ``aggregate`` whatever the tasks' states); 1 ``run`` had a task
fail or be skipped, or the one agent call of ``plan`` or ``aggregate --agent`` failed, or
``merge`` met a conflict (nothing changed), or ``output`` found no completed result; 2 bad plan
or usage, a workspace file the system refuses, or git refusing what a worktree or ``merge``
needed; 3 another run, render, reset, aggregate, plan, merge or prune holds the workspace; 4 ``run``
left tasks waiting for a person; 130 interrupted (cli-integration.md's "Exit codes" says them all).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from orchestrator.cli.commands import HOME, BadArguments, build_parser
from orchestrator.errors import OrchestratorError, PlanError, UsageError, internal, interrupted, workspace_error_from
from orchestrator.version import __version__
from orchestrator.vocabulary import ExitCode, counted


def main(argv: Sequence[str] | None = None) -> int:
    words = _json_after_command(list(sys.argv[1:] if argv is None else argv))
    if words[:1] == ["--version"]:  # (as argparse prints it, without importing a command to build the parser)
        sys.stdout.write(f"orchestrator {__version__}\n")
        return ExitCode.OK
    if words[:1] == ["__complete"]:  # what a completion script asks at each Tab (cli.completion)
        from orchestrator.cli.completion import complete

        return complete(words[1:])
    command = words[0] if words and not words[0].startswith("-") else None
    parser = build_parser(command, listing=not any(word in HOME for word in words))
    try:
        args = parser.parse_args(words)
    except BadArguments as exc:
        as_json = "--json" in words[: words.index("--")] if "--" in words else "--json" in words
        if not as_json:
            sys.stderr.write(exc.usage)
        _report_error(UsageError(exc.message), as_json)
        return ExitCode.USAGE
    try:
        from orchestrator import redaction, timing

        timing.current()  # a bad $ORCHESTRATOR_TIMING is one line before the command starts anything
        redaction.reset()  # the secrets of the environment it starts in; its plan's patterns once read
        return int(args.handler(args))
    except OrchestratorError as exc:
        _report_error(exc, getattr(args, "json", False))
        return exc.exit_code
    except OSError as exc:  # a file it needs: unwritable workspace, full disk, a file in the way
        if isinstance(exc, BrokenPipeError):
            return ExitCode.OK
        error = workspace_error_from(exc)
        if error is None:  # (no file named: a defect of ours)
            return _defect(exc, args)
        _report_error(error, getattr(args, "json", False))
        return error.exit_code
    except (KeyboardInterrupt, RuntimeError) as exc:  # (a Ctrl-C as a lazy import made a class: a RuntimeError)
        if not interrupted(exc):
            return _defect(exc, args)
        from orchestrator.cli.output import warn

        warn("interrupted")
        return ExitCode.INTERRUPTED
    except Exception as exc:  # a defect of ours: one line, the traceback kept
        return _defect(exc, args)


def _defect(exc: BaseException, args: object) -> int:
    """A defect of ours as one line (``InternalError``, exit 70), its traceback in ``errors.log``;
    with ``$ORCHESTRATOR_DEBUG`` set, raised as it is, for a developer."""
    if os.environ.get("ORCHESTRATOR_DEBUG"):
        raise exc
    error = internal(exc)
    _report_error(error, getattr(args, "json", False))
    return error.exit_code


def _json_after_command(words: list[str]) -> list[str]:
    """``orchestrator --json status`` as ``orchestrator status --json``: every command takes
    ``--json``, and scripts put it first as often as last (``gh``, ``kubectl`` take both)."""
    lead = 0
    while lead < len(words) and words[lead] == "--json":
        lead += 1
    if lead and lead < len(words) and not words[lead].startswith("-"):
        return [*words[lead:], "--json"]
    return words


def entry() -> NoReturn:
    """The console script and ``python -m orchestrator``: ``main``, then exit at once.

    Once the command is done and its output flushed, nothing is left for the interpreter's
    shutdown to do but free every object one by one and run no handler of ours: after a run of
    1,000 tasks that took as long as 30 tasks' work. ``os._exit`` skips it, unless a tracer or
    profiler is installed (coverage, cProfile, a debugger), which writes its data at exit. ``main``
    itself returns normally, for callers that run it in-process.
    """
    code = main()
    if _observed():
        sys.exit(code)  # coverage, a profiler or a debugger: let it write what it gathered at exit
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # a reader that went away, or a closed stream
        pass
    os._exit(code)


def _observed() -> bool:
    """Whether a tracer or profiler watches this process (``sys.settrace``/``setprofile``, or a
    ``sys.monitoring`` tool on Python 3.12+, as coverage uses there)."""
    if sys.gettrace() is not None or sys.getprofile() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)
    return monitoring is not None and any(monitoring.get_tool(tool) is not None for tool in range(6))


def _report_error(exc: OrchestratorError, as_json: bool) -> None:
    from orchestrator.cli.output import emit_json, warn

    problems = exc.problems if isinstance(exc, PlanError) else []
    if as_json:
        emit_json(exc.as_json())
    warn(str(exc))
    if problems:
        warn(f"{counted(len(problems), 'problem')}; nothing was written.")
