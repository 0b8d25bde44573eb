"""Any model name a client sends, by property: a JSON answer (200, 400 or 404) whose
headers an HTTP server sends as they are (no CR, LF or NUL reaches a header)."""

from __future__ import annotations

from functools import partial

import h11
import orjson
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import provider_kinds
from router import App, Engine, Runtime
from router.upstream._providers import build_upstreams
from rules import compile_routes, model_problem, parse_config
from tests.router.http.test_app_timing import SCOPE, Client

CONFIG = """
[providers.sim]
kind = "simulated"
latency = { median = "1ms", p99 = "2ms" }

[routes.chat]
fallback = ["sim:echo"]
"""

MODELS = st.one_of(
    st.text(max_size=40),
    st.builds("sim:{}".format, st.text(max_size=40)),
    st.sampled_from(["sim:../x", "sim:a\r\nb", "chat", "sim:a/b", "sim:%2e%2e"]),
)


def answer(model: str) -> Client:
    config = parse_config(CONFIG, kinds=provider_kinds())
    app = App(Runtime(compile_routes(config), Engine(build_upstreams(config))))
    client = Client({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    trio.run(
        partial(app, SCOPE, client.receive, client.send),
        clock=trio.testing.MockClock(autojump_threshold=0),
    )
    return client


@settings(max_examples=100)
@given(MODELS)
def test_any_model_gets_a_json_answer_with_headers_a_server_can_send(model: str) -> None:
    client = answer(model)
    start = client.sent[0]
    h11.Response(status_code=start["status"], headers=start["headers"])  # raises if not
    body = orjson.loads(client.text)
    _, colon, name = model.partition(":")
    if model_problem(name if colon else model) is not None:
        assert client.status == 400
        assert body["error"]["param"] == "model"
    elif model == "chat" or model.startswith("sim:"):
        assert client.status == 200
    else:
        assert client.status == 404
