"""Take the status page's screenshot for the docs: ``nox -s screenshot``.

The daemon runs the shipped config (with client keys and prices) under a few minutes
of traffic whose volume rises and falls, with one refused reload, and headless Chromium
captures ``/admin/ui``::

    python -m tests.router.http.screenshot_status_page docs/img/admin-ui.png --seconds 180
"""

from __future__ import annotations

import argparse
import math
import tempfile
from functools import partial
from pathlib import Path

import httpx2
import trio

from router import run_daemon
from tests.router.http._chromium import browser, full_page_screenshot, status_config, traffic


async def waves(url: str) -> None:
    """Traffic until cancelled, its volume in waves (requests spaced 0.05 s to 0.5 s)."""
    start = trio.current_time()
    while True:
        elapsed = trio.current_time() - start
        pause = 0.05 + 0.45 * (1 + math.cos(elapsed / 20)) / 2
        with trio.move_on_after(5):
            await traffic(url, workers=6, pause=pause, seed=int(elapsed))


async def main(out: Path, seconds: float, dark: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "router.toml"
        config.write_text(status_config())
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(run_daemon, str(config), "127.0.0.1:0"))
            url = binds[0]
            config.write_text(
                status_config().replace("[routes.chat]", "[routes.chat]\nretries = -1")
            )
            async with httpx2.AsyncClient(base_url=url, trust_env=False) as client:
                await client.post("/admin/reload")  # refused: the page lists its error
            config.write_text(status_config())
            async with httpx2.AsyncClient(base_url=url, trust_env=False) as client:
                await client.post("/admin/reload")
            nursery.start_soon(waves, url)
            await trio.sleep(seconds)
            # Taken under traffic: the last samples show it too.
            await trio.to_thread.run_sync(shoot, url, Path(folder) / "profile", out, dark)
            nursery.cancel_scope.cancel()


def shoot(url: str, profile: Path, out: Path, dark: bool) -> None:
    with browser(profile) as driver:
        if dark:
            driver.execute_cdp_cmd(
                "Emulation.setEmulatedMedia",
                {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
            )
        driver.get(f"{url}/admin/ui")
        driver.implicitly_wait(10)
        driver.find_element("css selector", "article[data-target] polyline")
        full_page_screenshot(driver, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--dark", action="store_true")
    args = parser.parse_args()
    trio.run(main, args.out, args.seconds, args.dark)
