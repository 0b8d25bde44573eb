"""The usage ledger's SQLite file: its schema, opening it, and writing rows.

Blocking code only (``sqlite3``): the daemon calls it from a worker thread, the
``usage`` command directly. One table, ``requests``, one row per request. The schema
has a version (``PRAGMA user_version``): a file is brought up to :data:`VERSION` by the
steps of :data:`MIGRATIONS` when opened for writing, and a file from a newer version
is refused rather than written in a shape it does not know.

WAL mode lets the report and ``/admin/status`` read while the daemon writes, and
``synchronous = NORMAL`` makes a commit a plain write to the WAL (no fsync): a killed
process loses nothing committed; a power cut may lose the last commits, never the
file. ``busy_timeout`` bounds how long a write waits for another process's lock.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from rules import ConfigError

__all__ = [
    "COLUMNS",
    "MIGRATIONS",
    "VERSION",
    "UsageDbError",
    "check_path",
    "insert",
    "open_reader",
    "open_writer",
]

#: A row's values, in this order (``id`` aside: SQLite numbers rows itself).
COLUMNS = (
    "ts",  # when the request ended: seconds since the epoch, UTC
    "request_id",
    "endpoint",  # chat, messages, responses, embeddings, ...
    "key",  # the client key's name (never its secret); NULL without keys
    "route",  # the model the client asked for
    "target",  # the provider:model that answered (NULL: none did)
    "targets",  # every target tried, in order, comma separated
    "model",  # the model part of ``target``
    "status",  # the HTTP status the client got (499: it left first)
    "outcome",  # ok, client_error, upstream_error, timeout, rate_limited, ...
    "error",  # the failure's class name
    "tokens_in",
    "tokens_out",
    "tokens_cached",  # input tokens read from the provider's prompt cache
    "tokens_reasoning",  # output tokens spent reasoning
    "cost_usd",
    "latency_ms",  # arrival to the last byte sent
    "ttft_ms",  # streams: arrival to the first content sent
    "attempts",
    "resumes",  # broken streams resumed on another target
    "cache",  # hit or miss on a route with a response cache
)

#: Step n brings a file from version n to n + 1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        request_id TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        key TEXT,
        route TEXT,
        target TEXT,
        targets TEXT,
        model TEXT,
        status INTEGER NOT NULL,
        outcome TEXT,
        error TEXT,
        tokens_in INTEGER,
        tokens_out INTEGER,
        tokens_cached INTEGER,
        tokens_reasoning INTEGER,
        cost_usd REAL,
        latency_ms REAL NOT NULL,
        ttft_ms REAL,
        attempts INTEGER NOT NULL DEFAULT 0,
        resumes INTEGER NOT NULL DEFAULT 0,
        cache TEXT
    );
    CREATE INDEX requests_ts ON requests (ts);
    CREATE INDEX requests_key_ts ON requests (key, ts);
    """,
)
VERSION = len(MIGRATIONS)

#: Seconds a write waits for a lock held by another connection before it fails.
BUSY_TIMEOUT = 5.0

_INSERT = f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


class UsageDbError(ConfigError):
    """``server.usage_db`` cannot be opened, created or read."""


def check_path(path: str) -> None:
    """What ``check`` says of ``server.usage_db`` without creating anything.

    Raises:
        UsageDbError: the folder is missing or not writable, the path is a folder, or
            an existing file is not a ledger this version can write.
    """
    where = _check_folder(path)
    if where.exists():
        if not os.access(where, os.R_OK | os.W_OK):
            raise _problem(path, "exists but is not readable and writable")
        connection = open_reader(path)
        connection.close()


def open_writer(path: str) -> sqlite3.Connection:
    """The daemon's connection: the file created if missing, in WAL mode, its schema
    brought up to date. Used from one worker thread at a time (the caller's lock).

    Raises:
        UsageDbError: the file cannot be opened or created, is not SQLite, or was
            written by a newer version.
    """
    _check_folder(path)  # its own words for the common mistakes, not SQLite's
    try:
        connection = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT, check_same_thread=False, isolation_level=None
        )
    except sqlite3.Error as exc:
        raise _problem(path, f"cannot be opened ({exc})") from None
    try:
        version = _version(path, connection)  # before any change: a foreign file stays as is
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        for step in range(version, VERSION):
            # One transaction per step, the version with it: a crash leaves a whole step.
            connection.executescript(
                f"BEGIN IMMEDIATE; {MIGRATIONS[step]}; PRAGMA user_version = {step + 1}; COMMIT;"
            )
    except UsageDbError:
        connection.close()
        raise
    except sqlite3.Error as exc:
        connection.close()
        raise _problem(path, f"cannot be used ({exc})") from None
    return connection


def open_reader(path: str) -> sqlite3.Connection:
    """A connection for reports; never creates the file nor changes it.

    Raises:
        UsageDbError: no such file, not SQLite, or a version this one cannot read.
    """
    if not Path(path).is_file():
        raise _problem(path, "does not exist (no request has been recorded yet?)")
    try:
        connection = sqlite3.connect(
            f"{Path(path).resolve().as_uri()}?mode=ro",
            uri=True,
            timeout=BUSY_TIMEOUT,
            check_same_thread=False,
        )
        version = connection.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise _problem(path, f"cannot be read ({exc})") from None
    if version == 0 and not _has_requests(connection):
        connection.close()
        raise _problem(path, "is not a usage ledger (no requests table)")
    if version > VERSION:
        connection.close()
        raise _newer(path, version)
    return connection


def insert(connection: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    """Write ``rows`` in one transaction: all of them or (on an error) none.

    Raises:
        sqlite3.Error: the write failed (locked past BUSY_TIMEOUT, disk full, ...).
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.executemany(_INSERT, rows)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _check_folder(path: str) -> Path:
    where = Path(path)
    folder = where.parent
    if where.is_dir():
        raise _problem(path, "is a folder")
    if not folder.is_dir():
        raise _problem(path, f"cannot be created: its folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        # SQLite writes its -wal and -shm files next to the database.
        raise _problem(path, f"cannot be written: its folder {folder} is not writable")
    return where


def _version(path: str, connection: sqlite3.Connection) -> int:
    """The file's schema version, if this one can bring it up to date."""
    version: int = connection.execute("PRAGMA user_version").fetchone()[0]
    if version > VERSION:
        raise _newer(path, version)
    if version == 0 and _has_requests(connection):
        raise _problem(path, "holds a requests table of unknown shape (version 0)")
    return version


def _has_requests(connection: sqlite3.Connection) -> bool:
    found = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'requests'"
    ).fetchone()
    return found is not None


def _newer(path: str, version: int) -> UsageDbError:
    return _problem(
        path, f"was written by a newer llm-router (schema {version}; this one knows {VERSION})"
    )


def _problem(path: str, what: str) -> UsageDbError:
    return UsageDbError(f"server.usage_db: {path} {what}")
