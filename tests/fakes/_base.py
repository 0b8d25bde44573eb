"""What every fake upstream shares: serving, recording, the script, and body framing.

A fake is an ASGI app served by hypercorn on 127.0.0.1:0 (:func:`running`, which hands
back the real address through ``nursery.start``). :class:`FakeServer` reads each
request, records it in :attr:`~FakeServer.received`, and asks the provider's subclass
for an :data:`Answer`: a whole :class:`Reply`, the :class:`Chunks` the script sends of
a :class:`Stream`, or :data:`SILENT`.
A subclass keeps only its provider's wire format: what it validates (auth, paths,
required fields), its error bodies, its answers and its stream events.

The model a request names is its script (:meth:`FakeServer.scripted`), the same for
every provider:

- ``fail-<code>``: the provider's error for that code (``fail-ctx``: prompt too long);
- ``silent``: never answers; sets :attr:`~FakeServer.disconnected` when the client goes;
- streams: ``break-mid-stream`` (two pieces of the answer, then the connection drops),
  ``break-before-content`` (the connection drops before any piece), ``truncated`` (a
  clean end without the stream's tail), ``error-mid-stream`` (one piece, then the
  provider's in-band error), ``stall-mid-stream`` (two pieces, then silence);
- ``story`` (any model whose name holds ``story``, such as Bedrock's
  ``anthropic.story``): :data:`STORY`, 60 words, streamed a word an event; its cuts
  ``story-break-N`` (N words, then the connection drops), ``story-stall-N`` (N words,
  then silence), ``story-corrupt-N`` (its Nth event is not JSON, the rest follows) and
  ``story-end-N`` (N words, then a clean end without the stream's tail);
- embeddings (:meth:`FakeServer.embedding_script`): ``silent`` and ``fail-<code>`` as
  above, any other model a vector per input (:mod:`tests.fakes._vectors`);
- ``json`` (any model whose name holds ``json``): ``{"echo": "<last user text>"}``,
  the echo as a JSON object (for routes that validate answers);
- any other model: the provider's answer, usually ``echo: <last user text>`` (with
  `` [N image(s)]`` when the last user turn held images, :func:`echo`), split into
  word pieces when streamed (:func:`words`).

Prefill: a request whose last message is the assistant's (in the provider's form, its
:meth:`FakeServer.prefill`) is continued where the provider continues one
(:meth:`FakeServer.continues`): the answer is the rest of the model's answer after that
text (:func:`answer_text`). A model whose name holds ``no-prefill``, or any model while
:attr:`FakeServer.reject_prefill` is set, refuses such a request with the provider's 400
(:meth:`FakeServer.invalid`), as recent Claude models do.
"""

from __future__ import annotations

import binascii
import enum
import re
import struct
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl

import attrs
import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = [
    "trailing_assistant_text",
    "ARGUMENT_PIECES",
    "PREFILL_REFUSED",
    "STORY",
    "SILENT",
    "Answer",
    "Chunks",
    "Cut",
    "FakeServer",
    "Headers",
    "Received",
    "Reply",
    "Silent",
    "Stream",
    "UpstreamBroke",
    "answer_text",
    "echo",
    "event_frame",
    "exception_frame",
    "frame",
    "ndjson",
    "running",
    "sse",
    "words",
]

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = Sequence[tuple[bytes, bytes]]

#: The ``get_weather`` arguments ``{"city":"Paris"}``, in the pieces fakes stream them.
ARGUMENT_PIECES = ('{"city"', ':"Par', 'is"}')

#: The answer of the ``story`` models: 60 words, streamed a word an event.
STORY = (
    "The lighthouse keeper counted ships every night for years. "
    "Each autumn the storms grew louder, yet his lamp never failed once. "
    "One winter a small boat drifted close with no sail or oars. "
    "He rowed out alone, towed it home through black water, "
    "and found inside a sleeping child wrapped in a map of distant islands "
    "nobody had ever charted."
)
assert len(STORY.split()) == 60

#: What a model that takes no prefill says to one (Anthropic's words).
PREFILL_REFUSED = (
    "This model does not support assistant message prefill. "
    "The conversation must end with a user message."
)
_STORY_CUT = re.compile(r"story-(break|stall|corrupt|end)-(\d+)")


class UpstreamBroke(Exception):
    """Raised inside the app to make hypercorn drop the connection mid-body."""


@attrs.frozen
class Received:
    """One request as it arrived."""

    method: str
    #: Raw, as sent: percent-encoding kept.
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    #: The JSON body, ``{}`` when there was none.
    body: dict[str, Any]
    raw: bytes

    @classmethod
    def of(cls, scope: Message, raw: bytes) -> Received:
        return cls(
            method=scope["method"],
            path=scope["raw_path"].decode(),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            query=dict(parse_qsl(scope["query_string"].decode())),
            body=orjson.loads(raw) if raw else {},
            raw=raw,
        )


@attrs.frozen
class Reply:
    """A whole answer: ``body`` sent as JSON."""

    status: int
    body: Any
    headers: Headers = ()


@attrs.frozen
class Stream:
    """A streamed answer, each part already framed.

    Attributes:
        head: What comes before the answer's first piece.
        pieces: The answer, piece by piece (the pieces the script cuts at).
        tail: What ends a complete answer (finish reason, usage, end marker).
        error: The provider's in-band error, for ``error-mid-stream``.
        end: Sent last on any clean end (a JSON array's ``]``).
    """

    head: Sequence[bytes]
    pieces: Sequence[bytes]
    tail: Sequence[bytes]
    error: bytes | None = None
    end: bytes = b""
    content_type: bytes = b"text/event-stream"
    headers: Headers = ()
    #: An event that is not JSON, for ``story-corrupt-N``.
    garbage: bytes = b'data: {"text": "unfinished\n\n'


class Cut(enum.Enum):
    """Where a stream stops other than cleanly."""

    BREAK = "the connection drops"
    STALL = "silence until the client goes"


@attrs.frozen
class Chunks:
    """The parts of a stream as the script sends them."""

    stream: Stream
    parts: Sequence[bytes | Cut]


class Silent(enum.Enum):
    """The answer of a fake that keeps the request open until the client goes."""

    SILENT = "never answers"


SILENT = Silent.SILENT
Answer = Reply | Chunks | Silent


def echo(texts: Sequence[str], images: int = 0) -> str:
    """A fake's answer to the last user turn's texts and images."""
    return "echo: " + " ".join(texts) + (f" [{images} image(s)]" if images else "")


def trailing_assistant_text(got: Received) -> str | None:
    """The text of a chat body's trailing assistant message (a prefill), if it ends
    with one: the messages shape that OpenAI-compatible hosts and Cohere share."""
    messages = got.body.get("messages") or []
    if not messages or messages[-1]["role"] != "assistant":
        return None
    content = messages[-1].get("content") or ""
    if isinstance(content, str):
        return content
    return "".join(p["text"] for p in content if p["type"] == "text")


def words(text: str) -> list[str]:
    """``text`` in the pieces fakes stream it: a word each, its space in front."""
    return re.findall(r"\s*\S+(?:\s+$)?", text) or [text]


def answer_text(model: str, default: str, prefill: str | None = None) -> str:
    """What ``model`` answers: :data:`STORY` for a ``story`` model, else ``default``;
    after a ``prefill`` that begins it, only the rest."""
    text = STORY if "story" in model else default
    if "json" in model:
        text = orjson.dumps({"echo": default.removeprefix("echo: ")}).decode()
    if prefill is not None and text.startswith(prefill):
        return text[len(prefill) :]
    return text


def sse(data: Any, event: str | None = None, eol: bytes = b"\n") -> bytes:
    """One server-sent event; ``data`` is JSON unless it is bytes already."""
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    named = b"event: " + event.encode() + eol if event is not None else b""
    return named + b"data: " + payload + eol + eol


def ndjson(data: Any) -> bytes:
    return orjson.dumps(data) + b"\n"


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude, its CRC, string headers, payload, CRC."""
    head = b""
    for name, value in headers.items():
        raw = value.encode()
        head += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(raw)) + raw
    prelude = struct.pack(">II", 12 + len(head) + len(payload) + 4, len(head))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + head + payload
    return message + struct.pack(">I", binascii.crc32(message) & 0xFFFFFFFF)


def event_frame(event: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": event, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, orjson.dumps(payload))


def exception_frame(kind: str, message: str) -> bytes:
    headers = {
        ":exception-type": kind,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return frame(headers, orjson.dumps({"message": message}))


@attrs.define
class FakeServer:
    """The shared ASGI plumbing; subclasses answer in their provider's wire format."""

    #: Sent on every answer (a provider's request id, say).
    HEADERS: ClassVar[Headers] = ()
    JSON_TYPE: ClassVar[bytes] = b"application/json"

    received: list[Received] = attrs.field(factory=list, kw_only=True)
    #: The base URL to configure, set by the fixture that serves the fake.
    url: str = attrs.field(default="", kw_only=True)
    #: Set when any request arrived.
    request_seen: trio.Event = attrs.field(factory=trio.Event, kw_only=True)
    #: Set when a ``silent`` request's client went away.
    disconnected: trio.Event = attrs.field(factory=trio.Event, kw_only=True)
    #: Scripted requests per model so far.
    calls: dict[str, int] = attrs.field(factory=dict, kw_only=True)
    #: While True, every model refuses a prefill (as ``no-prefill`` models do).
    reject_prefill: bool = attrs.field(default=False, kw_only=True)

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        raw = bytearray()
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        got = Received.of(scope, bytes(raw))
        self.received.append(got)
        self.request_seen.set()
        await self._send(self.answer(got), receive, send)

    def answer(self, got: Received) -> Answer:
        """The provider's whole handling of one request."""
        raise NotImplementedError

    def scripted(self, model: str, got: Received, *, stream: bool) -> Answer:
        """What ``model`` scripts (see the module's doc), once ``got`` passed validation."""
        self.calls[model] = self.calls.get(model, 0) + 1
        if model == "silent":
            return SILENT
        if model.startswith("fail-"):
            return self.failure(model.removeprefix("fail-"), got)
        if self.prefill(got) is not None and (self.reject_prefill or "no-prefill" in model):
            return self.invalid(PREFILL_REFUSED)
        if not stream:
            return self.reply(model, got)
        return Chunks(answer := self.stream(model, got), self.cut(model, answer))

    def embedding_script(self, model: str, got: Received) -> Answer | None:
        """What ``model`` scripts for an embeddings request (``silent``, or a name
        ending ``fail-<code>``, such as Bedrock's ``cohere.embed-fail-500``: the
        provider's error), or None: answer it."""
        self.calls[model] = self.calls.get(model, 0) + 1
        if model == "silent":
            return SILENT
        if "fail-" in model:
            return self.failure(model.rpartition("fail-")[2], got)
        return None

    def failure(self, code: str, got: Received) -> Reply:
        """The provider's error for ``fail-<code>``."""
        raise NotImplementedError

    def invalid(self, message: str) -> Reply:
        """The provider's 400 for a request it refuses, saying ``message``."""
        raise NotImplementedError

    def prefill(self, got: Received) -> str | None:
        """The text of the trailing assistant message ``got`` ends with, if it does."""
        return None

    def continues(self, got: Received) -> bool:
        """Whether the provider continues the trailing assistant message of ``got``
        (else it answers anew)."""
        return True

    def answer_text(self, model: str, got: Received, default: str) -> str:
        """What ``model`` answers ``got``, continuing its prefill where it does."""
        prefill = self.prefill(got) if self.continues(got) else None
        return answer_text(model, default, prefill)

    def reply(self, model: str, got: Received) -> Reply:
        raise NotImplementedError

    def stream(self, model: str, got: Received) -> Stream:
        raise NotImplementedError

    def cut(self, model: str, stream: Stream) -> list[bytes | Cut]:
        """The parts ``model`` sends of ``stream``."""
        head, pieces, end = list(stream.head), list(stream.pieces), [stream.end]
        story = _STORY_CUT.search(model)
        if story is not None:
            how, n = story.group(1), int(story.group(2))
            cuts: dict[str, list[bytes | Cut]] = {
                "break": [Cut.BREAK],
                "stall": [Cut.STALL],
                "end": [*end],
            }
            cut = cuts.get(how)
            if cut is not None:
                return [*head, *pieces[:n], *cut]
            # corrupt: the Nth event is not JSON, then the rest as if nothing happened
            return [*head, *pieces[: n - 1], stream.garbage, *pieces[n:], *stream.tail, *end]
        if model == "break-mid-stream":
            return [*head, *pieces[:2], Cut.BREAK]
        if model == "stall-mid-stream":
            return [*head, *pieces[:2], Cut.STALL]
        if model == "break-before-content":
            return [*head, Cut.BREAK]
        if model == "truncated":
            return [*head, *pieces, *end]
        if model == "error-mid-stream" and stream.error is not None:
            return [*head, *pieces[:1], stream.error, *end]
        return [*head, *pieces, *stream.tail, *end]

    async def _send(self, answer: Answer, receive: Receive, send: Send) -> None:
        if answer is SILENT:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnected.set()
            return
        if isinstance(answer, Reply):
            headers = [(b"content-type", self.JSON_TYPE), *self.HEADERS, *answer.headers]
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send({"type": "http.response.body", "body": orjson.dumps(answer.body)})
            return
        stream = answer.stream
        headers = [(b"content-type", stream.content_type), *self.HEADERS, *stream.headers]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for part in answer.parts:
            if part is Cut.BREAK:
                raise UpstreamBroke("dropping the connection mid-stream")
            if part is Cut.STALL:
                await trio.sleep_forever()  # silent until the client gives up
            assert isinstance(part, bytes)
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


@asynccontextmanager
async def running(app: Any, certs: tuple[str, str] | None = None) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1:0 for the block; yields its ``http://host:port``.

    With ``certs`` (a certificate chain file and its key file) it serves HTTPS, offering
    ALPN ``h2`` and ``http/1.1``, and yields ``https://host:port``.
    """
    config = Config()
    config.bind = ["127.0.0.1:0"]
    if certs is not None:
        config.certfile, config.keyfile = certs
    config.accesslog = None
    config.graceful_timeout = 0.1
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app, config, shutdown_trigger=stop.wait))
        try:
            yield binds[0]
        finally:
            stop.set()
