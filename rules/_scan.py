"""Content hooks at run time: compiled from ``[hooks.NAME]``, applied to texts and to
streams of text.

A hook maps a text to the text to send on, or raises `Blocked`. ``regex`` and ``pii``
hooks find spans (start, end, replacement) and either block on the first or splice the
replacements in; a ``plugin`` hook is the operator's callable.

A stream's text comes in pieces, and a pattern may be split across two of them:
`TextStream` holds back the last ``window`` characters (a pattern's longest match, up
to the hook's ``window``) until more text or the end shows what they are, and a match
that runs over the point it would emit up to is held back whole. What it emits is what
`apply` would make of the same text, for matches no longer than the window.

Pure: no I/O, no clock.
"""

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from ._hooks import HookConfig, PIIHookConfig, RegexHookConfig, load_callable
from ._pii import LABELS, MAX_WIDTH, find_pii

__all__ = ["Blocked", "TextHook", "TextStream", "apply_hooks", "compile_hook"]

Span = tuple[int, int, str]


class Blocked(Exception):
    """A hook refused a text.

    Attributes:
        hook: The hook's name (``[hooks.NAME]``).
        direction: ``"request"`` or ``"response"``.
    """

    def __init__(self, hook: str, direction: str) -> None:
        super().__init__(f'the {direction} was blocked by hook "{hook}"')
        self.hook = hook
        self.direction = direction


@attrs.frozen(eq=False)
class TextHook:
    """One compiled hook.

    Attributes:
        name: Its ``[hooks.NAME]``.
        on: The directions it runs on.
        window: Characters of a stream it holds back.
        find: Its spans in a text (regex, pii), or None for a callable.
        block: A span blocks the text (else it is replaced).
        rewrite: The callable of a plugin hook.
    """

    name: str
    on: frozenset[str]
    window: int
    find: Callable[[str], list[Span]] | None = None
    block: bool = False
    rewrite: Callable[..., Any] | None = None

    def apply(self, text: str, direction: str) -> str:
        """``text`` as this hook lets it through. Raises Blocked."""
        if self.find is None:
            assert self.rewrite is not None
            result = self.rewrite(text, direction=direction)
            if result is None:
                raise Blocked(self.name, direction)
            return str(result)
        spans = self.find(text)
        if not spans:
            return text
        if self.block:
            raise Blocked(self.name, direction)
        return _splice(text, spans)


def _splice(text: str, spans: Iterable[Span]) -> str:
    out: list[str] = []
    at = 0
    for start, end, replacement in spans:
        out += (text[at:start], replacement)
        at = end
    out.append(text[at:])
    return "".join(out)


def _width(pattern: re.Pattern[str]) -> int:
    """The longest text ``pattern`` can match (huge for ``+`` and ``*``)."""
    return int(re._parser.parse(pattern.pattern, pattern.flags).getwidth()[1])  # type: ignore[attr-defined]


def compile_hook(name: str, config: HookConfig) -> TextHook:
    """The run-time form of ``[hooks.name]`` (a plugin's callable is loaded here).

    Raises:
        LookupError: a plugin's callable cannot be loaded (``check`` reports it first).
    """
    on = frozenset(config.on)
    if isinstance(config, RegexHookConfig):
        flags = re.IGNORECASE if config.ignore_case else 0
        patterns = [re.compile(p, flags) for p in config.patterns]
        replacement = config.replacement

        def find_regex(text: str) -> list[Span]:
            found = [
                (m.start(), m.end(), replacement)
                for p in patterns
                for m in p.finditer(text)
                if m.end() > m.start()
            ]
            return _disjoint(found)

        window = min(config.window, max(_width(p) for p in patterns))
        return TextHook(name, on, window, find_regex, config.action == "block")
    if isinstance(config, PIIHookConfig):
        categories = tuple(config.categories)
        label = config.replacement

        def find_personal(text: str) -> list[Span]:
            return [(s, e, label or LABELS[c]) for s, e, c in find_pii(text, categories)]

        window = min(config.window, MAX_WIDTH)
        return TextHook(name, on, window, find_personal, config.action == "block")
    return TextHook(name, on, config.window, rewrite=load_callable(config.callable))


def _disjoint(spans: list[Span]) -> list[Span]:
    """Sorted spans, overlaps dropped (the earlier, then the longer, wins)."""
    spans.sort(key=lambda s: (s[0], -s[1]))
    kept: list[Span] = []
    for span in spans:
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    return kept


def apply_hooks(hooks: Sequence[TextHook], text: str, direction: str) -> str:
    """``text`` through every hook of ``hooks`` that runs on ``direction``, in order.

    Raises:
        Blocked: a hook refused it.
    """
    for hook in hooks:
        if direction in hook.on:
            text = hook.apply(text, direction)
    return text


class _Held:
    """One hook's part of a stream: the text it has not let through yet."""

    __slots__ = ("direction", "held", "hook")

    def __init__(self, hook: TextHook, direction: str) -> None:
        self.hook = hook
        self.direction = direction
        self.held = ""

    def feed(self, text: str) -> str:
        hook, window = self.hook, self.hook.window
        buffer = self.held + text
        cut = len(buffer) - window
        if cut <= 0:  # nothing can go out yet: no need to look (flush or more text will)
            self.held = buffer
            return ""
        if hook.find is None:
            self.held = buffer[cut:]
            return hook.apply(buffer[:cut], self.direction)
        spans = hook.find(buffer)
        if spans and hook.block:
            raise Blocked(hook.name, self.direction)
        crossing = next((s for s in spans if s[0] < cut < s[1]), None)
        if crossing is not None:
            # A match running over the cut may grow with more text: hold it whole,
            # unless the held text would grow without bound (a pattern such as \d+
            # fed digits for ever): then it goes out replaced as it stands.
            cut = crossing[0] if len(buffer) - crossing[0] <= 4 * max(window, 1) else crossing[1]
        self.held = buffer[cut:]
        return _splice(buffer[:cut], [s for s in spans if s[1] <= cut])

    def flush(self) -> str:
        text, self.held = self.held, ""
        return self.hook.apply(text, self.direction) if text else ""


class TextStream:
    """One stream of text (one choice of a streamed answer) through a chain of hooks.

    :meth:`feed` each piece as it comes and send on what it returns; :meth:`flush` at
    the end returns the rest. Both raise Blocked when a hook refuses the text.
    """

    def __init__(self, hooks: Sequence[TextHook], direction: str) -> None:
        self._chain = [_Held(h, direction) for h in hooks if direction in h.on]

    def feed(self, text: str) -> str:
        for held in self._chain:
            text = held.feed(text)
        return text

    def flush(self) -> str:
        text = ""
        for held in self._chain:
            text = held.feed(text) if text else ""
            text += held.flush()
        return text
