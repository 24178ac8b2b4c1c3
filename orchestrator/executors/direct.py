"""A shell script that is one plain command runs without the shell, as bash itself would run it.

``bash -e -c 'pytest -q tests'`` parses the line, finds ``pytest`` on ``$PATH`` and execs it in
place of itself: the process that runs is the command, with bash's environment. Starting bash
first costs more CPU than a short command itself (about 0.7 ms a task here), so when a script is
nothing but words — no quoting, expansion, redirection, pipes, lists or assignments — and its
command is a program rather than a shell built-in, the runner execs that program itself, with the
environment bash would have given it (``PWD``, ``_`` and ``SHLVL`` as bash sets them). GNU make
has done the same for decades.

Anything else goes to bash as written, and so does this command whenever the environment could
change what bash does before the exec (``BASH_ENV``, exported functions, shell options) or holds
a variable bash would set anew (``IFS``, ``PPID``, ...; a test sets each of bash's own variables
in turn), when ``$PATH`` has relative entries, or when the program cannot be found or executed
(bash then reports it in its own words). Only ``LocalExecutor`` uses it: another executor is
given the bash command line as before.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path

# A word bash passes through unchanged: no quotes, $, globs, ~, #, braces, backslash or operators.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./:,+@%=-]+")
_SPACE = re.compile(r"[ \t]+")

# Reserved words and built-ins (bash 5.2's `compgen -k` and `compgen -b`): bash runs these itself.
_BASH_WORDS = (
    "if then else elif fi case esac for select while until do done in function time { } ! [[ ]] coproc "
    ". : [ alias bg bind break builtin caller cd command compgen complete compopt continue declare "
    "dirs disown echo enable eval exec exit export false fc fg getopts hash help history jobs kill "
    "let local logout mapfile popd printf pushd pwd read readarray readonly return set shift shopt "
    "source suspend test times trap true type typeset ulimit umask unalias unset wait"
)
_SHELL_WORDS = frozenset(_BASH_WORDS.split())
# Built-ins whose system program does the very same thing: `true` and `false` ignore their
# arguments (the programs answer --help and --version, so only the bare word counts), and only
# the system's own (/bin, /usr/bin) stand in for the built-in, never another one found first.
_SAME_AS_PROGRAM = frozenset({"true", "false"})
_SYSTEM_DIRS = frozenset({"/bin", "/usr/bin"})

# Variables that change what bash does before it runs the command (a startup file, exported
# functions that may shadow the command, shell options such as xtrace, POSIX mode, the PATH
# search's exclusions), or that bash sets, resets or drops when it starts, so that the command
# would see another value (bash 5.2, found by running it with each of its own variables set).
_BASH_ENVIRONMENT = frozenset(
    {"BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "POSIXLY_CORRECT", "POSIX_PEDANTIC", "EXECIGNORE"}
    | {"BASH", "BASH_VERSION", "BASH_VERSINFO", "BASH_EXECUTION_STRING", "BASH_COMMAND", "BASH_ARGV0"}
    | {"BASHPID", "BASH_SUBSHELL", "BASH_COMPAT", "BASH_XTRACEFD", "COMP_WORDBREAKS", "HISTCMD", "LINENO"}
    | {"PPID", "IFS", "OPTIND", "OPTERR", "PS4", "RANDOM", "SRANDOM", "EPOCHSECONDS", "EPOCHREALTIME"}
)
_DROPPED = ("PS1", "PS2")  # a shell that is not interactive unsets its prompts
# bash warns on stderr when it cannot set LC_ALL's locale; these it always can.
_SURE_LOCALES = frozenset({"C", "POSIX", "C.UTF-8", "C.utf8"})
_SHLVL = re.compile(r"0|[1-9][0-9]{0,2}")  # a level bash keeps as it is (it normalises others)


def simple_command(script: str) -> tuple[str, ...] | None:
    """The words of ``script`` when it is one plain command of a program; ``None`` otherwise."""
    line = script.strip(" \t")
    if not line or "\n" in line:
        return None
    words = tuple(_SPACE.split(line))
    if not all(_PLAIN_WORD.fullmatch(word) for word in words):
        return None
    name = words[0]
    if "=" in name or name.startswith("%"):  # an assignment (or what bash takes for one); a job (fg)
        return None
    if name in _SHELL_WORDS and not (name in _SAME_AS_PROGRAM and len(words) == 1):
        return None
    return words


def direct_launch(words: tuple[str, ...], env: Mapping[str, str], cwd: Path) -> tuple[str, dict[str, str]] | None:
    """The program bash would exec for ``words`` in ``cwd`` and the environment it would give
    it (the argv is ``words`` itself: bash passes the command as typed, not the path it found);
    ``None`` when bash has to run it (see the module's doc)."""
    # Set operations and one joined string rather than a loop over the keys: a third of the cost.
    if not _BASH_ENVIRONMENT.isdisjoint(env) or "\0BASH_FUNC_" in "\0" + "\0".join(env):
        return None
    level = env.get("SHLVL")
    if level is not None and not (_SHLVL.fullmatch(level) and int(level) < 999):
        return None
    if env.get("LC_ALL", "C") not in _SURE_LOCALES:
        return None
    name = words[0]
    if "/" in name:
        program = name  # bash execs it as given, relative to the working directory
    else:
        found = _search(name, env.get("PATH"))
        if found is None or (name in _SAME_AS_PROGRAM and os.path.dirname(found) not in _SYSTEM_DIRS):
            return None
        program = found
    exec_env = dict(env)
    exec_env["PWD"] = _working_directory(str(cwd), env.get("PWD"))
    exec_env["_"] = program
    if level is None:  # bash starts at 1 and takes one back for the exec
        exec_env["SHLVL"] = "0"
    old = env.get("OLDPWD")
    if old is not None and not os.path.isdir(old):  # bash drops an OLDPWD that is no directory
        del exec_env["OLDPWD"]
    for name in _DROPPED:
        exec_env.pop(name, None)
    return program, exec_env


def _search(name: str, path: str | None) -> str | None:
    """The first executable file called ``name`` on ``path``, as bash's search finds it; ``None``
    when there is none, or when ``path`` is missing or has relative entries (those are relative
    to the task's directory, and bash reports a failed search better)."""
    if not path:
        return None
    for directory in path.split(":"):
        if not directory.startswith("/"):
            return None
        candidate = f"{directory}{name}" if directory.endswith("/") else f"{directory}/{name}"
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


@functools.lru_cache(maxsize=16)
def _working_directory(cwd: str, inherited: str | None) -> str:
    """``$PWD`` as bash sets it at start: the inherited value when it names the working directory
    (a path through a symlink stays), else the physical path.

    Remembered: a run asks this for every task with the same two paths, and resolving them is a
    third of the work of a direct launch. (Re-pointing a symlink on the path to a task's directory
    while the runner runs is not followed.)"""
    physical = os.path.realpath(cwd)
    if inherited and inherited.startswith("/"):
        try:
            if os.path.samefile(inherited, physical):
                return inherited
        except OSError:
            pass
    return physical
