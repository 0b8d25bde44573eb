"""``llm-router status`` as text: the overload, dynamic-target, usage and worker sections."""

from __future__ import annotations

from router.ops._status import render_status


def test_overload_and_dynamic_targets_are_shown() -> None:
    state = {
        "rules": {"digest": "abcdef0123456789", "loaded_at": "now", "routes": ["chat"]},
        "ready": True,
        "overload": {
            "in_flight": 3,
            "max_in_flight": 256,
            "loop_lag_ms": 1.5,
            "queue_delay_ms": 80.0,
            "overloaded": True,
            "overload_lag_ms": 100.0,
            "connections": 12,
            "max_connections": None,
            "refused": {"in_flight": 4, "lag": 0, "connections": 1},
        },
        "dynamic_targets": {
            "oa": {"kept": 2, "limit": 1000, "dropped": 5, "recent": {"oa:x": {}, "oa:y": {}}}
        },
    }
    text = render_status(state)
    assert (
        "load     connections 12, in flight 3/256, loop lag 1.5 ms, queue wait 80 ms"
        " (limit 100 ms), overloaded; refused: 4 in_flight, 1 connections"
    ) in text
    assert (
        "oa: 2 more target(s) asked for directly (kept up to 1000, 5 forgotten); recent: oa:x, oa:y"
        in text
    )


def test_nothing_refused_says_none() -> None:
    overload = {"in_flight": 0, "connections": 1, "refused": {"lag": 0}}
    assert "refused: none" in render_status({"overload": overload})


def test_the_usage_ledger_figures_are_shown() -> None:
    usage = {
        "path": "usage.db",
        "rows_dropped": 2,
        "today": {"requests": 4, "errors": 1, "cost_usd": 0.125},
        "last_24h": {"requests": 9, "errors": 0, "cost_usd": 1.5},
    }
    assert (
        "usage    today 4 requests (1 errors), $0.1250; last 24h 9 requests (0 errors),"
        " $1.5000; 2 rows dropped"
    ) in render_status({"usage": usage})
    assert "usage    slow" in render_status({"usage": {"error": "slow"}})
    assert "usage" not in render_status({})


def test_a_worker_says_which_it_is() -> None:
    state = {"worker": {"index": 2, "of": 4, "pid": 4242, "main_pid": 1}}
    assert "worker   2 of 4 (pid 4242)" in render_status(state)
    assert "worker " not in render_status({})


def test_shared_state_is_shown_with_its_reason() -> None:
    shared = {
        "url": "redis://10.0.0.5:6379/0",
        "state": "degraded",
        "since": "2026-12-03T16:00:00Z",
        "reason": "closed by the server",
    }
    assert (
        "shared   redis://10.0.0.5:6379/0: degraded since 2026-12-03T16:00:00Z"
        " (closed by the server)"
    ) in render_status({"shared_state": shared})
