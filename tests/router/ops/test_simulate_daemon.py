"""``simulate``'s figures against the real daemon's: the shipped router.toml served on
loopback (hypercorn, the HTTP app, the same simulated providers and seeds), a light
Poisson load on route ``chat``, all on trio's MockClock; p50 and p99 within 10%."""

from __future__ import annotations

import random
import re
from functools import partial
from pathlib import Path

import httpx2
import trio
import trio.testing

from adapters import provider_kinds
from router import run_daemon
from router.ops._simulate import provider_seed, simulate
from router.ops._simulate_report import figures, quantile
from router.ops._traffic_spec import parse_traffic
from rules import load_config

ROOT = Path(__file__).parents[3]
SEED = 5
RATE = 5.0  # a second: light, under sim-flaky's 600 rpm
DURATION = 400.0
PROMPT = 5


def seeded_copy(tmp_path: Path) -> Path:
    """router.toml with each provider seeded as simulate seeds it, no log, no watcher."""
    text = (ROOT / "router.toml").read_text()
    text = text.replace("[server]\n", "[server]\naccess_log = false\nwatch = false\n", 1)

    def seed(match: re.Match[str]) -> str:
        return f"{match[0]}seed = {provider_seed(SEED, match[1])}\n"

    text = re.sub(r"^\[providers\.([\w-]+)\]\n", seed, text, flags=re.MULTILINE)
    path = tmp_path / "router.toml"
    path.write_text(text)
    return path


async def daemon_latencies(path: Path) -> list[float]:
    rng = random.Random(SEED)
    prompt = " ".join(f"w{i}" for i in range(PROMPT))
    body = {"model": "chat", "messages": [{"role": "user", "content": prompt}]}
    latencies: list[float] = []

    async def one(client: httpx2.AsyncClient) -> None:
        start = trio.current_time()
        response = await client.post("/v1/chat/completions", json=body)
        if response.status_code == 200:
            latencies.append(trio.current_time() - start)

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(run_daemon, str(path), "127.0.0.1:0"))
        limits = httpx2.Limits(max_connections=200, max_keepalive_connections=200)
        async with (
            httpx2.AsyncClient(
                base_url=binds[0], trust_env=False, timeout=120, limits=limits
            ) as client,
            trio.open_nursery() as load,
        ):
            end = trio.current_time() + DURATION
            while (now := trio.current_time()) < end:
                load.start_soon(one, client)
                await trio.sleep_until(now + rng.expovariate(RATE))
        nursery.cancel_scope.cancel()
    return latencies


async def test_simulate_matches_the_daemon_on_the_shipped_config(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    served = sorted(await daemon_latencies(seeded_copy(tmp_path)))
    config = load_config(ROOT / "router.toml", kinds=provider_kinds())
    traffic = parse_traffic(f"rate={RATE}/s,prompt={PROMPT},routes=chat")
    samples = await trio.to_thread.run_sync(simulate, config, traffic, DURATION, SEED)
    chat = figures(samples)["chat"]
    assert chat.latency is not None
    assert len(served) > 0.95 * RATE * DURATION
    for q, simulated in ((0.5, chat.latency[0]), (0.99, chat.latency[2])):
        real = quantile(served, q)
        assert abs(simulated - real) / real < 0.10, (q, simulated, real)
