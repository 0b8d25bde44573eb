"""The access log: one JSON line per request, buffered, flushed on a timer and at exit.

Each line is an object (orjson) with ``ts`` (ISO 8601, UTC, milliseconds),
``request_id``, ``method``, ``path``, ``status``, ``route``, ``target``, ``attempts``,
``hedges``, ``retries``, ``duration_ms``, ``ttft_ms`` (streams), ``tokens_in``,
``tokens_out`` and ``error`` (the failure's class name; never an upstream's message);
with ``server.log_bodies``, ``prompt`` and ``answer`` too, through the PII redactor
(:func:`redact`): never a body as it came.
Absent values are null. A status of 499 means the client left before an answer.

Like nginx's ``access_log ... buffer=64k flush=1s``: a write per request costs a system
call on the hot path (about 5% of a proxied request's CPU, measured); batching the
lines costs at most ``flush_every`` seconds of delay and nothing else. The daemon runs
:meth:`AccessLog.run` in its top nursery, which flushes a last time when cancelled.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

import orjson
import trio

from rules import PIIHookConfig, apply_hooks, compile_hook

if TYPE_CHECKING:
    from ..routing._request import RequestTrace

__all__ = ["AccessLog", "redact"]

#: Every category of personal data and secret, replaced by its label.
_REDACTOR = compile_hook("log_bodies", PIIHookConfig())


def redact(text: str) -> str:
    """``text`` with every e-mail address, phone, card number, IBAN and API-key-shaped
    string replaced by its label (``[EMAIL]``): the only way a body reaches a log."""
    return apply_hooks((_REDACTOR,), text, "request")


class AccessLog:
    """Collects JSON lines; writes them to ``stream`` every ``flush_every`` seconds.

    Args:
        stream: Where lines go (stderr by default, which systemd sends to the journal).
        flush_every: Seconds between writes.
        max_buffer: Characters buffered before an immediate write.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        flush_every: float = 1.0,
        max_buffer: int = 64 * 1024,
    ) -> None:
        self._stream = stream or sys.stderr
        self._flush_every = flush_every
        self._max_buffer = max_buffer
        self._lines: list[str] = []
        self._size = 0
        self._second = -1
        self._stamp = ""

    def record(
        self, trace: RequestTrace, method: str, path: str, request_id: str, millis: float
    ) -> None:
        """Buffer the line of one finished request that took ``millis``."""
        now = time.time()
        second = int(now)
        if second != self._second:  # format the date once a second, not per line
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        ttft = trace.ttft
        line = orjson.dumps(
            {
                "ts": f"{self._stamp}.{int((now - second) * 1000):03d}Z",
                "request_id": request_id,
                "method": method,
                "path": path,
                # 499: nginx's code for "the client closed the request" before an answer.
                "status": trace.status or 499,
                "route": trace.route or None,
                "target": trace.target,
                "attempts": trace.attempts,
                "hedges": trace.hedges,
                "retries": trace.retries,
                "resumes": sum(1 for _, outcome in trace.resumes if outcome == "resumed"),
                "duration_ms": round(millis, 1),
                "ttft_ms": None if ttft is None else round(ttft * 1000, 1),
                "tokens_in": trace.tokens_in,
                "tokens_out": trace.tokens_out,
                "cost_usd": None if trace.cost_usd is None else round(trace.cost_usd, 8),
                "key": trace.client,
                "cache": trace.cache,
                "error": trace.error,
            },
            option=orjson.OPT_APPEND_NEWLINE,
        ).decode()
        if trace.prompt is not None:
            bodies = {"prompt": redact(trace.prompt), "answer": redact(trace.answer or "")}
            line = line[:-2] + "," + orjson.dumps(bodies).decode()[1:] + "\n"
        self._lines.append(line)
        self._size += len(line)
        if self._size >= self._max_buffer:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        text = "".join(self._lines)
        self._lines.clear()
        self._size = 0
        self._stream.write(text)
        self._stream.flush()

    async def run(self) -> None:
        """Flush periodically until cancelled, then flush what is left."""
        try:
            while True:
                await trio.sleep(self._flush_every)
                self.flush()
        finally:
            self.flush()
