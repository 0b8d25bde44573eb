"""Upstreams whose provider answers through a job (Replicate, RunPod's native API).

The adapter (``adapters.JobAdapter``) turns each answer into a ``Job`` that carries the
next requests already built; :class:`JobUpstream` makes them: it creates the job,
polls it every ``poll_interval`` until it ends, or reads its stream (one long SSE
body, or a stream URL asked again and again), and cancels the job when it stops
waiting before the end: the client went away, a hedge lost, the deadline passed, a
poll failed. The cancel runs shielded with a short deadline of its own, so a
cancelled request still stops the provider's work (and its bill) within seconds.
"""

from __future__ import annotations

from contextlib import aclosing, asynccontextmanager
from typing import TYPE_CHECKING, cast

import attrs
import trio

from adapters import (
    ChatChunk,
    GatewayError,
    SerializationError,
    UnsupportedCapability,
    take_decoded,
)

from ._upstream import HTTPUpstream

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator

    from adapters import (
        GatewayRequest,
        GatewayResponse,
        Job,
        JobAdapter,
        StreamDecoder,
        UpstreamRequest,
        Usage,
    )

    from ._transport import UpstreamResponse

__all__ = ["CANCEL_TIMEOUT", "JobUpstream"]

#: How long a cancel of an abandoned job may take (it runs shielded).
CANCEL_TIMEOUT = 2.0
#: How long the read of a streamed job's token counts may take after its end.
USAGE_TIMEOUT = 5.0


@attrs.define
class _Progress:
    """What a stream's reader tells its owner: whether the job's answer was whole."""

    done: bool = False


def _named(batch: list[ChatChunk], model: str) -> list[ChatChunk]:
    return [chunk if chunk.model else attrs.evolve(chunk, model=model) for chunk in batch]


class JobUpstream(HTTPUpstream):
    """An :class:`HTTPUpstream` whose adapter is a ``JobAdapter``."""

    @property
    def jobs(self) -> JobAdapter:
        return cast("JobAdapter", self.adapter)

    async def _job(self, req: GatewayRequest, model: str, request: UpstreamRequest) -> Job:
        """Send ``request`` (a create or a poll) and read the job its answer describes."""
        response, body = await self.send_whole(await self.signed(request))
        try:
            return self.jobs.parse_job(req, model, response.status, response.headers, body)
        except GatewayError as exc:
            raise self._scrubbed(exc) from None

    async def _cancel(self, job: Job) -> None:
        """Cancel ``job``, best effort: shielded, at most `CANCEL_TIMEOUT` seconds."""
        if job.cancel is None:
            return
        with trio.move_on_after(CANCEL_TIMEOUT, shield=True):
            try:
                request = await self.signed(job.cancel)
                async with self.transport.request(request) as response:
                    await response.aread()
            except GatewayError:
                pass  # the job runs out on its own; nothing else to do for it

    async def complete(self, req: GatewayRequest, model: str) -> GatewayResponse:
        if req.stream:
            req = attrs.evolve(req, stream=False, include_usage=False)
        job = await self._job(req, model, await self._prepare(req, model))
        try:
            while job.running:
                if job.poll is None:
                    raise SerializationError("the upstream's job is running and cannot be polled")
                await trio.sleep(self.jobs.poll_interval)
                job = await self._job(req, model, job.poll)
        finally:
            if job.running:
                await self._cancel(job)
        if job.error is not None:
            raise self._scrubbed(job.error)
        if job.answer is None:
            raise SerializationError("the upstream's job ended without an answer")
        return job.answer if job.answer.model else attrs.evolve(job.answer, model=model)

    @asynccontextmanager
    async def stream(
        self, req: GatewayRequest, model: str
    ) -> AsyncIterator[AsyncIterator[list[ChatChunk]]]:
        job = await self._job(req, model, await self._prepare(req, model))
        progress = _Progress()
        try:
            if job.error is not None:
                raise self._scrubbed(job.error)
            if job.stream is None:
                raise UnsupportedCapability(f"provider {self.name}: this model does not stream")
            decoder = self.jobs.job_stream_decoder(req, model, job)
            if self.jobs.polled_stream:
                async with aclosing(self._polled(job, decoder, model, progress)) as chunks:
                    yield chunks
                return
            try:
                async with self.transport.request(await self.signed(job.stream)) as response:
                    if self.on_headers is not None:
                        self.on_headers(response.headers)
                    if not 200 <= response.status < 300:
                        raise self._failure(response, await self._read(response))
                    body = self._body(req, model, job, response, decoder, progress)
                    async with aclosing(body) as chunks:
                        yield chunks
            except GatewayError as exc:  # the transport's text may quote a header
                raise self._scrubbed(exc) from None
        finally:
            if job.running and not progress.done:
                await self._cancel(job)

    async def _body(
        self,
        req: GatewayRequest,
        model: str,
        job: Job,
        response: UpstreamResponse,
        decoder: StreamDecoder,
        progress: _Progress,
    ) -> AsyncGenerator[list[ChatChunk]]:
        """The chunks of a job's stream read as one body, then its token counts."""
        try:
            async with aclosing(response.aiter_bytes()) as body:
                async for data in body:
                    batch = decoder.feed(data)
                    if decoder.buffered > self._max_response:
                        raise SerializationError(
                            "upstream sent a stream event larger than server.max_response"
                        )
                    if batch:
                        yield _named(batch, model)
            batch = decoder.close()
        except GatewayError as exc:  # a decoder's error: its chunks go out first
            if carried := take_decoded(exc):
                yield _named(carried, model)
            raise self._scrubbed(exc) from None
        progress.done = True
        if batch:
            yield _named(batch, model)
        usage = await self._usage(req, model, job)
        if usage is not None:
            yield [ChatChunk("", model, 0, (), usage)]

    async def _usage(self, req: GatewayRequest, model: str, job: Job) -> Usage | None:
        """A finished job's token counts, read once more (its stream had none)."""
        if job.poll is None:
            return None
        with trio.move_on_after(USAGE_TIMEOUT):
            try:
                ended = await self._job(attrs.evolve(req, stream=False), model, job.poll)
            except GatewayError:
                return None  # the answer is whole; only its count is missing
            return ended.answer.usage if ended.answer is not None else None
        return None

    async def _polled(
        self, job: Job, decoder: StreamDecoder, model: str, progress: _Progress
    ) -> AsyncGenerator[list[ChatChunk]]:
        """The chunks of a job's stream read by asking its stream URL again and again."""
        assert job.stream is not None
        finished = False
        try:
            while not finished:
                _, body = await self.send_whole(await self.signed(job.stream))
                batch = decoder.feed(body)
                finished = bool(getattr(decoder, "finished", True))
                if batch:
                    yield _named(batch, model)
                elif not finished:
                    await trio.sleep(self.jobs.poll_interval)
            batch = decoder.close()
        except GatewayError as exc:  # a decoder's error: its chunks go out first
            if carried := take_decoded(exc):
                yield _named(carried, model)
            raise self._scrubbed(exc) from None
        progress.done = True
        if batch:
            yield _named(batch, model)
