"""Answers a route must validate (``validate``, or the client's ``response_format``
JSON Schema): an answer that fails is its target's failure, so the route retries and
falls back as after a server error.

A whole answer is checked as it arrives. A stream is checked before it is committed:
its attempt reads it to the end (each batch within the stall timeout), checks what it
adds up to, and only then hands it on, all at once; so on a route that validates,
streams reach the client when they are complete, not token by token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from adapters import ProviderInternalError, Timeout

from ..traffic._replay import assemble
from ._streams import StreamStart, close_stream

if TYPE_CHECKING:
    from adapters import GatewayResponse
    from rules import AnswerCheck

__all__ = ["InvalidResponse", "buffered", "check_answer"]


class InvalidResponse(ProviderInternalError):
    """An answer failed the route's validation (not JSON, or not matching its schema).

    Whose fault: the target's answer; another try, or another target, may do better.
    Retried and fallen back from like a server error (``on`` names it
    ``invalid_response``), but it does not count against the target's circuit: the
    target is up, its answer was only not what was asked.
    """

    code = "invalid_response"
    fallback_reason = "invalid_response"


def check_answer(check: AnswerCheck, resp: GatewayResponse) -> None:
    """Raises InvalidResponse unless every choice's text passes ``check`` (a choice
    that calls tools instead of answering, or refuses, is not checked: the client's SDK
    reads those as what they are)."""
    for choice in resp.choices:
        message = choice.message
        if (message.tool_calls or message.refusal) and not message.text():
            continue
        problem = check.problem(message.text())
        if problem is not None:
            raise InvalidResponse(problem)


async def buffered(start: StreamStart, check: AnswerCheck, stall_timeout: float) -> StreamStart:
    """The whole of an opened stream, read and checked, as a stream with nothing left
    to read (closed when it fails).

    Raises:
        InvalidResponse: its answer fails ``check``.
        Timeout: a batch took longer than ``stall_timeout``.
        GatewayError: the stream broke.
    """
    chunks = list(start.head)
    try:
        if start.rest is not None:
            rest = start.rest.__aiter__()
            while True:
                with trio.move_on_after(stall_timeout) as scope:
                    try:
                        chunks += await rest.__anext__()
                    except StopAsyncIteration:
                        break
                if scope.cancelled_caught:
                    raise Timeout(f"the stream stalled for {stall_timeout:g}s")
        whole = assemble(chunks)
        if whole is not None:
            check_answer(check, whole)
    except BaseException:
        await close_stream(start)
        raise
    return StreamStart(chunks, None, start.exit)
