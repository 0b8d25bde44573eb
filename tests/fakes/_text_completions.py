"""OpenAI's legacy text completions (``POST /v1/completions``) for the OpenAI-format fakes.

``model`` and ``prompt`` are required (Azure names the model in its URL instead). Each
prompt (a string, a token array, or an array of either) gets ``n`` choices of
`` echo: <prompt>`` (a token array's prompt reads ``tokens 1 2 3``), the prompt in front
with ``echo: true``, finish ``length`` for a ``long`` model and ``stop`` otherwise;
``logprobs: N`` adds OpenAI's legacy logprobs (a token per word). Usage counts words.
Streams are ``text_completion`` events, a word an event, the finish in an event of its
own with empty text, then the usage event when ``stream_options.include_usage`` is set,
then ``data: [DONE]``. The shared script applies by model (``fail-<code>``, ``silent``,
the stream cuts, ``error-mid-stream``; see :mod:`tests.fakes._base`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes._base import SILENT, Chunks, Reply, Stream, sse, words

if TYPE_CHECKING:
    from tests.fakes._base import Answer, Received
    from tests.fakes.openai_upstream import FakeOpenAI

__all__ = ["ID", "completion_text", "text_completions"]

ID = "cmpl-fake1"
CREATED = 1700000000


def _prompts(prompt: Any) -> list[str]:
    """Each prompt of a request as text (a token array as ``tokens 1 2 3``)."""
    if isinstance(prompt, str):
        return [prompt]
    if prompt and all(isinstance(t, int) for t in prompt):
        return ["tokens " + " ".join(str(t) for t in prompt)]
    return [p if isinstance(p, str) else _prompts(p)[0] for p in prompt]


def completion_text(prompt: str, echo: bool = False) -> str:
    """What the fakes complete ``prompt`` with (after the prompt itself with ``echo``)."""
    return (prompt if echo else "") + " echo: " + prompt


def _logprobs(text: str) -> dict[str, Any]:
    tokens = words(text)
    offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    return {
        "tokens": tokens,
        "token_logprobs": [-0.5] * len(tokens),
        "top_logprobs": [{t: -0.5} for t in tokens],
        "text_offset": offsets,
    }


def text_completions(fake: FakeOpenAI, got: Received, model: str | None = None) -> Answer:
    """The answer to ``got``; ``model``: the deployment's (Azure's body has none)."""
    required = ("prompt",) if model is not None else ("model", "prompt")
    missing = [name for name in required if name not in got.body]
    if missing:
        return fake.invalid(f"Missing required parameter: '{missing[0]}'.")
    model = model or str(got.body["model"])
    fake.calls[model] = fake.calls.get(model, 0) + 1
    if model == "silent":
        return SILENT
    if model.startswith("fail-"):
        return fake.failure(model.removeprefix("fail-"), got)
    body = got.body
    n = int(body.get("n") or 1)
    finish = "length" if model == "long" else "stop"
    texts = [completion_text(p, bool(body.get("echo"))) for p in _prompts(body["prompt"])]
    prompt_tokens = sum(len(p.split()) for p in _prompts(body["prompt"]))
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": n * sum(len(t.split()) for t in texts),
        "total_tokens": prompt_tokens + n * sum(len(t.split()) for t in texts),
    }
    scored = body.get("logprobs") is not None
    if not body.get("stream"):
        choices = [
            {
                "text": text,
                "index": i * n + j,
                "logprobs": _logprobs(text) if scored else None,
                "finish_reason": finish,
            }
            for i, text in enumerate(texts)
            for j in range(n)
        ]
        return Reply(200, _body(model, choices, usage=usage))
    pieces = [
        _event(model, i * n + j, piece, None, scored)
        for i, text in enumerate(texts)
        for j in range(n)
        for piece in words(text)
    ]
    tail = [_event(model, i, "", finish, False) for i in range(len(texts) * n)]
    if (body.get("stream_options") or {}).get("include_usage"):
        tail.append(sse(_body(model, [], usage=usage)))
    error = {"message": "The server had an error.", "type": "server_error"}
    stream = Stream(
        head=[],
        pieces=pieces,
        tail=[*tail, b"data: [DONE]\n\n"],
        error=sse({"error": {**error, "param": None, "code": None}}),
    )
    return Chunks(stream, fake.cut(model, stream))


def _body(model: str, choices: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {
        "id": ID,
        "object": "text_completion",
        "created": CREATED,
        "model": model,
        "choices": choices,
        **more,
    }


def _event(model: str, index: int, text: str, finish: str | None, scored: bool) -> bytes:
    choice = {
        "text": text,
        "index": index,
        "logprobs": _logprobs(text) if scored else None,
        "finish_reason": finish,
    }
    return sse(_body(model, [choice]))
