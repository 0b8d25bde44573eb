"""Headless Chromium for the status page's tests, and traffic for it to show.

Chromium comes from the system (Debian: ``apt-get install chromium chromium-driver``),
driven by selenium through chromedriver. Its flags keep it off the network: with
background networking, component updates, sync or QUIC it waits on hosts it cannot
reach; a fresh profile directory per run keeps runs apart.
"""

from __future__ import annotations

import base64
import hashlib
import random
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx2
import trio
from selenium import webdriver

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["CHROMIUM", "FLAGS", "KEYS", "browser", "status_config", "traffic"]

ROOT = Path(__file__).parents[3]


def _find() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


#: The browser and its driver, or None where they are not installed.
CHROMIUM = _find()

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: Client keys of :func:`status_config`, by name.
KEYS = {"team-a": "sk-team-a-6f1c2b9e", "team-b": "sk-team-b-0d4e8a7f", "ci": "sk-ci-9b3a5c1d"}


def status_config() -> str:
    """The shipped config, plus client keys with budgets and prices for its models, so
    that the page has spend to show."""
    keys = "".join(
        f'\n[keys.{name}]\nsha256 = "{hashlib.sha256(secret.encode()).hexdigest()}"\n'
        f"budget = {budget}\nlimits = {{ rpm = 600 }}\n"
        for (name, secret), budget in zip(
            KEYS.items(),
            (
                '{ usd = 5, per = "day" }',
                '{ usd = 20, per = "month" }',
                '{ usd = 0.05, per = "day" }',
            ),
            strict=True,
        )
    )
    prices = (
        "\n[prices]\n"
        '"echo" = { input = 15.0, output = 60.0 }\n'
        '"storyteller" = { input = 30.0, output = 120.0 }\n'
        '"embed" = { input = 2.0, output = 0.0 }\n'
    )
    return (ROOT / "router.toml").read_text() + keys + prices


@contextmanager
def browser(profile: Path, width: int = 1400, height: int = 1000) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a fresh profile in ``profile``; the console is logged."""
    assert CHROMIUM is not None
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM[0]
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=CHROMIUM[1])
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def full_page_screenshot(driver: webdriver.Chrome, path: Path) -> None:
    """The whole page, not only the window (the DevTools protocol's capture beyond it)."""
    width, height = driver.execute_script(
        "const e = document.documentElement; return [e.scrollWidth, e.scrollHeight]"
    )
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


ROUTES = (
    ("chat", 5, False),
    ("chat", 2, True),
    ("story", 2, True),
    ("fastest", 3, True),
    ("spread", 3, False),
    ("trial", 2, False),
    ("embed", 2, False),
)


async def traffic(url: str, workers: int = 6, pause: float = 0.15, seed: int = 1) -> None:
    """Requests to every route of the shipped config, from every key, until cancelled.

    ``pause`` (seconds, on average) spaces each worker's requests; answers of any status
    are fine (a spent budget's 429 is part of the picture).
    """
    rng = random.Random(seed)
    choices = [(route, stream) for route, weight, stream in ROUTES for _ in range(weight)]
    async with (
        httpx2.AsyncClient(base_url=url, timeout=30, trust_env=False) as client,
        trio.open_nursery() as nursery,
    ):
        for _ in range(workers):
            nursery.start_soon(_worker, client, choices, random.Random(rng.random()), pause)


async def _worker(
    client: httpx2.AsyncClient, choices: list[tuple[str, bool]], rng: random.Random, pause: float
) -> None:
    while True:
        route, stream = rng.choice(choices)
        key = rng.choice(list(KEYS.values()))
        headers = {"authorization": f"Bearer {key}", "x-user-id": f"user-{rng.randrange(50)}"}
        if route == "embed":
            body: dict[str, object] = {"model": route, "input": [f"text {rng.randrange(40)}"]}
            path = "/v1/embeddings"
        else:
            words = " ".join(rng.choice(("alpha", "beta", "gamma", "delta")) for _ in range(12))
            prompt = f"tell me a story {rng.randrange(8)}" if route == "story" else words
            body = {
                "model": route,
                "stream": stream,
                "messages": [{"role": "user", "content": prompt}],
            }
            path = "/v1/chat/completions"
        try:
            if stream:
                async with client.stream("POST", path, json=body, headers=headers) as answer:
                    async for _ in answer.aiter_raw():
                        pass
            else:
                await client.post(path, json=body, headers=headers)
        except httpx2.HTTPError:
            pass  # the page shows failures too
        await trio.sleep(rng.uniform(0, 2 * pause))
