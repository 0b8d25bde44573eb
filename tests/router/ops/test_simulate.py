"""``llm-router simulate``: the real engine on trio's MockClock, against simulated
providers. Each run takes virtual minutes; none of them waits in real time."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import pytest

from adapters import provider_kinds
from router.ops._cli import main
from router.ops._simulate import simulate
from router.ops._simulate_report import figures
from router.ops._traffic_spec import TrafficSpec, parse_traffic
from rules import Config, ConfigError, parse_config

if TYPE_CHECKING:
    from pathlib import Path

TAIL = """
[providers.a]
kind = "simulated"
latency = { median = "60ms", p99 = "3s" }
tokens_per_second = 1000

[providers.b]
kind = "simulated"
latency = { median = "60ms", p99 = "3s" }
tokens_per_second = 1000

[prices]
"a:echo" = { input = 1.0, output = 2.0 }
"b:echo" = { input = 1.0, output = 2.0 }

[routes.chat]
fallback = ["a:echo", "b:echo"]
"""
HEDGED = TAIL + 'hedge = { after = "p90", max = 1 }\n'

FLAKY = """
[defaults]
retries = 0
circuit = { failures = 1000, successes = 1, open_for = "1s" }  # never open: every try counts

[providers.flaky]
kind = "simulated"
latency = { median = "40ms", p99 = "200ms" }
error_rate = 0.3

[providers.steady]
kind = "simulated"
latency = { median = "150ms", p99 = "600ms" }

[routes.chat]
fallback = ["flaky:echo", "steady:echo"]

[routes.alone]
fallback = ["flaky:echo"]
"""

TRAFFIC = parse_traffic("rate=10/s,stream=0.5,prompt=20")


def config(text: str) -> Config:
    return parse_config(text, kinds=provider_kinds())


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_same_seed_same_numbers_and_another_seed_others() -> None:
    first = simulate(config(FLAKY), TRAFFIC, 30, seed=7)
    again = simulate(config(FLAKY), TRAFFIC, 30, seed=7)
    other = simulate(config(FLAKY), TRAFFIC, 30, seed=8)
    assert first == again
    assert len(first) > 200
    assert figures(first) == figures(again)
    assert figures(first) != figures(other)


def test_hedging_takes_hedges_and_cuts_the_tail() -> None:
    plain = figures(simulate(config(TAIL), TRAFFIC, 150, seed=1))["chat"]
    hedged = figures(simulate(config(HEDGED), TRAFFIC, 150, seed=1))["chat"]
    assert plain.hedges == 0
    assert hedged.hedges > 0
    assert plain.latency is not None
    assert hedged.latency is not None
    assert hedged.latency[2] < plain.latency[2] * 0.8  # p99
    assert hedged.attempts > plain.attempts


def test_a_failing_provider_with_a_fallback_takes_more_attempts() -> None:
    result = figures(simulate(config(FLAKY), TRAFFIC, 60, seed=3))
    chat, alone = result["chat"], result["alone"]
    assert chat.attempts > 1.2  # about 0.3 of the requests need a second attempt
    assert chat.errors < 0.01  # and the fallback answers them
    assert alone.attempts == 1.0
    assert 0.2 < alone.errors < 0.4
    assert alone.cost_per_1k is None  # no prices for these targets


def test_cost_per_thousand_requests_from_prices() -> None:
    chat = figures(simulate(config(TAIL), parse_traffic("rate=5/s,prompt=10"), 60, seed=1))
    # 10 words in, 10 out: (10 * 1 + 10 * 2) / 1e6 dollars a request.
    assert chat["chat"].cost_per_1k == pytest.approx(1000 * 30 / 1e6)


def test_bursts_and_the_chosen_routes() -> None:
    spec = parse_traffic("rate=1/s,burst=100@30s,routes=alone")
    samples = simulate(config(FLAKY), spec, 60, seed=1)
    assert {s.route for s in samples} == {"alone"}
    assert 200 + 30 < len(samples) < 200 + 100  # two bursts, Poisson arrivals besides


def test_streams_report_a_time_to_first_token_below_the_latency() -> None:
    slow_stream = FLAKY.replace("error_rate = 0.3", "error_rate = 0.0\ntokens_per_second = 20")
    spec = parse_traffic("rate=10/s,stream=1,prompt=40,routes=alone")
    alone = figures(simulate(config(slow_stream), spec, 60, seed=1))["alone"]
    assert alone.ttft is not None
    assert alone.latency is not None
    assert alone.latency[0] > alone.ttft[0] + 1.5  # 40 tokens at 20 a second after the first


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", TrafficSpec()),
        ("rate=120/m", TrafficSpec(rate=2.0)),
        (
            "rate=50/s,burst=200,stream=0.3,prompt=500",
            TrafficSpec(rate=50.0, burst=200, stream=0.3, prompt=(500, 500)),
        ),
        ("burst=5@10s,prompt=10-20", TrafficSpec(burst=5, burst_every=10.0, prompt=(10, 20))),
        ("max_tokens=8,routes=a+b", TrafficSpec(max_tokens=8, routes=("a", "b"))),
    ],
)
def test_traffic_syntax(text: str, expected: TrafficSpec) -> None:
    assert parse_traffic(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rate=5", "rate: give it as N/s"),
        ("stream=2", "stream: must be between 0 and 1"),
        ("prompt=9-3", "prompt: need 0 < A <= B"),
        ("speed=3", "speed: unknown key"),
        ("rate", "is not key=value"),
    ],
)
def test_bad_traffic_is_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_traffic(text)


def test_cli_table_compare_plot_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain, hedged = write(tmp_path, "plain.toml", TAIL), write(tmp_path, "hedged.toml", HEDGED)
    svg = tmp_path / "cdf.svg"
    args = ["simulate", "--config", plain, "--traffic", "rate=10/s", "--duration", "2m"]
    assert main([*args, "--compare", hedged, "--plot", str(svg)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("simulated 2m of rate=10/s")
    header = out[1].split()
    assert header[:4] == ["route", "config", "requests", "errors"]
    assert "hedges" in header
    assert "attempts" in header
    assert "$/1k" in header
    assert out[2].split()[:2] == ["chat", "plain.toml"]
    assert out[3].split()[0] == "hedged.toml"
    root = ET.parse(svg).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 2
    assert lines[1].get("stroke-dasharray")  # the compared config's line is dashed

    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["seed"] == 1
    assert data["duration"] == 120.0
    chat = data["configs"][0]["routes"]["chat"]
    assert set(chat["latency"]) == {"p50", "p95", "p99"}
    assert chat["requests"] > 0
    assert chat["ttft"] is None


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "r.toml", TAIL)
    assert main(["simulate", "--config", path, "--traffic", "rate=oops"]) == 1
    assert capsys.readouterr().err.startswith("simulate: traffic: rate:")
    assert main(["simulate", "--config", path, "--traffic", "routes=nope"]) == 1
    assert "'nope' is not a route" in capsys.readouterr().err
    assert main(["simulate", "--config", str(tmp_path / "missing.toml")]) == 1
    assert "cannot read" in capsys.readouterr().err


REAL = """
[providers.up]
kind = "openai"
api_key = "env:SIMULATE_TEST_UNSET_KEY"
limits = { rpm = 60 }

[routes.chat]
fallback = ["up:gpt-4o"]
"""


def test_a_real_provider_is_played_by_its_simulate_profile() -> None:
    spec = parse_traffic("rate=0.5/s,prompt=10")
    default = figures(simulate(config(REAL), spec, 600, seed=1))["chat"]
    assert default.errors == 0.0  # the default profile never fails
    assert default.latency is not None
    assert default.latency[0] < 0.3  # 80 ms to the first token, 10 tokens at 200/s
    measured = (
        REAL
        + """
[defaults]
retries = 0
circuit = { failures = 1000, successes = 1, open_for = "1s" }

[simulate.providers.up]
latency = { median = "2s", p99 = "5s" }
error_rate = 0.5
"""
    )
    played = figures(simulate(config(measured), spec, 600, seed=1))["chat"]
    assert 0.35 < played.errors < 0.65
    assert played.latency is not None
    assert played.latency[0] > 1.5


def test_rate_limits_of_a_real_provider_are_kept() -> None:
    spec = parse_traffic("rate=5/s,prompt=10")  # 300 a minute against rpm = 60
    chat = figures(simulate(config(REAL), spec, 120, seed=1))["chat"]
    assert chat.errors > 0.5


def test_a_profile_must_name_a_provider() -> None:
    with pytest.raises(ConfigError, match=r'simulate\.providers\.nope: unknown provider "nope"'):
        config(REAL + "[simulate.providers.nope]\nerror_rate = 0.1\n")
