"""Same-format passthrough: a client's body to a target that speaks the client's format,
and the target's answer back, as they came.

Translation through the unified types serves any client with any target, but holds only
what every format shares. When the client and the target speak the same format (an
Anthropic Messages client and an ``anthropic`` target; an OpenAI Chat client and an
``openai``, ``azure`` or OpenAI-compatible target), the adapter sends the client's own
body with only ``model`` replaced (and the stream settings the router needs), and the
answer (its JSON, or each of its stream events) goes back to the client unchanged:
``thinking``, ``cache_control``, ``document`` blocks, ``service_tier``, ``logprobs``,
provider extras and fields added after this code was written all reach their target
and come back. The unified request still drives routing, limits, budgets, the cache
key and metrics, and the unified answer is still decoded beside the raw one (usage,
finish reasons, the text a resumed stream continues from).

Pure: bodies and event bytes in and out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import attrs
import orjson

from ._errors import UnsupportedParameter
from ._types import WirePart

if TYPE_CHECKING:
    from ._types import GatewayRequest

__all__ = [
    "ANTHROPIC",
    "OPENAI",
    "RESPONSES",
    "MessagesSent",
    "SameFormat",
    "passes_through",
    "refuse_part",
    "refuse_untranslated",
    "sse_bytes",
    "translated",
    "with_client_headers",
]

#: The client formats that have a same-format target kind.
OPENAI = "openai"
ANTHROPIC = "anthropic"
#: OpenAI's Responses API, which only OpenAI's own API serves (``store`` forced off).
RESPONSES = "responses"

#: The client format(s) a target speaks as they are: one, several, or none.
SameFormat = str | tuple[str, ...] | None


def _speaks(same_format: SameFormat, fmt: str) -> bool:
    if same_format is None:
        return False
    return fmt == same_format if isinstance(same_format, str) else fmt in same_format


def passes_through(req: GatewayRequest, same_format: SameFormat) -> bool:
    """Whether ``req`` goes as its client sent it to a target speaking ``same_format``."""
    return req.raw is not None and _speaks(same_format, req.raw.format)


def refuse_untranslated(req: GatewayRequest, same_format: SameFormat, target: str) -> None:
    """Raises UnsupportedParameter, naming the first part of ``req``'s body that has no
    unified form, unless the body goes as it is to ``target`` (its format the same), or
    the first content part held as it came (:class:`WirePart`) that ``target``'s format
    is not the one of."""
    _refuse_wire_parts(req, same_format, target)
    raw = req.raw
    if raw is None or not raw.untranslated or passes_through(req, same_format):
        return
    where = raw.untranslated[0]
    whom = (
        "OpenAI's own API (an 'openai' provider) takes the Responses body as it is"
        if raw.format == RESPONSES
        else f"only a target of the client's own format ({raw.format}) receives it"
    )
    raise UnsupportedParameter(f"{target} cannot take '{where}': {whom}", param=where)


def _refuse_wire_parts(req: GatewayRequest, same_format: SameFormat, target: str) -> None:
    for m in req.messages:
        if isinstance(m.content, str) or m.content is None:
            continue
        for p in m.content:
            if isinstance(p, WirePart) and not _speaks(same_format, p.format):
                refuse_part(p, target)


def refuse_part(p: WirePart, target: str) -> NoReturn:
    """Raises UnsupportedParameter naming ``p``, which ``target`` cannot take (the
    router refuses such a request before its adapter translates it)."""
    kind = p.part.get("type")
    raise UnsupportedParameter(
        f"{target} cannot take the {kind!r} content part at '{p.where}': only "
        f"a target of the client's own format ({p.format}) receives it",
        param=p.where,
    )


def translated(req: GatewayRequest) -> GatewayRequest:
    """``req`` for a translation even where its body could pass through (the request a
    resumed stream's continuation is asked with: its answer is spliced onto what was
    sent, through the unified chunks).

    Raises:
        UnsupportedParameter: the body has parts no translation carries.
    """
    raw = req.raw
    if raw is None:
        return req
    if raw.untranslated:  # content parts held as they came go on (the next target checks)
        where = raw.untranslated[0]
        raise UnsupportedParameter(
            f"a resumed stream cannot take '{where}': only a target of the client's own "
            f"format ({raw.format}) receives it",
            param=where,
        )
    return attrs.evolve(req, raw=None)


def body_for(req: GatewayRequest, model: str) -> dict[str, Any]:
    """The client's body for ``model``, streaming as ``req`` does now (a stream asked
    for whole by the router is asked for whole)."""
    assert req.raw is not None
    body = dict(req.raw.body)
    body["model"] = model
    if req.stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)
    return body


def with_client_headers(
    headers: tuple[tuple[str, str], ...], req: GatewayRequest
) -> tuple[tuple[str, str], ...]:
    """``headers`` (the adapter's) with the client's own of the body's format
    (:attr:`WireBody.headers`, sent only with a passed-through body): a header both
    have is joined, the adapter's values first (``anthropic-beta`` lists features)."""
    raw = req.raw
    if raw is None or not raw.headers:
        return headers
    out = list(headers)
    for name, value in raw.headers:
        at = next((i for i, (k, _) in enumerate(out) if k == name), None)
        if at is None:
            out.append((name, value))
        else:
            out[at] = (name, f"{out[at][1]},{value}")
    return tuple(out)


def sse_bytes(data: str, event: str | None = None) -> bytes:
    """One server-sent event, as an upstream's event is passed on (a ``data`` with line
    breaks is one ``data:`` line per line, as SSE joins them)."""
    head = b"event: " + event.encode() + b"\n" if event is not None else b""
    lines = data.split("\n")
    return head + b"".join(b"data: " + line.encode() + b"\n" for line in lines) + b"\n"


class MessagesSent:
    """Where a passed-through Messages stream stands, from the events it sent: enough
    for a continuation in the unified form (a resumed stream, :mod:`._anthropic_response`'s
    encoder) to go on in the same message.

    Only block starts and stops are read (a few per answer), never the deltas.
    """

    def __init__(self) -> None:
        self.seen = False  # any event went out
        self.next_block = 0  # the open block's index, or the next one's
        self.open: str | None = None  # the open block's type

    def note(self, wire: bytes) -> None:
        if not wire:
            return
        self.seen = True
        if wire.startswith(b"event: content_block_start"):
            event = _data(wire)
            self.next_block = int(event.get("index", self.next_block))
            block = event.get("content_block")
            self.open = str(block.get("type")) if isinstance(block, dict) else "?"
        elif wire.startswith(b"event: content_block_stop"):
            event = _data(wire)
            self.next_block = int(event.get("index", self.next_block)) + 1
            self.open = None

    def close_open(self) -> bytes:
        """The stop of an open block that is not text (a continuation adds text only),
        which then counts as closed."""
        if self.open is None or self.open == "text":
            return b""
        index = self.next_block
        self.next_block, self.open = index + 1, None
        stop = {"type": "content_block_stop", "index": index}
        return sse_bytes(orjson.dumps(stop).decode(), "content_block_stop")


def _data(wire: bytes) -> dict[str, Any]:
    """The JSON of one event's ``data:`` lines ({} if it is not an object)."""
    lines = [line[6:] for line in wire.split(b"\n") if line.startswith(b"data: ")]
    try:
        value = orjson.loads(b"\n".join(lines))
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
