"""Where a script's values from outside reach: the variables that come to hold one, and each
place one is expanded.

A value is in ``$ORCHESTRATOR_PARAM_*``, ``$ORCHESTRATOR_VALUE_*`` and ``$ORCHESTRATOR_ITEM``
(``OUTSIDE``), and in whatever a script makes of them: a variable assigned one (``b="$V"``,
``read``, ``for b in "$V"``, ``printf -v b``, ``${b:=$V}``, ``declare -n b=V``), and ``$1``, ``$@``
once one is given to a function of the script or to ``set``. ``Reach`` reads the tree until no
variable is added, then tells, of any node, whether it is where a value is expanded (``is_use``)
and whether one is in it (``holds``); and a command's words as ``plan/config/programs`` judges
them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from orchestrator.plan.config import programlist
from orchestrator.plan.config.bashtree import WORDS, arithmetic, head, literal, text, walk
from orchestrator.plan.config.programs import Word

if TYPE_CHECKING:
    from tree_sitter import Node

# The variables that hold a value from outside, whatever the plan calls them.
OUTSIDE = re.compile(r"ORCHESTRATOR_(?:PARAM|VALUE)_[A-Za-z0-9_]+|ORCHESTRATOR_ITEM(?![A-Za-z0-9_])")


class Reach:
    """The variables a script's values reach (``tainted``; ``positional``: ``$1``, ``$@``...), its
    functions, and whether it expands a value anywhere (``any_value``)."""

    def __init__(self, root: Node, *, positional: bool = False) -> None:
        self.root = root
        self.tainted: set[str] = set()
        self.positional = positional
        self.functions = frozenset(
            text(name) for node in walk(root) if node.type == "function_definition"
            for name in [node.child_by_field_name("name")] if name is not None
        )  # fmt: skip
        self.any_value = False
        self.printing: set[str] = set()  # (the functions a value is somewhere in: what they print may hold it)
        self._spread()

    def _outside(self, name: str) -> bool:
        if name in self.tainted or OUTSIDE.fullmatch(name):
            return True
        return self.positional and (name.isdigit() or name in ("@", "*"))

    def _spread(self) -> None:
        """Every variable a value reaches (assigned, looped over, read), until none is added."""
        while True:
            before = (len(self.tainted), self.positional, self.any_value, len(self.printing))
            self.any_value = any(self.is_use(node) for node in walk(self.root))
            for node in walk(self.root):
                self._spread_from(node)
                if node.type == "function_definition" and self.holds(node):
                    self.printing.add(text(node.child_by_field_name("name") or node))
            if (len(self.tainted), self.positional, self.any_value, len(self.printing)) == before:
                return

    def _spread_from(self, node: Node) -> None:
        kind = node.type
        if kind == "variable_assignment":
            value = node.child_by_field_name("value")
            named = value is not None and literal(value) in self.tainted and self.declared(node, "n")
            if value is not None and (self.holds(value) or named):  # (declare -n r=x: r names x)
                self._taint(node.child_by_field_name("name"))
        elif kind == "for_statement":
            if any(self.holds(v) for v in node.children_by_field_name("value")):
                self._taint(node.child_by_field_name("variable"))
        elif kind == "expansion" and any(text(c) in ("=", ":=") for c in node.children):
            if self.holds(node):
                self._taint(next((c for c in node.children if c.type == "variable_name"), None))
        elif kind == "command":
            words = self.words(node)
            if not words:
                return
            name = programlist.base(words[0][1].text or "")
            holding = any(word.value for _, word in words)
            if name in ("read", "mapfile", "readarray", "getopts") and self.any_value:
                for _, word in words[1:]:
                    if word.text and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", word.text):
                        self.tainted.add(word.text)
            elif name == "printf" and holding:
                texts = [word.text for _, word in words]
                if "-v" in texts and texts.index("-v") + 1 < len(texts):
                    self.tainted.add(texts[texts.index("-v") + 1] or "")
            elif (name in self.functions or name == "set") and holding:
                self.positional = True

    def _taint(self, name: Node | None) -> None:
        if name is None:
            return
        if name.type == "subscript":
            name = name.child_by_field_name("name") or name.children[0]
        self.tainted.add(text(name))

    def declared(self, assignment: Node, flag: str) -> bool:
        """Whether the declaration an assignment is in says ``-flag`` (``declare -n``, ``local -i``)."""
        parent = assignment.parent
        if parent is None or parent.type != "declaration_command":
            return False
        return any(c.type == "word" and text(c).startswith("-") and flag in text(c)[1:] for c in parent.children)

    def is_use(self, node: Node) -> bool:
        """Whether ``node`` is where a value is expanded (or named, in arithmetic)."""
        kind = node.type
        if kind not in ("variable_name", "special_variable_name", "word"):
            return False
        if not self._outside(text(node)):
            return False
        parent = node.parent
        if parent is None:
            return False
        if kind == "word":
            return arithmetic(node)
        if parent.type in ("simple_expansion", "expansion"):
            return True
        if parent.type == "subscript" and parent.parent is not None and parent.parent.type == "expansion":
            return node == parent.children[0]
        return kind == "variable_name" and arithmetic(node) and parent.type != "variable_assignment"

    def holds(self, node: Node) -> bool:
        """Whether a value is somewhere in ``node``: expanded there, or printed by a function of
        the script it calls (``x=$(f)``)."""
        return any(self.is_use(n) or (n.type == "command_name" and text(n) in self.printing) for n in walk(node))

    def words(self, command: Node) -> list[tuple[Node, Word]]:
        """A command's name and arguments, each with what the programs' list needs of it."""
        out: list[tuple[Node, Word]] = []
        for child in command.children:
            if child.type == "command_name":
                child = child.children[0] if child.children else child
            elif child.type not in WORDS:
                continue
            out.append((child, Word(literal(child), head(child), self.holds(child))))
        return out
