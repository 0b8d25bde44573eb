"""A fake text-generation-inference server's native API.

``POST /generate`` and ``/generate_stream`` take ``{"inputs": str, "parameters": {...}}``
and refuse (422 ``{"error", "error_type": "validation"}``) what TGI refuses:
``temperature`` <= 0, ``top_p`` outside (0, 1), more than 4 ``stop`` sequences, an
unknown parameter. With :attr:`FakeTGI.token` set it wants ``Authorization: Bearer``.
The answer echoes the prompt's last line that is not a template marker
(``echo: <text>``); a prompt whose last text is a script's name (``long``,
``fail-429``, ``break-mid-stream``...) runs that script. Answers are ``{"generated_text", "details": {"finish_reason",
"generated_tokens"}}``; streamed as token events, the last with ``generated_text`` and
``details`` (``input_length`` too) and an ``eos_token`` special token. Script: the
shared one, ``long`` (finish ``length``), ``fail-<code>`` with TGI's error types
(``fail-ctx``: the validation error of a prompt too long), and ``error-mid-stream`` as
an in-band ``{"error", "error_type": "generation"}`` event. ``GET /health`` is 200.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import attrs

from tests.fakes._base import Answer, FakeServer, Received, Reply, Stream, echo, sse, words

__all__ = ["FakeTGI"]

_PARAMETERS = {
    "best_of", "decoder_input_details", "details", "do_sample", "frequency_penalty",
    "grammar", "max_new_tokens", "repetition_penalty", "return_full_text", "seed", "stop",
    "temperature", "top_k", "top_n_tokens", "top_p", "truncate", "typical_p", "watermark",
}  # fmt: skip
_ERRORS = {
    "400": (422, "validation", "Input validation error: `temperature` must be strictly positive"),
    "401": (401, "authentication", "Authorization header is invalid"),
    "404": (404, "not_found", "Model not found"),
    "429": (429, "overloaded", "Model is overloaded"),
    "500": (500, "incomplete_generation", "Incomplete generation"),
    "503": (503, "unavailable", "Model is loading"),
    "ctx": (
        422,
        "validation",
        "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. "
        "Given: 4000 `inputs` tokens and 200 `max_new_tokens`",
    ),
}
_MARKER = re.compile(r"<\|[^|]*\|>|^(System|User|Assistant):\s*")


def prompt_text(prompt: str) -> str:
    """The last line of ``prompt`` with text once template markers are gone."""
    lines = [_MARKER.sub("", line).strip() for line in prompt.splitlines()]
    texts = [line for line in lines if line and line not in ("user", "assistant", "system")]
    return texts[-1] if texts else ""


@attrs.define
class FakeTGI(FakeServer):
    token: str | None = None

    #: Tokens in every prompt.
    INPUT_LENGTH: ClassVar[int] = 9

    def answer(self, got: Received) -> Answer:
        if got.method == "GET" and got.path == "/health":
            return Reply(200, {})
        if self.token is not None and got.headers.get("authorization") != f"Bearer {self.token}":
            return self.failure("401", got)
        if got.method != "POST" or got.path not in ("/generate", "/generate_stream"):
            return self.failure("404", got)
        problem = _refused(got.body)
        if problem is not None:
            return Reply(422, {"error": problem, "error_type": "validation"})
        # No model in the body: a prompt whose last text is a script's name runs it.
        text = prompt_text(got.body["inputs"])
        script = text if re.fullmatch(r"[a-z0-9-]+", text) else "echo"
        return self.scripted(script, got, stream=got.path == "/generate_stream")

    def failure(self, code: str, got: Received) -> Reply:
        status, kind, message = _ERRORS[code]
        return Reply(status, {"error": message, "error_type": kind})

    def invalid(self, message: str) -> Reply:
        return Reply(422, {"error": message, "error_type": "validation"})

    def text(self, model: str, got: Received) -> str:
        return self.answer_text(model, got, echo([prompt_text(got.body["inputs"])]))

    def reply(self, model: str, got: Received) -> Reply:
        text = self.text(model, got)
        details: dict[str, Any] = {
            "finish_reason": "length" if model == "long" else "eos_token",
            "generated_tokens": len(words(text)),
            "seed": None,
            "prefill": [],
            "tokens": [],
        }
        return Reply(200, {"generated_text": text, "details": details})

    def stream(self, model: str, got: Received) -> Stream:
        text = self.text(model, got)
        pieces = [_token(i, w) for i, w in enumerate(words(text))]
        details = {
            "finish_reason": "length" if model == "long" else "eos_token",
            "generated_tokens": len(pieces) + 1,
            "input_length": self.INPUT_LENGTH,
            "seed": None,
        }
        end = {
            "index": len(pieces),
            "token": {"id": 2, "text": "</s>", "logprob": 0.0, "special": True},
            "top_tokens": None,
            "generated_text": text,
            "details": details,
        }
        error = {"error": "CUDA out of memory", "error_type": "generation"}
        return Stream(head=[], pieces=pieces, tail=[sse(end)], error=sse(error))


def _token(index: int, text: str) -> bytes:
    token = {"id": 100 + index, "text": text, "logprob": -0.1, "special": False}
    return sse(
        {
            "index": index,
            "token": token,
            "top_tokens": None,
            "generated_text": None,
            "details": None,
        }
    )


def _refused(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("inputs"), str):
        return "Input validation error: `inputs` must be a string"
    parameters = body.get("parameters") or {}
    unknown = sorted(set(parameters) - _PARAMETERS)
    if unknown:
        return f"Failed to deserialize the JSON body: unknown field `{unknown[0]}`"
    temperature = parameters.get("temperature")
    if temperature is not None and temperature <= 0:
        return "Input validation error: `temperature` must be strictly positive"
    top_p = parameters.get("top_p")
    if top_p is not None and not 0 < top_p < 1:
        return "Input validation error: `top_p` must be > 0.0 and < 1.0"
    if len(parameters.get("stop") or ()) > 4:
        return "Input validation error: `stop` supports up to 4 stop sequences. Given: 5"
    return None
