"""The operator's view: readiness and ``/admin/status``.

Admin endpoints answer a client on loopback, or one that presents the admin key
(``server.admin_key``) as ``Authorization: Bearer`` (any case of ``Bearer``, as for
client keys) or ``x-admin-key``; anyone else gets 403, so a daemon listening beyond
loopback does not expose its state. Keys are compared by their SHA-256 digests, so the
time taken says nothing of the key's length either.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from ..routing._runtime import Runtime

__all__ = ["is_admin", "is_ready", "status"]


def is_admin(scope: dict[str, Any], admin_key: str | None) -> bool:
    """Loopback, or the admin key compared in constant time."""
    client = scope.get("client")
    if client:
        try:
            if ipaddress.ip_address(client[0]).is_loopback:
                return True
        except ValueError:
            pass  # a unix socket path, say: not loopback by address
    if admin_key is None:
        return False
    expected = hashlib.sha256(admin_key.encode()).digest()
    allowed = False
    for name, value in scope["headers"]:
        if name in (b"authorization", b"x-admin-key"):
            presented = value.strip()
            scheme, _, token = presented.partition(b" ")
            if scheme.lower() == b"bearer":
                presented = token.strip()
            digest = hashlib.sha256(presented).digest()
            allowed |= hmac.compare_digest(digest, expected)  # every header: no early out
    return allowed


def is_ready(runtime: Runtime) -> bool:
    """Rules loaded and at least one of their targets not behind an open circuit."""
    now = trio.current_time()
    registry = runtime.engine.registry
    targets = [str(t) for t in runtime.table.targets()]
    return not targets or any(registry.get(t).breaker.state(now) != "open" for t in targets)


def status(runtime: Runtime) -> dict[str, Any]:
    """Everything an operator asks first: which rules, since when, each target's state."""
    now = trio.current_time()
    engine = runtime.engine
    targets = {str(t) for t in runtime.table.targets()}
    registry = engine.registry
    kept = registry.snapshot(now)
    return {
        "rules": {
            "digest": runtime.table.digest,
            "loaded_at": _iso(runtime.loaded_at),
            "routes": list(runtime.table.route_names()),
        },
        "ready": is_ready(runtime),
        "hedge_budget": engine.budget.snapshot(),
        # Targets of the rules in force first, with routes balanced as a whole after.
        "targets": {
            name: registry.get(name).snapshot(now) for name in sorted(targets) if name in registry
        },
        "routes": {name: state for name, state in kept.items() if name not in targets},
        # provider:model names no route has, that clients asked for: bounded per provider
        "dynamic_targets": registry.dynamic_snapshot(now),
    }


def _iso(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))
