"""The built-in ``simulated`` provider: answers with no network and no key.

It plays a scripted upstream so that the shipped config, demos and tests exercise the
whole router: a latency drawn from a log-normal distribution fixed by its median and
p99, failures at a given rate, streams at a given token rate. It is pure: it returns a
:class:`SimulatedPlan` (what to answer and when), and the I/O layer sleeps and sends.
Seeded, the same requests get the same plans.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
import re

import attrs

from ._embeddings import refuse_dimensions, refuse_extra
from ._errors import GatewayError, ProviderInternalError, UnsupportedParameter
from ._passthrough import refuse_untranslated
from ._types import (
    ChatChunk,
    Choice,
    ChunkChoice,
    Delta,
    EmbeddingInput,
    EmbeddingRequest,
    EmbeddingResponse,
    GatewayRequest,
    GatewayResponse,
    Message,
    Usage,
)

__all__ = ["SIMULATED_DIMENSIONS", "SimulatedEmbedding", "SimulatedModel", "SimulatedPlan"]

#: The length of a simulated embedding unless the request asks for fewer.
SIMULATED_DIMENSIONS = 256
_MAX_DIMENSIONS = 4096

# z-score of the 99th percentile of a standard normal distribution.
_Z99 = 2.3263478740408408
# A token is a word with the whitespace around it, so that the tokens join back exactly.
_WORD = re.compile(r"\s*\S+\s*|\s+")
#: Texts up to this many characters have their tokens memoized (see _words).
_MEMO_CHARS = 4096
_CANNED = (
    "This is a simulated answer from llm-router's built-in provider. It needs no key "
    "and no network, so you can try routes, fallbacks and streaming before you point "
    "the router at a real model."
)


@attrs.frozen
class SimulatedPlan:
    """What one simulated attempt does: wait, then fail or answer token by token."""

    id: str
    model: str
    created: int
    latency: float  # seconds before the first token (or the error)
    token_interval: float  # seconds between streamed tokens
    tokens: tuple[str, ...]
    finish_reason: str
    usage: Usage
    error: GatewayError | None = None

    def response(self) -> GatewayResponse:
        message = Message(role="assistant", content="".join(self.tokens))
        return GatewayResponse(
            id=self.id,
            model=self.model,
            created=self.created,
            choices=(Choice(index=0, message=message, finish_reason=self.finish_reason),),
            usage=self.usage,
        )

    def chunks(self, include_usage: bool) -> list[ChatChunk]:
        """The stream: a role chunk, one chunk per token, the finish, maybe usage."""
        chunk = functools.partial(ChatChunk, self.id, self.model, self.created)
        out = [chunk((ChunkChoice(0, Delta(role="assistant", content="")),))]
        out += [chunk((ChunkChoice(0, Delta(content=t)),)) for t in self.tokens]
        out.append(chunk((ChunkChoice(0, Delta(), self.finish_reason),)))
        if include_usage:
            out.append(chunk((), self.usage))
        return out


@attrs.frozen
class SimulatedEmbedding:
    """What one simulated embeddings attempt does: wait, then fail or answer."""

    latency: float
    response: EmbeddingResponse
    error: GatewayError | None = None


class SimulatedModel:
    """A simulated upstream with its own random stream.

    Args:
        median: Median latency to the first token, in seconds.
        p99: 99th-percentile latency, in seconds (>= median).
        error_rate: Share of attempts that fail with a 500-like error.
        tokens_per_second: Streaming rate after the first token.
        seed: Makes the sequence of plans reproducible.
    """

    def __init__(
        self,
        median: float,
        p99: float,
        error_rate: float = 0.0,
        tokens_per_second: float = 200.0,
        seed: int | None = None,
        name: str = "simulated",
    ) -> None:
        if not 0 < median <= p99:
            raise ValueError("need 0 < median <= p99")
        self.name = name
        self._mu = math.log(median)
        self._sigma = math.log(p99 / median) / _Z99
        self._error_rate = error_rate
        self._interval = 1.0 / tokens_per_second
        self._rng = random.Random(seed)

    def latency(self) -> float:
        """One draw of the latency distribution."""
        return math.exp(self._rng.gauss(self._mu, self._sigma))

    def plan(self, req: GatewayRequest, model: str, created: int) -> SimulatedPlan:
        """Raises UnsupportedParameter for a ``response_format`` other than text: its
        answers are prose, and routing moves on to a target that can give JSON."""
        fmt = req.extra.get("response_format")
        if fmt is not None and not (isinstance(fmt, dict) and fmt.get("type") == "text"):
            raise UnsupportedParameter(
                f"the simulated provider {self.name} answers in prose, not JSON",
                upstream=f"{self.name}:{model}",
                param="response_format",
            )
        refuse_untranslated(req, None, f"the simulated provider {self.name}")
        latency = self.latency()
        failed = self._rng.random() < self._error_rate
        text = _answer_text(req, model)
        tokens = _words(text) or ("",)
        finish = "stop"
        if req.max_tokens is not None and len(tokens) > req.max_tokens:
            tokens, finish = tokens[: req.max_tokens], "length"
        prompt = sum(len(_words(m.text())) for m in req.messages)
        error = None
        if failed:
            error = ProviderInternalError(
                "simulated upstream failure", upstream=f"{self.name}:{model}", upstream_status=500
            )
        return SimulatedPlan(
            id=f"chatcmpl-sim{self._rng.getrandbits(48):012x}",
            model=model,
            created=created,
            latency=latency,
            token_interval=self._interval,
            tokens=tokens,
            finish_reason=finish,
            usage=_usage(prompt, len(tokens)),
            error=error,
        )

    def embed_plan(self, req: EmbeddingRequest, model: str) -> SimulatedEmbedding:
        """Vectors that depend only on the model, the input and the dimensions (a
        hash seeds each), so the same text always gets the same vector, alone or
        among others; the latency and failures are drawn as for chat.

        Raises:
            UnsupportedParameter: ``dimensions`` beyond 4096, or a parameter beyond
                OpenAI's own (nothing is silently dropped, here either).
        """
        refuse_extra(req, "simulated")
        if req.dimensions is not None and req.dimensions > _MAX_DIMENSIONS:
            refuse_dimensions(req, "simulated", model, range(1, _MAX_DIMENSIONS + 1))
        latency = self.latency()
        failed = self._rng.random() < self._error_rate
        size = req.dimensions or SIMULATED_DIMENSIONS
        tokens = tuple(
            len(i) if isinstance(i, tuple) else len(_WORD.findall(i)) for i in req.inputs
        )
        response = EmbeddingResponse(
            model=model,
            vectors=tuple(_vector(model, i, size) for i in req.inputs),
            usage=Usage(prompt_tokens=sum(tokens)),
            input_tokens=tokens,
        )
        error = None
        if failed:
            error = ProviderInternalError(
                "simulated upstream failure", upstream=f"{self.name}:{model}", upstream_status=500
            )
        return SimulatedEmbedding(latency, response, error)


def _words(text: str) -> tuple[str, ...]:
    """``text`` as tokens; a short text's are counted once (a simulation, a load test
    or a demo sends the same prompts and gets the same answers many times)."""
    if len(text) <= _MEMO_CHARS:
        return _memo_words(text)
    return tuple(_WORD.findall(text))


@functools.lru_cache(maxsize=512)
def _memo_words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text))


@functools.lru_cache(maxsize=1024)
def _usage(prompt: int, completion: int) -> Usage:
    """Usage is immutable: answers of the same size share one."""
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def _vector(model: str, item: EmbeddingInput, size: int) -> tuple[float, ...]:
    """A unit vector of ``size`` seeded by a hash of ``model`` and ``item``."""
    key = item if isinstance(item, str) else ",".join(map(str, item))
    seed = hashlib.sha256(f"{model}\0{key}".encode()).digest()
    rng = random.Random(seed)
    values = [rng.gauss(0.0, 1.0) for _ in range(size)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return tuple(v / norm for v in values)


def _answer_text(req: GatewayRequest, model: str) -> str:
    """``echo`` repeats the last user message; any other model gives a canned answer.

    A trailing assistant message that begins that answer is continued (a prefill): the
    answer is the rest of it.
    """
    text = _CANNED
    if model == "echo":
        users = [m for m in req.messages if m.role == "user"]
        text = users[-1].text() if users else ""
    if req.messages and req.messages[-1].role == "assistant":
        prefill = req.messages[-1].text()
        if text.startswith(prefill):
            return text[len(prefill) :]
    return text
