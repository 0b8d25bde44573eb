"""Secrets on reload: compared by value, so a rotated key takes effect."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.router.ops._secret_daemon import CONFIG, chat, daemon, write_secret

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from tests.fakes.openai_upstream import FakeOpenAI


async def test_rotated_file_secrets_take_effect_on_reload(
    tmp_path: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Client key and upstream key both rotated in their files; the config unchanged.
    The config's ``file:`` paths are relative: to its folder, not the working one."""
    folder = tmp_path / "etc"
    (folder / "secrets").mkdir(parents=True)
    client_key, up_key = folder / "secrets/client.key", folder / "secrets/up.key"
    write_secret(client_key, "cK-7f3a9e1b-old")
    write_secret(up_key, "uK-5d2c8a4f-old")
    fake_openai.key = "uK-5d2c8a4f-old"
    path = folder / "router.toml"
    path.write_text(CONFIG.format(url=fake_openai.url))
    monkeypatch.chdir(tmp_path)
    async with daemon(path) as client:
        assert await chat(client, "cK-7f3a9e1b-old") == 200
        write_secret(client_key, "cK-90b1e6d3-new")
        write_secret(up_key, "uK-c4e8f017-new")
        fake_openai.key = "uK-c4e8f017-new"
        answer = (await client.post("/admin/reload")).json()
        assert answer["ok"] is True
        assert answer["changed"] is True
        assert await chat(client, "cK-7f3a9e1b-old") == 401
        assert await chat(client, "cK-90b1e6d3-new") == 200  # the upstream took its new key
        assert fake_openai.received[-1].headers["authorization"] == "Bearer uK-c4e8f017-new"
        # Nothing rotated since: nothing changes.
        assert (await client.post("/admin/reload")).json()["changed"] is False
