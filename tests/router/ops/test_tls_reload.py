"""TLS at start and on reload: contexts built off the event loop, kept while nothing
changed, rebuilt when a certificate file changed though the config did not."""

from __future__ import annotations

import ssl
import threading
from typing import TYPE_CHECKING, Any

import httpx2
import trustme

from adapters import provider_kinds
from router.ops._assemble import build_runtime
from rules import parse_config
from tests.fakes.tunnels import TLSFront, serving_tls

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from tests.conftest import RouterFactory
    from tests.fakes.openai_upstream import FakeOpenAI

HI: Any = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


def config(base_url: str, extra: str) -> str:
    return f"""
[server]
access_log = false
watch = false

[providers.up]
kind = "openai"
base_url = "{base_url}"
{extra}

[routes.chat]
fallback = ["up:gpt-4o"]
"""


def record_builds(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each context built from now on: was it built on the event loop's thread?"""
    built: list[bool] = []
    original = ssl.create_default_context

    def recording(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(threading.get_ident() == threading.main_thread().ident)
        return original(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", recording)
    return built


def test_unchanged_tls_and_proxy_keep_the_upstream(tmp_path: Path) -> None:
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    extra = f'tls = {{ ca_file = "{tmp_path / "ca.pem"}" }}\nproxy = "http://proxy.test:3128"'
    first = parse_config(config("https://api.test/v1", extra), kinds=provider_kinds())
    before = build_runtime(first).runtime
    again = build_runtime(
        parse_config(config("https://api.test/v1", extra), kinds=provider_kinds()), before
    )
    assert again.rebuilt == ()
    assert again.runtime.engine.upstreams["up"] is before.engine.upstreams["up"]
    other = extra.replace("3128", "3129")
    moved = build_runtime(
        parse_config(config("https://api.test/v1", other), kinds=provider_kinds()), again.runtime
    )
    assert moved.rebuilt == ("up",)


def test_a_renewed_ca_file_rebuilds_the_upstream(tmp_path: Path) -> None:
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    text = config("https://api.test/v1", f'tls = {{ ca_file = "{path}" }}')
    before = build_runtime(parse_config(text, kinds=provider_kinds())).runtime
    trustme.CA().cert_pem.write_to_path(str(path))  # renewed, same path, same config
    after = build_runtime(parse_config(text, kinds=provider_kinds()), before)
    assert after.rebuilt == ("up",)
    assert after.runtime.tls["up"] != before.tls["up"]


async def test_contexts_are_built_off_the_loop_at_start_and_on_reload(
    fake_openai: FakeOpenAI,
    start_router: RouterFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    front = TLSFront(ca, int(fake_openai.url.rpartition(":")[2].split("/")[0]))
    builds = record_builds(monkeypatch)  # on the loop's thread?
    async with serving_tls(front.handle, front.context) as port:
        toml = config(f"https://127.0.0.1:{port}/v1", 'tls = { ca_file = "ca.pem" }')
        async with start_router(toml) as url:
            assert builds == [False]  # at start, in a worker thread
            async with httpx2.AsyncClient(base_url=url, trust_env=False) as client:
                assert (await client.post("/v1/chat/completions", json=HI)).status_code == 200
                # The upstream's certificate is renewed by another CA; so is ca.pem.
                renewed = trustme.CA()
                renewed.issue_cert("127.0.0.1").configure_cert(front.context)
                renewed.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
                answer = (await client.post("/admin/reload")).json()
                assert answer["ok"] is True
                assert answer["changed"] is True  # though router.toml did not change
                assert (await client.post("/v1/chat/completions", json=HI)).status_code == 200
                assert (await client.post("/admin/reload")).json()["changed"] is False
    assert builds == [False, False]  # and one on the reload that saw the renewal
    assert len(front.accepted) == 2  # the old connection was left with the old upstream
