"""Hot reload over loopback: by endpoint, SIGHUP and file change; refused when invalid;
no request lost under load; live state and in-flight requests carried through; every
setting a restart would apply applied (circuit, hedge budget, removed limits), the rest
named as needing a restart."""

from __future__ import annotations

import logging
import os
import signal
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
import trio
import trio.testing

from router import run_daemon
from tests.fakes.openai_upstream import FakeOpenAI, running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Mapping
    from pathlib import Path

BASE = """
[server]
listen = ["{listen}"]
access_log = false
watch = {watch}
{server}

[providers.sim-a]
kind = "simulated"
latency = {{ median = "1ms", p99 = "2ms" }}

[providers.sim-b]
kind = "simulated"
latency = {{ median = "1ms", p99 = "2ms" }}

[providers.sim-slow]
kind = "simulated"
latency = {{ median = "400ms", p99 = "400ms" }}

[routes.chat]
fallback = ["{target}"]
{extra}
"""
HI = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


def write(
    path: Path,
    target: str = "sim-a:echo",
    extra: str = "",
    server: str = "",
    *,
    watch: bool = False,
    listen: str = "127.0.0.1:0",
) -> None:
    """Write the config the way editors do: a new file renamed over the old one.

    The file watcher is off unless asked for: a test reloading by endpoint must not
    race a reload by file change.
    """
    tmp = path.with_suffix(".tmp")
    watching = str(watch).lower()
    text = BASE.format(target=target, extra=extra, server=server, watch=watching, listen=listen)
    tmp.write_text(text)
    tmp.replace(path)


@asynccontextmanager
async def daemon(path: Path) -> AsyncIterator[httpx2.AsyncClient]:
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(run_daemon, str(path)))
        async with httpx2.AsyncClient(base_url=binds[0], trust_env=False) as client:
            yield client
        nursery.cancel_scope.cancel()


async def served_by(client: httpx2.AsyncClient, body: Mapping[str, object] = HI) -> str:
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response.headers["x-router-target"]


async def status(client: httpx2.AsyncClient) -> dict[str, Any]:
    response = await client.get("/admin/status")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


@contextmanager
def logged(text: str) -> Iterator[trio.Event]:
    """An event set when the daemon logs a line containing ``text``: the readiness
    signal of work it does on its own (a reload by signal or by file change)."""
    seen = trio.Event()

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if text in record.getMessage():
                seen.set()  # the reloader logs from the trio thread

    logger = logging.getLogger("llm_router")
    handler = Handler(logging.INFO)
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class Counter:
    """Answers so far, and a way to wait for more."""

    def __init__(self) -> None:
        self.count = 0
        self._more = trio.Event()

    def add(self) -> None:
        self.count += 1
        self._more.set()
        self._more = trio.Event()

    async def reach(self, count: int) -> None:
        while self.count < count:
            await self._more.wait()


class Gate:
    """ASGI middleware: every POST waits at the gate until the test opens it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.arrived = trio.Event()
        self.opened = trio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            self.arrived.set()
            await self.opened.wait()
        await self.app(scope, receive, send)


class RateLimitHeaders:
    """ASGI middleware: every answer carries OpenAI's rate-limit headers (plenty left)."""

    HEADERS = (
        (b"x-ratelimit-limit-requests", b"100"),
        (b"x-ratelimit-remaining-requests", b"99"),
        (b"x-ratelimit-reset-requests", b"1s"),
    )

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], *self.HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "router.toml"
    write(path)
    return path


async def test_reload_by_endpoint(config: Path) -> None:
    async with daemon(config) as client:
        assert await served_by(client) == "sim-a:echo"
        before = (await client.get("/admin/status")).json()["rules"]["digest"]
        write(config, "sim-b:echo", '[routes.new]\nfallback = ["sim-a:echo"]')
        result = await client.post("/admin/reload")
        assert result.status_code == 200
        assert result.json()["changed"] is True
        assert result.json()["rules"] != before
        assert await served_by(client) == "sim-b:echo"
        models = {m["id"] for m in (await client.get("/v1/models")).json()["data"]}
        assert "new" in models


async def test_an_invalid_file_changes_nothing(config: Path) -> None:
    async with daemon(config) as client:
        before = (await client.get("/admin/status")).json()["rules"]["digest"]
        write(config, "nowhere:echo")
        result = await client.post("/admin/reload")
        assert result.status_code == 422
        assert result.json()["rules"] == before
        assert any("routes.chat.fallback" in e for e in result.json()["errors"])
        assert await served_by(client) == "sim-a:echo"  # the old rules keep serving
        status = (await client.get("/admin/status")).json()
        assert status["rules"]["digest"] == before
        assert any("nowhere" in e for e in status["reload"]["last_errors"])
        assert status["reload"]["counts"]["failure"] == 1


async def test_reload_by_sighup(config: Path) -> None:
    async with daemon(config) as client:
        write(config, "sim-b:echo")
        with logged("reload (SIGHUP)") as reloaded:
            os.kill(os.getpid(), signal.SIGHUP)
            with trio.fail_after(10):  # a hang guard
                await reloaded.wait()
        assert await served_by(client) == "sim-b:echo"


async def test_reload_by_file_change(config: Path) -> None:
    write(config, watch=True)
    async with daemon(config) as client:  # up means the file is watched: no settling
        with logged("reload (file changed)") as reloaded:
            write(config, "sim-b:echo", watch=True)
            with trio.fail_after(10):
                await reloaded.wait()
        assert await served_by(client) == "sim-b:echo"


async def test_watch_file_reports_readiness(config: Path) -> None:
    """The watcher is started with ``nursery.start``: a save right after is seen."""
    from router.ops._watch import ConfigWatcher

    calls: list[str] = []

    async def reload(reason: str) -> None:
        calls.append(reason)
        nursery.cancel_scope.cancel()

    watcher = ConfigWatcher(str(config), reload, quiet=0.01)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(watcher.run))
            write(config, "sim-b:echo")
    assert calls == ["file changed"]


async def test_no_request_lost_while_reloading_under_load(config: Path) -> None:
    failures: list[str] = []
    served: set[str] = set()
    answered = Counter()
    async with daemon(config) as client:
        done = trio.Event()

        async def load() -> None:
            while not done.is_set():
                response = await client.post("/v1/chat/completions", json=HI)
                if response.status_code != 200:
                    failures.append(response.text)
                else:
                    served.add(response.headers["x-router-target"])
                answered.add()

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(load)
            for i in range(6):
                write(config, "sim-b:echo" if i % 2 == 0 else "sim-a:echo", f"# edit {i}")
                assert (await client.post("/admin/reload")).status_code == 200
                await answered.reach(answered.count + 8)  # requests on these rules too
            done.set()
    assert failures == []
    assert served == {"sim-a:echo", "sim-b:echo"}


async def test_requests_in_flight_finish_on_their_rules(config: Path) -> None:
    gate = Gate(FakeOpenAI())
    async with running(gate) as upstream:
        gated = f'[providers.gated]\nkind = "openai"\nbase_url = "{upstream}/v1"\n'
        write(config, "gated:m", gated)
        async with daemon(config) as client:
            async with trio.open_nursery() as nursery:
                results: list[str] = []

                async def slow() -> None:
                    results.append(await served_by(client))

                nursery.start_soon(slow)
                await gate.arrived.wait()  # the request is in flight, at the upstream
                write(config, "sim-a:echo")  # the gated provider is gone from the new rules
                assert (await client.post("/admin/reload")).status_code == 200
                assert await served_by(client) == "sim-a:echo"
                assert (await status(client))["reload"]["retired_upstreams_open"] == 1
                with logged("closed 1 retired upstream") as closed:
                    gate.opened.set()
                    with trio.fail_after(10):
                        await closed.wait()  # once its last request has ended
            assert results == ["gated:m"]
            assert (await status(client))["reload"]["retired_upstreams_open"] == 0


async def test_live_state_carries_over(config: Path) -> None:
    async with daemon(config) as client:
        for _ in range(3):
            await served_by(client)
        write(config, "sim-a:echo", '[routes.more]\nfallback = ["sim-b:echo"]')
        assert (await client.post("/admin/reload")).status_code == 200
        state = (await client.get("/admin/status")).json()["targets"]
        assert state["sim-a:echo"]["successes"] == 3


async def test_restart_only_settings_are_reported(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    telemetry = '[telemetry]\nexporter = "console"\n'
    restart = 'drain_timeout = "5s"\nstate_file = "state.json"'
    async with daemon(config) as client:
        write(config, extra=telemetry, server=restart, watch=True)
        with caplog.at_level(logging.INFO, logger="llm_router"):
            result = (await client.post("/admin/reload")).json()
        needed = ["server.drain_timeout", "server.state_file", "server.watch", "telemetry"]
        assert result["restart_needed"] == needed
        assert f"restart needed for {', '.join(needed)}" in caplog.text
        assert (await status(client))["reload"]["restart_needed"] == needed
        # Still needed after a later reload that changes something else: the daemon
        # runs with what it started with until it restarts.
        write(config, "sim-b:echo", telemetry, server=restart, watch=True)
        assert (await client.post("/admin/reload")).json()["restart_needed"] == needed
        # Back to what it runs with: nothing to restart for.
        write(config, "sim-b:echo")
        assert "restart_needed" not in (await client.post("/admin/reload")).json()
        assert (await status(client))["reload"]["restart_needed"] == []


CIRCUIT = """
[providers.up]
kind = "openai"
base_url = "{url}"

[defaults]
retries = 0
circuit = {{ failures = {failures}, open_for = "{open_for}s" }}
"""


async def test_a_reload_applies_circuit_thresholds_to_existing_breakers(
    config: Path, fake_openai: FakeOpenAI, mock_clock: trio.testing.MockClock
) -> None:
    # The clock stands still (nothing here waits on time) and moves by jump() alone.
    url = fake_openai.url
    write(config, "up:fail-500", CIRCUIT.format(url=url, failures=5, open_for=30))
    async with daemon(config) as client:

        async def fail_once() -> dict[str, Any]:
            response = await client.post("/v1/chat/completions", json=HI)
            assert response.status_code == 502
            breaker: dict[str, Any] = (await status(client))["targets"]["up:fail-500"]
            return breaker

        assert (await fail_once())["consecutive_failures"] == 1
        write(config, "up:fail-500", CIRCUIT.format(url=url, failures=1, open_for=10))
        result = (await client.post("/admin/reload")).json()
        assert result["changed"] is True
        assert "restart_needed" not in result  # the circuit applies live
        kept = (await status(client))["targets"]["up:fail-500"]
        assert (kept["state"], kept["consecutive_failures"]) == ("closed", 1)  # live state kept
        breaker = await fail_once()  # 2 failures in a row: over the new 1, under the old 5
        assert breaker["state"] == "open"
        assert breaker["seconds_until_half_open"] == 10.0  # the new open_for, not 30 s
        mock_clock.jump(9.5)
        assert (await status(client))["targets"]["up:fail-500"]["state"] == "open"
        mock_clock.jump(0.5)
        assert (await status(client))["targets"]["up:fail-500"]["state"] == "half_open"


HEDGED = """
[providers.up]
kind = "openai"
base_url = "{url}"

[routes.hedged]
fallback = ["up:silent", "up:gpt-4o-mini"]
hedge = {{ after = "1s" }}
timeout = "5s"

[defaults]
hedge_budget = {budget}
"""


async def test_a_reload_applies_a_new_hedge_budget(
    config: Path, fake_openai: FakeOpenAI, mock_clock: trio.testing.MockClock
) -> None:
    # ``silent`` never answers: only a hedge (after exactly 1 s) can, if the budget allows.
    hedged = {**HI, "model": "hedged"}
    write(config, extra=HEDGED.format(url=fake_openai.url, budget=0))  # hedging off
    async with daemon(config) as client:

        async def ask() -> httpx2.Response:
            fake_openai.request_seen = trio.Event()
            answers: list[httpx2.Response] = []
            async with trio.open_nursery() as nursery:

                async def post() -> None:
                    # The client's own timeout is on the same clock: past our jumps.
                    response = await client.post("/v1/chat/completions", json=hedged, timeout=60)
                    answers.append(response)

                nursery.start_soon(post)
                await fake_openai.request_seen.wait()  # the first attempt is at ``silent``
                mock_clock.jump(1.0)  # the hedge is due
                # Everything that moves without time has moved (50 ms of real quiet:
                # loopback traffic included); then the request's timeout.
                await trio.testing.wait_all_tasks_blocked(0.05)
                mock_clock.jump(4.0)
            return answers[0]

        refused = await ask()
        assert refused.status_code == 504  # no hedge: ``silent`` ran out the clock
        assert "gpt-4o-mini" not in fake_openai.calls
        write(config, extra=HEDGED.format(url=fake_openai.url, budget=1.0))
        result = (await client.post("/admin/reload")).json()
        assert result["changed"] is True
        assert "restart_needed" not in result
        assert (await status(client))["hedge_budget"]["rate"] == 1.0
        answered = await ask()
        assert answered.status_code == 200
        assert answered.headers["x-router-target"] == "up:gpt-4o-mini"  # the hedge won
        assert answered.headers["x-router-hedges"] == "1"


LIMITED = """
[providers.up]
kind = "openai"
base_url = "{url}/v1"
{limits}

[providers.kept]
kind = "openai"
base_url = "{url}/v1"
limits = {{ rpm = 1 }}

[routes.other]
fallback = ["kept:m"]

[defaults]
retries = 0
"""


async def test_a_removed_provider_limit_is_not_enforced_after_headers_were_seen(
    config: Path,
) -> None:
    async with running(RateLimitHeaders(FakeOpenAI())) as upstream:
        write(config, "up:m", LIMITED.format(url=upstream, limits="limits = { rpm = 1 }"))
        async with daemon(config) as client:
            other = {**HI, "model": "other"}
            for body, target in ((HI, "up:m"), (other, "kept:m")):
                assert await served_by(client, body) == target  # its answer had the headers
                limited = await client.post("/v1/chat/completions", json=body)
                assert limited.status_code == 429  # rpm 1: the window is full
            write(config, "up:m", LIMITED.format(url=upstream, limits=""))
            assert (await client.post("/admin/reload")).status_code == 200
            assert await served_by(client) == "up:m"  # the removed limit is gone
            assert await served_by(client) == "up:m"
            kept = await client.post("/v1/chat/completions", json=other)
            assert kept.status_code == 429  # a limit still configured keeps its window
            windows = (await status(client))["traffic"]["target_limits"]
            assert windows["kept"]["requests"] == 1
            assert "up" in windows  # headers seen since the reload: noted from scratch
            assert windows["up"]["rpm"] is None


async def test_reloads_are_counted_in_metrics(config: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    async with daemon(config) as client:
        write(config, "nowhere:echo")
        assert (await client.post("/admin/reload")).status_code == 422
        write(config, "sim-b:echo")
        assert (await client.post("/admin/reload")).status_code == 200
        assert (await client.post("/admin/reload")).status_code == 200  # unchanged
        text = (await client.get("/metrics")).text
    counts = {
        sample.labels["result"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "llm_router_config_reloads"
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    assert counts == {"success": 1.0, "failure": 1.0, "unchanged": 1.0}


async def test_a_removed_key_takes_its_budget_and_window_along(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMALL_KEY", "small-key-1")
    key = '[keys.small]\nsecret = "env:SMALL_KEY"\nbudget = { usd = 1.0, per = "day" }\n'
    write(config, extra=key + "limits = { rpm = 5 }\n")
    async with daemon(config) as client:
        traffic = (await status(client))["traffic"]
        assert traffic["budgets"]["small"]["budget"] == {"usd": 1.0, "per": "day"}
        assert traffic["key_limits"]["key:small"]["rpm"] == 5
        write(config, extra=key)  # the key's limits removed
        assert (await client.post("/admin/reload")).status_code == 200
        assert "key:small" not in (await status(client))["traffic"]["key_limits"]
        write(config)  # the key removed
        assert (await client.post("/admin/reload")).status_code == 200
        assert "small" not in (await status(client))["traffic"]["budgets"]


async def test_a_reload_sets_the_log_level(config: Path) -> None:
    root = logging.getLogger()
    level = root.level
    try:
        async with daemon(config) as client:
            assert root.level == logging.INFO
            write(config, server='log_level = "warning"')
            result = (await client.post("/admin/reload")).json()
            assert "restart_needed" not in result
            assert root.level == logging.WARNING
    finally:
        root.setLevel(level)


async def test_settings_the_command_line_gave_are_neither_applied_nor_reported(
    config: Path,
) -> None:
    root = logging.getLogger()
    level = root.level
    try:
        async with trio.open_nursery() as nursery:
            start = partial(run_daemon, str(config), "127.0.0.1:0", log_level="info")
            binds = await nursery.start(start)
            write(config, "sim-b:echo", server='log_level = "error"', listen="127.0.0.1:1")
            async with httpx2.AsyncClient(base_url=binds[0], trust_env=False) as client:
                result = (await client.post("/admin/reload")).json()
            assert result["changed"] is True
            assert "restart_needed" not in result  # --listen wins, now and after a restart
            assert root.level == logging.INFO  # --log-level wins
            nursery.cancel_scope.cancel()
    finally:
        root.setLevel(level)
