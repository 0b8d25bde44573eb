"""A third-party provider kind, installed as a package is: a module and a ``*.dist-info``
whose ``entry_points.txt`` names its spec in the ``llm_router.adapters`` group.

The plugin brings its own kind and config class; the daemon serves a route through it
(the official OpenAI SDK as client, a fake OpenAI-style host behind), and ``llm-router
check`` accepts its config, and reads it with the plugin's class.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx2
import pytest

import adapters._registry
from tests.conftest import RouterFactory, openai_client

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.fakes.openai_upstream import FakeOpenAI

ROOT = Path(__file__).parents[3]

PLUGIN = '''
"""An OpenAI-style host that wants a team header and prefixed model names."""

from typing import Literal

import attrs

from adapters import GatewayRequest, OpenAIAdapter, ProviderSpec, UpstreamRequest
from rules import HTTPProvider, SecretRef, url_field


@attrs.frozen(kw_only=True)
class TeamHostProvider(HTTPProvider):
    kind: Literal["teamhost"] = "teamhost"
    base_url: str = url_field()
    token: SecretRef | None = None
    team: str
    model_prefix: str = ""


class TeamHostAdapter(OpenAIAdapter):
    def __init__(self, name, settings):
        headers = {**settings["headers"], "x-team": settings["team"]}
        super().__init__(settings["base_url"], settings["token"], headers, name=name)
        self.prefix = settings["model_prefix"]

    def build_request(self, req: GatewayRequest, model: str) -> UpstreamRequest:
        return super().build_request(req, self.prefix + model)


SPEC = ProviderSpec("teamhost", TeamHostProvider, TeamHostAdapter)
'''

METADATA = "Metadata-Version: 2.1\nName: teamhost-plugin\nVersion: 0.1\n"
ENTRY_POINTS = "[llm_router.adapters]\nteamhost = teamhost_plugin:SPEC\n"


def install_plugin(where: Path) -> Path:
    """The plugin as pip would leave it in site-packages; returns that directory."""
    site = where / "site"
    (site / "teamhost_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "teamhost_plugin.py").write_text(PLUGIN)
    (site / "teamhost_plugin-0.1.dist-info" / "METADATA").write_text(METADATA)
    (site / "teamhost_plugin-0.1.dist-info" / "entry_points.txt").write_text(ENTRY_POINTS)
    return site


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A registry of the test's own (the plugin leaves no kind behind), and its secret."""
    monkeypatch.setattr(adapters._registry, "REGISTRY", adapters._registry.Registry())
    monkeypatch.setenv("TEAMHOST_TOKEN", "team-secret")
    yield
    sys.modules.pop("teamhost_plugin", None)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: None) -> Path:
    """The plugin installed for this process."""
    site = install_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(site))
    return site


def config(upstream: str) -> str:
    return f"""
[providers.team]
kind = "teamhost"
base_url = "{upstream}"
token = "env:TEAMHOST_TOKEN"
team = "blue"
model_prefix = "acme-"

[routes.chat]
fallback = ["team:gpt-4o"]
"""


async def test_a_plugin_kind_serves_a_route(
    plugin: Path, start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}]
        )
        stream = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "again"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert answer.choices[0].message.content == "echo: hi"
    assert text == "echo: again"
    assert [r.body["model"] for r in fake_openai.received] == ["acme-gpt-4o"] * 2
    sent = fake_openai.received[0].headers
    assert (sent["x-team"], sent["authorization"]) == ("blue", "Bearer team-secret")


SIMULATED = """
[server]
watch = false

[providers.sim]
kind = "simulated"

[routes.chat]
fallback = ["sim:echo"]
"""


async def test_a_reload_reads_a_plugin_installed_since_start(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    registry: None,
    start_router: RouterFactory,
    fake_openai: FakeOpenAI,
) -> None:
    async with start_router(SIMULATED) as url, openai_client(url) as client:
        site = install_plugin(tmp_path / "later")
        monkeypatch.syspath_prepend(str(site))
        (tmp_path / "router.toml").write_text("[server]\nwatch = false\n" + config(fake_openai.url))
        async with httpx2.AsyncClient(base_url=url) as admin:
            result = await admin.post("/admin/reload")
        assert result.status_code == 200, result.text
        answer = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}]
        )
    assert answer.choices[0].message.content == "echo: hi"
    assert [r.body["model"] for r in fake_openai.received] == ["acme-gpt-4o"]


def check(path: Path, site: Path | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "router", "check", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )


def test_check_reads_a_plugin_kind_with_its_config_class(tmp_path: Path) -> None:
    site = install_plugin(tmp_path)
    path = tmp_path / "router.toml"
    path.write_text(config("http://127.0.0.1:9/v1"))
    result = check(path, site)
    assert result.returncode == 0, result.stderr
    assert "team (teamhost, http://127.0.0.1:9/v1)" in result.stdout

    # The plugin's class reads the block: its fields are checked like any built-in's.
    path.write_text(config("http://127.0.0.1:9/v1").replace("team = ", "tema = "))
    result = check(path, site)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "providers.team.team: required key missing",
        "providers.team.tema: unknown key",
    ]

    # Without the plugin the kind is unknown, by its key path.
    path.write_text(config("http://127.0.0.1:9/v1"))
    result = check(path, None)
    assert result.returncode == 1
    assert result.stderr.startswith('providers.team.kind: unknown provider kind "teamhost"')
