"""Hot reload over loopback: by endpoint, SIGHUP and file change; refused when invalid;
no request lost under load; live state and in-flight requests carried through."""

from __future__ import annotations

import os
import signal
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import httpx2
import pytest
import trio

from router import run_daemon

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

BASE = """
[server]
listen = ["127.0.0.1:0"]
access_log = false
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


def write(path: Path, target: str = "sim-a:echo", extra: str = "", server: str = "") -> None:
    """Write the config the way editors do: a new file renamed over the old one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(BASE.format(target=target, extra=extra, server=server))
    tmp.replace(path)


@asynccontextmanager
async def daemon(path: Path) -> AsyncIterator[httpx2.AsyncClient]:
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(run_daemon, str(path)))
        async with httpx2.AsyncClient(base_url=binds[0], trust_env=False) as client:
            yield client
        nursery.cancel_scope.cancel()


async def served_by(client: httpx2.AsyncClient, body: dict[str, object] = HI) -> str:
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response.headers["x-router-target"]


async def eventually(check: Callable[[], object], limit: float = 10.0) -> None:
    """Poll ``check`` until it is truthy; ``limit`` is a hang guard, not a timing claim."""
    with trio.fail_after(limit):
        while not await check():  # type: ignore[misc]  # noqa: ASYNC110 - polling the daemon over HTTP
            await trio.sleep(0.05)


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
        os.kill(os.getpid(), signal.SIGHUP)

        async def switched() -> bool:
            return await served_by(client) == "sim-b:echo"

        await eventually(switched)


async def test_reload_by_file_change(config: Path) -> None:
    async with daemon(config) as client:
        await trio.sleep(0.2)  # let the watcher start before the first save
        write(config, "sim-b:echo")

        async def switched() -> bool:
            return await served_by(client) == "sim-b:echo"

        await eventually(switched)


async def test_no_request_lost_while_reloading_under_load(config: Path) -> None:
    failures: list[str] = []
    served: set[str] = set()
    async with daemon(config) as client:
        done = trio.Event()

        async def load() -> None:
            while not done.is_set():
                response = await client.post("/v1/chat/completions", json=HI)
                if response.status_code != 200:
                    failures.append(response.text)
                else:
                    served.add(response.headers["x-router-target"])

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(load)
            for i in range(6):
                write(config, "sim-b:echo" if i % 2 == 0 else "sim-a:echo", f"# edit {i}")
                assert (await client.post("/admin/reload")).status_code == 200
                await trio.sleep(0.05)
            done.set()
    assert failures == []
    assert served == {"sim-a:echo", "sim-b:echo"}


async def test_requests_in_flight_finish_on_their_rules(config: Path) -> None:
    write(config, "sim-slow:echo")
    async with daemon(config) as client:
        async with trio.open_nursery() as nursery:
            results: list[str] = []

            async def slow() -> None:
                results.append(await served_by(client))

            nursery.start_soon(slow)
            await trio.sleep(0.1)  # the slow request is in flight
            write(config, "sim-a:echo")  # sim-slow is gone from the new rules
            assert (await client.post("/admin/reload")).status_code == 200
            assert await served_by(client) == "sim-a:echo"
        assert results == ["sim-slow:echo"]
        status = (await client.get("/admin/status")).json()
        assert status["reload"]["retired_upstreams_open"] == 0  # closed after its last request


async def test_live_state_carries_over(config: Path) -> None:
    async with daemon(config) as client:
        for _ in range(3):
            await served_by(client)
        write(config, "sim-a:echo", '[routes.more]\nfallback = ["sim-b:echo"]')
        assert (await client.post("/admin/reload")).status_code == 200
        state = (await client.get("/admin/status")).json()["targets"]
        assert state["sim-a:echo"]["successes"] == 3


async def test_restart_only_settings_are_reported(config: Path) -> None:
    async with daemon(config) as client:
        write(config, server='drain_timeout = "5s"')
        result = (await client.post("/admin/reload")).json()
        assert result["restart_needed"] == ["server.drain_timeout"]
        status = (await client.get("/admin/status")).json()
        assert status["reload"]["restart_needed"] == ["server.drain_timeout"]


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
