"""The config watcher with real files and real notifications: what counts as a change
(the config, the files it references, the links it is reached through; never another
file of its folder) and when it reloads (once the files have settled and parse).

Settling runs on a MockClock that also moves with real time (``rate=1``), so the hang
guards work, while the quiet periods are long (a minute) and pass only when a test
jumps the clock: each step waits for the watcher's own signal (a log line or a count of
batches handled), never for time to pass.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

from adapters import provider_kinds
from router import run_daemon
from router.ops._watch import ConfigWatcher, referenced_files, resolution
from rules import load_config

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

QUIET = 60.0

HEAD = """
[providers.sim]
kind = "simulated"

[routes.chat]
fallback = ["sim:echo"]
"""
KEYS = """
[server]
api_keys = ["env:CLIENT_KEY"]
"""


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(rate=1.0)


class Reloads:
    """A stand-in for the reloader: the content of the config at each reload."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[str] = []
        self.more = trio.Event()

    async def __call__(self, reason: str) -> None:
        assert reason == "file changed"
        self.seen.append(self.path.read_text())
        self.more.set()
        self.more = trio.Event()

    async def next(self) -> str:
        count = len(self.seen)
        with trio.fail_after(10):  # a hang guard, in real seconds (rate 1)
            while len(self.seen) == count:
                await self.more.wait()
        return self.seen[-1]


@contextmanager
def logged(text: str) -> Iterator[trio.Event]:
    """Set when the watcher logs a line containing ``text`` (its readiness signal)."""
    seen = trio.Event()

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if text in record.getMessage():
                seen.set()

    logger = logging.getLogger("llm_router")
    handler, level = Handler(logging.DEBUG), logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def wait(event: trio.Event) -> None:
    with trio.fail_after(10):
        await event.wait()


async def start(nursery: trio.Nursery, watcher: ConfigWatcher) -> None:
    await nursery.start(partial(watcher.run))


def watcher_for(path: Path, reloads: Reloads, *referenced: Path) -> ConfigWatcher:
    return ConfigWatcher(
        str(path), reloads, lambda: [str(p) for p in referenced], quiet=QUIET, broken_grace=QUIET
    )


async def test_a_file_written_in_pieces_is_loaded_whole(
    tmp_path: Path, clock: trio.testing.MockClock
) -> None:
    """The first piece parses and has no keys yet: loading it would switch auth off."""
    path = tmp_path / "router.toml"
    path.write_text(HEAD + KEYS)
    reloads = Reloads(path)
    async with trio.open_nursery() as nursery:
        await start(nursery, watcher_for(path, reloads))
        with logged("config changed: reloading once it stays unchanged for 60s") as changed:
            path.write_text(HEAD + "# and now the keys\n")  # in place, as `cat > file` does
            await wait(changed)
        with logged("config still changing") as changing:
            with path.open("a") as file:
                file.write(KEYS)
            clock.jump(QUIET)
            await wait(changing)
        clock.jump(QUIET)
        assert await reloads.next() == HEAD + "# and now the keys\n" + KEYS
        nursery.cancel_scope.cancel()
    assert len(reloads.seen) == 1  # the first piece was never loaded


async def test_a_file_that_does_not_parse_yet_is_given_time(
    tmp_path: Path, clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "router.toml"
    path.write_text(HEAD)
    whole = HEAD + '\n[routes.more]\nfallback = ["sim:echo"]\n'
    cut = len(HEAD) + 20  # inside the new table: not TOML yet
    reloads = Reloads(path)
    async with trio.open_nursery() as nursery:
        await start(nursery, watcher_for(path, reloads))
        with logged("config changed") as changed:
            path.write_text(whole[:cut])
            await wait(changed)
        with logged("config does not parse yet") as broken:
            clock.jump(QUIET)  # settled, but broken: no reload (and no refusal logged)
            await wait(broken)
        with logged("config still changing") as changing:
            path.write_text(whole)
            clock.jump(QUIET)
            await wait(changing)
        clock.jump(QUIET)
        assert await reloads.next() == whole
        nursery.cancel_scope.cancel()
    assert len(reloads.seen) == 1


async def test_a_file_that_stays_broken_is_reloaded_to_be_refused(
    tmp_path: Path, clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "router.toml"
    path.write_text(HEAD)
    reloads = Reloads(path)
    async with trio.open_nursery() as nursery:
        await start(nursery, watcher_for(path, reloads))  # broken_grace: one quiet period
        with logged("config changed") as changed:
            path.write_text("[routes\n")
            await wait(changed)
        with logged("config does not parse yet") as broken:
            clock.jump(QUIET)
            await wait(broken)
        clock.jump(QUIET)  # still broken after the grace: the reload reports it
        assert await reloads.next() == "[routes\n"
        nursery.cancel_scope.cancel()


async def test_a_log_next_to_the_config_triggers_nothing(
    tmp_path: Path, clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "router.toml"
    path.write_text(HEAD)
    reloads = Reloads(path)
    watcher = watcher_for(path, reloads)
    async with trio.open_nursery() as nursery:
        await start(nursery, watcher)
        with logged("config changed") as changed:
            (tmp_path / "router.log").write_text("a line\n")
            with trio.fail_after(10):
                await watcher.batches_reach(1)  # the watcher saw it, and let it be
            (tmp_path / "router.toml.bak").write_text(HEAD)
            with trio.fail_after(10):
                await watcher.batches_reach(2)
            assert not changed.is_set()
        nursery.cancel_scope.cancel()
    assert reloads.seen == []


async def test_a_referenced_file_that_changes_reloads(
    tmp_path: Path, clock: trio.testing.MockClock
) -> None:
    """A rotated ``file:`` secret (the secrets folder is not the config's)."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    secret = secrets / "client-key"
    secret.write_text("old-key\n")
    path = tmp_path / "router.toml"
    path.write_text(HEAD)
    reloads = Reloads(path)
    async with trio.open_nursery() as nursery:
        await start(nursery, watcher_for(path, reloads, secret))
        with logged("config changed") as changed:
            tmp = secrets / "client-key.tmp"
            tmp.write_text("new-key\n")
            tmp.replace(secret)
            await wait(changed)
        clock.jump(QUIET)
        assert await reloads.next() == HEAD
        nursery.cancel_scope.cancel()


async def test_an_ln_sfn_swap_of_a_symlinked_config_reloads(
    tmp_path: Path, clock: trio.testing.MockClock
) -> None:
    versions = {v: tmp_path / "versions" / v / "router.toml" for v in ("v1", "v2")}
    for version, file in versions.items():
        file.parent.mkdir(parents=True)
        file.write_text(f"{HEAD}# {version}\n")
    etc = tmp_path / "etc"
    etc.mkdir()
    path = etc / "router.toml"
    path.symlink_to(versions["v1"])
    reloads = Reloads(path)
    async with trio.open_nursery() as nursery:
        await start(nursery, watcher_for(path, reloads))
        with logged("config changed") as changed:
            await trio.run_process(["ln", "-sfn", str(versions["v2"]), str(path)])
            await wait(changed)
        clock.jump(QUIET)
        assert await reloads.next() == f"{HEAD}# v2\n"
        nursery.cancel_scope.cancel()


def configmap_version(folder: Path, version: str) -> None:
    data = folder / f"..{version}"
    data.mkdir()
    (data / "router.toml").write_text(f"{HEAD}# {version}\n")


async def swap_configmap(folder: Path, version: str) -> None:
    """What the kubelet does: a new version folder, the ``..data`` link swapped in one
    rename, the old version removed."""
    old = os.readlink(folder / "..data")
    configmap_version(folder, version)
    await trio.run_process(["ln", "-sfn", f"..{version}", str(folder / "..data_tmp")])
    (folder / "..data_tmp").replace(folder / "..data")
    for file in (folder / old).iterdir():
        file.unlink()
    (folder / old).rmdir()


async def test_a_configmap_swap_reloads_each_time(
    tmp_path: Path, clock: trio.testing.MockClock
) -> None:
    folder = tmp_path / "config"
    folder.mkdir()
    configmap_version(folder, "2026_12_03_v1")
    (folder / "..data").symlink_to("..2026_12_03_v1")
    path = folder / "router.toml"
    path.symlink_to("..data/router.toml")
    reloads = Reloads(path)
    async with trio.open_nursery() as nursery:
        await start(nursery, watcher_for(path, reloads))
        for version in ("2026_12_03_v2", "2026_12_03_v3"):
            with logged("config changed") as changed:
                await swap_configmap(folder, version)
                await wait(changed)
            clock.jump(QUIET)
            assert await reloads.next() == f"{HEAD}# {version}\n"
        nursery.cancel_scope.cancel()


def test_resolution_meets_every_link(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    folder.mkdir()
    configmap_version(folder, "v1")
    (folder / "..data").symlink_to("..v1")
    (folder / "router.toml").symlink_to("..data/router.toml")
    links, end = resolution(str(folder / "router.toml"))
    assert links == [str(folder / "router.toml"), str(folder / "..data")]
    assert end == str(folder / "..v1" / "router.toml")


def test_referenced_files_are_the_file_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "router.toml"
    path.write_text(
        HEAD
        + '[server]\napi_keys = ["file:keys/server", "env:SOME_KEY"]\n'
        + '[keys.alice]\nsecret = "file:/run/keys/alice"\n'
        + '[providers.up]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        + 'api_key = "file:keys/openai"\n'
    )
    found = referenced_files(load_config(str(path), kinds=provider_kinds()))
    assert found == sorted(
        [str(tmp_path / "keys" / "server"), "/run/keys/alice", str(tmp_path / "keys" / "openai")]
    )


async def test_the_daemon_reloads_when_a_secret_file_is_rotated(tmp_path: Path) -> None:
    """The daemon watches the ``file:`` secrets of its rules, in their own folder."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    secret = secrets / "alice"
    secret.write_text("alice-key-1\n")
    path = tmp_path / "router.toml"
    server = '[server]\nlisten = ["127.0.0.1:0"]\naccess_log = false\n'
    path.write_text(f'{server}{HEAD}\n[keys.alice]\nsecret = "file:{secret}"\n')
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(run_daemon, str(path)))
        with logged("reload (file changed)") as rotated:
            tmp = secrets / "alice.tmp"
            tmp.write_text("alice-key-2\n")
            tmp.replace(secret)
            await wait(rotated)
        nursery.cancel_scope.cancel()
