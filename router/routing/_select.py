"""Smart selection: a route's ``when`` rules, checked before its own policy.

Each rule's condition (parsed at load, see ``rules._when``) is evaluated against facts
of the request; the first that holds picks the node that serves it, else the route's
own targets do. Facts are computed only when a condition asks for them, and once per
request: the complexity score reads the whole prompt, most rules never need it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from adapters import GatewayRequest
from rules import evaluate, load_plugin

from ..traffic._tokens import embedding_tokens, request_tokens
from ._complexity import complexity

if TYPE_CHECKING:
    from rules import Balance, Fallback, Node, Split, Value

    from ._request import RoutedRequest

__all__ = ["DEFAULT", "Facts", "Scorer", "choose", "label_for", "scorer", "selected"]

log = logging.getLogger("llm_router")

#: Scores a prompt's text from 0 to 1.
Scorer = Callable[[str], float]

#: The label of the route's own policy, when no rule held.
DEFAULT = "default"


def scorer(plugin: str | None) -> Scorer:
    """The complexity score: the built-in one, or ``[defaults] complexity``'s plugin
    (clamped to 0..1; one that fails is logged and the built-in score used instead)."""
    if plugin is None:
        return complexity
    function = load_plugin(plugin)  # checked when the config loaded

    def score(text: str) -> float:
        try:
            value = float(function(text))
        except Exception:
            log.exception("the complexity plugin %s failed; the built-in score is used", plugin)
            return complexity(text)
        return min(max(value, 0.0), 1.0)

    return score


class Facts:
    """What ``when`` conditions can ask of one request, each computed on first use."""

    def __init__(self, routed: RoutedRequest[Any], score: Scorer) -> None:
        self._routed = routed
        self._score = score
        self._known: dict[str, Value] = {}

    def __call__(self, name: str) -> Value:
        if name not in self._known:
            self._known[name] = self._compute(name)
        return self._known[name]

    def _compute(self, name: str) -> Value:
        routed = self._routed
        req = routed.request
        if name.startswith("header."):
            return routed.options.header(name[7:])
        if name == "key":
            return routed.trace.client
        if not isinstance(req, GatewayRequest):  # embeddings: their size and nothing else
            return float(embedding_tokens(req)) if name == "tokens" else _absent(name)
        if name == "tokens":
            return float(request_tokens(req, with_output=False))
        if name == "max_tokens":
            return None if req.max_tokens is None else float(req.max_tokens)
        if name == "has_tools":
            return req.needs_tools
        if name == "has_images":
            return req.needs_vision
        if name == "json":
            fmt = req.extra.get("response_format")
            return isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")
        assert name == "complexity"
        return self._score("\n".join(m.text() for m in req.messages))


def _absent(name: str) -> Value:
    return False if name in ("has_tools", "has_images", "json") else None


def choose(node: Fallback | Balance | Split, facts: Facts) -> tuple[Node, str]:
    """The node that serves the request and the label that explains it (``when[0]``,
    or ``default`` for the route's own policy)."""
    for choice in node.when:
        if evaluate(choice.condition, facts):
            return choice.node, choice.label
    return node, DEFAULT


def label_for(route: str, node: Fallback | Balance | Split, label: str) -> str:
    """``label`` as the ``x-router-rule`` header says it: a route below the requested
    one names itself (``big.when[1]``)."""
    return label if node.name == route else f"{node.name}.{label}"


def selected(node: Fallback | Balance | Split, routed: RoutedRequest[Any], score: Scorer) -> Node:
    """The node that serves ``routed`` by ``node``'s ``when`` rules; the outermost
    route's choice is noted on the trace (it explains the answer: ``x-router-rule``)."""
    chosen, label = choose(node, Facts(routed, score))
    trace = routed.trace
    if trace.rule is None:
        trace.rule = label_for(trace.route, node, label)
    return chosen
