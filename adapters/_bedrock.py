"""The ``bedrock`` adapter: AWS Bedrock Runtime's Converse and ConverseStream.

Requests are ``POST {base_url}/model/{modelId}/converse[-stream]``, the model id one
percent-encoded path label. They are authenticated either with a Bedrock API key
(``Authorization: Bearer``, set by :meth:`BedrockAdapter.build_request`) or with SigV4,
which :meth:`BedrockAdapter.sign` adds at send time with botocore's own signer. Streams
are AWS event-stream binary frames, parsed (CRCs checked) by botocore's
``EventStreamBuffer``. Translation of the JSON lives in :mod:`adapters._bedrock_wire`.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any, cast

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer, ParserError

from ._base import (
    AdapterBase,
    Capabilities,
    Headers,
    error_object,
    header,
    path_segment,
    request_headers,
    stream_event_object,
    upstream_json,
)
from ._bedrock_embeddings import (
    bedrock_embedding_batch,
    bedrock_embedding_body,
    bedrock_embedding_response,
)
from ._bedrock_wire import (
    error_from_wire,
    finish_reason,
    request_to_wire,
    response_from_wire,
    usage_from_wire,
)
from ._decoded import carrying
from ._errors import AuthenticationFailed, GatewayError, StreamError
from ._structured import JsonToolDecoder, json_tool, json_tool_answer
from ._types import (
    ChatChunk,
    ChunkChoice,
    Delta,
    EmbeddingRequest,
    EmbeddingResponse,
    GatewayRequest,
    GatewayResponse,
    ToolCallDelta,
    UpstreamRequest,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from botocore.credentials import ReadOnlyCredentials
    from botocore.eventstream import EventStreamMessage, MessagePrelude

    from ._base import StreamDecoder

__all__ = ["BedrockAdapter", "BedrockStreamDecoder", "make_adapter"]

_SIGNING_NAME = "bedrock"  # the endpoint prefix is bedrock-runtime; the signing name is not
_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_STREAM_ID = "chatcmpl-bedrock"
# Headers sign() owns: stale values from an earlier signing must not survive.
_AUTH_HEADERS = frozenset({"authorization", "x-amz-date", "x-amz-security-token"})


class BedrockAdapter(AdapterBase):
    """Builds Converse requests for one region and reads their answers.

    Args:
        region: The AWS region, also the SigV4 signing region.
        base_url: Defaults to ``https://bedrock-runtime.{region}.amazonaws.com``.
        credentials: A botocore credentials object (static or refreshable) for SigV4.
        api_key: A Bedrock API key: sent as a bearer token, and no SigV4 at all.
        headers: The operator's extra headers; they override ours.
        name: The provider's name in the config, for error messages.
    """

    fields = "bedrock"  # its column of the field tables (._fields)

    image_urls = False  # Converse takes image bytes (or S3), never an http URL

    def __init__(
        self,
        region: str,
        base_url: str | None = None,
        credentials: Any = None,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        name: str = "bedrock",
    ) -> None:
        self.name = name
        self.region = region
        self.base_url = (base_url or f"https://bedrock-runtime.{region}.amazonaws.com").rstrip("/")
        self._credentials = credentials
        self._bearer = bool(api_key)
        # Refreshable credentials (a role, SSO) may fetch new ones while signing.
        self.sign_may_block = hasattr(credentials, "refresh_needed")
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._headers, self._stream_headers = request_headers(
            auth, headers, "application/vnd.amazon.eventstream"
        )

    def __repr__(self) -> str:  # never a key or a credential
        auth = "api_key" if self._bearer else "sigv4"
        return f"BedrockAdapter(name={self.name!r}, url={self.base_url!r}, auth={auth})"

    def url(self, model: str, stream: bool) -> str:
        """The Converse URL for ``model``; ``:`` and ``/`` of ARNs and ids encoded."""
        label = path_segment(model)
        return f"{self.base_url}/model/{label}/{'converse-stream' if stream else 'converse'}"

    def build_request(self, req: GatewayRequest, model: str) -> UpstreamRequest:
        tool = json_tool(req, "bedrock")
        if tool is not None:  # response_format: answered through a forced tool
            req = tool.request(req)
        body = orjson.dumps(request_to_wire(req))
        headers = self._stream_headers if req.stream else self._headers
        return UpstreamRequest("POST", self.url(model, req.stream), headers, body)

    def parse_response(
        self, status: int, headers: Headers, body: bytes, model: str = ""
    ) -> GatewayResponse:
        """A Converse answer. Converse does not name the model: ``model`` is the one asked."""
        raw = upstream_json(body)
        request_id = header(headers, "x-amzn-requestid")
        answer_id = f"chatcmpl-{request_id}" if request_id else _STREAM_ID
        return response_from_wire(raw, id=answer_id, model=model)

    def response_for(
        self, req: GatewayRequest, status: int, headers: Headers, body: bytes
    ) -> GatewayResponse:
        answer = self.parse_response(status, headers, body)
        tool = json_tool(req, "bedrock")
        return answer if tool is None else json_tool_answer(answer, tool.name)

    def stream_decoder_for(self, req: GatewayRequest) -> StreamDecoder:
        tool = json_tool(req, "bedrock")
        decoder = self.stream_decoder()
        return decoder if tool is None else JsonToolDecoder(decoder, tool.name)

    def embedding_batch(self, model: str) -> int:
        return bedrock_embedding_batch(model)

    def build_embedding_request(self, req: EmbeddingRequest, model: str) -> UpstreamRequest:
        """``POST {base_url}/model/{id}/invoke`` with the model family's body (see
        :mod:`._bedrock_embeddings`); signed at send time like Converse."""
        body = orjson.dumps(bedrock_embedding_body(req, model))
        url = f"{self.base_url}/model/{path_segment(model)}/invoke"
        return UpstreamRequest("POST", url, self._headers, body)

    def parse_embedding_response(
        self, req: EmbeddingRequest, model: str, status: int, headers: Headers, body: bytes
    ) -> EmbeddingResponse:
        tokens = header(headers, "x-amzn-bedrock-input-token-count")
        return bedrock_embedding_response(upstream_json(body), model, len(req.inputs), tokens)

    def parse_error(self, status: int, headers: Headers, body: bytes) -> GatewayError:
        message, body_type = _error_fields(body)
        error_type = _short_type(header(headers, "x-amzn-errortype") or body_type or "")
        if not message:
            message = f"upstream answered HTTP {status}" + (
                f" ({error_type})" if error_type else ""
            )
        return error_from_wire(status, error_type, message, headers)

    def capabilities(self, model: str) -> Capabilities:
        # Converse continues a trailing assistant message for Anthropic's models (the
        # ids ``anthropic.*``, or ``us.anthropic.*`` and the like for inference
        # profiles); for the others Bedrock documents no such thing.
        return Capabilities(prefill="anthropic." in model)

    def stream_decoder(self, model: str = "") -> BedrockStreamDecoder:
        return BedrockStreamDecoder(model)

    def probe_request(self) -> UpstreamRequest:
        """``GET /async-invoke?maxResults=1`` (ListAsyncInvokes): cheap, authenticated,
        on the runtime endpoint itself (the model list lives on another service)."""
        headers = tuple((k, v) for k, v in self._headers if k != "content-type")
        return UpstreamRequest("GET", f"{self.base_url}/async-invoke?maxResults=1", headers, b"")

    def sign(self, request: UpstreamRequest, now: datetime) -> UpstreamRequest:
        """``request`` with SigV4 headers for ``now``; unchanged with an API key.

        Raises:
            AuthenticationFailed: no AWS credentials are available.
        """
        if self._bearer:
            return request
        credentials = self._frozen_credentials()
        if now.tzinfo is not None:
            now = now.astimezone(UTC).replace(tzinfo=None)
        kept = [(k, v) for k, v in request.headers if k.lower() not in _AUTH_HEADERS]
        aws = AWSRequest(method=request.method, url=request.url, data=request.body)
        for key, value in kept:
            aws.headers[key] = value
        _SigV4AtTime(credentials, self.region, now.strftime(_TIMESTAMP)).add_auth(aws)
        added = [
            (key.lower(), str(aws.headers[key]))
            for key in ("X-Amz-Date", "X-Amz-Security-Token", "Authorization")
            if key in aws.headers
        ]
        return UpstreamRequest(request.method, request.url, (*kept, *added), request.body)

    def _frozen_credentials(self) -> ReadOnlyCredentials:
        creds = self._credentials
        frozen = creds.get_frozen_credentials() if creds is not None else None
        if frozen is None or not frozen.access_key or not frozen.secret_key:
            raise AuthenticationFailed(
                f"provider {self.name!r} has no AWS credentials to sign with (set "
                "aws_access_key_id and aws_secret_access_key, api_key, or the AWS chain)"
            )
        return frozen  # type: ignore[no-any-return]


class _SigV4AtTime(SigV4Auth):
    """botocore's SigV4 signer with the clock taken out: the time is given.

    ``SigV4Auth.add_auth`` reads the clock itself and then runs the steps below; this
    is the same sequence with ``request.context["timestamp"]`` set from our ``now``.
    """

    def __init__(self, credentials: ReadOnlyCredentials, region: str, timestamp: str) -> None:
        super().__init__(credentials, _SIGNING_NAME, region)
        self._timestamp = timestamp

    def add_auth(self, request: AWSRequest) -> None:
        request.context["timestamp"] = self._timestamp
        self._modify_request_before_signing(request)  # type: ignore[attr-defined]
        string_to_sign = self.string_to_sign(request, self.canonical_request(request))
        signature = self.signature(string_to_sign, request)
        self._inject_signature_to_request(request, signature)  # type: ignore[attr-defined]


def _error_fields(body: bytes) -> tuple[str | None, str | None]:
    """``(message, __type)`` of an AWS JSON error body, tolerating anything else."""
    raw = error_object(body)
    message = raw.get("message") or raw.get("Message")
    kind = raw.get("__type") or raw.get("code")
    return (
        str(message) if message is not None else None,
        str(kind) if kind is not None else None,
    )


def _short_type(value: str) -> str:
    """``ThrottlingException:http://...`` or ``com.amazon.coral#X`` -> the bare name."""
    return value.split(":", 1)[0].rsplit("#", 1)[-1].strip()


class BedrockStreamDecoder:
    """ConverseStream event-stream frames -> OpenAI-shaped chunks.

    A stream is complete once ``messageStop`` arrived (``metadata`` with the usage
    follows it); a body that ends earlier, or inside a frame, is a truncated answer.
    Exception frames raise :class:`StreamError` with Bedrock's message.
    """

    def __init__(self, model: str = "") -> None:
        self._model = model
        self._buffer = EventStreamBuffer()
        self._unparsed = 0  # bytes fed that no whole frame has consumed yet
        self._started = False
        self._stopped = False
        self._tools: dict[int, int] = {}  # contentBlockIndex -> OpenAI tool_calls index

    def feed(self, data: bytes) -> list[ChatChunk]:
        if not data:
            return []
        self._buffer.add_data(data)
        self._unparsed += len(data)
        out: list[ChatChunk] = []
        with carrying(out):
            try:
                for message in self._buffer:
                    # botocore-stubs types prelude and headers as int; they are not.
                    self._unparsed -= cast("MessagePrelude", message.prelude).total_length
                    out.extend(self._event(message))
            except ParserError as exc:
                raise StreamError(f"upstream sent a malformed event-stream frame: {exc}") from exc
        return out

    @property
    def buffered(self) -> int:
        return self._unparsed

    def close(self) -> list[ChatChunk]:
        if self._unparsed:
            raise StreamError("upstream stream ended inside an event-stream frame")
        if not self._stopped:
            raise StreamError("upstream stream ended before the answer was complete")
        return []

    def _chunk(self, delta: Delta, finish: str | None = None) -> ChatChunk:
        return ChatChunk(_STREAM_ID, self._model, 0, (ChunkChoice(0, delta, finish),))

    def _event(self, message: EventStreamMessage) -> list[ChatChunk]:
        headers = cast("dict[str, Any]", message.headers)
        kind = headers.get(":message-type")
        if kind == "exception":
            text = _error_fields(message.payload)[0] or "no message"
            raise StreamError(f"Bedrock stream error {headers.get(':exception-type')}: {text}")
        if kind == "error":
            code, detail = headers.get(":error-code"), headers.get(":error-message")
            raise StreamError(f"Bedrock stream error {code}: {detail}")
        payload = stream_event_object(message.payload) if message.payload else {}
        out: list[ChatChunk] = []
        if not self._started:  # the role chunk first, whatever came first
            self._started = True
            out.append(self._chunk(Delta(role="assistant", content="")))
        event = headers.get(":event-type")
        try:
            out.extend(self._payload(str(event), payload))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise StreamError(f"upstream sent a malformed {event} event: {exc!r}") from exc
        return out

    def _payload(self, event: str, payload: dict[str, Any]) -> list[ChatChunk]:
        if event == "contentBlockStart":
            use = (payload.get("start") or {}).get("toolUse")
            if use is None:
                return []
            index = self._tools.setdefault(int(payload["contentBlockIndex"]), len(self._tools))
            call = ToolCallDelta(index, id=str(use["toolUseId"]), name=str(use["name"]))
            return [self._chunk(Delta(tool_calls=(call,)))]
        if event == "contentBlockDelta":
            delta = payload["delta"]
            if delta.get("text"):
                return [self._chunk(Delta(content=str(delta["text"])))]
            piece = (delta.get("toolUse") or {}).get("input")
            if piece:
                block = int(payload["contentBlockIndex"])
                if block not in self._tools:
                    raise StreamError("upstream streamed tool input for a block it never opened")
                call = ToolCallDelta(self._tools[block], arguments=str(piece))
                return [self._chunk(Delta(tool_calls=(call,)))]
            return []  # reasoningContent, citations: no OpenAI equivalent
        if event == "messageStop":
            self._stopped = True
            reason = finish_reason(payload.get("stopReason"), bool(self._tools))
            return [self._chunk(Delta(), reason)]
        if event == "metadata":
            usage = usage_from_wire(payload.get("usage"))
            if usage is not None:
                return [ChatChunk(_STREAM_ID, self._model, 0, (), usage)]
        return []  # messageStart (role sent above), contentBlockStop, unknown events


def make_adapter(name: str, settings: Mapping[str, Any]) -> BedrockAdapter:
    """The registry's factory: ``settings`` are :class:`BedrockProvider`'s fields.

    ``settings["aws_credentials"]``, when the daemon passes one, is a botocore
    credentials object from the AWS chain; otherwise static keys build one.
    """
    credentials = settings.get("aws_credentials")
    key, secret = settings.get("aws_access_key_id"), settings.get("aws_secret_access_key")
    if credentials is None and key and secret:
        credentials = Credentials(key, secret, settings.get("aws_session_token") or None)
    return BedrockAdapter(
        region=settings["region"],
        base_url=settings.get("base_url"),
        credentials=credentials,
        api_key=settings.get("api_key"),
        headers=settings.get("headers") or {},
        name=name,
    )
