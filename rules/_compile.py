"""Resolve route entries into a graph: names to routes, ``provider:model`` to leaves.

`check_references` finds every cross-table problem (unknown provider or route, cycles)
so the loader can report them with the schema's errors; `compile_routes` then builds
the node graph, which cannot fail on a config that passed the check.
"""

from collections.abc import Iterator

from ._errors import ConfigError, Path, format_path
from ._graph import (
    Balance,
    Choice,
    Fallback,
    Leaf,
    Node,
    RouteSettings,
    RouteTable,
    Split,
    Target,
    config_digest,
)
from ._names import model_problem
from ._scan import compile_hook
from ._schema import FALLBACK_ON, Config, Defaults, RouteConfig
from ._validate import compile_check

__all__ = ["check_references", "compile_routes"]


def _children(route: RouteConfig) -> Iterator[tuple[Path, str, float]]:
    """Yield ``(path under the route, entry, weight)`` for each child of a route."""
    if route.fallback is not None:
        for index, entry in enumerate(route.fallback):
            yield ("fallback", index), entry, 1.0
        return
    members = route.targets if route.targets is not None else route.split
    if isinstance(members, tuple):
        for index, entry in enumerate(members):
            yield ("targets", index), entry, 1.0
    elif members is not None:
        key = "targets" if route.targets is not None else "split"
        for entry, weight in members.items():
            yield (key, entry), entry, weight


def _uses(route: RouteConfig) -> Iterator[tuple[Path, str]]:
    """Yield ``(path under the route, entry)`` for the ``use`` of each ``when`` rule."""
    for index, rule in enumerate(route.when):
        yield ("when", index, "use"), rule.use


def _check_entry(config: Config, entry: str) -> str | None:
    """Return what is wrong with one route entry, or None."""
    if entry in config.routes:
        return None
    provider, colon, model = entry.partition(":")
    if not colon:
        return f"unknown route {_q(entry)}"
    if provider not in config.providers:
        return f"unknown provider {_q(provider)} in target {_q(entry)}"
    if not model:
        return f"target {_q(entry)} names no model"
    if (problem := model_problem(model)) is not None:
        return f"the model name of a target {problem}"
    listed = config.providers[provider].models
    if listed and model not in listed:
        return f"{_q(model)} is not in providers.{provider}.models"
    return None


def _q(text: str) -> str:
    return f'"{text}"'


def _find_cycles(config: Config) -> list[tuple[Path, str]]:
    """Report each route cycle once, at the route where the search met it first."""
    done: set[str] = set()
    found: list[tuple[Path, str]] = []

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            cycle = [*stack[stack.index(name) :], name]
            found.append((("routes", cycle[0]), "route cycle " + " -> ".join(cycle)))
            return
        if name in done:
            return
        stack.append(name)
        route = config.routes[name]
        entries = [e for _, e, _w in _children(route)] + [e for _, e in _uses(route)]
        for entry in entries:
            if entry in config.routes:
                visit(entry, stack)
        stack.pop()
        done.add(name)

    for name in config.routes:
        visit(name, [])
    return found


def check_references(config: Config) -> list[tuple[Path, str]]:
    """Find every problem that spans tables; empty when the config compiles.

    Returns:
        ``(path, message)`` pairs, in file order within each kind of problem.
    """
    errors: list[tuple[Path, str]] = []
    # The first colon separates provider from model, so neither name may contain one.
    for table in ("providers", "routes"):
        for name in getattr(config, table):
            if ":" in name:
                errors.append(
                    ((table, name), 'names cannot contain ":" (it separates provider from model)')
                )
    errors += _check_model_names(config)
    for name, route in config.routes.items():
        entries = [(w, e) for w, e, _ in _children(route)] + list(_uses(route))
        for where, entry in entries:
            problem = _check_entry(config, entry)
            if problem is not None:
                errors.append((("routes", name, *where), problem))
    errors += _check_hook_names(config)
    for name, key in config.keys.items():
        for index, route_name in enumerate(key.routes or ()):
            if route_name not in config.routes:
                errors.append((("keys", name, "routes", index), f"unknown route {_q(route_name)}"))
    for name in config.simulate.providers:
        if name not in config.providers:
            errors.append((("simulate", "providers", name), f"unknown provider {_q(name)}"))
    return errors + _find_cycles(config)


def _check_hook_names(config: Config) -> list[tuple[Path, str]]:
    """Every hook a route or ``[defaults]`` names is a ``[hooks.NAME]``."""
    named: list[tuple[Path, tuple[str, ...]]] = [(("defaults", "hooks"), config.defaults.hooks)]
    named += [(("routes", n, "hooks"), r.hooks) for n, r in config.routes.items() if r.hooks]
    return [
        ((*where, index), f"unknown hook {_q(hook)} (no [hooks.{hook}])")
        for where, hooks in named
        for index, hook in enumerate(hooks)
        if hook not in config.hooks
    ]


def _check_model_names(config: Config) -> list[tuple[Path, str]]:
    """Model names a provider block writes, and route names (what clients send as
    ``model``), against the rule of `model_problem`."""
    errors: list[tuple[Path, str]] = []
    for name in config.routes:
        if (problem := model_problem(name)) is not None:
            errors.append((("routes", name), f"a route name (a client's model) {problem}"))
    for name, provider in config.providers.items():
        fields: list[tuple[Path, str]] = [
            (("models", index), model) for index, model in enumerate(provider.models)
        ]
        fields += [(("model_limits", model), model) for model in provider.model_limits]
        # HTTP kinds only; rules does not know the kinds' classes.
        per_model = getattr(provider, "model_capabilities", {})
        fields += [(("model_capabilities", model), model) for model in per_model]
        for where, model in fields:
            if (problem := model_problem(model)) is not None:
                errors.append((("providers", name, *where), f"the model name {problem}"))
    return errors


def compile_routes(config: Config) -> RouteTable:
    """Compile a config's routes into a `RouteTable`.

    Raises:
        ConfigError: The config fails `check_references` (possible only for a
            `Config` built in code: `parse_config` already checked it).
    """
    errors = check_references(config)
    if errors:
        raise ConfigError(f"{format_path(path)}: {message}" for path, message in errors)
    defaults = config.defaults
    nodes: dict[str, Node] = {}
    hooks = {name: compile_hook(name, hook) for name, hook in config.hooks.items()}

    def build(name: str) -> Node:
        if name in nodes:  # a route named by several routes is built once and shared
            return nodes[name]
        route = config.routes[name]

        def resolve(entry: str) -> Node:
            if entry in config.routes:
                return build(entry)
            provider, _, model = entry.partition(":")
            return Leaf(Target(provider, model))

        children, weights = [], []
        for _, entry, weight in _children(route):
            children.append(resolve(entry))
            weights.append(float(weight))
        when = tuple(
            Choice(f"when[{i}]", rule.text, rule.condition, resolve(rule.use))
            for i, rule in enumerate(route.when)
        )
        settings = RouteSettings(
            timeout=route.timeout if route.timeout is not None else defaults.timeout,
            first_token_timeout=(
                route.first_token_timeout
                if route.first_token_timeout is not None
                else defaults.first_token_timeout
            ),
            retries=route.retries if route.retries is not None else defaults.retries,
            cache=route.cache,
            resume_max=resume_max(route, defaults),
            stream_timeout=(
                route.stream_timeout
                if route.stream_timeout is not None
                else defaults.stream_timeout
            ),
            batch=route.batch,
            hooks=tuple(
                hooks[h] for h in (route.hooks if route.hooks is not None else defaults.hooks)
            ),
            check=compile_check(route.validate) if route.validate is not None else None,
        )
        node: Node
        if route.fallback is not None:
            on = frozenset(route.on if route.on is not None else FALLBACK_ON)
            node = Fallback(name, tuple(children), on, route.hedge, settings, when)
        elif route.balance is not None:
            node = Balance(
                name, route.balance, tuple(children), tuple(weights), route.hedge, settings, when
            )
        else:
            node = Split(name, tuple(children), tuple(weights), route.sticky, settings, when)
        nodes[name] = node
        return node

    for name in config.routes:
        build(name)
    ordered = {name: nodes[name] for name in config.routes}
    return RouteTable(
        config=config,
        routes=ordered,
        digest=config_digest(config),
        default_hooks=tuple(hooks[h] for h in defaults.hooks),
    )


def resume_max(route: RouteConfig | None, defaults: Defaults) -> int:
    """Resumes a stream of ``route`` may have: 0 when resume is off."""
    resume = route.resume if route is not None and route.resume is not None else defaults.resume
    if resume == "off":
        return 0
    if route is not None and route.resume_max is not None:
        return route.resume_max
    return defaults.resume_max
