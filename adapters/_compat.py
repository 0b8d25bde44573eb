"""The OpenAI-compatible hosts known by name (one table, `COMPATIBLE_HOSTS`), and their
known deviations, as pure fix-ups of parsed JSON.

The ``openai`` adapter serves every host that speaks Chat Completions; the hosts known
by name (``vllm``, ``together``, ``groq``, ``mistral``, ``deepseek``, ``openrouter``,
``fireworks``, ``ai21``) differ in small ways, each handled by a function here that
the adapter applies to a request body before it is sent, to an answer or a stream
chunk after it is parsed, and to an error after it is mapped:

* all of them: the ``developer`` role is OpenAI's; hosts expect ``system``;
* Mistral: ``seed`` is ``random_seed``; tool-call ids must be exactly 9 alphanumerics
  (rewritten deterministically, the same id always to the same 9 characters, so that a
  call and its result still match, and without a collision within one request);
  finish reasons ``model_length`` (-> ``length``) and ``error`` (-> an error);
* Groq: 400s for ``logprobs``, ``logit_bias``, ``top_logprobs``, ``messages[].name`` and
  ``n`` != 1 (dropped, or refused for ``n`` > 1); stream usage in ``x_groq.usage``;
  498 ``capacity_exceeded`` is overload;
* DeepSeek: finish reason ``insufficient_system_resource`` means the answer was cut off
  for want of capacity: :class:`Overloaded`, so another attempt may finish it;
* AI21: string content, no images, ``json_object`` only (``adapters._ai21``);
* Together: a 403 for prompt + ``max_tokens`` over the context window;
* OpenRouter: 408 is its generation timeout; ``finish_reason: "error"``;
* any of them: 402 (credits, balance) is the operator's account, not the client's
  request;
* a trailing assistant message (a prefill): vLLM and Mistral continue it when told
  to (``adapters._prefill``), Groq as it is; OpenAI and the others answer it anew.

SSE comment keep-alives (OpenRouter, DeepSeek) and vLLM's flat error body need nothing
here: the SSE decoder and the openai adapter's error reader already handle them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import attrs

from ._ai21 import ai21_request
from ._errors import (
    ContextLengthExceeded,
    GatewayError,
    Overloaded,
    ProviderInternalError,
    StreamError,
    Timeout,
    UnsupportedCapability,
)
from ._prefill import mistral_prefix, vllm_continue

__all__ = [
    "COMPATIBLE_HOSTS",
    "COMPAT_KINDS",
    "CompatibleHost",
    "Fixups",
    "compat_fixups",
    "mistral_tool_call_id",
]

Body = dict[str, Any]


def _same(raw: Body) -> Body:
    return raw


def _same_error(status: int, err: GatewayError) -> GatewayError:
    return err


@attrs.frozen
class Fixups:
    """One host's fix-ups; each is the identity unless the host needs it.

    Attributes:
        request: The request body (as ``request_to_wire`` built it) -> what to send.
        response: A parsed non-streamed answer -> what ``response_from_wire`` reads.
        chunk: A parsed stream chunk -> what ``chunk_from_wire`` reads.
        error: ``(status, mapped error)`` -> the error to raise.

    ``request`` may raise UnsupportedCapability; ``response`` and ``chunk`` may raise a
    GatewayError for a failure the host reports in a 200 answer.
    """

    request: Callable[[Body], Body] = _same
    response: Callable[[Body], Body] = _same
    chunk: Callable[[Body], Body] = _same
    error: Callable[[int, GatewayError], GatewayError] = _same_error


IDENTITY = Fixups()

# -- shared -----------------------------------------------------------------------------


def _system_not_developer(body: Body) -> Body:
    messages = body.get("messages")
    if isinstance(messages, list) and any(
        isinstance(m, dict) and m.get("role") == "developer" for m in messages
    ):
        body = {
            **body,
            "messages": [
                {**m, "role": "system"}
                if isinstance(m, dict) and m.get("role") == "developer"
                else m
                for m in messages
            ],
        }
    return body


def _payment_required(status: int, err: GatewayError) -> GatewayError:
    """402: the operator's credits or balance ran out; another target may serve."""
    if status == 402:
        return ProviderInternalError(
            f"the upstream refused for billing reasons (HTTP 402): {err.message}",
            upstream_status=status,
        )
    return err


def _finish_reasons(raw: Body, mapping: dict[str, str]) -> Body:
    choices = raw.get("choices")
    if not isinstance(choices, list) or not any(
        isinstance(c, dict) and c.get("finish_reason") in mapping for c in choices
    ):
        return raw
    fixed = [
        {**c, "finish_reason": mapping[c["finish_reason"]]}
        if isinstance(c, dict) and c.get("finish_reason") in mapping
        else c
        for c in choices
    ]
    return {**raw, "choices": fixed}


def _finished_with(raw: Body, reason: str) -> bool:
    choices = raw.get("choices")
    return isinstance(choices, list) and any(
        isinstance(c, dict) and c.get("finish_reason") == reason for c in choices
    )


# -- Mistral ----------------------------------------------------------------------------

_MISTRAL_ID = re.compile(r"[A-Za-z0-9]{9}")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def mistral_tool_call_id(original: str, salt: int = 0) -> str:
    """``original`` as Mistral's 9 alphanumerics: itself if it already is, else a hash."""
    if salt == 0 and _MISTRAL_ID.fullmatch(original):
        return original
    seed = original if salt == 0 else f"{original}\x00{salt}"
    n = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")
    out = []
    for _ in range(9):
        n, digit = divmod(n, 62)
        out.append(_BASE62[digit])
    return "".join(out)


def _mistral_request(body: Body) -> Body:
    body = _system_not_developer(body)
    if "seed" in body:
        body = dict(body)
        seed = body.pop("seed")
        body.setdefault("random_seed", seed)
    mapping: dict[str, str] = {}
    taken: dict[str, str] = {}

    def short(original: str) -> str:
        if original not in mapping:
            salt = 0
            candidate = mistral_tool_call_id(original)
            while taken.get(candidate, original) != original:  # a collision: rehash
                salt += 1
                candidate = mistral_tool_call_id(original, salt)
            mapping[original] = candidate
            taken[candidate] = original
        return mapping[original]

    messages = []
    for m in body.get("messages") or ():
        if isinstance(m, dict) and (m.get("tool_calls") or m.get("tool_call_id")):
            m = dict(m)
            if m.get("tool_calls"):
                m["tool_calls"] = [
                    {**c, "id": short(str(c.get("id") or ""))} if isinstance(c, dict) else c
                    for c in m["tool_calls"]
                ]
            if m.get("tool_call_id"):
                m["tool_call_id"] = short(str(m["tool_call_id"]))
        messages.append(m)
    if "messages" in body:
        body = mistral_prefix({**body, "messages": messages})
    return body


def _mistral_answer(raw: Body, error: type[GatewayError]) -> Body:
    if _finished_with(raw, "error"):
        raise error("Mistral reported an error while generating (finish_reason 'error')")
    return _finish_reasons(raw, {"model_length": "length"})


# -- Groq -------------------------------------------------------------------------------

_GROQ_REFUSES = ("logprobs", "logit_bias", "top_logprobs")


def _groq_request(body: Body) -> Body:
    body = _system_not_developer(body)
    n = body.get("n")
    if n is not None and n != 1:
        raise UnsupportedCapability("groq answers with one choice only (n = 1)", param="n")
    body = {k: v for k, v in body.items() if k not in _GROQ_REFUSES and k != "n"}
    messages = body.get("messages")
    if isinstance(messages, list):
        body["messages"] = [
            {k: v for k, v in m.items() if k != "name"} if isinstance(m, dict) else m
            for m in messages
        ]
    return body


def _groq_chunk(raw: Body) -> Body:
    extra = raw.get("x_groq")
    if (
        raw.get("usage") is None
        and isinstance(extra, dict)
        and isinstance(extra.get("usage"), dict)
    ):
        return {**raw, "usage": extra["usage"]}
    return raw


def _groq_error(status: int, err: GatewayError) -> GatewayError:
    if status == 498:  # capacity_exceeded (flex tier)
        return Overloaded(err.message, upstream_status=status, retry_after=err.retry_after)
    return _payment_required(status, err)


# -- DeepSeek ---------------------------------------------------------------------------


def _deepseek_answer(raw: Body) -> Body:
    if _finished_with(raw, "insufficient_system_resource"):
        raise Overloaded(
            "DeepSeek cut the answer short for want of capacity "
            "(finish_reason 'insufficient_system_resource')"
        )
    return raw


# -- Together ---------------------------------------------------------------------------

_CONTEXT_WORDS = re.compile(r"context length|context window|max_new_tokens|must be <=", re.I)


def _together_error(status: int, err: GatewayError) -> GatewayError:
    # Together answers 403, not 400, when prompt + max_tokens exceed the window.
    if status in (400, 403, 422) and _CONTEXT_WORDS.search(err.message):
        return ContextLengthExceeded(err.message, upstream_status=status)
    return _payment_required(status, err)


# -- OpenRouter -------------------------------------------------------------------------


def _openrouter_chunk(raw: Body) -> Body:
    # An error during generation arrives as a 200 chunk; with an ``error`` object the
    # decoder raises before we see it, without one the finish reason still says it.
    if _finished_with(raw, "error"):
        raise StreamError("OpenRouter reported an error while generating")
    return raw


def _openrouter_response(raw: Body) -> Body:
    if _finished_with(raw, "error"):
        raise ProviderInternalError("OpenRouter reported an error while generating")
    return raw


def _openrouter_error(status: int, err: GatewayError) -> GatewayError:
    if status == 408:
        return Timeout(err.message, upstream_status=status)
    return _payment_required(status, err)


@attrs.frozen
class CompatibleHost:
    """An OpenAI-compatible host known by name: a ``kind`` that is data, not a class.

    Attributes:
        kind: Its ``kind`` in ``[providers.*]``.
        base_url: Its default base URL (as the OpenAI SDK means it, with ``/v1``).
        fixups: Its deviations from OpenAI, fixed up.
        stream_usage: Whether it takes ``stream_options.include_usage``.
        rate_limits: Whether it sends OpenAI's ``x-ratelimit-*`` headers.
        system: Its ``gen_ai.system`` name in traces (None: the kind).
        prefill: Whether it continues a trailing assistant message (with its fix-ups).
        text_completions: Whether it serves the legacy ``/completions`` API.
    """

    kind: str
    base_url: str
    fixups: Fixups = IDENTITY
    stream_usage: bool = True
    rate_limits: bool = True
    system: str | None = None
    prefill: bool = False
    text_completions: bool = True


_HOSTS = (
    CompatibleHost(
        "vllm",
        "http://127.0.0.1:8000/v1",
        Fixups(request=lambda body: vllm_continue(_system_not_developer(body))),
        rate_limits=False,
        prefill=True,
    ),
    CompatibleHost(
        "together",
        "https://api.together.xyz/v1",
        Fixups(request=_system_not_developer, error=_together_error),
    ),
    CompatibleHost(
        "groq",
        "https://api.groq.com/openai/v1",
        Fixups(request=_groq_request, chunk=_groq_chunk, error=_groq_error),
        prefill=True,  # documented: "Assistant Message Prefilling"
        text_completions=False,  # chat only
    ),
    CompatibleHost(
        "mistral",
        "https://api.mistral.ai/v1",
        Fixups(
            request=_mistral_request,
            response=lambda raw: _mistral_answer(raw, ProviderInternalError),
            chunk=lambda raw: _mistral_answer(raw, StreamError),
            error=_payment_required,
        ),
        stream_usage=False,
        rate_limits=False,
        system="mistral_ai",
        prefill=True,
        text_completions=False,  # chat only (code completion is /v1/fim/completions)
    ),
    CompatibleHost(
        "deepseek",
        "https://api.deepseek.com/v1",
        Fixups(
            request=_system_not_developer,
            response=_deepseek_answer,
            chunk=_deepseek_answer,
            error=_payment_required,
        ),
        text_completions=False,  # completions are a beta at another base URL (/beta)
    ),
    CompatibleHost(
        "openrouter",
        "https://openrouter.ai/api/v1",
        Fixups(
            request=_system_not_developer,
            response=_openrouter_response,
            chunk=_openrouter_chunk,
            error=_openrouter_error,
        ),
    ),
    CompatibleHost(
        "ai21",
        "https://api.ai21.com/studio/v1",
        Fixups(request=ai21_request, error=_payment_required),
        stream_usage=False,  # no stream_options: the last chunk carries usage anyway
        rate_limits=False,
    ),
    CompatibleHost(
        "fireworks",
        "https://api.fireworks.ai/inference/v1",
        Fixups(request=_system_not_developer, error=_payment_required),
    ),
)
#: The OpenAI-compatible hosts known by name, by ``kind``.
COMPATIBLE_HOSTS: dict[str, CompatibleHost] = {host.kind: host for host in _HOSTS}
COMPAT_KINDS = tuple(sorted(COMPATIBLE_HOSTS))


def compat_fixups(kind: str) -> Fixups:
    """The fix-ups for provider ``kind``; the identity for OpenAI itself and others."""
    host = COMPATIBLE_HOSTS.get(kind)
    return host.fixups if host is not None else IDENTITY
