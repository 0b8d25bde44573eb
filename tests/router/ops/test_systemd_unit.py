"""The shipped unit bounds what the service may take: descriptors, memory and tasks,
each with room for what the daemon itself needs."""

from __future__ import annotations

import re
from pathlib import Path

import trio

UNIT = Path(__file__).parents[3] / "deploy" / "llm-router.service"
UNITS = {"K": 2**10, "M": 2**20, "G": 2**30}


def service_settings() -> dict[str, str]:
    """The ``[Service]`` section's settings (the last one wins, as in systemd)."""
    settings: dict[str, str] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            settings[key] = value
    return settings


def size(value: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]?)", value)
    assert match, f"not a size: {value}"
    return int(match[1]) * UNITS.get(match[2], 1)


def test_the_unit_bounds_memory() -> None:
    settings = service_settings()
    high, top = size(settings["MemoryHigh"]), size(settings["MemoryMax"])
    assert 512 * 2**20 <= high < top  # throttled and reclaimed before it is killed


async def test_the_unit_bounds_tasks_above_the_threads_the_daemon_starts() -> None:
    workers = trio.to_thread.current_default_thread_limiter().total_tokens
    # The event loop, the worker threads, watchfiles' two, a tracing exporter's one.
    assert int(service_settings()["TasksMax"]) >= 1 + workers + 2 + 1


def test_the_unit_bounds_descriptors() -> None:
    assert int(service_settings()["LimitNOFILE"]) >= 4096
