"""The response cache: exact-match answers per route, LRU with a TTL and a byte bound.

A route opts in with ``cache = {ttl = ..., shared = ...}``. The engine looks a request up
by :func:`cache_key` before choosing a target and stores the answer after a success;
this module holds only the data structure and the conversions, and never reads a clock
of its own (the clock is passed in) nor starts a task.

What is cached: only *complete* answers, and the caller decides which those are. Errors
are never stored, and neither is a stream that broke, was cancelled or ended without a
``finish_reason`` (:func:`assemble` returns ``None`` for it). A non-streamed answer is
stored as it is; a streamed one is rebuilt with :func:`assemble` from its chunks once
it has finished. Either kind can then serve either kind of request: :func:`replay`
turns a stored answer back into a stream (both live in :mod:`._replay`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from adapters import RESPONSES
from adapters._types import (
    ContentPart,
    GatewayRequest,
    Message,
    RefusalPart,
    TextPart,
    WirePart,
)

from ._cache_entries import Cached, answer_size, plain_json
from ._replay import REPLAY_WORDS, assemble, replay

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ENTRY_OVERHEAD",
    "REPLAY_WORDS",
    "CacheStats",
    "ResponseCache",
    "assemble",
    "cache_key",
    "replay",
]

#: Bytes charged to each entry on top of its answer's JSON encoding: the key, the
#: bookkeeping and the Python objects of the stored answer.
ENTRY_OVERHEAD = 256
# Bumped whenever the key's layout changes, so that old and new keys never meet.
_KEY_VERSION = 2
# Request fields that describe the transport, not the answer (and the client body's
# ``model``, which the route stands for); dropped from ``extra`` too.
_NOT_KEYED = frozenset({"stream", "stream_options", "model"})
#: A Responses body's fields that only its answer echoes (or that the gateway overrides:
#: nothing is stored), so a Responses client's answer is keyed as its translation is.
_ECHOED = _NOT_KEYED | {"metadata", "store"}


def _not_keyed(req: GatewayRequest) -> frozenset[str]:
    return _ECHOED if req.raw is not None and req.raw.format == RESPONSES else _NOT_KEYED


# -- keys -------------------------------------------------------------------------------


def cache_key(route: str, req: GatewayRequest, client: str | None) -> bytes:
    """The 32-byte SHA-256 key of ``req`` on ``route``, for ``client``.

    The hash is over a canonical JSON document (orjson, keys sorted, so the order of
    ``extra`` or of a tool's schema does not matter) holding everything that can change
    the answer:

    - ``route``, the route's name;
    - the messages: each one's role, content (a string, or its text and image parts
      with their URL and detail), name, tool calls (id, name, arguments) and
      ``tool_call_id``;
    - the tools (name, description, parameters, strict) and ``tool_choice``;
    - ``temperature``, ``top_p``, ``max_tokens`` with the name the client gave it
      (``max_tokens`` or ``max_completion_tokens``) and ``stop``;
    - all of ``extra``: ``seed``, ``response_format``, ``n``, ``logprobs``, ``user``
      and anything else a client sent;
    - ``client``, the client key's name, or ``None`` on a route whose cache is shared;
    - ``req.raw``: the client's body (less ``model`` and streaming) and its format, which
      a same-format target gets whole (``thinking``, ``top_k`` change the answer too).

    Not in the key: ``stream`` and ``include_usage`` (and ``stream_options``), since a
    streamed request can be served from a non-streamed answer and the other way round;
    and ``req.model``, which the route stands for. Matching is exact: a string content
    and the same text as one text part are different keys, as are ``1`` and ``1.0`` in
    ``extra`` (``temperature`` and ``top_p`` are floats already).
    """
    doc = {
        "v": _KEY_VERSION,
        "route": route,
        "client": client,
        "messages": [_message_doc(m) for m in req.messages],
        "tools": [
            {
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
                "strict": t.strict,
            }
            for t in req.tools
        ],
        "tool_choice": req.tool_choice,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "max_tokens": req.max_tokens,
        "limit_name": req.limit_name,
        "stop": req.stop,
        "extra": {k: v for k, v in req.extra.items() if k not in _NOT_KEYED},
        "raw": req.raw and {k: v for k, v in req.raw.body.items() if k not in _not_keyed(req)},
        "format": req.raw and req.raw.format,
    }
    canonical = orjson.dumps(doc, default=plain_json, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).digest()


def _part_doc(p: ContentPart) -> Any:
    if isinstance(p, RefusalPart):
        return {"refusal": p.text}
    if isinstance(p, TextPart):
        return {"text": p.text}
    if isinstance(p, WirePart):
        return {"wire": p.part}
    return {"url": p.url, "detail": p.detail}


def _message_doc(m: Message) -> dict[str, Any]:
    content: Any
    if m.content is None or isinstance(m.content, str):
        content = m.content
    else:
        content = [_part_doc(p) for p in m.content]
    return {
        "role": m.role,
        "content": content,
        "name": m.name,
        "tool_calls": [[c.id, c.name, c.arguments] for c in m.tool_calls],
        "tool_call_id": m.tool_call_id,
    }


# -- the cache --------------------------------------------------------------------------


@attrs.frozen
class CacheStats:
    """Counters for metrics and ``/admin/status``.

    Attributes:
        hits: Lookups that found a fresh answer.
        misses: Lookups that found nothing or an expired answer.
        evictions: Fresh entries dropped to make room for a new one (expired entries
            dropped on the way are not counted).
        entries: Entries held now, fresh or not yet noticed to be expired.
        bytes: Their total size, as :meth:`ResponseCache.put` counts it.
    """

    hits: int
    misses: int
    evictions: int
    entries: int
    bytes: int


@attrs.frozen
class _Entry:
    response: Cached
    expires: float
    size: int


class ResponseCache:
    """Complete answers by key, least recently used first out, each with its own TTL.

    An entry's size is the length of its answer's orjson encoding (the OpenAI
    ``chat.completion`` or embeddings JSON) plus :data:`ENTRY_OVERHEAD`; the sizes of the entries
    held never add up to more than ``max_bytes``. An answer is fresh while
    ``clock() < stored_at + ttl``: at exactly ``stored_at + ttl`` it has expired.

    Args:
        max_bytes: The bound on the total size of the entries.
        clock: Seconds on a monotonic clock (``trio.current_time`` in the daemon).

    Raises:
        ValueError: ``max_bytes`` below 1.
    """

    def __init__(self, max_bytes: int, clock: Callable[[], float]) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()  # LRU first
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0

    def get(self, key: bytes) -> Cached | None:
        """The fresh answer under ``key``, now the most recently used; ``None`` if none.

        An expired entry is dropped and counts as a miss.
        """
        entry = self._entries.get(key)
        if entry is not None and self._clock() >= entry.expires:
            self._drop(key)
            entry = None
        if entry is None:
            self._misses += 1
            return None
        self._entries.move_to_end(key)
        self._hits += 1
        return entry.response

    def put(self, key: bytes, resp: Cached, ttl: float) -> None:
        """Store ``resp`` under ``key`` for ``ttl`` seconds, as the most recently used.

        An entry already under ``key`` is replaced. Least recently used entries are
        evicted until the new one fits. An answer whose size alone is over
        ``max_bytes``, or a ``ttl`` that is not positive, stores nothing (and leaves an
        older entry under ``key`` alone).

        Only complete answers belong here; the caller must never put an error or an
        answer rebuilt from a stream that did not finish.
        """
        size = answer_size(resp) + ENTRY_OVERHEAD
        if size > self.max_bytes or ttl <= 0:
            return
        if key in self._entries:
            self._drop(key)
        now = self._clock()
        while self._bytes + size > self.max_bytes:
            old_key, old = next(iter(self._entries.items()))
            self._drop(old_key)
            if now < old.expires:
                self._evictions += 1
        self._entries[key] = _Entry(resp, now + ttl, size)
        self._bytes += size

    @property
    def stats(self) -> CacheStats:
        """The counters and the current occupancy."""
        return CacheStats(
            hits=self._hits,
            misses=self._misses,
            evictions=self._evictions,
            entries=len(self._entries),
            bytes=self._bytes,
        )

    def clear(self) -> None:
        """Drop every entry. The hit, miss and eviction counters keep counting."""
        self._entries.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        """Whether an entry is held under ``key``, fresh or not; no LRU or stats change."""
        return key in self._entries

    def _drop(self, key: bytes) -> None:
        self._bytes -= self._entries.pop(key).size
