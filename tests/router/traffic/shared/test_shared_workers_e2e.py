"""``serve --workers 2`` on one Redis: the workers hold one key's rpm and budget as one."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import openai
import trio

from tests.router.ops.test_workers_e2e import LIMIT, Daemon, seen_workers

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import RedisServer

CONFIG = """
[server]
listen = ["127.0.0.1:0"]
access_log = false
watch = false
shared_state = {{ url = "{redis}", timeout = "2s" }}
overload_lag = "30s"

[providers.sim]
kind = "simulated"
latency = {{ median = "1ms", p99 = "2ms" }}

[routes.chat]
fallback = ["sim:echo"]

[prices]
"sim:echo" = {{ input = 1_000_000, output = 1_000_000 }}

[keys.team]
secret = "env:TEAM_KEY"
limits = {{ rpm = {rpm} }}
{budget}
"""


def ask(url: str) -> int:
    """One request on a new connection (the kernel picks the worker): its status, 402
    standing for a 429 of an exhausted budget."""
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="team-key-1", max_retries=0, timeout=LIMIT)
    with client:
        try:
            client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "hi"}], max_tokens=1
            )
        except openai.RateLimitError as exc:
            return 402 if exc.code == "budget_exhausted" else 429
    return 200


def _run(config: Path) -> tuple[list[int], set[int]]:
    running = Daemon(config, "--workers", "2", env={**os.environ, "TEAM_KEY": "team-key-1"})
    try:
        url = running.wait_line(r"serving on (http://\S+) with 2 workers").group(1)
        workers = set(seen_workers(url, lambda s: s.get("shared_state", {}).get("state") == "ok"))
        # Alone, each worker would let 5 through: up to 10 of 12 on two workers.
        return [ask(url) for _ in range(12)], workers
    finally:
        running.stop()


async def test_two_workers_hold_one_keys_rpm_exactly(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    config = tmp_path / "router.toml"
    config.write_text(CONFIG.format(redis=redis_server.url, rpm=5, budget=""))
    statuses, workers = await trio.to_thread.run_sync(_run, config)
    assert len(workers) == 2  # both workers up, each sharing through Redis
    assert statuses == [200] * 5 + [429] * 7


async def test_two_workers_hold_one_keys_budget_exactly(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """The first answer (a few tokens at a dollar each) spends the budget: each
    worker alone would still let its own first request through."""
    config = tmp_path / "router.toml"
    budget = 'budget = { usd = 0.5, per = "day" }'
    config.write_text(CONFIG.format(redis=redis_server.url, rpm=1000, budget=budget))
    statuses, workers = await trio.to_thread.run_sync(_run, config)
    assert len(workers) == 2
    assert statuses == [200] + [402] * 11
