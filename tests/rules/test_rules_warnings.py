"""``check``'s warnings: timeouts a route can never reach because another comes first."""

import pytest

from adapters import provider_kinds
from rules import compile_routes, parse_config, timeout_warnings

HEAD = '[providers.p]\nkind = "simulated"\n'


def warnings(defaults: str, route: str = "") -> list[str]:
    toml = f'[defaults]\n{defaults}\n{HEAD}[routes.r]\nfallback = ["p:a", "p:b"]\n{route}\n'
    return timeout_warnings(compile_routes(parse_config(toml, kinds=provider_kinds())))


def test_the_defaults_warn_nothing() -> None:
    assert warnings("") == []


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        (
            'timeout = "10s"\nfirst_token_timeout = "10s"',
            "routes.r: first_token_timeout (10s) is not shorter than timeout (10s): a silent "
            "target takes the whole timeout and the next target is never tried",
        ),
        (
            'stream_timeout = "30s"',
            "routes.r: stall_timeout (30s) is not shorter than stream_timeout (30s): a "
            "stalled stream is never cut before its deadline",
        ),
        (
            'timeout = "20s"\nhedge = { after = "25s" }',
            "routes.r: hedge after 25s is not shorter than timeout (20s): the hedge never starts",
        ),
    ],
    ids=["first-token", "stall", "hedge"],
)
def test_a_route_whose_timeout_is_unreachable_is_warned(route: str, expected: str) -> None:
    assert warnings("", route) == [expected]


def test_each_problem_is_one_line() -> None:
    route = 'timeout = "5s"\nfirst_token_timeout = "6s"\nstream_timeout = "1s"\nhedge = { after = "5s" }'
    assert [w.split(":")[1].split()[0] for w in warnings("", route)] == [
        "first_token_timeout",
        "stall_timeout",
        "hedge",
    ]


def test_defaults_warn_once_not_again_for_every_route_that_inherits() -> None:
    got = warnings('timeout = "10s"\nfirst_token_timeout = "15s"')
    assert got == [
        "defaults: first_token_timeout (15s) is not shorter than timeout (10s): a silent "
        "target takes the whole timeout and the next target is never tried"
    ]
    # A route with its own values that still reach nothing is told.
    own = warnings('timeout = "10s"\nfirst_token_timeout = "15s"', 'timeout = "12s"')
    assert [w.split(":")[0] for w in own] == ["defaults", "routes.r"]


@pytest.mark.parametrize(
    "route",
    [
        'timeout = "10s"\nfirst_token_timeout = "9s"',
        'stream_timeout = "31s"',
        'timeout = "20s"\nhedge = { after = "19s" }',
        'timeout = "20s"\nhedge = { after = "p99" }',  # known only at run time
    ],
)
def test_a_timeout_that_can_still_fire_is_not_warned(route: str) -> None:
    assert warnings("", route) == []


def test_a_backoff_longer_than_the_timeout_is_not_warned() -> None:
    # Full jitter draws the wait from [0, initial]: a retry can still fit the deadline.
    backoff = (
        'timeout = "2s"\nfirst_token_timeout = "1s"\nbackoff = { initial = "5s", max = "10s" }'
    )
    assert warnings(backoff) == []
