"""The config watcher: a reload when the config file, or a file it references, has
changed and settled.

What is watched: the config file, the ``file:`` secrets and the ``tls`` certificate
files of the rules in force, each followed through its symlinks. The folder of every symlink met and of the file at
the end is watched (not recursively), and only a change of one of those paths counts:
a log written next to ``router.toml`` is never a reason to reload. Following the links
is what makes an atomic swap visible: ``ln -sfn v2/router.toml router.toml``, or a
Kubernetes ConfigMap's ``..data`` link renamed over, changes no file of the old
version, only a link.

When to reload: a change starts a settling period. The watcher takes a fingerprint of
the files (the path each resolves to and a hash of its content) and waits until it
stays the same for ``quiet`` seconds; a file still being written keeps it waiting, so
the first half of a file written in pieces is never loaded (a half-written file may
well parse: one without its ``api_keys`` yet would switch client auth off). A settled
file that does not parse gets ``broken_grace`` seconds more to be completed; only then
is the reload tried, and refused. A settled state equal to the one last loaded (a
``touch``, a save without changes) does not reload.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from adapters import provider_kinds
from rules import Config, SecretRef, TLSConfig, compile_routes, load_config

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from watchfiles._rust_notify import RustNotify

__all__ = ["ConfigWatcher", "referenced_files", "resolution"]

log = logging.getLogger("llm_router")

_MAX_LINKS = 40  # as the kernel's own limit on links followed in one lookup
_MAX_READ = 2**20
Fingerprint = tuple[tuple[str, str, str], ...]


def resolution(path: str) -> tuple[list[str], str]:
    """The symlinks met resolving ``path`` (each as a path in its link-free folder),
    and the file it ends at. Resolution goes link by link, as the kernel does, so a
    link inside a linked folder (``..data/router.toml``) is met too."""
    links: list[str] = []
    current = os.path.abspath(path)
    for _ in range(_MAX_LINKS):
        link = _first_link(current)
        if link is None:
            break
        links.append(link)
        rest = os.path.relpath(current, link)
        try:
            target = os.readlink(link)
        except OSError:  # gone since: the next look follows what replaced it
            break
        current = os.path.normpath(os.path.join(os.path.dirname(link), target, rest))
    return links, current


def _first_link(path: str) -> str | None:
    parts = Path(path).parts
    for end in range(2, len(parts) + 1):
        prefix = os.path.join(*parts[:end])
        if os.path.islink(prefix):
            return prefix
    return None


def referenced_files(config: Config) -> list[str]:
    """The files that ``file:`` secrets of ``config`` read (where they are read from),
    and the certificates of providers' ``tls``."""
    found: list[str] = []

    def visit(value: object) -> None:
        if isinstance(value, SecretRef):
            if value.scheme == "file":
                found.append(os.path.abspath(value.path()))  # relative: to the config's folder
        elif isinstance(value, TLSConfig):
            found.extend(os.path.abspath(p) for p in (value.ca_file, value.cert_file) if p)
            visit(value.key_file)
        elif attrs.has(kind := type(value)):
            for field in attrs.fields(kind):
                visit(getattr(value, field.name))
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, (tuple, list)):
            for item in value:
                visit(item)

    visit(config)
    return sorted(set(found))


def _fingerprint(paths: Iterable[str]) -> Fingerprint:
    """What each file is now: the path it resolves to and a hash of its content.

    Only regular files up to 1 MiB are read: a FIFO or device would block (or never
    end), and a config or a secret is small; others count by type, size, inode and
    modification time.
    """
    result: list[tuple[str, str, str]] = []
    for path in paths:
        target = os.path.realpath(path)
        try:
            info = os.stat(target)
            if stat.S_ISREG(info.st_mode) and info.st_size <= _MAX_READ:
                with open(target, "rb") as file:
                    summary = hashlib.sha256(file.read(_MAX_READ + 1)).hexdigest()
            else:
                summary = (
                    f"mode {info.st_mode:o}, {info.st_size} bytes,"
                    f" inode {info.st_ino}, {info.st_mtime_ns}"
                )
        except OSError as exc:
            summary = f"unreadable: {exc.strerror}"
        result.append((path, target, summary))
    return tuple(result)


def _valid(path: str) -> bool:
    try:
        compile_routes(load_config(path, kinds=provider_kinds()))
    except Exception:  # ConfigError, or anything else: the reload will say what
        return False
    return True


class ConfigWatcher:
    """Calls ``reload`` once the config (or a file it references) changed and settled.

    Args:
        path: The config file, as the daemon was given it (a symlink stays one).
        reload: Called with ``"file changed"``.
        referenced: The files the rules in force reference (read again after a reload).
        quiet: Seconds the files must stay unchanged before a reload.
        broken_grace: Seconds more a settled file that does not parse gets.
        batch_ms: How long the OS's notifications are gathered into one batch.
    """

    def __init__(
        self,
        path: str,
        reload: Callable[[str], Awaitable[object]],
        referenced: Callable[[], Iterable[str]] = tuple,
        *,
        quiet: float = 0.5,
        broken_grace: float = 2.0,
        batch_ms: int = 50,
    ) -> None:
        self.path = os.path.abspath(path)
        self._reload = reload
        self._referenced = referenced
        self.quiet = quiet
        self.broken_grace = broken_grace
        self._batch_ms = batch_ms
        self._relevant: frozenset[str] = frozenset()
        self._folders: tuple[str, ...] = ()
        self._loaded: Fingerprint = ()
        #: Batches of notifications handled so far, relevant or not (tests wait on it).
        self.batches = 0
        self._batch_seen = trio.Event()

    async def batches_reach(self, count: int) -> None:
        """Until :attr:`batches` is at least ``count``."""
        while self.batches < count:
            await self._batch_seen.wait()

    def _files(self) -> list[str]:
        return [self.path, *self._referenced()]

    def _plan(self) -> None:
        """The paths that count and the folders to watch, for the files as they are."""
        relevant: set[str] = set()
        for file in self._files():
            links, end = resolution(file)
            relevant.update([*links, end])
        self._relevant = frozenset(relevant)
        self._folders = tuple(sorted({os.path.dirname(p) for p in relevant}))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Watch until cancelled; reports started once a change from then on is seen."""
        self._plan()
        self._loaded = await trio.to_thread.run_sync(_fingerprint, self._files())
        watcher = _open(self._folders)
        task_status.started()
        waiting = False
        try:
            while True:
                waiting = True
                changes = await _next_batch(watcher, self._batch_ms)
                waiting = False
                if any(path in self._relevant for _, path in changes):
                    await self._settle_and_reload()
                # The links may point elsewhere now, the rules may reference other files
                # (a reload by request or signal also changed the file: seen here too).
                folders = self._folders
                self._plan()
                if self._folders != folders:
                    watcher.close()
                    watcher = await self._reopen()
                    # Missed while no watch was in place? The fingerprint tells.
                    if await trio.to_thread.run_sync(_fingerprint, self._files()) != self._loaded:
                        await self._settle_and_reload()
                self.batches += 1
                self._batch_seen.set()
                self._batch_seen = trio.Event()
        finally:
            if not waiting:  # else the abandoned thread closes it (it must not be in use)
                watcher.close()

    async def _reopen(self) -> RustNotify:
        """A watch on the folders planned; retried while it cannot be placed (a folder
        removed since the plan, the inotify limit): the daemon serves on meanwhile."""
        while True:
            try:
                return _open(self._folders)
            except (OSError, RuntimeError) as exc:
                log.warning("config watcher: cannot watch %s (%s); retrying", self._folders, exc)
            await trio.sleep(max(self.quiet, 1.0))
            self._plan()

    async def _settle_and_reload(self) -> None:
        current = await trio.to_thread.run_sync(_fingerprint, self._files())
        if current == self._loaded:
            return  # what is in force (a touch, or changes already reloaded)
        log.info("config changed: reloading once it stays unchanged for %gs", self.quiet)
        broken_for = 0.0
        while True:
            await trio.sleep(self.quiet)
            now = await trio.to_thread.run_sync(_fingerprint, self._files())
            if now != current:
                current, broken_for = now, 0.0
                log.debug("config still changing: waiting %gs more", self.quiet)
                continue
            if current == self._loaded:
                return  # changed back while settling
            if broken_for >= self.broken_grace or await trio.to_thread.run_sync(_valid, self.path):
                break
            broken_for += self.quiet
            log.debug("config does not parse yet: waiting %gs more", self.quiet)
        self._loaded = current
        await self._reload("file changed")


def _open(folders: Iterable[str]) -> RustNotify:
    # Only daemons that watch pay for the import. RustNotify is what watchfiles' own
    # awatch() drives; driving it here gives the moment the watch is in place (changes
    # are queued from construction on), which awatch() keeps to itself.
    from watchfiles._rust_notify import RustNotify

    polling = os.environ.get("WATCHFILES_FORCE_POLLING", "").lower()
    force_polling = polling not in ("", "false", "disable", "disabled")
    existing = [folder for folder in folders if os.path.isdir(folder)]
    return RustNotify(existing, False, force_polling, 300, False, False)


async def _next_batch(watcher: RustNotify, batch_ms: int) -> set[tuple[int, str]]:
    stop = threading.Event()
    try:
        # Abandoned on cancel: the stop event ends the wait within one step (50 ms),
        # and the thread closes the watcher.
        return await trio.to_thread.run_sync(
            _wait_for_changes, watcher, batch_ms, stop, abandon_on_cancel=True
        )
    finally:
        stop.set()


def _wait_for_changes(watcher: Any, batch_ms: int, stop: threading.Event) -> set[tuple[int, str]]:
    """The next batch of changes (in a worker thread); empty once ``stop`` is set."""
    result = watcher.watch(batch_ms, 50, 0, stop)
    if stop.is_set():  # the watching task is gone (it abandoned this thread)
        watcher.close()
    # "signal" and "timeout" are not for a worker thread without a timeout: nothing new
    return set() if isinstance(result, str) else set(result)
