"""Requests a client may send, as hypothesis strategies: an ASGI scope and its body.

:func:`chat_requests` are POSTs to a chat ingress that look like a client's (a host, a
JSON type, most often a key), with a body that is most often a valid request in the
path's own format (OpenAI chat, Anthropic Messages, OpenAI Responses), as it is or changed in one or two places, and sometimes the other
format's, random JSON or random bytes. :func:`any_requests` are any method on any path
with any of those bodies and hostile headers (odd hosts, a web page's ``Origin``).
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import strategies as st

from tests.fuzz._asgi import INGRESS
from tests.fuzz._mutate import JSON, mutated_json
from tests.strategies import TEXT, chunkings

__all__ = ["KEY", "Request", "any_requests", "chat_requests"]

#: The client key of the app that asks for one.
KEY = "fuzz-client-key-1"

ODD_TEXT = st.text(max_size=12)
MODELS = st.sampled_from(["chat", "story", "sim:echo", "sim:other", "nope", "", "chat "]) | (
    st.sampled_from(["", "sim:", "ghost:", "chat"]).flatmap(lambda p: ODD_TEXT.map(lambda t: p + t))
)
ROLES = st.sampled_from(["user", "assistant", "system", "developer", "tool", "function"]) | (
    ODD_TEXT
)
IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
SCHEMAS = st.sampled_from(
    [
        {"type": "object", "properties": {"city": {"type": "string"}}},
        {"type": "object"},
        {},
        {"type": "string"},
        {"$ref": "#/nowhere"},
    ]
) | st.dictionaries(ODD_TEXT, JSON, max_size=2)


@st.composite
def openai_messages(draw: st.DrawFn) -> list[dict[str, Any]]:
    text = draw(TEXT)
    shape = draw(st.integers(0, 5))
    if shape == 0:
        return [{"role": "user", "content": text}]
    if shape == 1:
        return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]
    if shape == 2:
        parts = [
            {"type": "text", "text": text},
            {"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}},
        ]
        if draw(st.booleans()):
            parts.append({"type": draw(ODD_TEXT), "text": text})
        return [
            {"role": "user", "content": draw(st.permutations(parts))[: draw(st.integers(0, 3))]}
        ]
    if shape == 3:
        call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        return [
            {"role": "user", "content": text},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        ]
    if shape == 4:  # a prefill
        return [{"role": "user", "content": text}, {"role": "assistant", "content": "Sure"}]
    return [{"role": draw(ROLES), "content": text} for _ in range(draw(st.integers(1, 3)))]


@st.composite
def openai_requests(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"model": draw(MODELS), "messages": draw(openai_messages())}
    if draw(st.booleans()):
        body["stream"] = True
        if draw(st.booleans()):
            body["stream_options"] = {"include_usage": draw(st.booleans())}
    if draw(st.booleans()):
        body["max_tokens"] = draw(st.integers(-2, 2**40))
    if draw(st.booleans()):
        body["temperature"] = draw(st.floats(-1, 3))
    if draw(st.integers(0, 3)) == 0:
        tool = {"name": draw(ODD_TEXT), "parameters": draw(SCHEMAS)}
        body["tools"] = [{"type": "function", "function": tool}]
        body["tool_choice"] = draw(st.sampled_from(["auto", "none", "required", {"x": 1}]))
    if draw(st.integers(0, 3)) == 0:
        body["stop"] = draw(st.sampled_from(["\n", ["a", "b"], [], 3]))
    return body


@st.composite
def anthropic_requests(draw: st.DrawFn) -> dict[str, Any]:
    text = draw(TEXT)
    content: Any = text
    shape = draw(st.integers(0, 3))
    if shape == 1:
        content = [
            {"type": "text", "text": text},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": IMAGE[22:]},
            },
        ]
    elif shape == 2:
        content = [{"type": "tool_result", "tool_use_id": "toolu_1", "content": text}]
    messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
    if shape == 3:
        use = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"x": 1}}
        messages += [
            {"role": "assistant", "content": [use]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]},
        ]
    body: dict[str, Any] = {
        "model": draw(MODELS),
        "max_tokens": draw(st.sampled_from([16, 1, 2**31])),
        "messages": messages,
    }
    if draw(st.booleans()):
        body["stream"] = True
    if draw(st.booleans()):
        body["system"] = draw(st.sampled_from(["be brief", [{"type": "text", "text": "hi"}]]))
    if draw(st.integers(0, 3)) == 0:
        tool = {"name": draw(ODD_TEXT), "input_schema": draw(SCHEMAS)}
        body["tools"] = [tool]
        body["tool_choice"] = draw(
            st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "tool"}, "auto"])
        )
    return body


@st.composite
def responses_requests(draw: st.DrawFn) -> dict[str, Any]:
    text = draw(TEXT)
    shape = draw(st.integers(0, 4))
    items: Any = text
    if shape == 1:
        parts = [
            {"type": "input_text", "text": text},
            {"type": "input_image", "image_url": IMAGE, "detail": "low"},
        ]
        items = [{"role": "user", "content": parts}]
    elif shape == 2:
        items = [
            {"role": "user", "content": text},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "42"},
        ]
    elif shape == 3:
        items = [{"role": draw(ROLES), "content": text} for _ in range(draw(st.integers(1, 3)))]
    elif shape == 4:
        items = [{"type": draw(ODD_TEXT), "role": "user", "content": text}]
    body: dict[str, Any] = {"model": draw(MODELS), "input": items}
    if draw(st.booleans()):
        body["stream"] = True
    if draw(st.booleans()):
        body["instructions"] = draw(st.sampled_from(["be brief", "", 3]))
    if draw(st.booleans()):
        body["max_output_tokens"] = draw(st.integers(-2, 2**40))
    if draw(st.integers(0, 3)) == 0:
        tool = {"type": "function", "name": draw(ODD_TEXT), "parameters": draw(SCHEMAS)}
        body["tools"] = [tool, {"type": "web_search"}][: draw(st.integers(1, 2))]
        body["tool_choice"] = draw(st.sampled_from(["auto", "none", "required", {"x": 1}]))
    if draw(st.integers(0, 3)) == 0:
        fmt = {"type": "json_schema", "name": "x", "schema": draw(SCHEMAS)}
        body["text"] = {"format": draw(st.sampled_from([fmt, {"type": "json_object"}, {}]))}
    if draw(st.integers(0, 5)) == 0:
        body[draw(st.sampled_from(["previous_response_id", "store", "metadata"]))] = "x"
    return body


@st.composite
def completions_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A legacy ``/v1/completions`` request: a prompt as text, texts or token ids."""
    prompt = draw(TEXT | st.lists(TEXT, max_size=3) | st.lists(st.integers(-1, 2**20), max_size=4))
    body: dict[str, Any] = {"model": draw(MODELS), "prompt": prompt}
    if draw(st.booleans()):
        body["stream"] = True
    if draw(st.booleans()):
        body["max_tokens"] = draw(st.integers(-2, 2**40))
    if draw(st.integers(0, 3)) == 0:
        body[draw(st.sampled_from(["echo", "suffix", "logprobs", "best_of", "n"]))] = draw(
            st.booleans() | st.integers(-1, 8) | TEXT
        )
    return body


_OWN = {
    "openai": openai_requests,
    "anthropic": anthropic_requests,
    "responses": responses_requests,
    "completions": completions_requests,
}


@st.composite
def near_valid(draw: st.DrawFn, requests: st.SearchStrategy[dict[str, Any]]) -> Any:
    """A valid request, as it is or changed in one or two places."""
    body: Any = draw(requests)
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        body = draw(mutated_json(body))
    return body


ODD_BODIES = st.one_of(
    st.binary(max_size=64),
    JSON.map(orjson.dumps),
    st.just(b"{" * 600 + b"}" * 600),  # deeper than orjson parses
    st.just(
        b'{"model": "chat", "messages": [{"role": "user", "content": "' + b"x" * 17000 + b'"}]}'
    ),
)

# Header values as an HTTP server hands them over: no CR, LF or NUL, no outer blanks.
VALUES = st.binary(max_size=24).map(
    lambda v: v.replace(b"\r", b"").replace(b"\n", b"").replace(b"\0", b"").strip(b" \t")
)
NAMES = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.!#$%&'*+^`|~", min_size=1, max_size=12).map(
    str.encode
)
_KEY = KEY.encode()
#: Each header a client may send: what clients send, then anything.
HEADERS: dict[bytes, st.SearchStrategy[bytes]] = {
    b"host": st.sampled_from([b"localhost:8080", b"127.0.0.1:8080", b"localhost", b"[::1]:80"]),
    b"content-type": st.sampled_from(
        [
            b"application/json",
            b"text/plain",
            b"application/x-www-form-urlencoded",
            b"multipart/form-data; boundary=x",
            b"application/json; charset=utf-16",
        ]
    )
    | VALUES,
    b"authorization": st.sampled_from(
        [
            b"Bearer " + _KEY,
            b"bearer " + _KEY,
            b"BEARER  " + _KEY,
            b"Bearer wrong",
            b"Bearer",
            b"Basic Zm9vOmJhcg==",
            b"Bearer " + _KEY + b" extra",
            b"",
        ]
    )
    | VALUES,
    b"x-api-key": st.sampled_from([_KEY, b"wrong", b""]) | VALUES,
    b"x-request-id": st.sampled_from([b"abc-123", b"x" * 200]) | VALUES,
    b"anthropic-version": st.just(b"2023-06-01") | VALUES,
    b"cache-control": st.sampled_from([b"no-cache", b"no-store", b"max-age=0"]),
    b"accept-encoding": st.sampled_from([b"gzip", b"identity", b"*"]),
    b"transfer-encoding": st.just(b"chunked"),
}
#: What only odd clients send: a host not ours, an origin (a web page).
HOSTILE: dict[bytes, st.SearchStrategy[bytes]] = {
    b"host": st.sampled_from([b"evil.example", b"localhost.evil.example", b""]) | VALUES,
    b"origin": st.sampled_from([b"http://evil.example", b"null"]) | VALUES,
}


@st.composite
def headers(draw: st.DrawFn, hostile: bool) -> list[tuple[bytes, bytes]]:
    """A client's headers, in any order, some repeated; ``hostile`` adds odd hosts and
    origins (which are refused before anything else is looked at)."""
    out: list[tuple[bytes, bytes]] = []
    for name, values in HEADERS.items():
        if hostile and name in HOSTILE and draw(st.booleans()):
            values = HOSTILE[name]
        # Clients send a host, most often a type and a key, the rest now and then.
        if draw(st.integers(0, 9)) < {b"host": 9, b"content-type": 8, b"authorization": 7}.get(
            name, 3
        ):
            out.append((name, draw(values)))
    if hostile and draw(st.booleans()):
        out.append((b"origin", draw(HOSTILE[b"origin"])))
    out += draw(st.lists(st.tuples(NAMES, VALUES), max_size=2))
    if out and draw(st.integers(0, 3)) == 0:
        out += draw(st.lists(st.sampled_from(out), min_size=1, max_size=2))  # repeated
    return draw(st.permutations(out))


OTHER_PATHS = st.sampled_from(
    ["/healthz", "/readyz", "/v1/models", "/models", "/metrics", "/admin/status",
     "/admin/reload", "/admin/ui", "/admin/events", "/v1/completions", "/v1/embeddings", "/",
     "/v1/chat/completions/", "/v1/messages/count_tokens", "//v1/messages"]
) | st.text(max_size=12).map(lambda t: "/" + t)  # fmt: skip
METHODS = st.sampled_from(["GET", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH", "post", "POST"])


def scope_of(method: str, path: str, hs: list[tuple[bytes, bytes]], version: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": version,
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": hs,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "extensions": {},
    }


Request = tuple[dict[str, Any], list[bytes]]


@st.composite
def chat_requests(draw: st.DrawFn) -> Request:
    """A POST to a chat ingress, most often in its own format, near valid."""
    path = draw(st.sampled_from(list(INGRESS)))
    own = _OWN[INGRESS[path]]()
    other = anthropic_requests() if INGRESS[path] != "anthropic" else openai_requests()
    body = orjson.dumps(draw(near_valid(own))) if draw(st.integers(0, 5)) else b""
    if not body:
        body = orjson.dumps(draw(near_valid(other))) if draw(st.booleans()) else draw(ODD_BODIES)
    hs = draw(headers(hostile=False))
    if draw(st.booleans()):
        hs.append((b"content-length", b"%d" % len(body)))
    version = draw(st.sampled_from(["1.1", "1.0", "2"]))
    return scope_of("POST", path, hs, version), draw(chunkings(body, max_cuts=3))


@st.composite
def any_requests(draw: st.DrawFn) -> Request:
    """Any method on any path, with any body and hostile headers."""
    path = draw(st.sampled_from(list(INGRESS)) | OTHER_PATHS)
    body = draw(
        ODD_BODIES
        | near_valid(openai_requests()).map(orjson.dumps)
        | near_valid(anthropic_requests()).map(orjson.dumps)
        | near_valid(responses_requests()).map(orjson.dumps)
    )
    hs = draw(headers(hostile=True))
    if draw(st.booleans()):
        hs.append(
            (
                b"content-length",
                draw(st.sampled_from([b"%d" % len(body), b"99999999", b"-1", b"x"])),
            )
        )
    scope = scope_of(draw(METHODS), path, hs, draw(st.sampled_from(["1.1", "1.0", "2"])))
    return scope, draw(chunkings(body, max_cuts=3))
