"""The ``runpod`` kind: a RunPod serverless endpoint, by its id.

``api = "openai"``: the endpoint's OpenAI-compatible route (the vLLM worker),
``https://api.runpod.ai/v2/{endpoint_id}/openai/v1``, served by the ``openai`` adapter
with vLLM's fix-ups. ``api = "native"``: the queue API, as a job (``adapters._jobs``):

* ``POST /v2/{id}/runsync`` with ``{"input": {...}}`` waits (up to 90 s by default)
  and answers ``{"id", "status", "output"}``; a job still ``IN_QUEUE`` or
  ``IN_PROGRESS`` is polled at ``GET /status/{job}`` until ``COMPLETED``, ``FAILED``
  (with ``error``), ``CANCELLED`` or ``TIMED_OUT``;
* a stream starts with ``POST /run`` (answering at once, ``IN_QUEUE``) and is read by
  asking ``GET /stream/{job}`` again and again: each answer is ``{"status", "stream":
  [{"output": ...}, ...]}`` with the parts produced since the last ask, until the
  status is final;
* ``POST /cancel/{job}`` stops a job the router no longer waits for;
* ``Authorization: Bearer`` with the RunPod API key; 401 for a bad key, 429 past the
  endpoint's rate limits.

The input is the vLLM worker's: ``messages`` and ``sampling_params`` (``max_tokens``,
``temperature``, ``top_p``, ``stop``, ``seed``), with ``stream``. Outputs are read in
the shapes workers give (``adapters._runpod_output``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ._base import (
    AdapterBase,
    Capabilities,
    Headers,
    error_for_status,
    error_object,
    path_segment,
    request_headers,
    upstream_json,
)
from ._compat import COMPATIBLE_HOSTS
from ._configs_hosted import RUNPOD_URL
from ._errors import GatewayError, ProviderInternalError, SerializationError, Timeout
from ._jobs import Job, JobState
from ._openai import OpenAIAdapter
from ._prompt import text_of
from ._runpod_output import RunPodStreamDecoder, answer_from_output
from ._types import GatewayRequest, UpstreamRequest

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._base import HTTPAdapter

__all__ = ["RunPodAdapter", "make_adapter"]

_STATES: dict[str, JobState] = {
    "IN_QUEUE": "running",
    "IN_PROGRESS": "running",
    "COMPLETED": "succeeded",
    "FAILED": "failed",
    "CANCELLED": "canceled",
    "TIMED_OUT": "failed",
}


class RunPodAdapter(AdapterBase):
    """RunPod's native queue API for one endpoint.

    Args:
        base_url: ``https://api.runpod.ai/v2``.
        endpoint_id: The endpoint.
        api_key: Sent as ``Authorization: Bearer``.
        poll_interval: Seconds between two polls (of a status or of a stream).
    """

    polled_stream = True

    def __init__(
        self,
        base_url: str,
        endpoint_id: str,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        name: str = "runpod",
        poll_interval: float = 0.5,
    ) -> None:
        self.name = name
        self.url = f"{base_url.rstrip('/')}/{path_segment(endpoint_id)}"
        self.poll_interval = poll_interval
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._headers, _ = request_headers(auth, headers)
        self._get_headers = tuple((k, v) for k, v in self._headers if k != "content-type")

    def __repr__(self) -> str:  # never the key
        return f"RunPodAdapter(name={self.name!r}, url={self.url!r})"

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities(vision=False, tools=False, prefill=False)

    def build_request(self, req: GatewayRequest, model: str) -> UpstreamRequest:
        """``/runsync`` (``/run`` for a stream). Raises UnsupportedCapability."""
        sampling: dict[str, Any] = {}
        if req.max_tokens is not None:
            sampling["max_tokens"] = req.max_tokens
        if req.temperature is not None:
            sampling["temperature"] = req.temperature
        if req.top_p is not None:
            sampling["top_p"] = req.top_p
        if req.stop:
            sampling["stop"] = list(req.stop)
        if isinstance(req.extra.get("seed"), int):
            sampling["seed"] = req.extra["seed"]
        messages = [
            {"role": "system" if m.role == "developer" else m.role, "content": text_of(m, "runpod")}
            for m in req.messages
        ]
        # An endpoint serves one model: the target's model names it for the operator only.
        job_input: dict[str, Any] = {"messages": messages, "sampling_params": sampling}
        if req.stream:
            job_input["stream"] = True
        body = orjson.dumps({"input": job_input})
        path = "/run" if req.stream else "/runsync"
        return UpstreamRequest("POST", self.url + path, self._headers, body)

    def parse_job(
        self, req: GatewayRequest, model: str, status: int, headers: Headers, body: bytes
    ) -> Job:
        raw = upstream_json(body)
        if not isinstance(raw, dict) or raw.get("status") not in _STATES or not raw.get("id"):
            raise SerializationError("not a RunPod job: no 'id' and known 'status'")
        job_id = path_segment(str(raw["id"]))
        state = _STATES[raw["status"]]
        job = Job(
            id=str(raw["id"]),
            state=state,
            poll=UpstreamRequest("GET", f"{self.url}/status/{job_id}", self._get_headers, b""),
            stream=UpstreamRequest("GET", f"{self.url}/stream/{job_id}", self._get_headers, b""),
            cancel=UpstreamRequest("POST", f"{self.url}/cancel/{job_id}", self._get_headers, b""),
        )
        if state == "succeeded" and not req.stream:
            return Job(job.id, state, answer=answer_from_output(raw.get("output")))
        if state == "failed":
            error = raw.get("error") or "no reason given"
            if raw["status"] == "TIMED_OUT":
                return Job(job.id, state, error=Timeout("the RunPod job timed out"))
            return Job(
                job.id, state, error=ProviderInternalError(f"the RunPod job failed: {error}")
            )
        if state == "canceled":
            return Job(job.id, state, error=ProviderInternalError("the RunPod job was cancelled"))
        return job

    def job_stream_decoder(self, req: GatewayRequest, model: str, job: Job) -> RunPodStreamDecoder:
        return RunPodStreamDecoder()

    def parse_response(self, status: int, headers: Headers, body: bytes) -> Any:
        raise SerializationError("a RunPod answer is a job (read through parse_job)")

    def stream_decoder(self) -> RunPodStreamDecoder:
        return RunPodStreamDecoder()

    def parse_error(self, status: int, headers: Headers, body: bytes) -> GatewayError:
        raw = error_object(body)
        message = raw.get("error") or raw.get("detail") or raw.get("message")
        if not message:
            text = body.decode(errors="replace").strip()[:200]
            message = text or f"upstream answered HTTP {status}"
        return error_for_status(status, str(message), headers=headers)

    def probe_request(self) -> UpstreamRequest:
        """``GET /v2/{id}/health``: the endpoint's workers and jobs, free."""
        return UpstreamRequest("GET", f"{self.url}/health", self._get_headers, b"")


def make_adapter(name: str, settings: Mapping[str, Any]) -> HTTPAdapter:
    """The registry's factory: ``settings`` are :class:`RunPodProvider`'s fields."""
    base_url = str(settings.get("base_url") or RUNPOD_URL).rstrip("/")
    endpoint = path_segment(str(settings["endpoint_id"]))
    headers = dict(settings.get("headers") or {})
    if settings.get("api", "openai") == "openai":
        vllm = COMPATIBLE_HOSTS["vllm"]
        return OpenAIAdapter(
            base_url=f"{base_url}/{endpoint}/openai/v1",
            api_key=settings.get("api_key"),
            headers=headers,
            name=name,
            fixups=vllm.fixups,
            stream_usage=True,
            prefill=vllm.prefill,
        )
    return RunPodAdapter(
        base_url=base_url,
        endpoint_id=str(settings["endpoint_id"]),
        api_key=settings.get("api_key"),
        headers=headers,
        name=name,
        poll_interval=float(settings.get("poll_interval") or 0.5),
    )
