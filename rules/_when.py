"""The condition language of a route's ``when`` rules: parsed once at load, never eval'd.

A rule reads ``{ if = "tokens > 8000 and not has_tools", use = "big" }``. The language is
small on purpose, so it stays safe and its errors can be precise:

- names: ``tokens`` (the prompt's estimated tokens), ``max_tokens`` (as the client
  asked), ``complexity`` (0..1, see ``router.routing._complexity``), ``has_tools``,
  ``has_images``, ``json`` (a ``response_format`` was asked for), ``key`` (the name of
  the caller's client key), ``header.NAME`` (a request header);
- numbers (``8000``, ``8_000``, ``0.5``), strings (``"gold"`` or ``'gold'``, no escapes),
  ``true`` and ``false``;
- comparisons ``< <= > >= == !=`` (ordering only between numbers), ``and``, ``or``,
  ``not`` and parentheses.

Types are checked at parse time: ``key > 3`` or a bare ``tokens`` is a config error, not
a request that quietly never matches. A value the request does not have (no
``max_tokens``, no such header, no client key) compares false, except with ``!=``.
"""

import re
from collections.abc import Callable
from typing import Literal

import attrs

__all__ = [
    "BOOL_NAMES",
    "NUMBER_NAMES",
    "STRING_NAMES",
    "And",
    "Compare",
    "Const",
    "Expr",
    "Name",
    "Not",
    "Or",
    "Value",
    "WhenRule",
    "evaluate",
    "names_in",
    "parse_condition",
]

Value = float | bool | str | None
#: What a condition's names stand for, asked of the request as evaluation needs them.
Lookup = Callable[[str], Value]

NUMBER_NAMES = frozenset({"tokens", "max_tokens", "complexity"})
BOOL_NAMES = frozenset({"has_tools", "has_images", "json"})
STRING_NAMES = frozenset({"key"})
_KNOWN = ", ".join(sorted(NUMBER_NAMES | BOOL_NAMES | STRING_NAMES)) + ", header.NAME"
_ORDER_OPS = frozenset({"<", "<=", ">", ">="})

Type = Literal["number", "bool", "string"]


@attrs.frozen
class Const:
    value: float | bool | str


@attrs.frozen
class Name:
    """A request fact; ``header.x-tier`` is the name ``header.x-tier``."""

    name: str


@attrs.frozen
class Compare:
    op: str
    left: "Expr"
    right: "Expr"


@attrs.frozen
class Not:
    item: "Expr"


@attrs.frozen
class And:
    items: tuple["Expr", ...]


@attrs.frozen
class Or:
    items: tuple["Expr", ...]


Expr = Const | Name | Compare | Not | And | Or


@attrs.frozen
class WhenRule:
    """One entry of a route's ``when``: if ``condition`` holds, ``use`` serves.

    Attributes:
        text: The condition as written (for ``check`` output).
        condition: Its parsed form.
        use: A route name or ``provider:model`` target (resolved when routes compile).
    """

    text: str
    condition: Expr
    use: str


# -- tokens ----------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>\d[\d_]*(?:\.\d[\d_]*)?)
    | (?P<string>"[^"]*"|'[^']*')
    | (?P<header>header\.[A-Za-z0-9_-]+)
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op><=|>=|==|!=|<|>)
    | (?P<paren>[()])
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """``(kind, text, column)`` for each token; column is 1-based for messages."""
    found: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            start = len(text) - len(text[pos:].lstrip())
            raise ValueError(f"unexpected {text[start]!r} at column {start + 1}")
        kind = match.lastgroup
        found.append((kind, match.group(kind), match.start(kind) + 1))
        pos = match.end()
    return found


# -- parser: recursive descent, one function per precedence level -----------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def next_is(self, kind: str, text: str | None = None) -> bool:
        token = self.peek()
        return token is not None and token[0] == kind and (text is None or token[1] == text)

    def take(self) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise ValueError("the condition ends too early")
        self.at += 1
        return token

    def parse(self) -> Expr:
        if not self.tokens:
            raise ValueError("the condition is empty")
        expr = self.or_()
        token = self.peek()
        if token is not None:
            raise ValueError(f"unexpected {token[1]!r} at column {token[2]}")
        _boolean(expr)
        return expr

    def or_(self) -> Expr:
        items = [self.and_()]
        while self.next_is("word", "or"):
            self.take()
            items.append(self.and_())
        return items[0] if len(items) == 1 else Or(tuple(_boolean(i) for i in items))

    def and_(self) -> Expr:
        items = [self.not_()]
        while self.next_is("word", "and"):
            self.take()
            items.append(self.not_())
        return items[0] if len(items) == 1 else And(tuple(_boolean(i) for i in items))

    def not_(self) -> Expr:
        if self.next_is("word", "not"):
            self.take()
            return Not(_boolean(self.not_()))
        return self.compare()

    def compare(self) -> Expr:
        left = self.atom()
        if not self.next_is("op"):
            return left
        _, op, column = self.take()
        right = self.atom()
        types = (_type(left), _type(right))
        if types[0] != types[1]:
            raise ValueError(f"{op!r} at column {column} compares {types[0]} with {types[1]}")
        if op in _ORDER_OPS and types[0] != "number":
            raise ValueError(f"{op!r} at column {column} needs numbers, not {types[0]}s")
        if self.next_is("op"):
            raise ValueError(f"comparisons do not chain (column {self.take()[2]}); use and")
        return Compare(op, left, right)

    def atom(self) -> Expr:
        kind, text, column = self.take()
        if kind == "paren" and text == "(":
            inner = self.or_()
            if not self.next_is("paren", ")"):
                raise ValueError(f"the ( at column {column} is not closed")
            self.take()
            return inner
        if kind == "number":
            return Const(float(text.replace("_", "")))
        if kind == "string":
            return Const(text[1:-1])
        if kind == "header":
            return Name(text.lower())
        if kind == "word" and text in ("true", "false"):
            return Const(text == "true")
        if kind == "word" and text in NUMBER_NAMES | BOOL_NAMES | STRING_NAMES:
            return Name(text)
        if kind == "word" and text not in ("and", "or", "not"):
            raise ValueError(f"unknown name {text!r} at column {column} (known: {_KNOWN})")
        raise ValueError(f"unexpected {text!r} at column {column}")


def _type(expr: Expr) -> Type:
    if isinstance(expr, Const):
        value = expr.value
        if isinstance(value, bool):
            return "bool"
        return "string" if isinstance(value, str) else "number"
    if isinstance(expr, Name):
        if expr.name in NUMBER_NAMES:
            return "number"
        return "bool" if expr.name in BOOL_NAMES else "string"
    return "bool"


def _boolean(expr: Expr) -> Expr:
    """``expr`` where a true/false is needed: a bare number or string is an error."""
    kind = _type(expr)
    if kind != "bool":
        shown = expr.name if isinstance(expr, Name) else repr(expr.value)  # type: ignore[union-attr]
        raise ValueError(f"{shown} is a {kind}, not a condition: compare it (e.g. > 0)")
    return expr


def parse_condition(text: str) -> Expr:
    """Parse a ``when`` condition.

    Raises:
        ValueError: what is wrong and where (a column), for a config error line.
    """
    return _Parser(text).parse()


def names_in(expr: Expr) -> frozenset[str]:
    """The request facts ``expr`` reads (so an unused costly one is never computed)."""
    if isinstance(expr, Name):
        return frozenset({expr.name})
    if isinstance(expr, Const):
        return frozenset()
    if isinstance(expr, Compare):
        return names_in(expr.left) | names_in(expr.right)
    if isinstance(expr, Not):
        return names_in(expr.item)
    return frozenset().union(*(names_in(i) for i in expr.items))


def evaluate(expr: Expr, lookup: Lookup) -> bool:
    """Whether ``expr`` holds for the request whose facts ``lookup`` gives."""
    if isinstance(expr, Compare):
        return _compare(expr.op, _value(expr.left, lookup), _value(expr.right, lookup))
    if isinstance(expr, Not):
        return not evaluate(expr.item, lookup)
    if isinstance(expr, And):
        return all(evaluate(i, lookup) for i in expr.items)
    if isinstance(expr, Or):
        return any(evaluate(i, lookup) for i in expr.items)
    return _value(expr, lookup) is True


def _value(expr: Expr, lookup: Lookup) -> Value:
    if isinstance(expr, Const):
        return expr.value
    if isinstance(expr, Name):
        return lookup(expr.name)
    return evaluate(expr, lookup)  # a parenthesised condition compared with true/false


def _compare(op: str, left: Value, right: Value) -> bool:
    if left is None or right is None:
        return op == "!="  # an absent value equals nothing
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    assert isinstance(left, float | int)
    assert isinstance(right, float | int)
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right
