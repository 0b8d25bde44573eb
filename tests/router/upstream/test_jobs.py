"""`JobUpstream` on trio's MockClock, over a scripted in-memory transport: when it polls,
when it cancels, and how long a cancel may take."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import attrs
import orjson
import pytest
import trio

from adapters import ChatChunk, GatewayRequest, Message, ProviderInternalError, StreamError
from adapters._runpod import RunPodAdapter
from router.upstream._jobs import CANCEL_TIMEOUT, JobUpstream
from router.upstream._transport import UpstreamResponse

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator

    from adapters import UpstreamRequest

URL = "http://runpod.test/v2"
REQ = GatewayRequest(model="m", messages=(Message("user", "hi"),))


@attrs.define
class Scripted:
    """A transport that answers each request from ``answer(method, path)``: a JSON body
    (status 200), or None to hang until cancelled. Records ``(time, method, path)``."""

    answer: Callable[[str, str], object | None]
    sent: list[tuple[float, str, str]] = attrs.field(factory=list)

    @asynccontextmanager
    async def request(self, req: UpstreamRequest) -> AsyncIterator[UpstreamResponse]:
        path = req.url.removeprefix(URL)
        self.sent.append((trio.current_time(), req.method, path))
        body = self.answer(req.method, path)
        if body is None:
            await trio.sleep_forever()

        async def chunks() -> AsyncGenerator[bytes]:
            yield orjson.dumps(body)

        yield UpstreamResponse(200, [("content-type", "application/json")], chunks())

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


def upstream(transport: Scripted) -> JobUpstream:
    adapter = RunPodAdapter(URL, "ep", "k", poll_interval=0.5)
    return JobUpstream("pod", "runpod", adapter, transport)


def done_after(polls: int) -> Callable[[str, str], object | None]:
    seen = {"status": 0}

    def answer(method: str, path: str) -> object | None:
        if path == "/ep/runsync":
            return {"id": "j1", "status": "IN_QUEUE"}
        if path == "/ep/status/j1":
            seen["status"] += 1
            if seen["status"] >= polls:
                output = [{"choices": [{"tokens": ["ok"]}]}]
                return {"id": "j1", "status": "COMPLETED", "output": output}
            return {"id": "j1", "status": "IN_PROGRESS"}
        if path == "/ep/cancel/j1":
            return None  # the cancel hangs
        raise AssertionError(path)

    return answer


async def test_a_running_job_is_polled_every_interval(autojump_clock: trio.abc.Clock) -> None:
    transport = Scripted(done_after(3))
    answer = await upstream(transport).complete(REQ, "m")
    assert answer.choices[0].message.content == "ok"
    assert [(t, p) for t, _, p in transport.sent] == [
        (0.0, "/ep/runsync"),
        (0.5, "/ep/status/j1"),
        (1.0, "/ep/status/j1"),
        (1.5, "/ep/status/j1"),
    ]
    assert trio.current_time() == 1.5


async def test_an_abandoned_job_is_cancelled_and_a_hung_cancel_given_up(
    autojump_clock: trio.abc.Clock,
) -> None:
    transport = Scripted(done_after(100))
    with trio.move_on_after(1.25):  # the client goes away while the job runs
        await upstream(transport).complete(REQ, "m")
    # Shielded, the cancel is sent at once; it hangs, and is given up after its deadline.
    assert transport.sent[-1] == (1.25, "POST", "/ep/cancel/j1")
    assert trio.current_time() == 1.25 + CANCEL_TIMEOUT


async def test_a_failed_job_is_not_cancelled(autojump_clock: trio.abc.Clock) -> None:
    def answer(method: str, path: str) -> object | None:
        return {"id": "j1", "status": "FAILED", "error": "boom"}

    transport = Scripted(answer)
    with pytest.raises(ProviderInternalError, match="boom"):
        await upstream(transport).complete(REQ, "m")
    assert [p for _, _, p in transport.sent] == ["/ep/runsync"]


async def test_a_stream_left_early_cancels_its_job(autojump_clock: trio.abc.Clock) -> None:
    sse = (
        "data: "
        + orjson.dumps({"id": "c", "choices": [{"index": 0, "delta": {"content": "a"}}]}).decode()
    )

    def answer(method: str, path: str) -> object | None:
        if path == "/ep/run":
            return {"id": "j1", "status": "IN_QUEUE"}
        if path == "/ep/stream/j1":
            return {"status": "IN_PROGRESS", "stream": [{"output": sse + "\n\n"}]}
        return {"id": "j1", "status": "CANCELLED"}

    transport = Scripted(answer)
    async with upstream(transport).stream(attrs.evolve(REQ, stream=True), "m") as chunks:
        first = await chunks.__anext__()
    assert first[0].choices[0].delta.content == "a"
    assert [(m, p) for _, m, p in transport.sent] == [
        ("POST", "/ep/run"),
        ("GET", "/ep/stream/j1"),
        ("POST", "/ep/cancel/j1"),
    ]


async def test_the_parts_of_a_poll_that_says_the_job_failed_come_before_the_error(
    autojump_clock: trio.abc.Clock,
) -> None:
    def answer(method: str, path: str) -> object | None:
        if path == "/ep/run":
            return {"id": "j1", "status": "IN_QUEUE"}
        stream = [{"output": "Hello"}, {"output": " world"}]
        return {"id": "j1", "status": "FAILED", "stream": stream, "error": "worker died"}

    received: list[ChatChunk] = []

    async def read() -> None:
        async with upstream(Scripted(answer)).stream(attrs.evolve(REQ, stream=True), "m") as got:
            async for batch in got:
                received.extend(batch)

    with pytest.raises(StreamError, match="worker died"):
        await read()
    assert "".join(c.delta.content or "" for chunk in received for c in chunk.choices) == (
        "Hello world"
    )
