"""``llm-router check`` output: the providers and the resolved routing tree, and
warnings about timeouts that can never take effect.

Secrets appear as their references (``env:OPENAI_API_KEY``); values are never read.
"""

from ._connection import TLSConfig
from ._graph import Balance, Fallback, Leaf, Node, RouteSettings, RouteTable, Split
from ._providers import ProviderConfig
from ._schema import FALLBACK_ON
from ._secrets import SecretRef
from ._units import Percentile, format_duration

__all__ = ["render_tree", "timeout_warnings"]


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
    tls = getattr(provider, "tls", None)
    if isinstance(tls, TLSConfig):
        if tls.ca_file:
            parts.append(f"trusting {tls.ca_file}")
        if tls.cert_file:
            parts.append(f"client certificate {tls.cert_file}")
        if not tls.verify:
            parts.append("certificate NOT verified")
    proxy = getattr(provider, "proxy", None)
    if proxy is not None:
        parts.append(f"proxy {proxy}")  # a URL prints without its password
    return ", ".join(parts)


def _lines(node: Node, table: RouteTable) -> list[str]:
    lines = [_label(node, table)]
    if isinstance(node, Leaf):
        return lines
    total = sum(node.weights) if isinstance(node, Balance | Split) else 0.0
    # ``when`` rules first, as they are checked first: "when[0] if tokens > 8000 -> big".
    entries: list[tuple[str, Node, int | None]] = [
        (f"{c.label} if {c.text} -> ", c.node, None) for c in node.when
    ]
    entries += [("", child, index) for index, child in enumerate(node.children)]
    for number, (prefix, child, index) in enumerate(entries):
        last = number == len(entries) - 1
        child_lines = _lines(child, table)
        child_lines[0] = prefix + child_lines[0]
        weighted = isinstance(node, Split) or (
            isinstance(node, Balance) and node.strategy == "weighted"
        )
        if weighted and index is not None:
            assert isinstance(node, Balance | Split)
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
    if settings.hooks:
        details.append("hooks " + ", ".join(h.name for h in settings.hooks))
    validate = table.config.routes[node.name].validate
    if validate is not None:
        details.append(f"validate {validate.schema or 'json'}")
    if settings.batch is not None:
        wait = format_duration(settings.batch.wait)
        details.append(f"batch max {settings.batch.max} wait {wait}")
    return ", ".join([head, *details])


def timeout_warnings(table: RouteTable) -> list[str]:
    """One line per timeout a route can never reach, because another one always comes
    first. ``[defaults]`` is checked too (direct ``provider:model`` requests use it); a
    route is not told again what its inherited values already earned the defaults.

    Not warned: a ``backoff.initial`` past ``timeout``, since the jittered wait is drawn
    from ``[0, initial]`` and can still fit; a percentile hedge, known only at run time.
    """
    d = table.config.defaults
    settings = RouteSettings(
        d.timeout, d.first_token_timeout, d.retries, stream_timeout=d.stream_timeout
    )
    inherited = _unreachable(settings, d.stall_timeout, None)
    lines = [f"defaults: {problem}" for problem in inherited]
    for name, node in table.routes.items():
        if isinstance(node, Leaf):
            continue
        hedge = None if isinstance(node, Split) else node.hedge
        after = None if hedge is None or isinstance(hedge.after, Percentile) else hedge.after
        for problem in _unreachable(node.settings, d.stall_timeout, after):
            if problem not in inherited:
                lines.append(f"routes.{name}: {problem}")
    return lines


def _unreachable(s: RouteSettings, stall_timeout: float, hedge_after: float | None) -> list[str]:
    f = format_duration
    problems = []
    if s.first_token_timeout >= s.timeout:
        problems.append(
            f"first_token_timeout ({f(s.first_token_timeout)}) is not shorter than timeout "
            f"({f(s.timeout)}): a silent target takes the whole timeout and the next "
            "target is never tried"
        )
    if stall_timeout >= s.stream_timeout:
        problems.append(
            f"stall_timeout ({f(stall_timeout)}) is not shorter than stream_timeout "
            f"({f(s.stream_timeout)}): a stalled stream is never cut before its deadline"
        )
    if hedge_after is not None and hedge_after >= s.timeout:
        problems.append(
            f"hedge after {f(hedge_after)} is not shorter than timeout ({f(s.timeout)}): "
            "the hedge never starts"
        )
    return problems
