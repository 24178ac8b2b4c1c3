"""Where a value sits in a bash script, read as bash reads its quoting: what ``{{ params... }}``
turns into there.

A parameter never enters a script as text. Its value is in the attempt's environment
(``$ORCHESTRATOR_PARAM_NAME``), and where the plan wrote ``{{ params.NAME }}`` the script gets a
reference to that variable, quoted for the place it stands in: ``"${V}"`` in a bare word, ``${V}``
inside double quotes or an unquoted here-document, ``'"${V}"'`` inside single quotes. Bash never
reads what a parameter expansion gives as code, so the value is one word, byte for byte, whatever
it holds (GitHub's hardening guide for Actions answers script injection the same way: through
the environment, never pasted in).

Where the reference may stand at all is not this module's to say: ``plan/config/allowlist``
reads the script the references make with bash's grammar and lets a value stand only as one data
word handed to a program that does not run it. Here are refused only the places where no
reference can be written: bash's arithmetic (``$(( ))``, ``(( ))``, ``$[ ]``), the inside of a
``${...}``, a quoted here-document (``<<'EOF'``, which expands nothing, so a reference would be
printed as it is), right after a backslash, and quoting this reading cannot close. Each of those
is a ``Spot`` with ``refused`` set: ``validate`` names its line and the fix.

``spots(script, spans)`` reads the script once, left to right, with a stack of the places it is
in (command, double quotes, ``$( )``, backticks, here-documents), as bash's own parser does; the
spans are where the expressions are (they read as part of a word).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Place(StrEnum):
    """Where in a script a value stands, as bash quotes it there."""

    WORD = "word"  # a bare word of a command (or inside $( ), backticks): "${V}"
    DOUBLE = "double"  # inside "...": ${V}
    SINGLE = "single"  # inside '...': '"${V}"'
    ANSI = "ansi"  # inside $'...': '"${V}"$'
    HEREDOC = "heredoc"  # an unquoted here-document's body: ${V}
    COMMENT = "comment"  # after a #: never run, the reference shown


def reference(variable: str, place: Place) -> str:
    """What stands in ``place`` for the value of ``variable``: one word, never code."""
    bare = "${" + variable + "}"
    if place in (Place.DOUBLE, Place.HEREDOC):
        return bare
    if place is Place.SINGLE:
        return f"'\"{bare}\"'"
    if place is Place.ANSI:
        return f"'\"{bare}\"$'"
    return f'"{bare}"'


@dataclass(frozen=True, slots=True)
class Spot:
    """One expression of a script: its span, its place, and (``refused``) why no reference is
    safe there, with ``fix``."""

    start: int
    end: int
    place: Place
    refused: str | None = None
    fix: str = ""


_RESERVED = frozenset({"then", "do", "else", "elif", "if", "while", "until", "{", "time", "!"})
_OPERATORS = ";&|()<>"
_HEREDOC_WORD = re.compile(r"""(?:[^\s;&|()<>'"\\]|\\.|'[^']*'|"(?:[^"\\]|\\.)*")+""")
_ARITHMETIC_FIX = (
    "give the value to a variable first and check it is a number, e.g. [[ $ORCHESTRATOR_PARAM_X =~ ^[0-9]+$ ]]"
)


@dataclass(slots=True)
class _HereDocs:
    """The here-documents a line opened (``<<EOF``, ``<<-'END'``), waiting for its end: their bodies
    are the lines after it, each up to the line that is its delimiter."""

    waiting: list[tuple[str, bool, bool]] = field(default_factory=list)  # (delimiter, quoted, tabs stripped)

    def opened(self, text: str, i: int, end: int) -> int:
        """After a ``<<`` at ``i - 2``: its delimiter noted; where the word ends."""
        strip = i < end and text[i] == "-"
        i += 1 if strip else 0
        while i < end and text[i] in " \t":
            i += 1
        match = _HEREDOC_WORD.match(text, i, end)
        if match is None:
            return i
        word = match.group(0)
        delimiter = re.sub(r"""\\(.)|['"]""", lambda m: m.group(1) or "", word)
        self.waiting.append((delimiter, any(q in word for q in "'\"\\"), strip))
        return match.end()

    def bodies(self, text: str, i: int, end: int) -> tuple[list[tuple[int, int, bool]], int]:
        """From ``i``, the start of the line after the one that opened them: each body's (start,
        end, quoted), and where the text goes on past the last delimiter."""
        found: list[tuple[int, int, bool]] = []
        waiting, self.waiting = self.waiting, []
        for delimiter, quoted, strip in waiting:
            start = body_end = i
            while i < end:
                stop = text.find("\n", i, end)
                line_end = end if stop < 0 else stop
                line = text[i:line_end]
                body_end, i = i, line_end + 1 if stop >= 0 else line_end
                if (line.lstrip("\t") if strip else line) == delimiter:
                    break
                body_end = i
            found.append((start, body_end, quoted))
        return found, i


@dataclass(slots=True)
class _Command:
    """A command being read: its words so far, the word being read (from ``start``), and the
    ``case`` statements open in it (their patterns' ``)`` close no ``$(``)."""

    words: list[str] = field(default_factory=list)
    start: int | None = None
    cases: int = 0

    def word_ends(self, text: str, i: int) -> None:
        """The word being read ends at ``i``: one more of the command's (a reserved word begins one)."""
        if self.start is None:
            return
        word = text[self.start : i]
        self.start = None
        if not self.words and word in _RESERVED:
            return  # (what follows is a command of its own)
        if not self.words and word == "case":
            self.cases += 1
        elif word == "esac" and self.cases:
            self.cases -= 1
        self.words.append(word)

    def ends(self) -> None:
        """The command ends (``;``, ``&``, ``|``, a newline): the next word begins another."""
        self.words.clear()
        self.start = None


class _Reader:
    def __init__(self, text: str, spans: Sequence[tuple[int, int]]) -> None:
        self.text = text
        self.starts = {start: end for start, end in spans}
        self.found: dict[int, Spot] = {}
        self.heredocs = _HereDocs()
        self.commands: list[_Command] = []

    # -- what a spot is ---------------------------------------------------------------------

    def _within(self, start: int, stop: int, place: Place, refused: str | None = None, fix: str = "") -> None:
        """Each expression from ``start`` to ``stop``: in ``place`` (``refused``, when no reference may stand there)."""
        for at in [s for s in self.starts if start <= s < stop]:
            self._spot(at, place, refused, fix)

    def _spot(self, i: int, place: Place, refused: str | None = None, fix: str = "") -> int:
        end = self.starts[i]
        if refused is None and i > 0 and self.text[i - 1] == "\\" and place is not Place.SINGLE:
            refused, fix = "right after a backslash, which would escape the reference's first character", "remove it"
        self.found[i] = Spot(i, end, place, refused, fix)
        return end

    # -- places --------------------------------------------------------------------------------

    def command(self, i: int, end: int, until: str | None) -> int:
        """Read commands from ``i``: to ``end``, or past the ``)`` or backtick that closes them."""
        text = self.text
        state = _Command()
        self.commands.append(state)
        depth = 0
        try:
            while i < end:
                c = text[i]
                if i in self.starts:
                    state.start = i if state.start is None else state.start
                    i = self._spot(i, Place.WORD)
                    continue
                if c == "\\":
                    if state.start is None:
                        state.start = i
                    i += 1 if i + 1 in self.starts else 2
                    continue
                if c in " \t":
                    state.word_ends(text, i)
                    i += 1
                    continue
                if c == "\n":
                    state.word_ends(text, i)
                    state.ends()
                    i += 1
                    if self.heredocs.waiting:
                        i = self._heredoc_bodies(i, end)
                    continue
                if c == "#" and state.start is None:
                    stop = text.find("\n", i)
                    stop = end if stop < 0 or stop > end else stop
                    self._within(i + 1, stop, Place.COMMENT)
                    i = stop
                    continue
                if until == "`" and c == "`":
                    state.word_ends(text, i)
                    return i + 1
                if c == ")" and until == ")" and depth == 0 and state.cases == 0:
                    state.word_ends(text, i)
                    return i + 1
                if state.start is None and text.startswith("((", i):
                    i = self.arithmetic(i + 2, end, "))")
                    continue
                if text.startswith("<<<", i):  # (a here-string: its word is read as any other)
                    state.word_ends(text, i)
                    i += 3
                    continue
                if c == "<" and text.startswith("<<", i):
                    state.word_ends(text, i)
                    i = self.heredocs.opened(self.text, i + 2, end)
                    continue
                if c in _OPERATORS:
                    state.word_ends(text, i)
                    if c in ";&|":
                        state.ends()
                    if c == "(":
                        depth += 1
                        state.ends()
                    elif c == ")":
                        if state.cases:
                            pass  # a case pattern's
                        else:
                            depth = max(0, depth - 1)
                    i += 1
                    continue
                if state.start is None:
                    state.start = i
                i = self.quoted(i, end, c)
            state.word_ends(text, i)
            return i
        finally:
            self.commands.pop()

    def quoted(self, i: int, end: int, c: str) -> int:
        """Read what starts at ``i`` (a quote, an expansion, or one character of a word) and return
        where it ends."""
        text = self.text
        if c == "'":
            return self._single(i + 1, end)
        if c == '"':
            return self._double(i + 1, end)
        if c == "`":
            return self.command(i + 1, end, "`")
        if c == "$":
            return self._dollar(i, end) or i + 1
        return i + 1 if i + 1 <= len(text) else i

    def _dollar(self, i: int, end: int) -> int | None:
        """After a ``$``: ``$'...'``, ``$((...))``, ``$(...)``, ``${...}``, ``$[...]``; ``None``: a plain ``$``."""
        text = self.text
        if text.startswith("$'", i):
            return self._ansi(i + 2, end)
        if text.startswith("$((", i):
            return self.arithmetic(i + 3, end, "))")
        if text.startswith("$(", i):
            return self.command(i + 2, end, ")")
        if text.startswith("${", i):
            return self._braces(i + 2, end)
        if text.startswith("$[", i):
            return self.arithmetic(i + 2, end, "]")
        return None

    def _single(self, i: int, end: int) -> int:
        close = self.text.find("'", i, end)
        close = end if close < 0 else close
        self._within(i, close, Place.SINGLE)
        return close + 1

    def _ansi(self, i: int, end: int) -> int:
        text = self.text
        while i < end:
            if i in self.starts:
                i = self._spot(i, Place.ANSI)
            elif text[i] == "\\":
                i += 2
            elif text[i] == "'":
                return i + 1
            else:
                i += 1
        return i

    def _double(self, i: int, end: int, closer: str | None = '"', place: Place = Place.DOUBLE) -> int:
        """Inside double quotes (or, ``closer`` None, an unquoted here-document's body to ``end``)."""
        text = self.text
        while i < end:
            c = text[i]
            if i in self.starts:
                i = self._spot(i, place)
            elif c == "\\":
                i += 2 if i + 1 < end and text[i + 1] in '$`"\\\n' and i + 1 not in self.starts else 1
            elif c == closer:
                return i + 1
            elif c == "`":
                i = self.command(i + 1, end, "`")
            elif c == "$":
                i = self._dollar(i, end) or i + 1
            else:
                i += 1
        return i

    def _braces(self, i: int, end: int) -> int:
        """Inside ``${...}``: its operand is read as a word, but an offset or a subscript is
        arithmetic, so no spot inside is taken."""
        text = self.text
        depth = 0
        while i < end:
            c = text[i]
            if i in self.starts:
                i = self._spot(
                    i,
                    Place.WORD,
                    "inside ${...}, where an offset or a subscript is evaluated as arithmetic",
                    "set a variable to it first (X={{ params.x }}) and use $X inside ${...}",
                )
            elif c == "\\":
                i += 2
            elif c in "'\"`" or (c == "$" and i + 1 < end and text[i + 1] in "('{["):
                if c == "$" and text.startswith("${", i):
                    depth += 1
                    i += 2
                    continue
                i = self.quoted(i, end, c)
            elif c == "{":
                depth += 1
                i += 1
            elif c == "}":
                if depth == 0:
                    return i + 1
                depth -= 1
                i += 1
            else:
                i += 1
        return i

    def arithmetic(self, i: int, end: int, closer: str) -> int:
        """Inside ``$(( ))``, ``(( ))`` or ``$[ ]`` to its closer (brackets counted): no spot taken."""
        text = self.text
        depth = 0
        start = i
        while i < end and not (depth == 0 and text.startswith(closer, i)):
            depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(text[i], 0)
            i += 1
        self._within(
            start,
            i,
            Place.WORD,
            "in arithmetic ($(( )), (( )) or $[ ]), which evaluates a value's names and subscripts as code",
            _ARITHMETIC_FIX,
        )
        return min(i + len(closer), end) if i < end else end

    def _heredoc_bodies(self, i: int, end: int) -> int:
        """The bodies of the here-documents the line just read opened: a quoted one's spots refused
        (it expands nothing), an unquoted one's read as inside double quotes."""
        bodies, i = self.heredocs.bodies(self.text, i, end)
        for start, stop, quoted in bodies:
            if quoted:
                self._within(
                    start,
                    stop,
                    Place.HEREDOC,
                    "in a quoted here-document (<<'EOF'), which expands nothing: the value would not be there",
                    "read it in what the here-document feeds: $ORCHESTRATOR_PARAM_X for a shell, "
                    "os.environ['ORCHESTRATOR_PARAM_X'] in Python; or write <<EOF unquoted",
                )
                continue
            self.commands.append(_Command())
            try:
                self._double(start, stop, None, Place.HEREDOC)
            finally:
                self.commands.pop()
        return i


def spots(script: str, spans: Sequence[tuple[int, int]]) -> list[Spot]:
    """Each span's ``Spot`` in ``script``, in order: where bash would read it, and whether a
    reference may stand there."""
    reader = _Reader(script, spans)
    reader.command(0, len(script), None)
    for start, end in spans:  # (one the reading passed over, as inside a quote left open: refused)
        if start not in reader.found:
            reader.found[start] = Spot(
                start, end, Place.WORD, "where the script's quoting cannot be read", "close its quotes and brackets"
            )
    return [reader.found[start] for start, _ in sorted(spans)]


@dataclass(frozen=True, slots=True)
class Written:
    """A script with a reference in place of each expression: its text, where each reference
    stands in it (``marks``: start, end, and the expression's ``Spot``), and the spots refused."""

    script: str
    marks: list[tuple[int, int, Spot]]
    refused: list[Spot]


def written(script: str, spans: Sequence[tuple[int, int]], make: Callable[[Spot], str | None]) -> Written:
    """``script`` with ``make(spot)`` in place of each span that may hold a reference (None: the
    expression left as written, as for a parameter not given here)."""
    out: list[str] = []
    marks: list[tuple[int, int, Spot]] = []
    refused: list[Spot] = []
    length = last = 0
    for spot in spots(script, spans):
        before = script[last : spot.start]
        out.append(before)
        length += len(before)
        made = make(spot) if spot.refused is None else None
        if spot.refused is not None:
            refused.append(spot)
        piece = script[spot.start : spot.end] if made is None else made
        if made is not None:
            marks.append((length, length + len(made), spot))
        out.append(piece)
        length += len(piece)
        last = spot.end
    out.append(script[last:])
    return Written("".join(out), marks, refused)
