"""``llm-router check`` output: the providers and the resolved routing tree.

Secrets appear as their references (``env:OPENAI_API_KEY``); values are never read.
"""

from ._graph import Balance, Fallback, Leaf, Node, RouteTable, Split
from ._providers import ProviderConfig
from ._schema import FALLBACK_ON
from ._secrets import SecretRef
from ._units import Percentile, format_duration

__all__ = ["render_tree"]


def render_tree(table: RouteTable) -> str:
    """Render providers, then one tree per route, in file order.

    Routes that name other routes are expanded in place, so each block shows every
    target the route can reach.
    """
    providers = ", ".join(
        f"{name} ({_describe_provider(p)})" for name, p in table.config.providers.items()
    )
    blocks = [f"providers: {providers or '(none)'}"]
    for node in table.routes.values():
        blocks.append("\n".join(_lines(node, table)))
    return "\n\n".join(blocks) + "\n"


def _describe_provider(provider: ProviderConfig) -> str:
    # Any kind's base URL and key (as their reference), where its class has them.
    parts = [provider.kind]
    base_url = getattr(provider, "base_url", None)
    if isinstance(base_url, str):
        parts.append(base_url)
    api_key = getattr(provider, "api_key", None)
    if isinstance(api_key, SecretRef):
        parts.append(f"api_key {api_key}")
    return ", ".join(parts)


def _lines(node: Node, table: RouteTable) -> list[str]:
    lines = [_label(node, table)]
    if isinstance(node, Leaf):
        return lines
    total = sum(node.weights) if isinstance(node, Balance | Split) else 0.0
    for index, child in enumerate(node.children):
        last = index == len(node.children) - 1
        child_lines = _lines(child, table)
        if isinstance(node, Split) or (isinstance(node, Balance) and node.strategy == "weighted"):
            child_lines[0] += f" ({node.weights[index] / total:.0%})"
        lines.append(("└── " if last else "├── ") + child_lines[0])
        lines.extend(("    " if last else "│   ") + line for line in child_lines[1:])
    return lines


def _label(node: Node, table: RouteTable) -> str:
    if isinstance(node, Leaf):
        return str(node.target)
    if isinstance(node, Fallback):
        on = ", ".join(c for c in FALLBACK_ON if c in node.on)
        head = f"{node.name}: fallback (on: {on})"
    elif isinstance(node, Balance):
        head = f"{node.name}: balance {node.strategy}"
    else:
        head = f"{node.name}: split"
        if node.sticky is not None:
            head += f", sticky {node.sticky}"
    details = []
    if not isinstance(node, Split) and node.hedge is not None:
        after = node.hedge.after
        shown = str(after) if isinstance(after, Percentile) else format_duration(after)
        details.append(f"hedge after {shown} max {node.hedge.max}")
    settings, defaults = node.settings, table.config.defaults
    if settings.timeout != defaults.timeout:
        details.append(f"timeout {format_duration(settings.timeout)}")
    if settings.first_token_timeout != defaults.first_token_timeout:
        details.append(f"first_token_timeout {format_duration(settings.first_token_timeout)}")
    if settings.stream_timeout != defaults.stream_timeout:
        details.append(f"stream_timeout {format_duration(settings.stream_timeout)}")
    if settings.retries != defaults.retries:
        details.append(f"retries {settings.retries}")
    if settings.cache is not None:
        details.append(f"cache ttl {format_duration(settings.cache.ttl)}")
    return ", ".join([head, *details])
