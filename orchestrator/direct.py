"""A shell script that is one plain command runs without the shell, as bash itself would run it.

``bash -e -c 'pytest -q tests'`` parses the line, finds ``pytest`` on ``$PATH`` and execs it in
place of itself: the process that runs is the command, with bash's environment. Starting bash
first costs more CPU than a short command itself (about 0.7 ms a task here), so when a script is
nothing but words — no quoting, expansion, redirection, pipes, lists or assignments — and its
command is a program rather than a shell built-in, the runner execs that program itself, with the
environment bash would have given it (``PWD``, ``_`` and ``SHLVL`` as bash sets them). GNU make
has done the same for decades.

Anything else goes to bash as written, and so does this command whenever the environment could
change what bash does before the exec (``BASH_ENV``, exported functions, shell options), when
``$PATH`` has relative entries, or when the program cannot be found or executed (bash then
reports it in its own words).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import lru_cache
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
# Built-ins whose program does the very same thing: `true` and `false` ignore their arguments
# (the programs answer --help and --version, so only the bare word counts).
_SAME_AS_PROGRAM = frozenset({"true", "false"})

# Variables that change what bash does before it runs the command: a startup file, exported
# functions (which may shadow the command), shell options (xtrace prints the command first),
# POSIX mode and the PATH search's exclusions.
_BASH_ENVIRONMENT = frozenset({"BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "POSIXLY_CORRECT", "EXECIGNORE"})


def simple_command(script: str) -> tuple[str, ...] | None:
    """The words of ``script`` when it is one plain command of a program; ``None`` otherwise."""
    line = script.strip(" \t")
    if not line or "\n" in line:
        return None
    words = tuple(_SPACE.split(line))
    if not all(_PLAIN_WORD.fullmatch(word) for word in words):
        return None
    name = words[0]
    if "=" in name:  # an assignment, or a word bash would take for one
        return None
    if name in _SHELL_WORDS and not (name in _SAME_AS_PROGRAM and len(words) == 1):
        return None
    return words


def direct_launch(words: tuple[str, ...], env: Mapping[str, str], cwd: Path) -> tuple[str, dict[str, str]] | None:
    """The program bash would exec for ``words`` in ``cwd`` and the environment it would give
    it (the argv is ``words`` itself: bash passes the command as typed, not the path it found);
    ``None`` when bash has to run it (see the module's doc)."""
    if any(key in _BASH_ENVIRONMENT or key.startswith("BASH_FUNC_") for key in env):
        return None
    name = words[0]
    if "/" in name:
        program = name  # bash execs it as given, relative to the working directory
    else:
        found = _search(name, env.get("PATH"))
        if found is None:
            return None
        program = found
    exec_env = dict(env)
    exec_env["PWD"] = _working_directory(str(cwd), env.get("PWD"))
    exec_env["_"] = program
    if "SHLVL" not in exec_env:  # bash starts at 1 and takes one back for the exec
        exec_env["SHLVL"] = "0"
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
        candidate = f"{directory}/{name}"
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


@lru_cache(maxsize=64)
def _working_directory(cwd: str, inherited: str | None) -> str:
    """``$PWD`` as bash sets it at start: the inherited value when it names the working directory
    (a path through a symlink stays), else the physical path."""
    physical = os.path.realpath(cwd)
    if inherited and inherited.startswith("/"):
        try:
            if os.path.samefile(inherited, physical):
                return inherited
        except OSError:
            pass
    return physical
