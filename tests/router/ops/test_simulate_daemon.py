"""``simulate``'s figures against the daemon's: the shipped router.toml assembled as
``serve`` assembles it (``build_runtime``, the HTTP app, the simulated providers
streaming token by token, with the seeds simulate gives them), a light Poisson load of
whole HTTP requests on route ``chat``, all on trio's MockClock; p50 and p99 within 10%.

The app is driven in memory (ASGI messages), not over loopback sockets: with real
sockets the mock clock also jumps while a connection's thread or I/O lags on a busy
machine, which shifts the daemon's figures by tens of percent under load.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import trio
import trio.testing

from adapters import provider_kinds
from router import App
from router.ops._assemble import build_runtime
from router.ops._simulate import provider_seed, simulate
from router.ops._simulate_report import figures, quantile
from router.ops._traffic_spec import parse_traffic
from rules import load_config

if TYPE_CHECKING:
    from typing import Any

ROOT = Path(__file__).parents[3]
SEED = 1
RATE = 5.0  # a second: light, under sim-flaky's 600 rpm
DURATION = 1200.0
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
    body = orjson.dumps({"model": "chat", "messages": [{"role": "user", "content": prompt}]})
    config = load_config(path, kinds=provider_kinds())
    # Its own randomness (backoff jitter) seeded too: the comparison does not vary by run.
    app = App(build_runtime(config, tls={}, rng=random.Random(SEED)).runtime)
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}
    latencies: list[float] = []

    async def one() -> None:
        start = trio.current_time()
        sent: list[dict[str, Any]] = []
        given = False

        async def receive() -> dict[str, Any]:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            await trio.sleep_forever()
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        if sent[0]["status"] == 200:
            latencies.append(trio.current_time() - start)

    async with trio.open_nursery() as load:
        end = trio.current_time() + DURATION
        while (now := trio.current_time()) < end:
            load.start_soon(one)
            await trio.sleep_until(now + rng.expovariate(RATE))
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
        print(f"p{q * 100:g}: simulated {simulated:.4f}s, served {real:.4f}s")
        assert abs(simulated - real) / real < 0.10, (q, simulated, real)
