"""Log records that stay one line: control characters in their values are escaped.

The lifecycle log and the access log share stderr (the journal, under systemd), and
some records carry text the daemon does not control: an upstream's error message ("stream
from up:gpt broke: ..."), an exception's text. A message with ``\\n{"ts": ...}`` in it
would otherwise print a line that reads like an access-log line, or like a record of
its own. The filter escapes control characters (C0, DEL, C1, and the Unicode line and
paragraph separators; a tab stays) in a record's arguments, where such text goes; the
message templates are ours. Tracebacks are left as they are: they are multi-line by
nature, and only a bug of ours logs one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

__all__ = ["ONE_LINE", "OneLine", "install", "one_line"]

_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r"}
#: The loggers the daemon writes through (its own, and hypercorn's error log).
LOGGERS = ("llm_router", "hypercorn.error")


def one_line(text: str) -> str:
    """``text`` with every control character escaped (``\\n``, ``\\x1b``, ``\\u2028``)."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _clean(value: object) -> object:
    if isinstance(value, str):
        return one_line(value)
    if isinstance(value, BaseException):
        return one_line(str(value))
    return value


class OneLine(logging.Filter):
    """Escapes control characters in a record's arguments (and a message that is not
    a template string, such as an exception logged as is)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_clean(arg) for arg in args)
        elif isinstance(args, Mapping):
            record.args = {key: _clean(value) for key, value in args.items()}
        if not isinstance(record.msg, str):
            record.msg = _clean(record.msg)
        return True


ONE_LINE = OneLine()


def install() -> None:
    """Put the filter on the daemon's loggers (once: adding it again is a no-op)."""
    for name in LOGGERS:
        logging.getLogger(name).addFilter(ONE_LINE)
