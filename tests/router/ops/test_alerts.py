"""``deploy/alerts.yml``: valid Prometheus rules over metrics the daemon exports.

``promtool check rules`` judges the file when it is installed; the file is also parsed
here, its shape checked, and every metric name its expressions use is looked up in a
live ``/metrics`` scrape of a daemon (with a budget and a route, so that the scrape-time
gauges are there).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
import yaml

if TYPE_CHECKING:
    from tests.conftest import RouterFactory

ALERTS = Path(__file__).parents[3] / "deploy" / "alerts.yml"
NAME = re.compile(r"\bllm_router_[a-z0-9_]+\b")
#: Exported only while shared state is configured (``[shared]``), so absent here.
CONDITIONAL = {"llm_router_shared_state_up"}

CONFIG = """
[server]
access_log = false
watch = false

[providers.sim]
kind = "simulated"

[keys.team]
secret = "env:ALERTS_TEAM_KEY"
budget = { usd = 5, per = "month" }

[routes.chat]
fallback = ["sim:echo"]
"""


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    [group] = document["groups"]
    assert group["name"] == "llm-router"
    found: list[dict[str, Any]] = group["rules"]
    return found


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run(
        ["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_is_complete() -> None:
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names))
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")")
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"])
    covered = {
        "llm_router_circuit_state",
        "llm_router_route_available_targets",
        "llm_router_requests_total",
        "llm_router_budget_spent_usd",
        "llm_router_config_reloads_total",
        "llm_router_shared_state_up",
    }
    assert covered <= {name for rule in rules() for name in NAME.findall(rule["expr"])}


async def test_every_metric_an_alert_uses_is_exported(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTS_TEAM_KEY", "team-key-for-the-alerts-test")
    async with start_router(CONFIG) as url, httpx2.AsyncClient(trust_env=False) as client:
        scrape = (await client.get(f"{url}/metrics")).text
    exported = set(NAME.findall(scrape))
    assert 'llm_router_budget_limit_usd{key="team",period="month"} 5.0' in scrape
    assert 'llm_router_route_available_targets{route="chat"} 1.0' in scrape
    for rule in rules():
        used = set(NAME.findall(rule["expr"]))
        assert used, rule["alert"]
        missing = used - exported - CONDITIONAL
        assert not missing, f"{rule['alert']} uses {sorted(missing)}, not exported"
