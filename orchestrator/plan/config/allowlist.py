"""Where a value from outside may stand in a bash script: an allow-list, read by bash's grammar.

A parameter's value (``$ORCHESTRATOR_PARAM_NAME``, an expression's ``$ORCHESTRATOR_VALUE_N``) and
a row's item (``$ORCHESTRATOR_ITEM``) can come from a stranger: a webhook's delivery, an API or
MCP caller, a file's lines or names. ``plan/config/shellspots`` writes a reference to its variable
where the plan wrote ``{{ ... }}``, quoted for its place; this module reads the script that comes
of it with tree-sitter's bash grammar and lets a value stand only where the tree shows it is one
data word handed to a program that does not run it:

- an argument, in double quotes, of a program named in the script that runs none of its
  arguments (``plan/config/programs`` says which do, and where each takes data);
- an assignment's value (to a variable no program reads as code: not ``PATH``, ``BASH_ENV``...),
  a ``for``'s words, a ``case``'s word and patterns, a ``[[ ]]``'s strings and patterns;
- a redirect's target, and a here-string's or an unquoted here-document's body, when the program
  they feed does not read its input as code.

Anywhere else is refused: a place this reading does not know is refused as well, and so is a
value in a script the grammar cannot read (an error in the tree), or found in the text where
the tree shows no expansion of it. A value also travels: into a variable it is assigned to (whose
uses are judged in turn), out of a ``$( )`` into the word it stands in, down a pipe into the next
program's input, into ``$1`` of a function or ``bash -c '...' _ "$V"`` (whose program is judged
with its positional parameters as values).

``judge(script, marks)`` returns a ``Refusal`` per value that may not stand where it is; ``marks``
are the spans the references to ``{{ }}`` expressions took, so a refusal names the expression.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.plan.config import programlist, programs
from orchestrator.plan.config.bashtree import (
    SUBSTITUTIONS,
    CharMap,
    arithmetic,
    double_brackets,
    inside_substitution,
    literal,
    parser,
    redirected,
    text,
    walk,
    within,
)
from orchestrator.plan.config.programs import Verdict, Word
from orchestrator.plan.config.reach import OUTSIDE, Reach

if TYPE_CHECKING:
    from tree_sitter import Node

MENTIONS = re.compile(rb"ORCHESTRATOR_(?:PARAM|VALUE)_|ORCHESTRATOR_ITEM(?![A-Za-z0-9_])")

_FIX_ARITHMETIC = (
    "give the value to a variable first and check it is a number, e.g. [[ $ORCHESTRATOR_PARAM_X =~ ^[0-9]+$ ]]"
)
_FIX_QUOTE = 'put it in double quotes ("{{ params.x }}"): bash splits an unquoted value into words and globs'
_FIX_READ = "make bash -n read the script, and write the value as a plain argument in double quotes"
_ARITHMETIC_TESTS = frozenset({"-eq", "-ne", "-lt", "-le", "-gt", "-ge"})
_LITERAL_HOLDERS = ("raw_string", "ansi_c_string", "comment")
_DEPTH = 4  # how deep programs inside programs (bash -c '... bash -c ...') are read


@dataclass(frozen=True, slots=True)
class Refusal:
    """A value that may not stand where it is: ``start``/``end`` its reference's characters in
    the script, ``mark`` the index of the ``{{ }}`` expression it stands for (None: the script
    names the variable itself), why, and the fix."""

    start: int
    end: int
    mark: int | None
    why: str
    fix: str


def mentions(script: str) -> bool:
    """Whether ``script`` names a variable that holds a value from outside (only such a script is read)."""
    return MENTIONS.search(script.encode("utf-8", "surrogateescape")) is not None


def judge(script: str, marks: Sequence[tuple[int, int]] = ()) -> list[Refusal]:
    """Each value of ``script`` that may not stand where it is, in order (one per reference)."""
    source = script.encode("utf-8", "surrogateescape")
    if MENTIONS.search(source) is None:
        return []
    found = _Judge(source).refusals()
    if not found:
        return []
    chars = CharMap(script)
    byte_marks = [(chars.byte(start), chars.byte(end)) for start, end in marks]
    out: dict[int, Refusal] = {}
    for start, end, why, fix in found:
        mark = next((i for i, (s, e) in enumerate(byte_marks) if s <= start < e), None)
        if mark is not None:
            start, end = byte_marks[mark]
        first = chars.char(start)
        out.setdefault(first, Refusal(first, chars.char(end), mark, why, fix))
    return [out[key] for key in sorted(out)]


class _Commands:
    """What the script's commands do with what they are fed: which run their input as code
    (``bash``, ``python3 -``, ``xargs sh -c``), which run a file the script wrote (``./f``,
    ``bash f``)."""

    def __init__(self, root: Node, reach: Reach) -> None:
        self.root = root
        self.reach = reach

    def reader(self, stage: Node) -> str | None:
        """Whether a stage of a pipe runs what comes in as code: the program's name, else None."""
        if stage.type == "command":
            return programs.reads_input_as_code([w for _, w in self.reach.words(stage)])
        if stage.type == "redirected_statement":
            if any(c.type in ("herestring_redirect", "heredoc_redirect") or (
                    c.type == "file_redirect" and any(text(t) in ("<", "<>") for t in c.children))
                   for c in stage.children):  # fmt: skip
                return None  # (its input is not the pipe)
            body = stage.child_by_field_name("body")
            return self.reader(body) if body is not None else None
        for node in walk(stage):
            if node is not stage and node.type == "command" and not inside_substitution(node, stage):
                found = self.reader(node)
                if found is not None:
                    return found
        return None

    def runs_file(self, target: Node) -> str | None:
        """The command of the script that runs the file ``target`` names as a program (``./f``,
        ``bash f``, ``source f``), if any: a value written there runs."""
        path = literal(target)
        if not path or path.startswith("/dev/"):
            return None
        wanted = {path, path.removeprefix("./"), "./" + path.removeprefix("./")}
        for node in walk(self.root):
            if node.type != "command":
                continue
            plain = [w for _, w in self.reach.words(node)]
            command = programs.resolve(plain)
            if command.start is None:
                continue
            if plain[command.start].text in wanted:
                return plain[command.start].text
            name = command.name or ""
            operands = [w.text for w in plain[command.start + 1 :] if w.text and not w.text.startswith("-")]
            runs = name in ("source", ".") or programlist.interpreter(name) is not None
            if runs and operands and operands[0] in wanted:
                return name
        return None


class _Judge:
    """One script's reading: which variables hold a value, where each use of one stands."""

    def __init__(self, source: bytes, *, positional: bool = False, depth: int = 0) -> None:
        self.source = source
        self.depth = depth
        self.root = parser().parse(source).root_node
        self.reach = Reach(self.root, positional=positional)
        self._calling: set[int] = set()  # (the functions whose calls are being followed)
        self.commands = _Commands(self.root, self.reach)

    def refusals(self) -> list[tuple[int, int, str, str]]:
        found: list[tuple[int, int, str, str]] = []
        covered: list[tuple[int, int]] = []
        for node in walk(self.root):
            if not self.reach.is_use(node):
                continue
            reference = node
            if node.parent is not None and node.parent.type in ("simple_expansion", "expansion"):
                reference = node.parent
            elif node.parent is not None and node.parent.type == "subscript" and node.parent.parent is not None:
                reference = node.parent.parent
            covered.append((reference.start_byte, reference.end_byte))
            refused = self.verdict(node)
            if refused is not None:
                why, fix = refused
                name = text(node)
                if not OUTSIDE.fullmatch(name):  # (a variable of the script's own that came to hold one)
                    shown = "$" + name if name[:1].isdigit() or name in "@*" else name
                    why = f"({shown} holds a value from outside) {why}"
                found.append((reference.start_byte, reference.end_byte, why, fix))
        found += _Unread(self).found(covered)
        return found

    def verdict(self, use: Node) -> tuple[str, str] | None:
        """Why the value expanded at ``use`` may not stand there, and the fix; None: it is data."""
        if arithmetic(use):
            return "in arithmetic, which evaluates a value's names and subscripts as code", _FIX_ARITHMETIC
        carrier = use.parent
        assert carrier is not None
        if carrier.type == "subscript":
            carrier = carrier.parent
            assert carrier is not None
        if carrier.type == "expansion":
            tokens = [text(c) for c in carrier.children]
            if len(tokens) > 1 and tokens[1] == "!":
                return "in an indirect expansion (${!...}), which reads the value as a variable's name", (
                    programs.FIX_NAME
                )
            if "@" in tokens and "P" in tokens[tokens.index("@") :]:
                return "in a prompt expansion (${...@P}), which runs the $( ) in the value", programs.FIX_NAME
            if not tokens or tokens[-1] != "}":
                return "where the script cannot be read", _FIX_READ
        return self.carry(carrier)

    def carry(self, carrier: Node, quoted: bool = False) -> tuple[str, str] | None:
        """Follow what holds the value up to the place it stands, and judge it there."""
        while True:
            parent = carrier.parent
            if parent is None:
                return "where the script cannot be read", _FIX_READ
            kind = parent.type
            if kind in ("string", "translated_string"):
                quoted = True
            elif kind == "expansion":
                tokens = [c.type for c in parent.children]
                if ":" in tokens:
                    return "in ${...:offset:length}, which bash evaluates as arithmetic", _FIX_ARITHMETIC
            elif kind == "subscript":
                return "in an array's subscript, which bash evaluates as arithmetic", _FIX_ARITHMETIC
            elif kind == "parenthesized_expression":
                pass
            elif kind not in ("concatenation", "array"):
                break
            carrier = parent
        if parent.has_error or carrier.has_error or parent.type == "ERROR":
            return "where the script cannot be read", _FIX_READ
        return self.place(carrier, parent, quoted)

    def place(self, carrier: Node, parent: Node, quoted: bool) -> tuple[str, str] | None:
        """The value is in ``carrier``, a part of ``parent`` (a command, an assignment, a redirect...)."""
        kind = parent.type
        if kind == "command_name":
            return "as the program to run", programs.FIX_PROGRAM
        if kind == "command":
            return self._argument(parent, carrier, quoted)
        if kind == "variable_assignment":
            return self._assigned(parent)
        if kind == "declaration_command":
            return "in a declaration, which reads it as a variable's name", programs.FIX_NAME
        if kind == "file_redirect":
            statement = redirected(parent)
            operator = next((text(c) for c in parent.children if c.type not in ("file_descriptor",)), "")
            if operator in ("<", "<>") and statement is not None:
                return self._fed(statement, "the file it names is read by")
            return None
        if kind == "herestring_redirect":
            statement = redirected(parent)
            return self._fed(statement, "it is fed to") if statement is not None else None
        if kind == "heredoc_body":
            heredoc = parent.parent
            statement = redirected(heredoc) if heredoc is not None else None
            return self._fed(statement, "it is fed to") if statement is not None else None
        if kind == "test_command":
            return None
        if kind == "unary_expression":
            operator = text(parent.child_by_field_name("operator") or parent.children[0])
            if operator in ("-v", "-R"):
                return f"after {operator} in a test, which reads it as a variable's name", programs.FIX_NAME
            return None
        if kind == "binary_expression":
            operator = text(parent.child_by_field_name("operator") or parent.children[1])
            if operator in _ARITHMETIC_TESTS and double_brackets(parent):
                return "in a [[ ]] that compares numbers (-eq, -lt...), whose operands bash evaluates as arithmetic", (
                    _FIX_ARITHMETIC + ", or compare with == inside [[ ]]"
                )
            return None
        if kind in ("for_statement", "case_statement", "case_item"):
            return None
        return "where the orchestrator cannot tell what bash does with it", _FIX_READ

    def _assigned(self, assignment: Node) -> tuple[str, str] | None:
        name = assignment.child_by_field_name("name")
        variable = text(name.child_by_field_name("name") or name.children[0]) if name is not None and (
            name.type == "subscript") else text(name) if name is not None else ""  # fmt: skip
        if programlist.code_name(variable):
            return f"assigned to {variable}, which a program reads as code or as where code is", (
                'give it to a variable of your own (X={{ params.x }}) and pass "$X" to the program as an argument'
            )
        value = assignment.child_by_field_name("value")
        if self.reach.declared(assignment, "i"):
            return "in a declaration with -i, which evaluates the value as arithmetic", _FIX_ARITHMETIC
        if self.reach.declared(assignment, "n"):
            return "in a declaration with -n, which reads the value as a variable's name", programs.FIX_NAME
        if (self.reach.declared(assignment, "a") or self.reach.declared(assignment, "A")) and (
            value is None or value.type != "array"
        ):
            return "in an array's declaration, which reads a value like ([i]=x) as code", (
                'write the array\'s words: declare -a a=("{{ params.x }}")'
            )
        return None

    def _argument(self, command: Node, carrier: Node, quoted: bool) -> tuple[str, str] | None:
        words = self.reach.words(command)
        at = next((i for i, (node, _) in enumerate(words) if within(carrier, node)), None)
        if at is None:  # (a prefix assignment's value, or a redirect's: judged as such)
            return "where the orchestrator cannot tell what bash does with it", _FIX_READ
        verdict = programs.call([w for _, w in words], at, functions=self.reach.functions)
        refused = self._inner(verdict)
        if refused is not None:
            return refused
        if not quoted and words[at][0].type in ("simple_expansion", "expansion", "concatenation", *SUBSTITUTIONS[:1]):
            return "unquoted, where bash splits it into words and expands its globs", _FIX_QUOTE
        return self.onward(command)

    def _inner(self, verdict: Verdict) -> tuple[str, str] | None:
        if verdict.why is not None:
            return verdict.why, verdict.fix
        if verdict.inner is None:
            return None
        if self.depth >= _DEPTH:
            return "in a program too deep inside others to read", _FIX_READ
        inner = _Judge(verdict.inner.encode("utf-8", "surrogateescape"), positional=True, depth=self.depth + 1)
        found = inner.refusals()
        if found:
            return f"as an argument of a shell program ($1...) that uses it {found[0][2]}", found[0][3]
        return None

    def _fed(self, statement: Node, how: str) -> tuple[str, str] | None:
        """The value is on ``statement``'s input: refused if it reads its input as code."""
        reader = self.commands.reader(statement)
        if reader is not None:
            return f"where {how} {reader}, which runs its input as code", programs.FIX_CODE
        return self.onward(statement)

    def onward(self, command: Node) -> tuple[str, str] | None:
        """What ``command`` prints (which may hold the value) goes on: down a pipe into the next
        stages' input, out of a ``$( )`` or ``<( )`` into the word it stands in, out of a function
        wherever it is called."""
        current: Node = command
        while current.parent is not None:
            parent = current.parent
            refused = self._downstream(parent, current)
            if refused is not None:
                return refused
            if parent.type in SUBSTITUTIONS:
                if parent.children and text(parent.children[0]) == ">(":
                    return None
                return self.carry(parent)
            if parent.type == "function_definition":
                return self._called(parent)
            if parent.type == "program":
                return None
            current = parent
        return None

    def _downstream(self, parent: Node, current: Node) -> tuple[str, str] | None:
        """Whether what ``current`` prints goes, in ``parent``, into a program that runs it."""
        stages: list[Node] = []
        if parent.type == "pipeline":
            stages = [c for c in parent.children[parent.children.index(current) + 1 :] if c.type not in ("|", "|&")]
        elif parent.type == "redirected_statement":
            for redirect in parent.children:  # (tree-sitter hangs `cat <<EOF | sh`'s pipe on the here-document)
                for nested in redirect.children if redirect.type == "heredoc_redirect" else ():
                    stages += [c for c in nested.children if c.type == "command"] if nested.type == "pipeline" else []
                for target in redirect.children if redirect.type == "file_redirect" else ():
                    stages += [target] if target.type == "process_substitution" else []
                    runner = self.commands.runs_file(target) if target.type != "process_substitution" else None
                    if runner is not None:
                        return f"written into {text(target)}, which {runner} runs as code", programs.FIX_CODE
        for stage in stages:
            reader = self.commands.reader(stage)
            if reader is not None:
                return f"piped into {reader}, which runs its input as code", programs.FIX_CODE
        return None

    def _called(self, function: Node) -> tuple[str, str] | None:
        """A function's output is its callers': each call's, followed on."""
        name = function.child_by_field_name("name")
        if name is None or function.start_byte in self._calling:
            return None
        self._calling.add(function.start_byte)
        for node in walk(self.root):
            if node.type == "command" and (words := self.reach.words(node)) and words[0][1].text == text(name):
                refused = self.onward(node)
                if refused is not None:
                    return refused
        return None


def _runs_shell(words: Sequence[Word], at: int) -> bool:
    """Whether the word at ``at`` is a program a shell runs (``eval``'s, ``trap``'s, ``bash -c``'s...)."""
    command = programs.resolve(words)
    name = command.name if command.start is not None else None
    if name in ("eval", "trap", "watch", "ssh", "su", "runuser", "sg", "script", "parallel", "flock"):
        return True
    if name is not None and programlist.interpreter(name) in programlist.SHELLS:
        return True
    return command.start is None and any((w.text or "") in ("-c", "--command") for w in words[:at])


class _Unread:
    """What the tree does not show: a value named where no expansion of it is in the tree. Bash
    reads it there as plain text (a comment, single quotes, a quoted here-document), or it is the
    text of a program a shell runs (``eval '...'``, ``bash -c '...'``), read here in its turn;
    anywhere else it is refused, since the grammar and bash may not agree there."""

    def __init__(self, judge: _Judge) -> None:
        self.judge = judge

    def found(self, covered: list[tuple[int, int]]) -> list[tuple[int, int, str, str]]:
        """A value named where the tree shows no expansion of it: refused, unless bash reads it
        there as plain text (a comment, single quotes, a quoted here-document), or it is the
        text of a shell's program, read here in its turn."""
        found: list[tuple[int, int, str, str]] = []
        for match in MENTIONS.finditer(self.judge.source):
            at = match.start()
            if any(start <= at < end for start, end in covered):
                continue
            node = self.judge.root.descendant_for_byte_range(at, match.end())
            refused = self._mention(node, at) if node is not None else ("where the script cannot be read", _FIX_READ)
            if refused is not None:
                found.append((at, match.end(), *refused))
        return found

    def _mention(self, node: Node, at: int) -> tuple[str, str] | None:
        if node.type in ("variable_name", "special_variable_name"):
            return None  # (named, not expanded: assigned, exported, unset, looped over)
        holder: Node | None = node
        while holder is not None and holder.type not in (*_LITERAL_HOLDERS, "heredoc_body", "string", "word"):
            holder = holder.parent
        if holder is None:
            return "where the script cannot be read", _FIX_READ
        if holder.type == "heredoc_body":
            return self._heredoc_mention(holder, at)
        if holder.type == "comment":
            return None
        command = holder.parent
        while command is not None and command.type in ("concatenation", "command_name"):
            command = command.parent
        if command is None or command.type != "command":
            return None if holder.type in _LITERAL_HOLDERS else ("where the script cannot be read", _FIX_READ)
        return self._programtext(command, holder)

    def _programtext(self, command: Node, holder: Node) -> tuple[str, str] | None:
        """A literal word that names a value: if a shell runs it as a program (``eval '...'``,
        ``bash -c '...'``, ``trap '...'``), that program is read in its turn."""
        words = self.judge.reach.words(command)
        at = next((i for i, (node, _) in enumerate(words) if within(holder, node)), None)
        if at is None:
            return None
        plain = [w for _, w in words]
        probe = programs.call(
            [*plain[:at], Word(None, "", True), *plain[at + 1 :]], at, functions=self.judge.reach.functions
        )
        if probe.why is None or not _runs_shell(plain, at):
            return None
        text = plain[at].text
        if text is None or self.judge.depth >= _DEPTH:
            return "in a program too deep inside others to read", _FIX_READ
        inner = _Judge(text.encode("utf-8", "surrogateescape"), depth=self.judge.depth + 1).refusals()
        if inner:
            return f"in the program {programlist.base(plain[0].text or 'bash')} runs, {inner[0][2]}", inner[0][3]
        return None

    def _heredoc_mention(self, body: Node, at: int) -> tuple[str, str] | None:
        heredoc = body.parent
        start = next((c for c in heredoc.children if c.type == "heredoc_start"), None) if heredoc else None
        quoted = start is not None and any(q in text(start) for q in "'\"\\")
        statement = redirected(heredoc) if heredoc is not None else None
        reader = self.judge.commands.reader(statement) if statement is not None else None
        if quoted:
            if reader is None or programlist.interpreter(reader.split()[0]) not in programlist.SHELLS:
                return None  # (read as plain text; a program other than a shell reads it as its own code)
            if self.judge.depth >= _DEPTH:
                return "in a program too deep inside others to read", _FIX_READ
            inner = _Judge(body.text or b"", depth=self.judge.depth + 1).refusals()
            if inner:
                return f"in the here-document {reader} runs, {inner[0][2]}", inner[0][3]
            return None
        # An unquoted body the grammar left unread (``<<-`` with tabs): a plain ``$NAME`` or
        # ``${NAME}`` there is the value, fed to the program; anything more is not read here.
        before = self.judge.source[max(at - 2, body.start_byte) : at].decode("utf-8", "surrogateescape")
        whole = text(body)
        if not (before.endswith("$") or before.endswith("${")) or "$(" in whole or "`" in whole:
            return "in a here-document the orchestrator cannot read", _FIX_READ
        if reader is not None:
            return f"where it is fed to {reader}, which runs its input as code", programs.FIX_CODE
        return self.judge.onward(statement) if statement is not None else None
