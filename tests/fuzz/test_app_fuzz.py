"""The ASGI app against hypothesis-made requests: always one well-formed answer.

Each example builds the app as the daemon does (``build_runtime`` on a config whose
target is the built-in ``simulated`` provider, so that valid requests are answered
too) and plays one request against it in memory, on trio's MockClock (the simulated
latencies cost no real time): a method and a path (mostly the two chat ingresses),
headers of any kind (content types, ``Authorization`` forms, garbage request ids and
hosts, repeated headers), and a body that is arbitrary bytes, arbitrary JSON, or a
valid OpenAI or Anthropic request changed in one or two places (a field of the wrong
type, huge, negative or missing, an extra field, odd roles and content parts, bad tool
schemas, odd model names), in any chunking.

The app must answer exactly once, well formed (``http.response.start``, then body
messages of which only the last ends the body), with a sane status (never a 500),
errors in the client's format, a stream as a whole SSE stream that ends with its end or
an error event; it must log no error (an exception it caught is a bug too). A client
that hangs up at any point gets nothing more and leaves no exception behind.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapters import provider_kinds
from router import App
from router.ops._accesslog import AccessLog
from router.ops._assemble import build_runtime
from router.ops._metrics import Metrics
from router.ops._observability import Observability
from rules import parse_config
from tests.fuzz._asgi import INGRESS, Exchange, check_answer
from tests.fuzz._mutate import JSON, mutated_json
from tests.strategies import TEXT, chunkings

if TYPE_CHECKING:
    import io
    from collections.abc import Iterator

KEY = "fuzz-client-key-1"
CONFIG = """
[server]
max_body = "16KiB"
{keys}

[providers.sim]
kind = "simulated"
latency = {{ median = "5ms", p99 = "20ms" }}
tokens_per_second = 500
seed = 11

[routes.chat]
fallback = ["sim:echo"]

[routes.story]
fallback = ["sim:storyteller"]
"""


@pytest.fixture(scope="module", autouse=True)
def client_key() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FUZZ_ROUTER_KEY", KEY)
        yield


class Errors(logging.Handler):
    """Log records at ERROR and above: a caught exception is a bug all the same."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def make_app(keyed: bool, log: io.StringIO) -> App:
    keys = 'api_keys = ["env:FUZZ_ROUTER_KEY"]' if keyed else ""
    config = parse_config(CONFIG.format(keys=keys), kinds=provider_kinds())
    runtime = build_runtime(config).runtime
    app: App
    observer = Observability(Metrics(lambda: app.runtime), AccessLog(log))
    app = App(runtime, observer=observer)
    return app


def play(scope: dict[str, Any], exchange: Exchange, keyed: bool) -> list[logging.LogRecord]:
    """One request against a new app; the error records it logged."""
    import io

    errors = Errors()
    logger = logging.getLogger()
    logger.addHandler(errors)

    async def main() -> None:
        app = make_app(keyed, io.StringIO())
        with trio.fail_after(3600):  # virtual time: a hang fails, it does not hang the test
            await app(scope, exchange.receive, exchange.send)

    try:
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    finally:
        logger.removeHandler(errors)
    return errors.records


# -- requests -------------------------------------------------------------------------

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
     "/admin/reload", "/", "/v1/chat/completions/", "/v1/messages/count_tokens", "//v1/messages"]
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
    own, other = openai_requests(), anthropic_requests()
    if INGRESS[path] == "anthropic":
        own, other = other, own
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


# -- the properties -------------------------------------------------------------------


#: Whether the app asks for a client key: one time in four (else most requests end at 401).
KEYED = st.integers(0, 3).map(lambda i: i == 3)
FUZZ = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def answered(request: Request, keyed: bool) -> None:
    """The app answers ``request`` once, well formed, and logs no error."""
    scope, body = request
    exchange = Exchange(body)
    errors = play(scope, exchange, keyed)
    assert not errors, [r.getMessage() for r in errors]
    assert exchange.complete
    check_answer(scope, exchange.sent)
    # What was reached (`pytest --hypothesis-show-statistics`): a suite that only ever
    # got 400s would pass and check little.
    event(f"{scope['path']} {exchange.sent[0]['status']}")


@FUZZ
@given(request=chat_requests(), keyed=KEYED)
def test_chat_requests_get_one_well_formed_answer(request: Request, keyed: bool) -> None:
    answered(request, keyed)


@FUZZ
@given(request=any_requests(), keyed=KEYED)
def test_any_request_gets_one_well_formed_answer(request: Request, keyed: bool) -> None:
    answered(request, keyed)


@FUZZ
@given(
    request=chat_requests() | any_requests(),
    keyed=KEYED,
    leave_after=st.integers(0, 4),
    in_body=st.booleans(),
)
def test_a_client_that_hangs_up_leaves_nothing_behind(
    request: Request, keyed: bool, leave_after: int, in_body: bool
) -> None:
    scope, body = request
    exchange = Exchange(body, leave_after=leave_after, leave_in_body=in_body)
    errors = play(scope, exchange, keyed)
    assert not errors, [r.getMessage() for r in errors]
