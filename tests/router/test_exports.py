"""The router package's public surface, pinned."""

from __future__ import annotations

import router


def test_public_names() -> None:
    public = {name for name in dir(router) if not name.startswith("_")}
    assert public == {
        "App",
        "Engine",
        "H11Pool",
        "H2Pool",
        "HttpxTransport",
        "RequestOptions",
        "RequestTrace",
        "RoutedRequest",
        "Runtime",
        "Transport",
        "UpstreamResponse",
        "hypercorn_config",
        # The subpackages, one per concern (docs/architecture.md).
        "http",
        "ops",
        "routing",
        "traffic",
        "upstream",
        "run_daemon",
    }
