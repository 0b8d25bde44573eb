"""The unified request, response and stream types every adapter translates to and from.

They follow the OpenAI Chat Completions shape, the lingua franca of our clients, but
hold only typed, provider-neutral data: ingress codecs build them from the client's
bytes, adapters turn them into one provider's wire format and back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

__all__ = [
    "ChatChunk",
    "Choice",
    "ChunkChoice",
    "ContentPart",
    "Delta",
    "EmbeddingInput",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "GatewayRequest",
    "GatewayResponse",
    "ImagePart",
    "Message",
    "TextPart",
    "Tool",
    "ToolCall",
    "RefusalPart",
    "ToolCallDelta",
    "UpstreamRequest",
    "Usage",
    "WireBody",
    "WirePart",
]

Role = Literal["system", "developer", "user", "assistant", "tool"]
FinishReason = str  # "stop" | "length" | "tool_calls" | "content_filter" | ...


@attrs.frozen
class TextPart:
    text: str


@attrs.frozen
class ImagePart:
    """An image given by URL: ``https://...`` or a ``data:`` URL with base64 bytes."""

    url: str
    detail: str | None = None


@attrs.frozen
class RefusalPart(TextPart):
    """An earlier answer's refusal in a conversation's history (OpenAI's ``refusal``
    content part of an assistant message). It is what the assistant said: text to a
    target of any format (Anthropic's own refusals are text), a refusal part again to an
    OpenAI-format one."""


@attrs.frozen
class WirePart:
    """A content part the unified types have no form for (OpenAI's ``file`` and
    ``input_audio`` parts, kinds added later), as the client sent it.

    Only a target speaking ``format`` takes it, as it is (translated or passed through
    alike); any other refuses the request naming ``where`` (``unsupported_parameter``),
    so that routing moves on to one that takes it, never drops it.
    """

    format: str
    part: Mapping[str, Any]
    where: str


ContentPart = TextPart | ImagePart | WirePart


@attrs.frozen
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, exactly as the model produced it


@attrs.frozen
class Tool:
    name: str
    description: str | None = None
    parameters: Mapping[str, Any] | None = None
    strict: bool | None = None


@attrs.frozen
class Message:
    role: Role
    content: str | tuple[ContentPart, ...] | None = None
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    #: An answer's refusal: the model declined, and says so here, not in ``content``.
    refusal: str | None = None
    #: An answer's reasoning, where the upstream shows it: ``reasoning_content`` of
    #: DeepSeek and vLLM's reasoning parsers, Anthropic's thinking blocks' text.
    reasoning_content: str | None = None

    def text(self) -> str:
        """The message's text parts joined, images left out."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def has_images(self) -> bool:
        return isinstance(self.content, tuple) and any(
            isinstance(p, ImagePart) for p in self.content
        )


@attrs.frozen
class WireBody:
    """A client's request body as it came, in its own format, for a target that speaks
    the same format: such a target gets it (``model`` replaced) instead of a
    translation, so that every field reaches it, those the unified types do not hold
    and those a provider adds after this code was written.

    Attributes:
        format: The client's format: ``"openai"`` (Chat Completions) or
            ``"anthropic"`` (Messages); an adapter's ``same_format`` names its own.
        body: The parsed JSON body.
        untranslated: Where the body holds parts the unified request has no form for
            (an Anthropic ``document`` block, a server tool), as parameter paths: a
            target of another format refuses the request naming the first one
            (``unsupported_parameter``), never drops them.
        headers: The client's request headers of its format that go with the body to
            a target of the same format (Anthropic's ``anthropic-beta``), lower-case.
    """

    format: str
    body: Mapping[str, Any]
    untranslated: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class GatewayRequest:
    """One chat request as the client meant it, before routing.

    ``model`` is what the client asked for: a route name or ``provider:model``.
    ``extra`` holds the other OpenAI parameters (``seed``, ``response_format``, ...) that
    OpenAI-compatible targets receive unchanged and other adapters map or drop.
    """

    model: str
    messages: tuple[Message, ...]
    stream: bool = False
    include_usage: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[Tool, ...] = ()
    tool_choice: str | Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)
    #: The OpenAI name the client gave its token limit under (``max_completion_tokens``
    #: or ``max_tokens``), sent on unchanged to OpenAI-compatible targets.
    limit_name: str = "max_tokens"
    #: What the client's format repeats in its answer and no upstream gets: the
    #: Responses API echoes its request's settings (instructions, tools, metadata, ...)
    #: in the response object. Not part of the cache key: it does not change the answer.
    echo: Mapping[str, Any] = attrs.field(factory=dict)
    #: The client's body as it came, for a target of the same format (passthrough).
    #: It and the fields above say the same thing: whoever changes what the request
    #: asks (a prefill, images inlined) drops it, so that no target gets a stale body.
    raw: WireBody | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def needs_vision(self) -> bool:
        return any(m.has_images for m in self.messages)

    @property
    def needs_tools(self) -> bool:
        return bool(self.tools)


#: More tokens than any answer has; a count beyond it is an upstream's garbage.
MAX_TOKENS = 2**53


def _token_count(value: int) -> int:
    """A count within 0..MAX_TOKENS: an upstream's negative count would credit a budget,
    and one past 64 bits could not even be written back as JSON."""
    return min(max(value, 0), MAX_TOKENS)


@attrs.frozen
class Usage:
    """Tokens an answer used, counted as OpenAI counts them.

    ``prompt_tokens`` counts every input token, cached or not (Anthropic's
    ``input_tokens`` plus its two cache counts); the details say how many of them were
    read from the provider's prompt cache (OpenAI's ``cached_tokens``, Anthropic's
    ``cache_read_input_tokens``) or written to it (Anthropic's
    ``cache_creation_input_tokens``), and how many of ``completion_tokens`` were spent
    reasoning (OpenAI's ``reasoning_tokens``). Each is 0 where the upstream does not say.
    """

    prompt_tokens: int = attrs.field(default=0, converter=_token_count)
    completion_tokens: int = attrs.field(default=0, converter=_token_count)
    cache_read_tokens: int = attrs.field(default=0, converter=_token_count)
    cache_write_tokens: int = attrs.field(default=0, converter=_token_count)
    reasoning_tokens: int = attrs.field(default=0, converter=_token_count)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@attrs.frozen
class Choice:
    index: int
    message: Message
    finish_reason: FinishReason | None
    #: The stop sequence that ended the answer, where the upstream says which
    #: (Anthropic's ``stop_sequence``); ``finish_reason`` is ``stop`` then.
    stop_sequence: str | None = None
    #: OpenAI's ``logprobs`` object (``{"content": [...], "refusal": [...]}``) as the
    #: upstream sent it: opaque here, passed through to clients of the same format.
    logprobs: Mapping[str, Any] | None = None


@attrs.frozen
class GatewayResponse:
    """A complete (non-streamed) answer. ``model`` is the model that really answered."""

    id: str
    model: str
    created: int
    choices: tuple[Choice, ...]
    usage: Usage | None = None
    system_fingerprint: str | None = None
    #: The tier that served the answer (OpenAI's ``service_tier``), where said.
    service_tier: str | None = None
    #: The upstream's answer as it came (parsed JSON), when the request was passed
    #: through to a target of the client's own format: that client gets it unchanged.
    raw: Mapping[str, Any] | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class ToolCallDelta:
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str | None = None


@attrs.frozen
class Delta:
    role: Role | None = None
    content: str | None = None
    tool_calls: tuple[ToolCallDelta, ...] = ()
    refusal: str | None = None
    #: A piece of the answer's reasoning (see :attr:`Message.reasoning_content`).
    reasoning_content: str | None = None


@attrs.frozen
class ChunkChoice:
    index: int
    delta: Delta
    finish_reason: FinishReason | None = None
    #: With the finish reason: the stop sequence that ended the answer (see Choice).
    stop_sequence: str | None = None
    #: This delta's ``logprobs``, opaque (see Choice).
    logprobs: Mapping[str, Any] | None = None


@attrs.frozen
class ChatChunk:
    """One event of a streamed answer; the last may carry only ``usage``."""

    id: str
    model: str
    created: int
    choices: tuple[ChunkChoice, ...] = ()
    usage: Usage | None = None
    #: Usage known as the answer begins (Anthropic's ``message_start`` says the input
    #: and cache counts up front), for a client format that reports it there. Only
    #: informative: the whole answer's usage still comes in ``usage``, at the end.
    start_usage: Usage | None = None
    #: As in :class:`GatewayResponse`, on every chunk the upstream puts them on.
    system_fingerprint: str | None = None
    service_tier: str | None = None
    #: The upstream's own event bytes for this chunk, when the request was passed
    #: through to a target of the client's own format (a passthrough stream has a
    #: chunk, maybe with no choices, for every upstream event): that client gets
    #: these bytes instead of the chunk's encoding; ``b""`` when an earlier chunk
    #: carried the event.
    raw: bytes | None = attrs.field(default=None, eq=False, repr=False)
    #: ``raw`` is part of the answer that the choices have no place for (a thinking
    #: delta): it counts as content (the first token came, the stream is committed).
    raw_content: bool = attrs.field(default=False, eq=False, repr=False)

    @property
    def has_content(self) -> bool:
        """Whether this chunk carries part of the answer (a role alone does not count)."""
        if self.raw_content:
            return True
        for c in self.choices:
            d = c.delta
            if d.content or d.tool_calls or d.refusal or d.reasoning_content or c.finish_reason:
                return True
        return False


@attrs.frozen
class UpstreamRequest:
    """An HTTP request an adapter wants sent; the transport layer sends it."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


#: One input to embed: a text, or a token array (OpenAI-family targets only).
EmbeddingInput = str | tuple[int, ...]


@attrs.frozen
class EmbeddingRequest:
    """One embeddings request as the client meant it, before routing.

    ``inputs`` are all texts or all token arrays (the OpenAI format allows no mix); a
    single input and a list of one are the same request. ``encoding_format`` is how the
    client wants its vectors written back; upstreams are always asked for floats.
    ``extra`` holds the other parameters a client sent: OpenAI-compatible targets
    receive them unchanged, the other kinds refuse them (``unsupported_parameter``).
    """

    model: str
    inputs: tuple[EmbeddingInput, ...]
    dimensions: int | None = None
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def token_input(self) -> bool:
        """Whether the inputs are token arrays (else texts)."""
        return bool(self.inputs) and not isinstance(self.inputs[0], str)

    def texts(self) -> tuple[str, ...]:
        """The inputs as texts. Raises TypeError for token arrays (check first)."""
        if self.token_input:
            raise TypeError("token-array inputs have no text")
        return self.inputs  # type: ignore[return-value]


@attrs.frozen
class EmbeddingResponse:
    """The vectors of an embeddings request, in the order of its inputs.

    Attributes:
        model: The model that really answered (the target's, when the upstream does not
            say).
        vectors: One per input, in input order.
        usage: The input tokens the upstream reported (``prompt_tokens``); None when it
            reports none (the router estimates them then).
        input_tokens: Tokens per input, where the upstream reports them one by one
            (Bedrock's Titan), so that a combined call is charged to each request exactly.
    """

    model: str
    vectors: tuple[tuple[float, ...], ...]
    usage: Usage | None = None
    input_tokens: tuple[int, ...] | None = None
