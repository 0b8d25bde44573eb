"""The ledger's file when it is not what it should be: a file that is not SQLite refused
(by the daemon and by reports) with the path and why, a folder named as the file, a
failed write leaving nothing half-written, and ``check`` passing a good existing file."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest

from router.ops._usage_db import (
    UsageDbError,
    check_path,
    insert,
    open_reader,
    open_writer,
)
from tests.router.ops.test_usage_db import row

if TYPE_CHECKING:
    from pathlib import Path


def test_a_file_that_is_not_sqlite_is_refused_by_writer_and_reader(tmp_path: Path) -> None:
    junk = tmp_path / "usage.db"
    junk.write_bytes(b"not a database, only some text that is long enough" * 40)
    with pytest.raises(UsageDbError, match=r"^server.usage_db: .*usage.db cannot be used \("):
        open_writer(str(junk))
    with pytest.raises(UsageDbError, match=r"usage.db cannot be read \("):
        open_reader(str(junk))
    with pytest.raises(UsageDbError, match=r"cannot be read"):
        check_path(str(junk))  # what `check` says of it
    assert junk.read_bytes().startswith(b"not a database")  # left as it was


def test_a_folder_is_not_a_ledger(tmp_path: Path) -> None:
    with pytest.raises(UsageDbError, match=r"is a folder$"):
        open_writer(str(tmp_path))
    with pytest.raises(UsageDbError, match=r"its folder .* does not exist$"):
        check_path(str(tmp_path / "missing" / "usage.db"))


def test_check_passes_a_ledger_that_exists(tmp_path: Path) -> None:
    db = str(tmp_path / "usage.db")
    open_writer(db).close()
    check_path(db)  # no error: it is a ledger this version writes


def test_a_failed_write_leaves_none_of_its_rows(tmp_path: Path) -> None:
    db = str(tmp_path / "usage.db")
    writer = open_writer(db)
    try:
        insert(writer, [row(1.0, "k", "a", 10)])
        with pytest.raises(sqlite3.ProgrammingError):
            insert(writer, [row(2.0, "k", "a", 10), ("too", "short")])
        assert writer.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 1
        insert(writer, [row(3.0, "k", "a", 10)])  # the connection is usable after it
        assert writer.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 2
    finally:
        writer.close()
