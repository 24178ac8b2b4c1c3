"""Shell completion: ``orchestrator completion bash|zsh|fish`` prints a script to source, and the
script asks ``orchestrator __complete WORDS...`` what may come next, as ``gh``, ``docker`` and
``kubectl`` do (cobra's ``__complete``).

What may come next is read from the command's own parser (its options, their choices) and from
the workspace (its task ids, for a ``TASK`` argument and for ``--after``/``--only``-like lists:
``T-01,T-0`` completes to ``T-01,T-02``; the tags, assignees and types its plan, archive and
history use): one Python answer for every shell, never a copy of the
command line in a shell script that drifts from it. A candidate a line on stdout; ``:files`` alone
asks the shell for its own completion of files and directories (a workspace, ``--details-file``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.cli.output import Commands, add_command, emit_json, find_workspace, looks_like_workspace
from orchestrator.state.plans import plan_of
from orchestrator.vocabulary import ExitCode, TaskStatus

if TYPE_CHECKING:
    from orchestrator.cli.commands import Parser

FILES = ":files"
SHELLS = ("bash", "zsh", "fish")
_ID_LISTS = {"after", "only", "rerun", "depends_on", "task"}  # options whose value is task ids (comma lists)
_FILE_VALUES = {"details_file", "dir"}
_TAGS = {"tag", "label", "untag"}  # options whose value is a tag (a label: the same Tags column)

BASH = r"""# orchestrator completion for bash. Load it in every shell (in ~/.bashrc):
#   source <(orchestrator completion bash)
_orchestrator_complete() {
    local IFS=$'\n' cur="${COMP_WORDS[COMP_CWORD]}"
    local -a found
    found=($("${COMP_WORDS[0]}" __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)) || return 0
    if [[ "${found[0]}" == ":files" ]]; then
        compopt -o filenames 2>/dev/null
        found=($(compgen -f -- "$cur"))
    fi
    COMPREPLY=("${found[@]}")
}
complete -F _orchestrator_complete orchestrator
"""

ZSH = r"""#compdef orchestrator
# orchestrator completion for zsh. Load it in every shell (in ~/.zshrc, after compinit):
#   source <(orchestrator completion zsh)
_orchestrator() {
    local -a found
    found=("${(@f)$(${words[1]} __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    if [[ "${found[1]}" == ":files" ]]; then
        _files
    elif [[ -n "${found[1]}" ]]; then
        compadd -Q -- "${found[@]}"
    fi
}
compdef _orchestrator orchestrator
"""

FISH = r"""# orchestrator completion for fish. Load it in every shell:
#   orchestrator completion fish > ~/.config/fish/completions/orchestrator.fish
function __orchestrator_complete
    set -l words (commandline -opc)
    set -l found ($words[1] __complete -- $words[2..-1] (commandline -ct) 2>/dev/null)
    if test "$found[1]" = ":files"
        __fish_complete_path (commandline -ct)
    else
        printf '%s\n' $found
    end
end
complete -c orchestrator -f -a '(__orchestrator_complete)'
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH, "fish": FISH}


def cmd_completion(args: argparse.Namespace) -> int:
    script = SCRIPTS[args.shell]
    if args.json:
        emit_json({"ok": True, "shell": args.shell, "script": script})
    else:
        sys.stdout.write(script)
    return ExitCode.OK


def complete(words: list[str]) -> int:
    """``orchestrator __complete [--] WORDS...``: what may come after ``orchestrator WORDS[:-1]``
    and start with ``WORDS[-1]``, a line each. Never an error: a shell shows nothing instead."""
    if words[:1] == ["--"]:
        words = words[1:]
    try:
        found = candidates(words or [""])
    except Exception:  # a half-typed command line, a plan that does not parse: nothing to offer
        found = []
    sys.stdout.write("".join(f"{word}\n" for word in found))
    return ExitCode.OK


def _starting(current: str, offered: Iterable[str]) -> list[str]:
    return [word for word in dict.fromkeys(offered) if word.lower().startswith(current.lower())]


def candidates(words: list[str]) -> list[str]:
    """What may complete ``words[-1]`` after ``words[:-1]`` (``[":files"]``: the shell's files)."""
    from orchestrator.cli.commands import HOME, build_parser

    *before, current = words
    while before and before[0].startswith("-"):  # (`orchestrator --json status`)
        before.pop(0)
    if not before:
        if current.startswith("-"):
            return _starting(current, ["--json", "--help", "--version"])
        return _starting(current, HOME)
    command, rest = before[0], before[1:]
    if command not in HOME:
        return []
    parser = build_parser(command).command(command)
    if rest and rest[-1] == "=" and len(rest) > 1:  # bash splits `--after=T-0` at the '='
        rest = rest[:-1]
    elif current.startswith("--") and "=" in current:  # zsh and fish keep it whole
        option, _, value = current.partition("=")
        return [f"{option}={word}" for word in _value(parser, option, value, rest)]
    if rest and rest[-1].startswith("-") and _takes_value(parser, rest[-1]):
        return _value(parser, rest[-1], current, rest)
    if current.startswith("-"):
        return _starting(current, _options(parser))
    return _positional(parser, command, _positionals(parser, rest), current, rest)


def _action(parser: Parser, option: str) -> argparse.Action | None:
    return next((a for a in parser.given if option in a.option_strings), None)


def _takes_value(parser: Parser, option: str) -> bool:
    action = _action(parser, option)
    return action is not None and action.nargs != 0


def _options(parser: Parser) -> list[str]:
    return [
        option
        for action in parser.given
        if action.help != argparse.SUPPRESS
        for option in action.option_strings
        if option.startswith("--") or option == "-h"
    ]


def _positionals(parser: Parser, rest: list[str]) -> list[str]:
    """The words of ``rest`` that are positional arguments (not options, nor an option's value)."""
    found: list[str] = []
    value_next = False
    for word in rest:
        if value_next:
            value_next = False
        elif word.startswith("-") and word != "-":
            value_next = "=" not in word and _takes_value(parser, word)
        else:
            found.append(word)
    return found


def _value(parser: Parser, option: str, current: str, rest: list[str]) -> list[str]:
    """What may be the value of ``option``."""
    action = _action(parser, option)
    if action is None:
        return []
    if action.choices is not None:
        return _starting(current, (str(choice) for choice in action.choices))
    if isinstance(action.metavar, str) and "|" in action.metavar:  # what a person may set: blocked|pending
        return _starting(current, action.metavar.split("|"))
    if action.dest in _ID_LISTS:
        head, comma, last = current.rpartition(",")
        given = {word.lower() for word in head.split(",")}
        ids = [task for task in _task_ids(_positionals(parser, rest)) if task.lower() not in given]
        return [f"{head}{comma}{task}" for task in _starting(last, ids)]
    if action.dest == "backend":
        from orchestrator import backends

        return _starting(current, backends.names())
    if action.dest == "status":  # (list's filter: the states, and the words for more than one)
        return _starting(current, [*(status.value for status in TaskStatus), "ready", "open"])
    if action.dest == "priority":
        from orchestrator.commands.words import PRIORITIES

        return _starting(current, PRIORITIES)
    if action.dest == "assignee":
        words = _positionals(parser, rest)
        return _starting(current, [*_profiles(words), *_in_plan(words, "assignee")])
    if action.dest in _TAGS:
        return _starting(current, _tags(parser.prog.split()[-1], action.dest, _positionals(parser, rest)))
    if action.dest == "type":
        return _starting(current, _in_plan(_positionals(parser, rest), "type"))
    if action.dest in _FILE_VALUES or (isinstance(action.metavar, str) and action.metavar.endswith("FILE")):
        return [FILES]
    return []


def _positional(parser: Parser, command: str, given: list[str], current: str, rest: list[str]) -> list[str]:
    """What may be the next positional argument: task ids where the command takes a task (and
    the shell's files when none matches: a workspace), files where it takes a workspace."""
    action = next((a for a in parser.given if not a.option_strings), None)
    if action is None:
        return []
    if action.choices is not None:  # (completion bash)
        return _starting(current, (str(choice) for choice in action.choices)) if not given else []
    if action.dest == "directory":
        return [FILES] if not given else []
    slots, words = str(action.metavar or action.dest).split(), given
    if slots[:1] == ["[DIR]"]:
        slots = slots[1:]
        if given and looks_like_workspace(given[0]):
            given = given[1:]
    many = action.dest == "tasks" or slots[-1:] == ["[ID...]"]  # reset T-01 T-02..., archive ID...
    slot = slots[len(given)] if len(given) < len(slots) else (slots[-1] if many and slots else "")
    if slot == "[prune]":
        return _starting(current, ["prune"]) or [FILES]
    if "TASK" in slot or "ID" in slot:
        taken = {word.lower() for word in given}
        ids = [task for task in _task_ids(words) if task.lower() not in taken]
        if slot == "[TASK]" and not given and not current:  # (`status [DIR] [TASK]`: a workspace first)
            return [FILES]
        return _starting(current, ids) or ([FILES] if not given else [])
    return []


def _workspace_in(given: list[str]) -> str | None:
    return next((word for word in given if looks_like_workspace(word)), None)


def _task_ids(given: list[str]) -> list[str]:
    """The task ids of the workspace the command line names (or the one here), in plan order."""
    return list(plan_of(find_workspace(_workspace_in(given))).tasks)


def _in_plan(given: list[str], what: str) -> list[str]:
    """The assignees (profiles and free labels) or the types the workspace's tasks name, archived
    ones too, sorted."""
    plan = plan_of(find_workspace(_workspace_in(given)))
    if what == "type":
        return sorted(plan.types)
    tasks = [*plan.tasks.values(), *(entry.task for entry in plan.archived.values())]
    return sorted({task.profile for task in tasks if task.profile})


def _tags(command: str, dest: str, given: list[str]) -> list[str]:
    """The tags ``--tag``/``--label`` may name: those of the plan's tasks, archived ones and the
    labels ``spawn`` gave (``history --label`` finds them); for ``update TASK``, ``--untag`` the
    task's own and ``--tag`` the others."""
    from orchestrator.state import events
    from orchestrator.state.events.tasks import TaskSpawned

    workspace = find_workspace(_workspace_in(given))
    plan = plan_of(workspace)
    task = next((plan.tasks[t] for word in reversed(given) for t in plan.tasks if t.lower() == word.lower()), None)
    if command == "update" and task is not None:
        own = {tag.lower() for tag in task.tags}
        if dest == "untag":
            return list(task.tags)
    else:
        own = set()
    found = [tag for t in (*plan.tasks.values(), *(e.task for e in plan.archived.values())) for tag in t.tags]
    if command == "history":
        for event in events.read_all(workspace.events_file):
            if isinstance(event, TaskSpawned) and isinstance(event.labels, tuple):
                found.extend(str(label) for label in event.labels)
    return sorted({tag.lower(): tag for tag in found if tag.lower() not in own}.values(), key=str.lower)


def _profiles(given: list[str]) -> list[str]:
    """The specialist profiles (``agents/NAME.md``) the workspace's tasks may name."""
    from orchestrator.plan.config.profiles import search_dirs

    workspace = find_workspace(_workspace_in(given))
    return sorted({path.stem for directory in search_dirs(workspace.root) for path in _markdown(directory)})


def _markdown(directory: Path) -> list[Path]:
    try:
        return sorted(directory.glob("*.md"))
    except OSError:
        return []


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "completion",
        cmd_completion,
        "print the shell completion script for bash, zsh or fish (commands, options, task ids)",
        json_help="print one JSON object: the shell and the script",
    )
    p.add_argument("shell", choices=SHELLS, help="the shell: bash, zsh or fish")
