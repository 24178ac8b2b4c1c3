"""bash's grammar read by tree-sitter: the tree of a script, and what bash makes of its words.

``parser()`` is made once, when the first script that names a value from outside is read (a plan
with none never loads the grammar). The rest are facts of the tree: a word's literal text (its
quotes and escapes removed) or the literal it starts with, whether a node stands in arithmetic,
which command a redirect feeds. ``plan/config/reach`` and ``plan/config/allowlist`` read them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tree_sitter import Node

SUBSTITUTIONS = ("command_substitution", "process_substitution")
# The nodes that are a word of a command (its name or an argument).
WORDS = frozenset(
    {"word", "string", "raw_string", "concatenation", "simple_expansion", "expansion", "command_substitution",
     "process_substitution", "number", "ansi_c_string", "translated_string", "arithmetic_expansion"}
)  # fmt: skip

_PARSER: list[Any] = []


def parser() -> Any:
    """The one parser of bash's grammar, made when first asked for."""
    if not _PARSER:
        import tree_sitter
        import tree_sitter_bash

        _PARSER.append(tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language())))
    return _PARSER[0]


class CharMap:
    """Byte offsets of the UTF-8 script to its characters, and back."""

    def __init__(self, script: str) -> None:
        self.script = script
        self.ascii = script.isascii()

    def byte(self, char: int) -> int:
        return char if self.ascii else len(self.script[:char].encode("utf-8", "surrogateescape"))

    def char(self, byte: int) -> int:
        if self.ascii:
            return byte
        return len(self.script.encode("utf-8", "surrogateescape")[:byte].decode("utf-8", "surrogateescape"))


def walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "surrogateescape")


_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
_DOUBLE_ESCAPED = re.compile(r"\\([$`\"\\\n])")


def literal(node: Node) -> str | None:
    """What bash makes of a word that holds no expansion (its quotes removed), else None."""
    kind = node.type
    if kind in ("word", "number"):
        return _ESCAPED.sub(lambda m: "" if m.group(1) == "\n" else m.group(1), text(node))
    if kind == "raw_string":
        return text(node)[1:-1]
    if kind == "string":
        parts = [c for c in node.children if c.type not in ('"',)]
        if any(c.type != "string_content" for c in parts):
            return None
        return _DOUBLE_ESCAPED.sub(lambda m: "" if m.group(1) == "\n" else m.group(1), "".join(map(text, parts)))
    if kind == "concatenation":
        pieces = [literal(c) for c in node.children]
        return None if any(p is None for p in pieces) else "".join(p or "" for p in pieces)
    return None


def head(node: Node) -> str:
    """The literal a word starts with, before its first expansion."""
    whole = literal(node)
    if whole is not None:
        return whole
    if node.type == "concatenation":
        start = ""
        for child in node.children:
            piece = literal(child)
            if piece is None:
                return start + head(child)
            start += piece
        return start
    if node.type == "string":
        start = ""
        for child in node.children:
            if child.type == '"':
                continue
            if child.type != "string_content":
                return start
            start += _DOUBLE_ESCAPED.sub(lambda m: m.group(1), text(child))
        return start
    return ""


def within(node: Node, outer: Node) -> bool:
    return outer.start_byte <= node.start_byte and node.end_byte <= outer.end_byte


def inside_substitution(node: Node, stop: Node) -> bool:
    current = node.parent
    while current is not None and current != stop:
        if current.type in SUBSTITUTIONS:
            return True
        current = current.parent
    return False


def arithmetic(node: Node) -> bool:
    """Whether ``node`` stands where bash evaluates arithmetic (not inside a ``$( )`` there)."""
    current: Node | None = node.parent
    child = node
    while current is not None:
        kind = current.type
        if kind in SUBSTITUTIONS:
            return False
        if kind in ("arithmetic_expansion", "c_style_for_statement"):
            return True
        if kind == "compound_statement" and current.children and text(current.children[0]) == "((":
            return True
        if kind == "subscript" and child != current.children[0]:
            return True
        child, current = current, current.parent
    return False


def redirected(redirect: Node) -> Node | None:
    """The command (or compound statement) a redirect belongs to."""
    current: Node | None = redirect.parent
    while current is not None and current.type in ("heredoc_redirect",):
        current = current.parent
    if current is None:
        return None
    if current.type == "redirected_statement":
        return current.child_by_field_name("body") or current.children[0]
    return current


def double_brackets(node: Node) -> bool:
    current: Node | None = node
    while current is not None and current.type != "test_command":
        current = current.parent
    return current is not None and bool(current.children) and text(current.children[0]) == "[["
