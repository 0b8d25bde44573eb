"""A fake RunPod serverless endpoint (``https://api.runpod.ai/v2/{endpoint_id}``).

Its OpenAI route, ``/v2/{id}/openai/v1/...``, is :class:`FakeOpenAI` (the vLLM
worker). Its native queue API runs the vLLM worker's handler on
``{"input": {"messages", "sampling_params", "stream"}}``:

- ``POST /runsync`` answers ``{"id", "status": "COMPLETED", "output": [<the
  chat.completion>]}`` (a generator handler's output is the list of what it yielded);
- ``POST /run`` answers ``{"id", "status": "IN_QUEUE"}``; ``GET /stream/{job}`` answers
  ``{"status", "stream": [{"output": <raw SSE text>}, ...]}``: the worker's OpenAI
  stream cut into pieces of 7 bytes (anywhere in an event), half of them on the first
  ask (``IN_PROGRESS``), the rest on the next (``COMPLETED``);
- ``GET /status/{job}`` reads a job; ``POST /cancel/{job}`` cancels it (recorded in
  :attr:`FakeRunPod.cancelled`, which sets :attr:`cancel_seen`); ``GET /health``.

Every request wants ``Authorization: Bearer <key>`` (401 with an empty body, as RunPod
does). The last user text is the script: ``slow`` (``IN_PROGRESS`` until read twice),
``silent`` (never done, its stream never gives anything), ``crash`` (``FAILED`` with
an ``error``), ``legacy`` (the worker's earlier output, ``{"choices": [{"tokens"}],
"usage": {"input", "output"}}``), ``fail-429`` / ``fail-500`` / ``fail-400``.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import orjson
import trio

from tests.fakes._base import Answer, Received, Reply, echo, words
from tests.fakes.openai_upstream import FakeOpenAI

__all__ = ["FakeRunPod"]

_NATIVE = re.compile(
    r"/v2/([A-Za-z0-9_-]+)/(runsync|run|status|stream|cancel|health)(?:/([\w-]+))?"
)
_STATUS = {"400": 400, "429": 429, "500": 500}


@attrs.define
class Job:
    id: str
    script: str
    body: dict[str, Any]
    status: str = "IN_QUEUE"
    reads: int = 0
    streamed: int = 0


@attrs.define
class FakeRunPod(FakeOpenAI):
    endpoint: str = "vllm-abc123"
    jobs: dict[str, Job] = attrs.field(factory=dict)
    cancelled: list[str] = attrs.field(factory=list)
    cancel_seen: trio.Event = attrs.field(factory=trio.Event)
    #: Set when a job was first read (its status, or its stream).
    read_seen: trio.Event = attrs.field(factory=trio.Event)

    def answer(self, got: Received) -> Answer:
        if got.headers.get("authorization") != f"Bearer {self.key}":
            return Reply(401, None)
        prefix = f"/v2/{self.endpoint}/openai"
        if got.path.startswith(prefix + "/"):
            return super().answer(attrs.evolve(got, path=got.path.removeprefix(prefix)))
        native = _NATIVE.fullmatch(got.path)
        if native is None or native.group(1) != self.endpoint:
            return Reply(404, {"error": "endpoint not found"})
        action, job_id = native.group(2), native.group(3)
        if action == "health":
            return Reply(200, {"jobs": {"completed": 1}, "workers": {"idle": 1, "running": 0}})
        if action in ("run", "runsync"):
            return self.submit(got, sync=action == "runsync")
        job = self.jobs.get(job_id or "")
        if job is None:
            return Reply(404, {"error": "job not found"})
        if action == "cancel":
            self.cancelled.append(job.id)
            self.cancel_seen.set()
            job.status = "CANCELLED"
            return Reply(200, {"id": job.id, "status": "CANCELLED"})
        self.read_seen.set()
        if action == "status":
            return self.status(job)
        return self.stream_parts(job)

    def submit(self, got: Received, *, sync: bool) -> Reply:
        job_input = got.body.get("input")
        if not isinstance(job_input, dict) or not isinstance(job_input.get("messages"), list):
            return Reply(400, {"error": "Job input must contain one of: prompt/messages."})
        script = _script(job_input["messages"])
        if script.startswith("fail-"):
            status = _STATUS[script.removeprefix("fail-")]
            headers = [(b"retry-after", b"3")] if status == 429 else []
            return Reply(status, {"error": f"request failed with {status}"}, headers)
        job = Job(f"job{len(self.jobs) + 1}-e1", script, job_input)
        self.jobs[job.id] = job
        if sync and script not in ("slow", "silent"):
            job.status = "FAILED" if script == "crash" else "COMPLETED"
        elif sync:
            job.status = "IN_PROGRESS"
        return Reply(200, self.state(job))

    def status(self, job: Job) -> Reply:
        job.reads += 1
        if job.status in ("IN_QUEUE", "IN_PROGRESS"):
            done = job.script != "silent" and (job.script != "slow" or job.reads >= 2)
            job.status = "COMPLETED" if done else "IN_PROGRESS"
        return Reply(200, self.state(job))

    def state(self, job: Job) -> dict[str, Any]:
        body: dict[str, Any] = {"id": job.id, "status": job.status}
        if job.status == "COMPLETED":
            body["output"] = [self.output(job)]
            body["executionTime"], body["delayTime"] = 420, 12
        if job.status == "FAILED":
            body["error"] = "handler: CUDA out of memory"
        return body

    def text(self, job: Job) -> str:
        return echo([_last_user(job.body["messages"])])

    def output(self, job: Job) -> dict[str, Any]:
        text = self.text(job)
        if job.script == "legacy":
            return {"choices": [{"tokens": [text]}], "usage": {"input": 9, "output": 3}}
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        usage = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
        return {"id": "chatcmpl-rp1", "object": "chat.completion", "model": "fake-llm",
                "created": 1700000000, "choices": [choice], "usage": usage}  # fmt: skip

    def sse_text(self, job: Job) -> bytes:
        """The vLLM worker's OpenAI stream for ``job`` (usage included)."""

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            body = {"id": "chatcmpl-rp1", "object": "chat.completion.chunk",
                    "created": 1700000000, "model": "fake-llm", "choices": [choice]}  # fmt: skip
            return b"data: " + orjson.dumps(body) + b"\n\n"

        usage = {"id": "chatcmpl-rp1", "object": "chat.completion.chunk", "choices": [],
                 "model": "fake-llm", "usage": {"prompt_tokens": 9, "completion_tokens": 3,
                                                "total_tokens": 12}}  # fmt: skip
        parts = [chunk({"role": "assistant", "content": ""})]
        parts += [chunk({"content": w}) for w in words(self.text(job))]
        parts += [chunk({}, "stop"), b"data: " + orjson.dumps(usage) + b"\n\n", b"data: [DONE]\n\n"]
        return b"".join(parts)

    def stream_parts(self, job: Job) -> Reply:
        if job.script == "silent" or job.status == "CANCELLED":
            job.status = "IN_PROGRESS" if job.status != "CANCELLED" else job.status
            return Reply(200, {"id": job.id, "status": job.status, "stream": []})
        text = self.sse_text(job).decode()
        pieces = [text[i : i + 7] for i in range(0, len(text), 7)]
        half = len(pieces) // 2
        if job.streamed == 0:
            job.streamed, job.status = half, "IN_PROGRESS"
            sent = pieces[:half]
        else:
            sent, job.streamed, job.status = pieces[job.streamed :], len(pieces), "COMPLETED"
        stream = [{"output": piece} for piece in sent]
        return Reply(200, {"id": job.id, "status": job.status, "stream": stream})


def _last_user(messages: list[dict[str, Any]]) -> str:
    return next((str(m["content"]) for m in reversed(messages) if m["role"] == "user"), "")


def _script(messages: list[dict[str, Any]]) -> str:
    text = _last_user(messages)
    return text if re.fullmatch(r"[a-z0-9-]+", text) else "echo"
