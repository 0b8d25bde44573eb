"""Providers that answer through a job: create it, then poll or stream it, cancel it.

Replicate (a prediction) and RunPod's native API (a job) do not answer a request in
its own response: the first answer names a job, and the answer is read from where the
job says (polled until it is done, or streamed from its own URL). The adapter stays
pure: it turns each answer into a :class:`Job`, which carries the next requests to make
(poll, stream, cancel) already built; the transport layer makes them, waiting
`JobAdapter.poll_interval` between polls, and cancels a job it stops waiting for
(a client that went away, a hedge that lost) with the job's ``cancel`` request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import attrs

from ._errors import GatewayError
from ._types import GatewayResponse, UpstreamRequest

if TYPE_CHECKING:
    from ._base import Headers, StreamDecoder
    from ._types import GatewayRequest

__all__ = ["Job", "JobAdapter", "JobState", "PolledStreamDecoder"]

JobState = Literal["running", "succeeded", "failed", "canceled"]


@attrs.frozen
class Job:
    """One job as the provider's latest answer told it.

    Attributes:
        id: The provider's id of the job.
        state: ``running`` until it ends; then how it ended.
        poll: The request that asks for its state again (None: cannot be asked).
        stream: Where its output streams, if it streams.
        cancel: The request that cancels it (None: it cannot be cancelled).
        answer: A succeeded job's answer.
        error: A failed or canceled job's error.
    """

    id: str
    state: JobState
    poll: UpstreamRequest | None = None
    stream: UpstreamRequest | None = None
    cancel: UpstreamRequest | None = None
    answer: GatewayResponse | None = None
    error: GatewayError | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"


@runtime_checkable
class PolledStreamDecoder(Protocol):
    """A stream read by asking again (RunPod's ``/stream/{id}``): each whole answer is
    fed, and :attr:`finished` says when the job has nothing more to give."""

    @property
    def finished(self) -> bool: ...


@runtime_checkable
class JobAdapter(Protocol):
    """An adapter whose provider answers through a :class:`Job`.

    Attributes:
        poll_interval: Seconds between two polls of a running job.
        polled_stream: Whether a job's ``stream`` request is asked again and again
            (each answer a part of the output) rather than read as one long body.
    """

    poll_interval: float
    polled_stream: bool

    def parse_job(
        self, req: GatewayRequest, model: str, status: int, headers: Headers, body: bytes
    ) -> Job:
        """A 2xx answer (to the create request or a poll) as the job it describes.

        Raises:
            SerializationError: the answer is not a job.
        """
        ...

    def job_stream_decoder(self, req: GatewayRequest, model: str, job: Job) -> StreamDecoder:
        """The decoder of ``job``'s stream (a `PolledStreamDecoder` when
        :attr:`polled_stream`)."""
        ...
