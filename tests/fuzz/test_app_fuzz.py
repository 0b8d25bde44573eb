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

import io
import logging
from typing import TYPE_CHECKING, Any

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
from tests.fuzz._asgi import ENDLESS, Exchange, check_answer
from tests.fuzz._requests import KEY, Request, any_requests, chat_requests

if TYPE_CHECKING:
    from collections.abc import Iterator

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


# -- the properties -------------------------------------------------------------------


#: Whether the app asks for a client key: one time in four (else most requests end at 401).
KEYED = st.integers(0, 3).map(lambda i: i == 3)
FUZZ = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def answered(request: Request, keyed: bool) -> None:
    """The app answers ``request`` once, well formed, and logs no error."""
    scope, body = request
    endless = scope["path"] in ENDLESS
    exchange = Exchange(body, leave_after=2 if endless else None)
    errors = play(scope, exchange, keyed)
    assert not errors, [r.getMessage() for r in errors]
    assert exchange.complete or endless
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
