"""Secrets never written: what a task or an agent printed has each secret in it replaced by
``[redacted: NAME]`` before it is written anywhere (a log, a result, an event, a notification,
final_output.md, the plan's status blocks, the context channels, an answer of ``serve``).

A secret is, each written with its ``NAME``:

- the value of a variable of the environment whose name looks secret (``SECRET_NAMES``:
  ``*TOKEN*``, ``*SECRET*``, ``*KEY*``, ``*PASSWORD*``...: ``ANTHROPIC_API_KEY``,
  ``OPENAI_API_KEY``, ``ORCHESTRATOR_GITHUB_TOKEN``), NAME the variable's name: the process's own,
  and an attempt's (``joined``), the plan's ``env`` included. A value shorter than ``FLOOR``
  characters is not one: it would blank ordinary words (``true``, a port);
- the webhook secret ``serve`` was given (``--webhook-secret-file``): the file is named in
  ``$ORCHESTRATOR_WEBHOOK_SECRET_FILE`` for the runs it starts, NAME ``webhook secret``;
- a well-known token's shape (``SHAPES``: GitHub's, Anthropic's, OpenAI's, AWS's, Slack's keys,
  a JWT, a PEM private key block), NAME the shape's;
- what a pattern of the plan's ``redact`` setting matches (``use``), NAME ``redact pattern N``.

All of them are one compiled alternation, values escaped and longest first, then the shapes, then
the plan's patterns. Each value and shape is looked for at its anchor, a character rare in what
tasks print (a value's rarest, a JWT's ``J``, an AWS key's ``K``), from which its branch looks
behind for what comes before: the regex engine skips ahead to a character some branch opens with,
so a megabyte of output costs one scan that stops at a few places in a hundred, not at every ``s``
or ``e`` (6 ms a MB of log prose here, ``bench/redact.py``). A plan's pattern is looked for as it
is written: one that opens with a literal character costs least.

``current()`` is this process's redactor, read from its environment when first asked for (a
command reads it again as it starts, ``reset``). ``Stream`` redacts output as it streams, a line
at a time: a secret split across two reads is whole before it is looked for.

Text matched in JSON stays JSON: where a match begins just after an escaping backslash with a
character that backslash escapes (a value ``nABC...`` after ``\\n``), that character is kept.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar, cast

T = TypeVar("T")

FLOOR = 8  # characters: a shorter value of a secret-named variable is not redacted by value
SECRET_NAMES = re.compile(r"TOKEN|SECRET|KEY|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL", re.IGNORECASE)
SECRET_FILE_VARIABLE = "ORCHESTRATOR_WEBHOOK_SECRET_FILE"  # the webhook secret's file, for the runs serve starts
# Names that look secret and hold none: a cluster's key of an attempt (``executors/watchdog``), a path.
NOT_SECRET = frozenset({"ORCHESTRATOR_ATTEMPT_KEY", SECRET_FILE_VARIABLE})
SECRET_VARIABLE = "ORCHESTRATOR_WEBHOOK_SECRET"  # the webhook secret itself, given so to serve
GITHUB_TOKEN_VARIABLE = "ORCHESTRATOR_GITHUB_TOKEN"  # the runner's delivery's and serve's (``git/github``), no agent's
# Never in an attempt's environment: the webhook secret, and the token a run delivers with (an agent
# that held it could push or open a pull request itself, past the effect ledger).
WITHHELD = frozenset({SECRET_VARIABLE, SECRET_FILE_VARIABLE, GITHUB_TOKEN_VARIABLE})
PATTERNS_VARIABLE = "ORCHESTRATOR_REDACT"  # the plan's patterns (JSON), for the processes an attempt starts
SECRET_FILE_LIMIT = 4096  # bytes of a secret's file read: its first line is the secret

_B64 = r"[A-Za-z0-9+/=]"
_NEWLINE = r"(?:\s|\\[nr])"  # a line's end, as printed or in a JSON string
_PEM_END = r"-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
# A key's block to its END line (in a JSON string too: never past a quote), else its base64 lines.
_PEM_BODY = rf'(?:[^"]{{0,16384}}?{_PEM_END}|(?:{_NEWLINE}+{_B64}{{16,}})*)'
_WORD = r"[A-Za-z0-9_-]"
# "sk" as a word of its own: after no word character, or just after one of JSON's escapes.
_SK_WORD = rf'(?:(?<!{_WORD}sk)|(?<=\\[nrtbf"/\\]sk)|(?<=\\u[0-9a-fA-F]{{4}}sk))'
# Each shape: its name, how many of its characters come before its anchor, and its pattern, which
# opens with that anchor (a character rare in output) and looks behind it for what comes first.
SHAPES: tuple[tuple[str, int, str], ...] = (
    ("private key", 5, rf"B(?<=-----B)EGIN[A-Z0-9 ]{{0,40}}PRIVATE KEY(?: BLOCK)?-----{_PEM_BODY}"),
    ("github token", 3, r"_(?<=gh[pousr]_)[A-Za-z0-9]{36,251}"),
    ("github fine-grained token", 6, r"_(?<=github_)pat_[A-Za-z0-9_]{22,244}"),
    ("anthropic key", 1, rf"k(?<=sk)-ant-{_WORD}{{20,1024}}"),
    # sk- alone is common in words (disk-...): a word of its own, with a digit and a capital in it.
    ("openai key", 1, rf"k(?<=sk){_SK_WORD}-(?={_WORD}{{0,64}}?[0-9])(?={_WORD}{{0,64}}?[A-Z]){_WORD}{{20,1024}}"),
    ("aws access key", 1, r"K(?<=AK)IA[0-9A-Z]{16}"),
    ("aws access key", 1, r"S(?<=AS)IA[0-9A-Z]{16}"),
    ("slack token", 0, r"xox[abposr]-[A-Za-z0-9-]{10,1024}"),
    ("jwt", 2, rf"J(?<=eyJ){_WORD}{{8,8192}}\.eyJ{_WORD}{{8,8192}}\.{_WORD}{{8,8192}}"),
)
LONGEST = 64 * 1024  # characters at most a shape matches: what a stream holds back of a line it must cut
_ESCAPED = frozenset('"\\/bfnrtu0123456789abcdefABCDEF')  # what may follow a backslash in JSON
# Characters from the most to the least common in what tasks print (prose, code, logs, JSON): a
# value's anchor is its rarest (one not here rarer still), so that few places are looked at twice.
_COMMON = " etaoinsrhld\nucmfpgwybv,.-_0123456789k\"':/=TSAEIONRCLDPMHBFGWUYV()[]{}xjqzKJQXZ"
_RANK = {char: rank for rank, char in enumerate(_COMMON)}


def secret_values(environ: Mapping[str, str]) -> dict[str, str]:
    """The secrets of ``environ``: each variable's value by its name, where the name looks secret
    and the value is at least ``FLOOR`` characters, and no path of a file that is there (a key's
    file, ``SSH_KEY_PATH=~/.ssh/id_rsa``: its path is no secret, and paths are what the tool's
    own records hold and read back)."""
    return {
        name: value
        for name, value in environ.items()
        if len(value) >= FLOOR and SECRET_NAMES.search(name) and name not in NOT_SECRET and not _a_path(value)
    }


def _a_path(value: str) -> bool:
    return value[0] in "/~." and os.path.exists(os.path.expanduser(value))


def read_secret_file(path: str) -> bytes:
    """A secret's file's first line (its line ending dropped); ``OSError`` when it cannot be read."""
    with open(path, "rb") as file:
        raw = file.read(SECRET_FILE_LIMIT)
    return raw.split(b"\n", 1)[0].rstrip(b"\r")


def check_pattern(text: str) -> str:
    """``text`` if it is a pattern the ``redact`` setting may hold; else ``ValueError`` saying why
    in a line: it must compile, within the alternation too, and must not match nothing."""
    try:
        compiled = re.compile(text)
        re.compile(f"(?:{text})|x")
    except re.error as exc:
        if "global flags" in str(exc):
            raise ValueError(f"{text!r}: a flag must hold a group, as (?i:token) does, not the whole pattern") from None
        raise ValueError(f"{text!r} is no regular expression: {exc}") from None
    if compiled.match("") is not None:
        raise ValueError(f"{text!r} matches empty text: it would redact nothing, everywhere")
    if re.search(r"\\[1-9]|\(\?P[<=]", text):
        raise ValueError(
            f"{text!r} names or refers back to a group: write a group as (?:...), which no other pattern clashes with"
        )
    return text


class Redactor:
    """One alternation of secrets (see the module's docstring) and what it writes for each."""

    def __init__(self, values: Mapping[str, str], patterns: tuple[str, ...]) -> None:
        self.values = dict(values)  # name -> value
        self.patterns = patterns
        forms: dict[str, str] = {}  # each way a value may be printed -> its variable's name
        for name, value in sorted(self.values.items()):
            for form in _forms(value):
                forms.setdefault(form, name)
        self._tails: dict[str, list[tuple[str, str]]] = {}  # from a value's anchor on -> (what comes before, name)
        branches = []
        for form in sorted(forms, key=len, reverse=True):
            at = _anchor(form)
            self._tails.setdefault(form[at:], []).append((form[:at], forms[form]))
            behind = f"(?<={re.escape(form[: at + 1])})" if at else ""
            branches.append(re.escape(form[at]) + behind + re.escape(form[at + 1 :]))
        plans = [(f"redact pattern {n}", 0, pattern) for n, pattern in enumerate(patterns, 1)]
        self._shapes = [(name, back, re.compile(pattern)) for name, back, pattern in (*SHAPES, *plans)]
        branches += (p if "|" not in p else f"(?:{p})" for _, _, p in (*SHAPES, *plans))
        self._pattern = re.compile("|".join(branches))

    def joined(self, environ: Mapping[str, str]) -> Redactor:
        """This redactor with the secrets of ``environ`` too (an attempt's environment: its plan's
        ``env``, its backend's keys), and the plan's patterns it names (``PATTERNS_VARIABLE``)."""
        values = {**secret_values(environ), **self.values}
        patterns = tuple(dict.fromkeys((*self.patterns, *_patterns_in(environ))))
        if values == self.values and patterns == self.patterns:
            return self
        return made(tuple(sorted(values.items())), patterns)

    def found(self, text: str) -> bool:
        """Whether ``text`` holds anything this redactor would replace."""
        return self._pattern.search(text) is not None

    def text(self, text: str) -> str:
        """``text`` with each secret in it written ``[redacted: NAME]``."""
        first = self._pattern.search(text)
        if first is None:  # (most text holds none: one scan, and nothing made)
            return text
        pieces: list[str] = []
        last = 0
        for start, end, name in self._spans(text, first.start()):
            start = max(start, last)
            kept = _escaped(text, start)  # (an escape's backslash before it: what it escapes stays, the JSON with it)
            pieces += (text[last:start], kept, f"[redacted: {name}]")
            last = end
        pieces.append(text[last:])
        return "".join(pieces)

    def spans(self, text: str) -> Iterator[tuple[int, int, str]]:
        """Where in ``text`` each secret is (start, end) and its NAME."""
        first = self._pattern.search(text)
        return self._spans(text, first.start()) if first is not None else iter(())

    def _spans(self, text: str, since: int) -> Iterator[tuple[int, int, str]]:
        """Each secret from ``since`` on: found at its anchor, begun where it begins."""
        for found in self._pattern.finditer(text, since):
            at, end = found.span()
            if end > at:
                back, name = self._which(found)
                yield at - back, end, name

    def _which(self, found: re.Match[str]) -> tuple[int, str]:
        """How far before ``found`` the secret begins, and what it is: the variable whose value it
        is, else the first shape that matches there as the alternation did (a match is rare: no
        group per branch slows every scan)."""
        text, at = found.string, found.start()
        for before, name in self._tails.get(found.group(), ()):
            if len(before) <= at and text.startswith(before, at - len(before)):
                return len(before), name
        for name, back, shape in self._shapes:
            if shape.match(text, at) is not None:
                return back, name
        return 0, "secret"

    def data(self, value: T) -> T:
        """``value`` (JSON-like: dicts, lists, strings...) with every string in it redacted, keys too."""
        shown: Any = value
        if isinstance(value, str):
            shown = self.text(value)
        elif isinstance(value, dict):
            shown = {self.data(key): self.data(item) for key, item in value.items()}
        elif isinstance(value, list):
            shown = [self.data(item) for item in value]
        elif isinstance(value, tuple):
            shown = tuple(self.data(item) for item in value)
        return cast(T, shown)

    def dumps(self, value: Any) -> str:
        """``value`` as one line of JSON (what is no JSON as its ``str``), every string in it
        redacted: one scan of the line; its strings one by one only where it found a secret, so
        that the JSON stays whole."""
        line = json.dumps(value, ensure_ascii=False, default=str)
        if not self.found(line):
            return line
        return json.dumps(self.data(json.loads(line)), ensure_ascii=False)

    def of_bytes(self, data: bytes) -> bytes:
        """``data`` redacted as text; bytes that are no UTF-8 pass as they are."""
        text = data.decode("utf-8", "surrogateescape")
        redacted = self.text(text)
        return data if redacted is text else redacted.encode("utf-8", "surrogateescape")

    def stream(self) -> Stream:
        return Stream(self)


def _anchor(value: str) -> int:
    """Where a value's match begins: the rarest character of its first line (the first of the
    rarest). The first line's: a value of several lines is then found at its first line's anchor,
    where each of its lines alone is also looked for, and being longer, comes first."""
    unknown = len(_RANK)
    line = value.find("\n") + 1 or len(value)
    return max(range(line), key=lambda index: (_RANK.get(value[index], unknown), -index))


def _escaped(text: str, start: int) -> str:
    """The character a secret at ``start`` begins with, when a backslash before it escapes it
    (JSON's ``\\n``, ``\\u001b``): kept before the marker, the escape whole; else nothing."""
    if not start or text[start - 1] != "\\" or text[start] not in _ESCAPED:
        return ""
    run = start - 1
    while run > 0 and text[run - 1] == "\\":
        run -= 1
    return text[start] if (start - run) % 2 else ""


def _forms(value: str) -> tuple[str, ...]:
    """A value as it may be printed: as it is, as a JSON string holds it (an agent's stream), and
    each of its lines of ``FLOOR`` characters or more (a stream is redacted a line at a time)."""
    forms = [value, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1]]
    if "\n" in value:
        forms += (line.strip() for line in value.splitlines() if len(line.strip()) >= FLOOR)
    return tuple(dict.fromkeys(forms))


def _patterns_in(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The plan's patterns an environment names (``PATTERNS_VARIABLE``), those that are patterns."""
    try:
        given = json.loads(environ.get(PATTERNS_VARIABLE) or "[]")
    except ValueError:
        return ()
    kept = []
    for pattern in given if isinstance(given, list) else ():
        try:
            kept.append(check_pattern(str(pattern)))
        except ValueError:
            continue
    return tuple(kept)


@functools.lru_cache(maxsize=64)
def made(values: tuple[tuple[str, str], ...], patterns: tuple[str, ...]) -> Redactor:
    """The redactor of ``values`` (name, value) and ``patterns``, compiled once."""
    return Redactor(dict(values), patterns)


_current: Redactor | None = None
_plan_patterns: tuple[str, ...] = ()


def current() -> Redactor:
    """This process's redactor: the secrets of its environment, the webhook secret's file it
    names, the plan's patterns (its own, ``use``, and those its environment names)."""
    global _current
    if _current is None:
        values = secret_values(os.environ)
        path = os.environ.get(SECRET_FILE_VARIABLE)
        if path:
            try:
                secret = read_secret_file(path).decode("utf-8", "surrogateescape")
            except OSError:
                secret = ""
            if len(secret) >= FLOOR:
                values["webhook secret"] = secret
        patterns = tuple(dict.fromkeys((*_plan_patterns, *_patterns_in(os.environ))))
        _current = made(tuple(sorted(values.items())), patterns)
    return _current


def refresh() -> None:
    """Read the environment again when next asked (a command starting, a variable set)."""
    global _current
    _current = None


def reset() -> None:
    """Forget the plan's patterns, and read the environment again when next asked (a command
    starting: one run in this process before, a test's, leaves nothing behind)."""
    global _plan_patterns
    _plan_patterns = ()
    refresh()


def use(patterns: Iterable[str]) -> None:
    """The plan's ``redact`` patterns, this process's from now on (beside the environment's)."""
    global _plan_patterns
    given = tuple(patterns)
    if given != _plan_patterns:
        _plan_patterns = given
        refresh()


def passed_on() -> dict[str, str]:
    """What an attempt's environment carries of this process's redaction: the plan's patterns,
    which the processes it starts (``orchestrator share``) redact by too."""
    patterns = current().patterns
    return {PATTERNS_VARIABLE: json.dumps(list(patterns))} if patterns else {}


def text(value: str) -> str:
    """``value`` redacted by this process's redactor."""
    return current().text(value)


class Stream:
    """Output redacted as it streams: whole lines are redacted and handed on (``feed``), the line
    still open held until its end comes (or past ``LONG_LINE`` characters, all of it but what
    could still hold a secret's start); a private key's block is held whole until its END line.
    ``end`` hands on what is held, redacted."""

    LONG_LINE = 1024 * 1024  # bytes of a line without its end held at most
    KEY_BLOCK = 64 * 1024  # bytes of an open private key block held at most

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._held = bytearray()

    def feed(self, data: bytes) -> bytes:
        """What of the output so far may be written now, redacted."""
        held = self._held
        held += data
        end = held.rfind(b"\n") + 1
        if end:
            end = self._before_open_key(end)
        if end == 0:
            return self._cut_long() if len(held) > self.LONG_LINE else b""
        out = self.redactor.of_bytes(bytes(held[:end]))
        del held[:end]
        return out

    def end(self) -> bytes:
        """What is held, redacted: the output has ended."""
        out = self.redactor.of_bytes(bytes(self._held)) if self._held else b""
        self._held.clear()
        return out

    def _before_open_key(self, end: int) -> int:
        """Where what may be written now ends: before the line that opens a private key's block
        whose END has not come yet (while the block is under ``KEY_BLOCK``)."""
        held = self._held
        begin = held.rfind(b"-----BEGIN", 0, end)
        if begin < 0 or held.find(b"-----END", begin, end) >= 0:
            return end
        line_end = held.find(b"\n", begin, end)
        if b"PRIVATE KEY" not in held[begin:line_end] or len(held) - begin > self.KEY_BLOCK:
            return end
        return held.rfind(b"\n", 0, begin) + 1

    def _cut_long(self) -> bytes:
        """A long line's head, redacted: all but ``LONGEST`` characters, and never through a secret."""
        text = self._held.decode("utf-8", "surrogateescape")
        cut = len(text) - LONGEST
        for start, stop, _ in self.redactor.spans(text):
            if start < cut < stop:
                cut = start
                break
        out = self.redactor.text(text[:cut]).encode("utf-8", "surrogateescape")
        self._held = bytearray(text[cut:].encode("utf-8", "surrogateescape"))
        return out
