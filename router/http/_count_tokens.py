"""``POST /v1/messages/count_tokens``: a request's input tokens, before it is sent.

Claude Code and other Anthropic clients ask on every turn. The route's Anthropic
targets answer it themselves (the client's body passed through, only ``model``
replaced; the count is free at Anthropic), tried in the route's order; when none can
(the route has no Anthropic target, or each failed), the gateway estimates from the
text at ~4 characters a token, and says so in ``x-router-estimated: true``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
import trio

from adapters import GatewayError, NotFound, TokenCounter, messages_request_from_wire
from rules import Leaf

from ..routing._request import RequestTrace
from ..traffic._keys import Forbidden
from ..traffic._tokens import text_tokens
from ..upstream._upstream import HTTPUpstream
from ._anthropic_ingress import ANTHROPIC
from ._framing import JSON, make_request_id, read_body, send_error
from ._openai_ingress import parse_json

if TYPE_CHECKING:
    from adapters import GatewayRequest
    from rules import Node, Target

    from ..routing._runtime import Runtime

__all__ = ["count_tokens"]

log = logging.getLogger("llm_router")

#: Seconds an upstream count may take before the estimate answers instead.
COUNT_TIMEOUT = 10.0


async def count_tokens(scope: dict[str, Any], receive: Any, send: Any, runtime: Runtime) -> None:
    request_id = make_request_id(scope)
    body_read = False
    try:
        key = runtime.keys.identify(scope["headers"])
        body = await read_body(scope, receive, runtime.max_body)
        body_read = True
        raw = parse_json(body)
        # The Messages decoder checks the request; a count takes no max_tokens.
        req = messages_request_from_wire({**raw, "max_tokens": 1} if isinstance(raw, dict) else raw)
        assert isinstance(raw, dict)  # the decoder refused anything else
        node = runtime.table.lookup(req.model)
        if node is None:
            raise NotFound(
                f"model {req.model!r} is not a route or a provider:model target; "
                "GET /v1/models lists them",
                param="model",
            )
        if key is not None and not key.may_use(req.model):
            raise Forbidden(f"this key may not use {req.model!r}", param="model")
        counted = await _ask_upstreams(runtime, node, raw)
    except GatewayError as exc:
        trace = RequestTrace("-")
        await send_error(send, ANTHROPIC, exc, trace, request_id, close=not body_read)
        return
    estimated = counted is None
    tokens = _estimate(req, raw) if counted is None else counted
    answer = orjson.dumps({"input_tokens": tokens})
    headers = [
        JSON,
        (b"content-length", b"%d" % len(answer)),
        (b"x-request-id", request_id.encode()),
        (b"request-id", request_id.encode()),
    ]
    if estimated:
        headers.append((b"x-router-estimated", b"true"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


async def _ask_upstreams(runtime: Runtime, node: Node, body: dict[str, Any]) -> int | None:
    """The first count an Anthropic target of the route gives, in the route's order."""
    upstreams = runtime.engine.upstreams
    for target in _in_order(node):
        upstream = upstreams.get(target.provider)
        if not isinstance(upstream, HTTPUpstream) or not isinstance(upstream.adapter, TokenCounter):
            continue
        with trio.move_on_after(COUNT_TIMEOUT):
            try:
                return await upstream.count_tokens(body, target.model)
            except GatewayError as exc:
                log.info("count_tokens at %s failed (%s); next", target, type(exc).__name__)
    return None


def _in_order(node: Node) -> list[Target]:
    """The route's targets, depth first in the order the rules give them, once each."""
    found: list[Target] = []
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Leaf):
            if current.target not in found:
                found.append(current.target)
        else:
            stack.extend(reversed(current.children))
    return found


def _estimate(req: GatewayRequest, body: dict[str, Any]) -> int:
    """Input tokens from what the model reads: the system prompt and the messages' text,
    and the tool definitions (their JSON), at ~4 characters a token."""
    chars = sum(len(m.text()) for m in req.messages)
    if body.get("tools"):
        chars += len(orjson.dumps(body["tools"]))
    return text_tokens(chars)
