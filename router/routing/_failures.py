"""Which failures a routing node moves on from, and what a node whose every candidate
failed reports. Pure rules, shared by every node kind."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters import (
    AllTargetsFailed,
    GatewayError,
    NoHealthyTarget,
    UnsupportedCapability,
    UnsupportedParameter,
)

from ._validation import InvalidResponse

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["DEFAULT_ON", "Unsupported", "combine", "falls_back"]

#: Failures a balance node moves on from (fallback nodes carry their own set).
DEFAULT_ON = frozenset(
    {"timeout", "network", "server_error", "rate_limited", "overloaded", "context_length"}
)


#: A target that cannot take the request as asked (a capability, or a parameter its
#: adapter refuses rather than drop): another target may.
Unsupported = UnsupportedCapability | UnsupportedParameter


def falls_back(exc: GatewayError, on: frozenset[str]) -> bool:
    """Whether ``exc`` lets a node move on to its next candidate."""
    if isinstance(exc, AllTargetsFailed | NoHealthyTarget | Unsupported | InvalidResponse):
        return True  # another target may be healthy, able to take it, or answer validly
    return exc.fallback_reason is not None and exc.fallback_reason in on


def combine(errors: Sequence[GatewayError]) -> GatewayError:
    """The error for a node whose every candidate failed."""
    flat: list[GatewayError] = []
    for e in errors:
        flat.extend(e.attempts if isinstance(e, AllTargetsFailed) else (e,))
    if flat and all(isinstance(e, Unsupported) for e in flat):
        reasons = "; ".join(e.message for e in flat)
        # One kind of refusal of one parameter keeps its code and names the parameter.
        kinds, params = {type(e) for e in flat}, {e.param for e in flat}
        cls = kinds.pop() if len(kinds) == 1 else UnsupportedCapability
        param = params.pop() if len(params) == 1 else None
        return cls(f"no target can take this request: {reasons}", param=param)
    if len(flat) > 1 and all(isinstance(e, InvalidResponse) for e in flat):
        reasons = "; ".join(f"{e.upstream}: {e.message}" for e in flat)
        return InvalidResponse(f"no target gave a valid answer: {reasons}")
    if flat and all(isinstance(e, NoHealthyTarget) for e in flat):
        names = ", ".join(e.upstream or "?" for e in flat)
        # ``upstream`` names them all, so a route naming this one can list them too.
        return NoHealthyTarget(
            f"no healthy target: every circuit is open ({names})", upstream=names
        )
    if len(flat) == 1:
        return flat[0]
    return AllTargetsFailed(tuple(flat))
