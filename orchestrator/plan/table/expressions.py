"""The language a ``Condition`` is written in, held to what a condition says: jinja2's expression
syntax cut down to comparisons of outcomes and fields, joined by ``and``, ``or``, ``not``, with
arithmetic on numbers; and the sandbox that evaluates it, bounded in time and memory.

A condition is read in three steps, each refusing what it cannot hold with a ``ConditionError``
(``validate`` shows it at the row's line): its size (characters, brackets nested, prefix words
in a row: jinja2's parser recurses on each), its tree (every node one of ``_ALLOWED``, every name
one ``conditions`` put there for a task id, no deeper than ``MAX_DEPTH``; arithmetic on a
string or a list, and a constant past ``MAX_BITS``, refused before a run), then the compiled
code, run by ``Sandbox``: a field is a key of a mapping, never an attribute of a Python object,
and an operator whose result would pass ``MAX_BITS`` raises ``TooLarge`` instead of filling the
memory (``'a' * 10**10``).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.environment import TemplateExpression
from jinja2.parser import Parser
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

MAX_CHARS = 1000  # a condition longer than this is no condition a person reads at a glance
MAX_EXPRESSION = 16 * MAX_CHARS  # its expression, each id made a lookup
MAX_NESTING = 20  # brackets inside brackets: 20 deep is read, 21 refused
MAX_PREFIX = 8  # ``not``, ``-`` or ``+`` in a row
MAX_DEPTH = 48  # the expression's tree (``a and b and c ...`` is as deep as it is long)
MAX_BITS = 4096  # the most bits an integer an operator gives may have (2 ** 4095 has 4,096: about 1,233 digits)
MAX_ITEMS = 1000  # items a list written in a condition may have

_COMPARISONS = {"eq": "==", "ne": "!=", "gt": ">", "gteq": ">=", "lt": "<", "lteq": "<=", "in": "in", "notin": "not in"}
_ARITHMETIC = (nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow)
_ALLOWED = (
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Compare,
    nodes.Operand,
    nodes.Const,
    nodes.Name,
    nodes.Getitem,
    nodes.Getattr,
    nodes.List,
    nodes.Tuple,
    nodes.Neg,
    nodes.Pos,
    *_ARITHMETIC,
)
# What a node the language does not have is, in a person's words.
_NOT_READ = {
    nodes.Call: "calls a function",
    nodes.Filter: "applies a filter (|)",
    nodes.Test: "applies a test (is ...)",
    nodes.CondExpr: "has an if ... else",
    nodes.Concat: "joins strings with ~",
    nodes.Slice: "takes a slice",
    nodes.Dict: "writes a dict",
}
LANGUAGE = "arithmetic is on numbers only"


class Refused(ValueError):
    """A condition the language does not have, or too large to read; its message says which."""


class UnknownName(Refused):
    """A name in a condition that is no task id (``cycler``, ``range``, ``x``)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"'{name}' is no task of the plan")
        self.name = name


class TooLarge(ArithmeticError):
    """An operator whose result would pass what a condition may hold (``MAX_BITS``)."""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bits(value: int | float) -> int:
    """How many bits an integer has, its sign aside (``abs(value).bit_length()``); 0 for a float."""
    return value.bit_length() if isinstance(value, int) else 0


def bounded(symbol: str, left: Any, right: Any) -> Any:
    """``left symbol right`` for the arithmetic of a condition: numbers only, and no integer
    result of more than ``MAX_BITS`` bits: one whose fewest possible bits already pass it is
    refused before it is computed (``10 ** 10**9`` is never built); any other, at most about twice
    ``MAX_BITS`` bits, is computed and its own bits compared (``2 ** 4095``, 4,096 bits, is a
    number a condition holds; ``2 ** 4096`` is not)."""
    if not (_number(left) and _number(right)):
        raise TypeError(f"{_shown(left)} {symbol} {_shown(right)}: {LANGUAGE}")
    too_large = TooLarge(f"{_shown(left)} {symbol} {_shown(right)} is a number of more than {MAX_BITS} bits")
    if isinstance(left, int) and isinstance(right, int):
        # |a| of b bits is at least 2 ** (b - 1): a ** n has at least n * (b - 1) + 1 bits, a * c
        # at least b + bits(c) - 1.
        if symbol == "**" and right > 0 and abs(left) > 1 and right * (_bits(left) - 1) + 1 > MAX_BITS:
            raise too_large
        if symbol == "*" and left and right and _bits(left) + _bits(right) - 1 > MAX_BITS:
            raise too_large
    try:
        result = _OPERATORS[symbol](left, right)
    except OverflowError:
        raise TooLarge(f"{_shown(left)} {symbol} {_shown(right)} is too large a number") from None
    if isinstance(result, int) and _bits(result) > MAX_BITS:  # (a sum of two at the bound: one bit more)
        raise too_large
    return result


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}


def _shown(value: Any) -> str:
    said = repr(value)
    return said if len(said) <= 24 else said[:20] + "..."


class Sandbox(SandboxedEnvironment):
    """jinja2's sandbox, narrowed: every arithmetic operator goes through ``bounded`` (jinja2
    folds no constant it intercepts, so ``validate`` never computes one either), and ``a.b`` or
    ``a["b"]`` is a key of a mapping or an index of a list, never a Python attribute."""

    intercepted_binops = frozenset(_OPERATORS)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return bounded(operator, left, right)

    def getitem(self, obj: Any, argument: Any) -> Any:
        try:
            if isinstance(obj, Mapping):
                return obj[argument]
            if isinstance(obj, (list, tuple, str)) and isinstance(argument, int) and not isinstance(argument, bool):
                return obj[argument]
        except (LookupError, TypeError):
            pass
        return self.undefined(obj=obj, name=argument)

    def getattr(self, obj: Any, attribute: str) -> Any:
        return self.getitem(obj, attribute)


@lru_cache(maxsize=1)
def environment() -> Sandbox:
    return Sandbox(undefined=StrictUndefined, autoescape=False)


def parse(expression: str, names: frozenset[str], *, nesting: int = MAX_NESTING) -> nodes.Expr:
    """``expression`` read as a condition's tree, every name in it one of ``names``, its brackets
    nested at most ``nesting`` deep (a caller that made some of them, as ``conditions`` makes a
    task id a lookup, counts a person's own against ``MAX_NESTING`` and passes more); ``Refused``
    or jinja2's ``TemplateSyntaxError`` says why not."""
    if len(expression) > MAX_EXPRESSION:
        raise Refused(f"it is {len(expression)} characters long (at most {MAX_EXPRESSION})")
    env = environment()
    try:
        _nesting(env, expression, nesting)
        parser = Parser(env, expression, state="variable")
        tree = parser.parse_expression()
    except Refused:
        raise
    except (ValueError, RecursionError) as exc:  # (a number jinja2 cannot convert, a tree past the stack)
        raise Refused(f"cannot read it: {exc}") from None
    if not parser.stream.eos:
        raise TemplateSyntaxError("unexpected end of the condition", parser.stream.current.lineno)
    _check(tree, names)
    _constant(tree)
    return tree


def _nesting(env: Sandbox, expression: str, most: int) -> None:
    """Refused: brackets nested past ``most``, or more than ``MAX_PREFIX`` prefix words in a row
    (jinja2's parser calls itself for each: thousands would pass Python's stack)."""
    depth = prefix = 0
    for token in env.lexer.tokenize(expression, state="variable"):
        if token.type in ("lparen", "lbracket", "lbrace"):
            depth += 1
            if depth > most:
                raise Refused(f"its brackets are nested more than {most} deep")
        elif token.type in ("rparen", "rbracket", "rbrace"):
            depth -= 1
        if token.type in ("sub", "add") or (token.type == "name" and token.value == "not"):
            prefix += 1
            if prefix > MAX_PREFIX:
                raise Refused(f"it has more than {MAX_PREFIX} of not, - or + in a row")
        else:
            prefix = 0


def _check(tree: nodes.Node, names: frozenset[str]) -> None:
    """Every node of ``tree`` one the language has, every name one of ``names``, no deeper than
    ``MAX_DEPTH`` (walked without recursion: a tree too deep is what it refuses)."""
    stack: list[tuple[nodes.Node, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise Refused(f"it is nested more than {MAX_DEPTH} deep (split it, or join fewer parts)")
        if not isinstance(node, _ALLOWED):
            said = next((said for kind, said in _NOT_READ.items() if isinstance(node, kind)), "has what it cannot read")
            raise Refused(f"it {said}, which a condition does not")
        if isinstance(node, nodes.Name) and node.name not in names:
            raise UnknownName(node.name)
        if isinstance(node, nodes.Const) and isinstance(node.value, float) and not math.isfinite(node.value):
            raise Refused(f"it writes a number too large to hold ({_shown(node.value)})")
        if isinstance(node, nodes.Operand) and node.op not in _COMPARISONS:
            raise Refused(f"it compares with '{node.op}', which a condition does not")
        if isinstance(node, (nodes.List, nodes.Tuple)) and len(node.items) > MAX_ITEMS:
            raise Refused(f"it writes a list of more than {MAX_ITEMS} items")
        if isinstance(node, _ARITHMETIC):
            for side in (node.left, node.right):
                if isinstance(side, (nodes.List, nodes.Tuple)) or (
                    isinstance(side, nodes.Const) and not _number(side.value)
                ):
                    raise Refused(f"it does arithmetic on {_literal(side)}: {LANGUAGE}")
        stack += [(child, depth + 1) for child in node.iter_child_nodes()]


def _literal(node: nodes.Node) -> str:
    return "a list" if isinstance(node, (nodes.List, nodes.Tuple)) else _shown(getattr(node, "value", None))


_UNKNOWN = object()


def _constant(node: nodes.Node) -> Any:
    """The value of ``node`` when it is arithmetic on numbers written in the condition alone
    (``10 ** 10 ** 10``), computed as a run would (``bounded``) so that ``validate`` refuses
    what no run could decide; ``_UNKNOWN`` for anything that reads a field or an outcome."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, (nodes.Neg, nodes.Pos)):
        value = _constant(node.node)
        if value is _UNKNOWN or not _number(value):
            return _UNKNOWN
        return -value if isinstance(node, nodes.Neg) else value
    if isinstance(node, _ARITHMETIC):
        left, right = _constant(node.left), _constant(node.right)
        if left is _UNKNOWN or right is _UNKNOWN:
            return _UNKNOWN
        try:
            return bounded(node.operator, left, right)
        except TooLarge as exc:
            raise Refused(f"{exc}: no run could compute it") from None
        except (TypeError, ZeroDivisionError, ValueError):
            return _UNKNOWN  # (a run says so, if it comes to it)
    for child in node.iter_child_nodes():
        _constant(child)
    return _UNKNOWN


def compile_tree(tree: nodes.Expr) -> TemplateExpression:
    """The checked ``tree`` compiled, as jinja2's ``compile_expression`` compiles an expression
    it parsed itself: the code run is the tree that was checked."""
    env = environment()
    tree.set_environment(env)
    body = [nodes.Assign(nodes.Name("result", "store"), tree, lineno=1)]
    template = env.from_string(nodes.Template(body, lineno=1))
    return TemplateExpression(template, undefined_to_none=False)
