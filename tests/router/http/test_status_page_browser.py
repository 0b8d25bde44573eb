"""The status page in a real browser: headless Chromium against the daemon (the shipped
config's simulated providers, with client keys and traffic).

It checks what an operator relies on: every target of the rules appears with its charts,
the charts move as samples arrive, the console stays clean, the keyboard reaches the
targets, the system's dark setting is followed, and a refused reload shows its error.
The screenshot is kept as an artifact: in ``$LLM_ROUTER_ARTIFACTS`` when set, else in
the test's temporary folder.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
import trio
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.router.http._chromium import (
    CHROMIUM,
    browser,
    full_page_screenshot,
    status_config,
    traffic,
)

if TYPE_CHECKING:
    from selenium import webdriver

    from tests.conftest import RouterFactory

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)",
)

TARGETS = {
    "sim-flaky:echo",
    "sim-flaky:storyteller",
    "sim-flaky:embed",
    "sim-steady:echo",
    "sim-steady:storyteller",
    "sim-steady:embed",
    "sim-tail:echo",
}
#: A guard for each wait on the page (samples arrive once a second).
PATIENCE = 60


async def test_the_status_page_shows_live_targets_and_charts(
    start_router: RouterFactory, tmp_path: Path
) -> None:
    artifacts = Path(os.environ.get("LLM_ROUTER_ARTIFACTS") or tmp_path)
    async with start_router(status_config()) as url:
        # A refused reload, for the page's list of reloads.
        (tmp_path / "router.toml").write_text("[routes.chat]\nfallback = [")
        async with httpx2.AsyncClient(base_url=url, trust_env=False) as client:
            assert (await client.post("/admin/reload")).status_code == 422
        async with trio.open_nursery() as nursery:
            nursery.start_soon(traffic, url)
            seen = await trio.to_thread.run_sync(
                partial(look_at_the_page, url, tmp_path / "profile", artifacts)
            )
            nursery.cancel_scope.cancel()
    assert seen["targets"] >= TARGETS
    assert seen["points"] > 0  # a chart has a line
    assert seen["samples_later"] > seen["samples_first"]
    assert seen["chart_later"] != seen["chart_first"]  # the chart moved
    assert seen["live"] == "live"
    assert "line 2" in seen["reloads"]  # the refused reload's error, with its place
    assert seen["focused"] in TARGETS  # tab by tab, the keyboard reaches a target
    assert seen["first_focus"] == "Skip to targets"
    assert seen["paused"] == "true"
    assert seen["dark"] != seen["light"]
    assert seen["console"] == []
    assert (artifacts / "admin-ui.png").stat().st_size > 10_000


def look_at_the_page(url: str, profile: Path, artifacts: Path) -> dict[str, Any]:
    """What the browser shows, read in a worker thread (selenium blocks)."""
    seen: dict[str, Any] = {}
    with browser(profile) as driver:
        driver.get(f"{url}/admin/ui")
        wait = WebDriverWait(driver, PATIENCE)
        chart = 'article[data-target="sim-flaky:echo"] .chart svg'
        wait.until(lambda d: points(d, chart) > 0)
        seen["targets"] = {
            card.get_attribute("data-target")
            for card in driver.find_elements(By.CSS_SELECTOR, "article[data-target]")
        }
        seen["points"] = points(driver, chart)
        seen["samples_first"] = samples(driver)
        seen["chart_first"] = lines(driver, chart)
        wait.until(
            lambda d: (
                samples(d) >= seen["samples_first"] + 3 and lines(d, chart) != seen["chart_first"]
            )
        )
        seen["samples_later"] = samples(driver)
        seen["chart_later"] = lines(driver, chart)
        seen["live"] = driver.find_element(By.ID, "live").text
        seen["reloads"] = driver.find_element(By.ID, "reloads").text
        full_page_screenshot(driver, artifacts / "admin-ui.png")
        log: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
        seen["console"] = [entry for entry in log if entry["level"] in ("SEVERE", "WARNING")]
        seen.update(keyboard(driver))
        seen.update(colours(driver))
    return seen


def samples(driver: webdriver.Chrome) -> int:
    return int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-samples") or 0)


# The page redraws its charts each second: they are read in one script each, never
# through element references that a redraw makes stale.
LINES = "return [...document.querySelectorAll(arguments[0])].map((l) => l.getAttribute('points')).join(' | ')"
POINTS = (
    "const c = document.querySelector(arguments[0]); return c ? Number(c.dataset.points || 0) : 0"
)


def lines(driver: webdriver.Chrome, chart: str) -> str:
    return str(driver.execute_script(LINES, f"{chart} polyline"))


def points(driver: webdriver.Chrome, chart: str) -> int:
    return int(driver.execute_script(POINTS, chart))


def keyboard(driver: webdriver.Chrome) -> dict[str, Any]:
    """Tab from the top until a target has the focus; the pause button by keyboard."""
    found: dict[str, Any] = {"focused": None}
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    found["first_focus"] = driver.switch_to.active_element.text
    for _ in range(20):
        active = driver.switch_to.active_element
        if active.get_attribute("data-target"):
            found["focused"] = active.get_attribute("data-target")
            break
        active.send_keys(Keys.TAB)
    pause = driver.find_element(By.ID, "pause")
    pause.send_keys(Keys.SPACE)
    found["paused"] = pause.get_attribute("aria-pressed")
    return found


def colours(driver: webdriver.Chrome) -> dict[str, str]:
    """The page's background under the system's light and dark settings."""
    found = {}
    for scheme in ("light", "dark"):
        driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )
        found[scheme] = driver.execute_script(
            "return getComputedStyle(document.body).backgroundColor"
        )
    return found
