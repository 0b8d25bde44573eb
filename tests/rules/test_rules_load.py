"""Loading router.toml: every class of error `llm-router check` reports, and the happy path."""

from functools import partial
from pathlib import Path
from typing import Literal

import attrs
import pytest

from adapters import (
    OpenAICompatibleProvider,
    OpenAIProvider,
    SimulatedProvider,
    provider_kinds,
)
from rules import (
    ConfigError,
    HedgeConfig,
    Percentile,
    Price,
    ProviderConfig,
    ProviderLimits,
    RouteCacheConfig,
    SecretRef,
    load_config,
    parse_config,
)

# Every kind the registry knows (built in, and plugins): what the daemon parses with.
KINDS = provider_kinds()
parse = partial(parse_config, kinds=KINDS)
load = partial(load_config, kinds=KINDS)

HERE = Path(__file__).parent

# A valid provider and route, for tests that break something else.
BASE = """
[providers.sim]
kind = "simulated"

[routes.chat]
fallback = ["sim:echo"]
"""

KNOWN_KINDS = (
    "ai21, anthropic, azure, bedrock, cohere, deepseek, fireworks, gemini, groq, huggingface, "
    "mistral, ollama, openai, openai_compatible, openrouter, replicate, runpod, simulated, "
    "together, vllm"
)


def errors(text: str) -> list[str]:
    """The lines `check` would print for ``text``."""
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert str(info.value) == "\n".join(info.value.errors)
    return list(info.value.errors)


# --- the happy path ---------------------------------------------------------------------


def test_design_example_parses() -> None:
    config = load(HERE / "design_example.toml")
    assert config.server.listen == ("127.0.0.1:8080",)
    assert config.server.max_body == 4 * 1024 * 1024
    assert config.defaults.backoff.initial == pytest.approx(0.1)
    assert config.defaults.circuit.open_for == 30.0
    sim_fast = config.providers["sim-fast"]
    assert isinstance(sim_fast, SimulatedProvider)
    assert sim_fast.latency.median == pytest.approx(0.08)
    assert sim_fast.error_rate == 0.01
    openai = config.providers["openai"]
    assert isinstance(openai, OpenAIProvider)
    assert openai.api_key == SecretRef("env", "OPENAI_API_KEY")
    assert openai.limits == ProviderLimits(rpm=500, tpm=150_000)
    assert openai.pool.keepalive == 90.0
    assert config.routes["chat"].fallback == ("fastest", "openai:gpt-4o-mini")
    assert config.routes["fastest"].hedge == HedgeConfig(after=Percentile(0.9), max=1)
    assert config.routes["trial"].split == {"sim-fast:echo": 90.0, "sim-slow:echo": 10.0}
    assert config.routes["trial"].cache == RouteCacheConfig(ttl=600.0)
    assert config.cache.max_bytes == 64 * 1024 * 1024
    key = config.keys["team-a"]
    assert key.secret == SecretRef("env", "TEAM_A_KEY")
    assert key.budget is not None
    assert (key.budget.usd, key.budget.per) == (50.0, "month")


def test_prices_with_and_without_cache_rates() -> None:
    config = parse(
        BASE
        + '[prices]\n"a" = { input = 3, output = 15, cache_read = 0.3, cache_write = 3.75 }\n'
        + '"b" = { input = 1, output = 2 }\n'
    )
    assert config.prices["a"] == Price(3.0, 15.0, cache_read=0.3, cache_write=3.75)
    assert config.prices["b"] == Price(1.0, 2.0)
    assert (config.prices["b"].cache_read, config.prices["b"].cache_write) == (None, None)


def test_defaults_when_sections_are_absent() -> None:
    config = parse(BASE)
    assert config.server.listen == ("127.0.0.1:8080",)
    assert config.server.drain_timeout == 30.0
    assert config.defaults.timeout == 60.0
    assert config.defaults.retries == 2
    assert config.cache.max_bytes == 64 * 1024 * 1024
    assert config.keys == {}


def test_numbers_are_seconds_and_bytes() -> None:
    config = parse("[server]\nmax_body = 1000\n[defaults]\ntimeout = 1.5\n" + BASE)
    assert config.server.max_body == 1000
    assert config.defaults.timeout == 1.5


def test_listen_accepts_a_string_or_a_list() -> None:
    assert parse('[server]\nlisten = "fd:3"\n' + BASE).server.listen == ("fd:3",)
    listen = '[server]\nlisten = ["[::1]:8080", "0.0.0.0:80"]\n'
    assert parse(listen + BASE).server.listen == ("[::1]:8080", "0.0.0.0:80")


def test_openai_base_url_loses_trailing_slash() -> None:
    config = parse(
        '[providers.local]\nkind = "openai_compatible"\nbase_url = "http://127.0.0.1:8000/v1/"\n'
        + BASE
    )
    local = config.providers["local"]
    assert isinstance(local, OpenAICompatibleProvider)
    assert isinstance(local, OpenAIProvider)  # adapters for openai serve both kinds
    assert local.base_url == "http://127.0.0.1:8000/v1"


def test_hedge_after_duration() -> None:
    text = BASE + 'hedge = { after = "250ms", max = 2 }\n'
    assert parse(text).routes["chat"].hedge == HedgeConfig(after=0.25, max=2)


# --- syntax and file errors -------------------------------------------------------------


def test_syntax_error_names_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse('[server]\nmax_body = "4MiB"\nlisten = [\n[routes]\n', source="my.toml")
    (line,) = info.value.errors
    assert line.startswith("my.toml: line 4, column ")
    assert " at line " not in line


def test_duplicate_key_is_a_syntax_error() -> None:
    assert errors(BASE + 'fallback = ["sim:x"]\n')[0].startswith("router.toml: line 7")


def test_load_config_reports_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "router.toml"
    with pytest.raises(ConfigError, match=rf"^{path}: cannot read: No such file"):
        load(path)


def test_load_config_names_file_in_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "router.toml"
    path.write_text("x = \n")
    with pytest.raises(ConfigError, match=rf"^{path}: line 1, column \d+: "):
        load(str(path))


def test_load_config_rejects_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "router.toml"
    path.write_bytes(b"x = '\xff'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(path)


# --- schema errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "routes: at least one route is required"),
        ("[routes]\n", "routes: at least one route is required"),
        ('[server]\nlisten = "127.0.0.1:1"\n', "routes: at least one route is required"),
        (BASE.replace("fallback", "fallbak"), "routes.chat.fallbak: unknown key"),
        (BASE + "[server]\nport = 1\n", "server.port: unknown key"),
        (BASE + "[routez.x]\n", "routez: unknown key"),
        (
            BASE + 'hedge = { after = "p9x" }\n',
            'routes.chat.hedge.after: "p9x" is not a duration or percentile',
        ),
        (
            BASE + 'hedge = { after = "p100" }\n',
            'routes.chat.hedge.after: "p100" is not a duration or percentile',
        ),
        (
            "[server]\nmax_body = 12.5\n" + BASE,
            'server.max_body: expected a size like "4MiB", got 12.5',
        ),
        (
            '[server]\nmax_body = "4MB"\n' + BASE,
            'server.max_body: "4MB" is not a size (use B, KiB, MiB or GiB)',
        ),
        (
            '[defaults]\ntimeout = "soon"\n' + BASE,
            'defaults.timeout: "soon" is not a duration',
        ),
        (
            "[defaults]\ntimeout = true\n" + BASE,
            'defaults.timeout: expected a duration like "30s", got true',
        ),
        ('[defaults]\nretries = "2"\n' + BASE, 'defaults.retries: expected an integer, got "2"'),
        ("[defaults]\nretries = -1\n" + BASE, "defaults.retries: must be at least 0, got -1"),
        (
            BASE + 'timeout = "0s"\n',
            "routes.chat.timeout: must be greater than 0, got 0",
        ),
        (
            '[providers.x]\nkind = "foo"\n' + BASE,
            f'providers.x.kind: unknown provider kind "foo" (known: {KNOWN_KINDS})',
        ),
        (
            '[providers.x]\nbase_url = "http://h"\n' + BASE,
            f"providers.x.kind: required key missing (known kinds: {KNOWN_KINDS})",
        ),
        (
            '[providers.x]\nkind = "openai_compatible"\n' + BASE,
            "providers.x.base_url: required key missing",
        ),
        (
            '[providers.x]\nkind = "openai"\nbase_url = "api.example.com"\n' + BASE,
            "providers.x.base_url: must start with http:// or https://",
        ),
        (
            '[providers.x]\nkind = "openai"\norganization = 5\n' + BASE,
            "providers.x.organization: expected a string, got 5",
        ),
        (
            '[providers.x]\nkind = "openai"\nheaders = { x-team = 5 }\n' + BASE,
            "providers.x.headers.x-team: expected a string, got 5",
        ),
        (
            '[providers.x]\nkind = "openai"\npool = { transport = "h2" }\n' + BASE,
            'providers.x.pool.transport: unknown value "h2" (allowed: h11, httpx)',
        ),
        (
            '[providers.x]\nkind = "simulated"\nerror_rate = 1.5\n' + BASE,
            "providers.x.error_rate: must be between 0 and 1, got 1.5",
        ),
        (
            '[providers.x]\nkind = "simulated"\nlatency = { median = "1s", p99 = "10ms" }\n' + BASE,
            "providers.x.latency.p99: must not be less than median",
        ),
        (
            '[providers.x]\nkind = "simulated"\nlatency = "80ms"\n' + BASE,
            "providers.x.latency: expected a table, got a string",
        ),
        (
            '[server]\nlisten = ["localhost"]\n' + BASE,
            'server.listen[0]: "localhost" is not HOST:PORT, [IPv6]:PORT or fd:N',
        ),
        (
            '[server]\nlisten = "fd:x"\n' + BASE,
            'server.listen: "fd:x" is not fd:N (an inherited file descriptor)',
        ),
        (
            BASE.replace('["sim:echo"]', '"sim:echo"'),
            "routes.chat.fallback: expected a list, got a string",
        ),
        (
            BASE.replace('["sim:echo"]', "[]"),
            "routes.chat.fallback: must not be empty",
        ),
        (
            BASE + 'balance = "latency"\n',
            "routes.chat: a route needs exactly one of fallback, balance or split",
        ),
        (
            BASE.replace('fallback = ["sim:echo"]', "retries = 1"),
            "routes.chat: a route needs exactly one of fallback, balance or split",
        ),
        (
            BASE.replace('fallback = ["sim:echo"]', 'balance = "latency"'),
            "routes.chat.targets: balance needs targets",
        ),
        (
            BASE.replace('fallback = ["sim:echo"]', 'balance = "fast"\ntargets = ["sim:a"]'),
            'routes.chat.balance: unknown value "fast" (allowed: round_robin, weighted, latency,'
            " least_connections, cheapest)",
        ),
        (
            BASE.replace('fallback = ["sim:echo"]', 'balance = "weighted"\ntargets = []'),
            "routes.chat.targets: must not be empty",
        ),
        (
            BASE.replace(
                'fallback = ["sim:echo"]', 'balance = "weighted"\ntargets = { "sim:a" = 0 }'
            ),
            'routes.chat.targets."sim:a": weight must be greater than 0, got 0',
        ),
        (
            BASE.replace('fallback = ["sim:echo"]', 'split = { "sim:a" = 1, "sim:b" = -2 }'),
            'routes.chat.split."sim:b": weight must be greater than 0, got -2',
        ),
        (
            BASE.replace('fallback = ["sim:echo"]', "split = {}"),
            "routes.chat.split: must not be empty",
        ),
        (
            BASE.replace(
                'fallback = ["sim:echo"]', 'balance = "latency"\ntargets = { "sim:a" = 1 }'
            ),
            'routes.chat.targets: a table of weights needs balance = "weighted"',
        ),
        (
            BASE + 'sticky = "header:x-user"\n',
            "routes.chat.sticky: sticky goes with split",
        ),
        (
            BASE.replace('fallback = ["sim:echo"]', 'split = { "sim:a" = 1 }\nsticky = "user"'),
            'routes.chat.sticky: must be "key" or "header:NAME", got "user"',
        ),
        (
            BASE + 'on = ["timeout", "timeot"]\n',
            'routes.chat.on[1]: unknown value "timeot" (allowed: timeout, network, server_error,'
            " rate_limited, overloaded, context_length)",
        ),
        (BASE + "on = []\n", "routes.chat.on: must not be empty"),
        (BASE + "cache = {}\n", "routes.chat.cache.ttl: required key missing"),
        (
            BASE + '[keys.a]\nsecret = "env:A"\nbudget = { usd = 5, per = "week" }\n',
            'keys.a.budget.per: unknown value "week" (allowed: day, month)',
        ),
        (
            BASE + '[prices]\n"m" = { input = 1, output = 2, cache_read = -0.1 }\n',
            "prices.m.cache_read: must be at least 0, got -0.1",
        ),
        (
            BASE + '[prices]\n"m" = { input = 1, output = 2, cache_reads = 0.1 }\n',
            "prices.m.cache_reads: unknown key",
        ),
    ],
)
def test_schema_error(text: str, expected: str) -> None:
    assert errors(text) == [expected]


def test_multiple_policy_problems_reported_together() -> None:
    text = BASE + 'on = ["timeout"]\n'
    text = text.replace('fallback = ["sim:echo"]', 'split = { "sim:a" = 1 }\nhedge = {after = 1}')
    assert errors(text) == [
        "routes.chat.hedge: hedge goes with fallback or balance",
        "routes.chat.on: on goes with fallback",
    ]


# --- secrets in the file ------------------------------------------------------------------

LITERAL = "sk-proj-abcdef0123456789"
NOT_A_REF = "must be a secret reference (env:NAME, file:PATH, cred:NAME, aws-sm:NAME[#key] or vault:PATH#key), not a literal key"


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (f'[providers.x]\nkind = "openai"\napi_key = "{LITERAL}"\n', "providers.x.api_key"),
        (f'[server]\napi_keys = ["env:OK", "{LITERAL}"]\n', "server.api_keys[1]"),
        (f'[server]\nadmin_key = "{LITERAL}"\n', "server.admin_key"),
        (f'[keys.team]\nsecret = "{LITERAL}"\n', "keys.team.secret"),
    ],
)
def test_literal_secret_rejected_and_not_echoed(text: str, path: str) -> None:
    lines = errors(text + BASE)
    assert lines == [f"{path}: {NOT_A_REF}"]


def test_secret_of_wrong_type_not_echoed() -> None:
    lines = errors('[providers.x]\nkind = "openai"\napi_key = 123456789\n' + BASE)
    assert lines == [
        "providers.x.api_key: must be a secret reference (env:NAME, file:PATH, cred:NAME, aws-sm:NAME[#key] or vault:PATH#key),"
        " not an integer"
    ]


def test_table_written_as_string_not_echoed() -> None:
    assert errors(f'[keys]\nteam = "{LITERAL}"\n' + BASE) == [
        "keys.team: expected a table, got a string"
    ]


def test_secret_references_parse() -> None:
    config = parse(
        '[server]\napi_keys = ["env:A", "file:/run/key", "cred:router"]\nadmin_key = "cred:admin"\n'
        + BASE
    )
    assert [str(k) for k in config.server.api_keys] == ["env:A", "file:/run/key", "cred:router"]
    assert config.server.admin_key == SecretRef("cred", "admin")


# --- cross-reference errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        (
            '[routes.chat]\nfallback = ["sim:echo", "opnai:gpt-4o"]\n',
            ['routes.chat.fallback[1]: unknown provider "opnai" in target "opnai:gpt-4o"'],
        ),
        (
            '[routes.chat]\nfallback = ["fastest"]\n',
            ['routes.chat.fallback[0]: unknown route "fastest"'],
        ),
        (
            '[routes.chat]\nfallback = ["sim:"]\n',
            ['routes.chat.fallback[0]: target "sim:" names no model'],
        ),
        (
            '[routes.chat]\nsplit = { "nope:m" = 1 }\n',
            ['routes.chat.split."nope:m": unknown provider "nope" in target "nope:m"'],
        ),
        (
            '[routes.chat]\nbalance = "round_robin"\ntargets = ["sim:a", "x"]\n',
            ['routes.chat.targets[1]: unknown route "x"'],
        ),
        (
            '[routes.a]\nfallback = ["b"]\n[routes.b]\nfallback = ["a"]\n',
            ["routes.a: route cycle a -> b -> a"],
        ),
        ('[routes.a]\nfallback = ["sim:x", "a"]\n', ["routes.a: route cycle a -> a"]),
        (
            '[routes.a]\nfallback = ["sim:x"]\n[keys.k]\nsecret = "env:K"\nroutes = ["a", "b"]\n',
            ['keys.k.routes[1]: unknown route "b"'],
        ),
        (
            '[routes."a:b"]\nfallback = ["sim:x"]\n',
            ['routes."a:b": names cannot contain ":" (it separates provider from model)'],
        ),
    ],
)
def test_reference_error(routes: str, expected: list[str]) -> None:
    assert errors('[providers.sim]\nkind = "simulated"\n' + routes) == expected


def test_cycle_through_three_routes() -> None:
    text = """
[providers.sim]
kind = "simulated"
[routes.entry]
fallback = ["a"]
[routes.a]
balance = "round_robin"
targets = ["b", "sim:x"]
[routes.b]
split = { c = 1 }
[routes.c]
fallback = ["a"]
"""
    assert errors(text) == ["routes.a: route cycle a -> b -> c -> a"]


# --- many errors at once ----------------------------------------------------------------


def test_all_errors_reported_in_file_order() -> None:
    text = f"""
[server]
listen = "localhost"
max_body = 12.5

[providers.openai]
kind = "openai"
api_key = "{LITERAL}"
base_url = "ftp://example.com"

[providers.weird]
kind = "foo"

[routes.chat]
fallbak = ["a"]
fallback = []
retries = "2"

[routes.fastest]
balance = "latency"
targets = ["sim-fast:echo"]
hedge = {{ after = "p9x" }}
"""
    lines = errors(text)
    assert lines == [
        'server.listen: "localhost" is not HOST:PORT, [IPv6]:PORT or fd:N',
        'server.max_body: expected a size like "4MiB", got 12.5',
        f"providers.openai.api_key: {NOT_A_REF}",
        "providers.openai.base_url: must start with http:// or https://",
        f'providers.weird.kind: unknown provider kind "foo" (known: {KNOWN_KINDS})',
        "routes.chat.fallbak: unknown key",
        "routes.chat.fallback: must not be empty",
        'routes.chat.retries: expected an integer, got "2"',
        'routes.fastest.hedge.after: "p9x" is not a duration or percentile',
    ]
    assert all(LITERAL not in line for line in lines)


def test_missing_routes_reported_with_other_errors() -> None:
    assert errors("[server]\nlisten = 5\n") == [
        'server.listen: expected "HOST:PORT" or a list of them, got an integer',
        "routes: at least one route is required",
    ]


def test_reference_errors_reported_together() -> None:
    text = """
[providers.sim]
kind = "simulated"
[routes.chat]
fallback = ["nope", "opnai:gpt-4o"]
[routes.loop]
fallback = ["loop"]
"""
    assert errors(text) == [
        'routes.chat.fallback[0]: unknown route "nope"',
        'routes.chat.fallback[1]: unknown provider "opnai" in target "opnai:gpt-4o"',
        "routes.loop: route cycle loop -> loop",
    ]


def test_provider_kinds_are_the_callers() -> None:
    @attrs.frozen(kw_only=True)
    class EchoProvider(ProviderConfig):
        kind: Literal["echo"] = "echo"
        prefix: str = ""

    kinds = {**KINDS, "echo": EchoProvider}
    config = parse_config('[providers.e]\nkind = "echo"\nprefix = ">"\n' + BASE, kinds=kinds)
    assert config.providers["e"] == EchoProvider(prefix=">")
    with pytest.raises(ConfigError) as info:
        parse_config('[providers.e]\nkind = "echo"\nprefx = ">"\n' + BASE, kinds=kinds)
    assert info.value.errors == ("providers.e.prefx: unknown key",)
    # Kinds not handed in are unknown, whatever classes exist.
    assert errors('[providers.e]\nkind = "echo"\n' + BASE) == [
        f'providers.e.kind: unknown provider kind "echo" (known: {KNOWN_KINDS})'
    ]
    with pytest.raises(ConfigError) as info:
        parse_config(BASE, kinds={})
    assert info.value.errors == ('providers.sim.kind: unknown provider kind "simulated" (known: )',)
