"""Chunks a stream decoder decoded before an error: part of the answer, carried by it.

A decoder turns every event of one ``feed`` (or ``close``) into chunks before it
returns. When one of them is bad (malformed, or the upstream's in-band error), the
chunks of the events before it are still the answer's, as they would be had the bad
event come in a later read: the error carries them (``GatewayError.decoded``) and the
caller passes them on before it raises the error. Pure.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from ._errors import GatewayError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from ._types import ChatChunk

__all__ = ["carried", "carrying", "carried_through", "take_decoded"]

E = TypeVar("E", bound=GatewayError)


def carried(err: E, chunks: Sequence[ChatChunk]) -> E:
    """``err`` carrying ``chunks`` (decoded before it), ahead of those it carried."""
    if chunks:
        err.decoded = (*chunks, *err.decoded)
    return err


@contextmanager
def carrying(out: list[ChatChunk]) -> Iterator[None]:
    """A decoder's loop over events: a GatewayError raised in the block carries the
    chunks in ``out`` when it is raised (decoded before it)."""
    try:
        yield
    except GatewayError as exc:
        carried(exc, out)
        raise


def take_decoded(err: GatewayError) -> list[ChatChunk]:
    """The chunks ``err`` carries, taken off it: the caller passes them on once."""
    chunks, err.decoded = list(err.decoded), ()
    return chunks


@contextmanager
def carried_through(transform: Callable[[list[ChatChunk]], list[ChatChunk]]) -> Iterator[None]:
    """A decoder that wraps another: the chunks an error from the inner one carries go
    through ``transform``, as the chunks it returns do."""
    try:
        yield
    except GatewayError as exc:
        exc.decoded = tuple(transform(list(exc.decoded)))
        raise
