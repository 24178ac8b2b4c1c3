"""What the programs a script runs do with the words they are given: the project's own list.

A value from outside may stand in a script only as one data word handed to a program that does
not run it (``plan/config/allowlist``). Which programs run an argument, an option's operand or
their input as code is a fact about each program, not about bash, so it is a list, and this is
it. A program that is not on it takes its arguments as data; one that is takes a value only in
the positions said here:

- **code runners** (``eval``, ``source``, ``trap``, ``ssh``, ``watch``, ``make``, package
  managers...): a value in none of their arguments.
- **interpreters** (shells, Python, Node, Perl, awk, sed, jq...): a value in none of the words
  up to and including the program they run (``-c CODE``, ``-e CODE``, ``-m MODULE``, a script's
  path, awk's program), and anywhere after it, as that program's arguments. One given no
  program reads it from its input: a value piped or fed there runs (``reads_input_as_code``).
- **launchers** (``env``, ``sudo``, ``timeout``, ``xargs``, ``nice``...): a value in none of
  their own words, since any of them could change which word is the program; the program that
  follows is judged as if it stood alone.
- **programs whose options run code** (``git``, ``tar``, ``find``, ``rsync``, ``sort``, ``curl``...):
  a value in a word of its own could be read as an option (``--upload-pack=...``), so it stands
  only after ``--``, as the operand of one of their data options (``git commit -m``), or glued
  behind a literal that is no option (``refs/heads/$V``, ``--message=$V``); never in one of their
  options that run code (``git -c``, ``find -exec``, ``tar --to-command``).
- **builtins that take a variable's name** (``read``, ``printf -v``, ``test -v``, ``unset``,
  ``declare``...): bash evaluates a name's subscript, so a value is no name.

``Word`` is what the judge knows of one word: its text when the script fixes it, the literal it
starts with, whether it holds a value. ``call`` judges the word at ``at`` of a command.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.plan.config.programlist import (
    CODE_RUNNERS,
    FIND_DATA,
    FIND_RUNS,
    GIT_DATA_KEYS,
    GIT_RUNS,
    INPUT_RUNNERS,
    INTERPRETERS,
    JQ_PAIRS,
    LAUNCHERS,
    NAME_TAKERS,
    OPTIONED,
    OPTIONED_ALIASES,
    PACKAGE_MANAGERS,
    SHELLS,
    STDIN_PATHS,
    base,
    interpreter,
)


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a command: ``text`` when the script fixes it (quotes removed), else None;
    ``head``, the literal it starts with (before any expansion); ``value``, whether a value from
    outside is in it; ``script``: the code bash would run if the word were a shell's program."""

    text: str | None
    head: str = ""
    value: bool = False

    @property
    def literal(self) -> bool:
        return self.text is not None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a program does with one of its words: data (``why`` None), or refused, with why and
    the fix. ``inner``: a shell program (the text of ``bash -c '...'``) whose positional
    parameters the value becomes: it is data only if that program uses them as data."""

    why: str | None = None
    fix: str = ""
    inner: str | None = None


DATA = Verdict()

FIX_CODE = (
    "pass the value to that program as an argument or read it from the environment there, e.g. "
    "bash -c 'echo \"$1\"' _ {{ params.x }}, or $ORCHESTRATOR_PARAM_X in the script it runs"
)
FIX_OPTION = (
    "put -- before it, or a literal in front of it in the same word (./{{ params.x }}, "
    "refs/heads/{{ params.x }}, --message={{ params.x }}), so it can never be read as an option"
)
FIX_NAME = "give the value to a variable (X={{ params.x }}) and use $X as data; a value is never a variable's name"
FIX_PROGRAM = "name the program in the script, and give the value to it as an argument"
FIX_PROGRAM_DATA = (
    'give it as data: awk -v v="$ORCHESTRATOR_PARAM_X", jq --arg v "$ORCHESTRATOR_PARAM_X", '
    'or read ENVIRON["ORCHESTRATOR_PARAM_X"] (awk), env.ORCHESTRATOR_PARAM_X (jq)'
)


def _refused(why: str, fix: str = FIX_CODE) -> Verdict:
    return Verdict(why, fix)


@dataclass(frozen=True, slots=True)
class Command:
    """A command's words, with the launchers in front of its program stepped over: ``start`` is
    where its program's name is (None: the launchers' words did not say), ``runners`` the
    launchers passed (a value in their words is refused)."""

    words: Sequence[Word]
    start: int | None
    launchers: tuple[str, ...] = ()

    @property
    def name(self) -> str | None:
        if self.start is None or self.start >= len(self.words):
            return None
        text = self.words[self.start].text
        return base(text) if text is not None else None


def resolve(words: Sequence[Word], start: int = 0) -> Command:
    """Where the program of the command ``words`` is, past its launchers (``env X=1 nice -n 5 prog``)."""
    launchers: list[str] = []
    i = start
    while i < len(words):
        text = words[i].text
        name = base(text) if text is not None else None
        if name not in LAUNCHERS or name is None:
            return Command(words, i, tuple(launchers))
        if name == "command" and any(w.text in ("-v", "-V") for w in words[i + 1 : i + 2]):
            return Command(words, i, tuple(launchers))  # (command -v NAME looks NAME up, runs nothing)
        launchers.append(name)
        takes, operands, code = LAUNCHERS[name]
        i += 1
        while i < len(words):
            word = words[i].text
            if word is None:
                return Command(words, None, tuple(launchers))
            if word == "--":
                i += 1
                break
            if name == "env" and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word):
                i += 1
                continue
            if not word.startswith("-") or word == "-":
                break
            if word in code or word.split("=", 1)[0] in code:
                return Command(words, None, tuple(launchers))
            i += 2 if word in takes else 1
        i += operands
        if i < len(words) and words[i].text in code:  # (flock FILE -c CMD)
            return Command(words, None, tuple(launchers))
    return Command(words, None, tuple(launchers))


def call(words: Sequence[Word], at: int, *, functions: frozenset[str] = frozenset()) -> Verdict:
    """What the command ``words`` does with its word at ``at`` (which holds a value): data, or
    refused with why and the fix."""
    command = resolve(words)
    if command.start is None or at <= command.start:
        if command.start is not None and at == command.start:
            return _refused("as the program to run", FIX_PROGRAM)
        if command.launchers:
            return _refused(
                f"in {command.launchers[-1]}'s own words, where it could change which program runs", FIX_PROGRAM
            )
        return _refused("as the program to run", FIX_PROGRAM)
    if command.name is None:
        return _refused("in the arguments of a program the script does not name", FIX_PROGRAM)
    name = command.name
    if name in functions:
        return DATA
    rest = list(words[command.start + 1 :])
    index = at - command.start - 1
    if name in CODE_RUNNERS:
        return _refused(f"in {_article(name)} {name} command: {CODE_RUNNERS[name]}")
    if name in PACKAGE_MANAGERS:
        return _refused(f"in {name}'s arguments: a package manager fetches and runs what it is given")
    if name in NAME_TAKERS:
        return _name_taker(name, rest, index)
    kind = interpreter(name)
    if kind is not None:
        return _interpreted(name, kind, rest, index)
    if name == "find":
        return _find(rest, index, functions)
    optioned = OPTIONED.get(OPTIONED_ALIASES.get(name, name))
    if optioned is not None:
        return _optioned(name, optioned, rest, index)
    return DATA


def _article(name: str) -> str:
    return "an" if name[:1] in "aeiou" else "a"


def _name_taker(name: str, rest: Sequence[Word], index: int) -> Verdict:
    names, data = NAME_TAKERS[name]
    before = rest[index - 1].text if index > 0 else None
    if names is None:
        if before in data:
            return DATA
        return _refused(f"in {_article(name)} {name} command, which reads it as a variable's name", FIX_NAME)
    if before in names:
        return _refused(f"after {name} {before}, which reads it as a variable's name", FIX_NAME)
    return DATA


def _interpreted(name: str, kind: str, rest: Sequence[Word], index: int) -> Verdict:
    """An interpreter's words: options, then its program (``-c CODE``, a script's path, awk's
    text), then that program's arguments, which are data (sed's and jq's read options among them
    too, as GNU's do: there a value stands after ``--`` or behind a literal)."""
    shell = kind in SHELLS
    code, data = (frozenset({"-c"}), frozenset()) if shell else INTERPRETERS[kind]
    own_program = kind in ("awk", "sed", "jq")  # (theirs is their first operand unless -e/-f gave one)
    given = False
    i = 0
    while i < len(rest):
        word, text = rest[i], rest[i].text
        if i == index and not (given and own_program):
            if word.head.startswith("-"):
                return _refused(f"in {name}'s options, before the program it runs")
            if own_program:
                return _refused(f"in {name}'s program, which {name} reads as code", FIX_PROGRAM_DATA)
            return _refused(f"as the program {name} runs (the path of its script)")
        if text is None and word.head.startswith("-"):
            i += 1
            continue
        if text is None or text == "-" or not text.startswith("-") or text == "--":
            start = i + 1 if text == "--" else i
            if text == "--" and index == start and not given:
                return _refused(f"as the program {name} runs")
            return _arguments(name, kind, rest, index, start if given and own_program else start + 1)
        flag = text.split("=", 1)[0]
        if flag in code or _glued_code(text, code):
            glued = "=" in text or _glued_code(text, code)
            if index == i + 1 and not glued:
                return _refused(f"in the code {name} {text} runs ({name} {text} ...): it would run the value")
            if own_program:
                given, i = True, i + (1 if glued else 2)
                continue
            if shell and not glued and index > i + 1:
                script = rest[i + 1].text if i + 1 < len(rest) else None
                if script is None:
                    return _refused(f"after {name} -c with a program the script does not fix")
                return Verdict(inner=script)
            return DATA
        if kind == "jq" and flag in JQ_PAIRS:
            if index == i + 1:
                return _refused(f"as the name jq {flag} gives", FIX_NAME)
            if index == i + 2:
                return DATA
            i += 3
            continue
        if flag in data and "=" not in text:
            if index == i + 1:
                return DATA
            i += 2
            continue
        if shell and text == "-s":
            return DATA if index > i else _refused(f"in {name}'s options")
        i += 1
    return _refused(f"in {name}'s options, before the program it runs")


def _arguments(name: str, kind: str, rest: Sequence[Word], index: int, start: int) -> Verdict:
    """The program's own arguments, from ``start``: data, but where the interpreter reads options
    among them (sed, jq), a word of its own only after ``--``."""
    if index < start:
        return _refused(f"before the program {name} runs (as that program, or one of {name}'s options)")
    if kind not in ("sed", "jq"):
        return DATA
    word = rest[index]
    if word.head and not word.head.startswith("-"):
        return DATA
    if any(w.text == "--" for w in rest[start:index]):
        return DATA
    return _refused(f"as a word of its own to {name}, which reads options among its files", FIX_OPTION)


def _glued_code(text: str, code: frozenset[str]) -> bool:
    """``-cCODE``, ``-eCODE``: a short option that runs code with its operand glued on."""
    return len(text) > 2 and text[0] == "-" and text[1] != "-" and text[:2] in code


def _find(rest: Sequence[Word], index: int, functions: frozenset[str]) -> Verdict:
    """find's words: starting points, then its expression, whose actions run a command."""
    i = 0
    while i < len(rest):
        text = rest[i].text
        if text in FIND_RUNS:
            end = next((j for j in range(i + 1, len(rest)) if rest[j].text in (";", "+", "\\;")), len(rest))
            if i < index < end:
                return call(rest[i + 1 : end], index - i - 1, functions=functions)
            i = end + 1
            continue
        if i == index:
            before = rest[i - 1].text if i > 0 else None
            word = rest[i]
            if before in FIND_DATA or (word.head and not word.head.startswith("-")):
                return DATA
            return _refused("in find's expression, where it could be read as a test or an action", FIX_OPTION)
        i += 1
    return DATA


def _optioned(name: str, lists: tuple[frozenset[str], frozenset[str]], rest: Sequence[Word], index: int) -> Verdict:
    """A program some of whose options run code: a value only where no option can be read in it."""
    code, data = lists
    word = rest[index]
    before = rest[index - 1].text if index > 0 else None
    if name == "git":
        refused = _git(rest, index)
        if refused is not None:
            return refused
    if before is not None and before in code:
        return _refused(f"in {name} {before}, which runs its operand as code")
    head = word.head
    if head.startswith("--"):
        flag = head.split("=", 1)[0]
        if flag in code:
            return _refused(f"in {name} {flag}, which runs its operand as code")
        if "=" in head:
            return DATA  # (--message=VALUE: that option's operand)
        return _refused(f"in {name}'s options, where it could be read as an option", FIX_OPTION)
    if head.startswith("-") and len(head) >= 2:
        if head[:2] in code:
            return _refused(f"in {name} {head[:2]}, which runs its operand as code")
        return DATA  # (-mVALUE, -DNAME=VALUE: an option's operand glued on)
    if head:
        return DATA
    if any(w.text == "--" for w in rest[:index]):
        return DATA
    if before is not None and _takes_data(before, data):
        return DATA
    return _refused(f"as a word of its own to {name}, which could read it as an option", FIX_OPTION)


def _takes_data(before: str, data: frozenset[str]) -> bool:
    """``before`` is an option whose operand is the next word, and data: ``-m``, or ``-czf`` (a
    cluster of short options whose last takes it)."""
    if before in data:
        return True
    return bool(re.fullmatch(r"-[A-Za-z]+", before)) and f"-{before[-1]}" in data


# git's own options whose operand is the next word.
_GIT_GLOBAL = frozenset({"-c", "--config-env", "-C", "--git-dir", "--work-tree", "--namespace", "--exec-path"})


def _git(rest: Sequence[Word], index: int) -> Verdict | None:
    """git's own ways of running a value: ``-c alias.x=!...``, ``config KEY VALUE``, ``bisect run``..."""
    i = 0
    while i < index:
        text = rest[i].text
        if text in _GIT_GLOBAL:
            if i + 1 == index and text in ("-c", "--config-env"):
                key = rest[index].head.split("=", 1)[0].lower()
                if text == "-c" and "=" in rest[index].head and key in GIT_DATA_KEYS:
                    return DATA
                return _refused(f"in git {text}, where a setting can be a command git runs (alias.x=!..., core.pager)")
            if i + 1 == index:
                return DATA  # (git -C DIR, --git-dir DIR: a path)
            i += 2
            continue
        if text is None or text.startswith("-"):
            i += 1
            continue
        if text not in GIT_RUNS:
            return None
        if text == "config":
            setting = next((w.text for w in rest[i + 1 : index] if w.text and not w.text.startswith("-")), None)
            if setting is not None and setting.lower() in GIT_DATA_KEYS:
                return DATA
        return _refused(f"in git {text}, which can make a value a command git runs")
    return None


def reads_input_as_code(words: Sequence[Word]) -> str | None:
    """Whether the command ``words`` runs what it reads on its input (``bash``, ``python3 -``,
    ``sh -s``, ``source /dev/stdin``, ``xargs sh -c``...): its name, else None."""
    command = resolve(words)
    if "xargs" in command.launchers and command.start is not None:
        return _xargs(words, command)
    if command.start is None:
        return " ".join(w.text or "$..." for w in words[:2])
    name = command.name
    if name is None:
        return "a program the script does not name"
    rest = words[command.start + 1 :]
    if name in ("source", "."):
        return name if any(w.text in STDIN_PATHS for w in rest) or not rest else None
    if name in INPUT_RUNNERS:
        return name
    kind = interpreter(name)
    if kind is None or kind in ("awk", "sed", "jq"):
        if kind is not None and any(w.text in STDIN_PATHS for w in rest):
            return name  # (-f - : its program on its input)
        return None
    code, data = INTERPRETERS.get(kind, (frozenset({"-c"}), frozenset()))
    if kind in SHELLS:
        code = frozenset({"-c"})
    i = 0
    while i < len(rest):
        text = rest[i].text
        if text is None:
            return None
        if text == "-s" and kind in SHELLS:
            return name
        if text in STDIN_PATHS:
            return name
        if text == "--":
            return None if i + 1 < len(rest) and rest[i + 1].text not in STDIN_PATHS else name
        if not text.startswith("-"):
            return None  # (a script's path: its program is that file)
        if text.split("=", 1)[0] in code or _glued_code(text, code):
            return None
        i += 2 if text in data else 1
    return name


def _xargs(words: Sequence[Word], command: Command) -> str | None:
    """xargs makes what it reads the words of the program it runs: code if that program would
    run a value among its words, or if the words are spliced into its text (``-I {}``)."""
    assert command.start is not None
    program = list(words[command.start :])
    spliced = any((w.text or "").startswith(("-I", "-i", "--replace", "-J")) for w in words[: command.start])
    name = command.name or "a program the script does not name"
    if spliced and (command.name is None or command.name in CODE_RUNNERS or interpreter(command.name) is not None):
        return f"xargs {name}"
    verdict = call([*program, Word(None, "", True)], len(program))
    return f"xargs {name}" if verdict.why is not None else None
