"""The ``[providers.NAME]`` blocks of the hosted-inference kinds: ``huggingface``,
``replicate`` and ``runpod`` (``ai21`` is an OpenAI-compatible host by name, and shares
``OpenAIProvider``). Like ``_configs``, this imports no adapter."""

import re
from typing import Any, Literal

import attrs

from rules import (
    Duration,
    FieldError,
    HTTPProvider,
    SecretRef,
    field_local,
    positive,
    url_field,
)

from ._prompt import Template

__all__ = [
    "HF_ROUTER_URL",
    "REPLICATE_URL",
    "RUNPOD_URL",
    "TGI_URL",
    "HuggingFaceProvider",
    "ReplicateProvider",
    "RunPodProvider",
]

HF_ROUTER_URL = "https://router.huggingface.co/v1"
TGI_URL = "http://127.0.0.1:8080"
REPLICATE_URL = "https://api.replicate.com/v1"
RUNPOD_URL = "https://api.runpod.ai/v2"

_ENDPOINT_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_INPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _hf_url(provider: Any) -> str:
    return TGI_URL if provider.api == "tgi" else HF_ROUTER_URL


def _between(low: float, high: float) -> Any:
    def check(instance: Any, attribute: "attrs.Attribute[Any]", value: float) -> None:
        if not low <= value <= high:
            raise FieldError(f"must be between {low:g}s and {high:g}s", (attribute.name,))

    return field_local(check)


@field_local
def _input_name(instance: Any, attribute: "attrs.Attribute[Any]", value: str) -> None:
    if not _INPUT_NAME.fullmatch(value):
        raise FieldError("must be an input name (letters, digits, _)", (attribute.name,))


@field_local
def _endpoint_id(instance: Any, attribute: "attrs.Attribute[Any]", value: str) -> None:
    if not _ENDPOINT_ID.fullmatch(value):
        raise FieldError(
            "must be a RunPod endpoint id (letters, digits, - and _)", (attribute.name,)
        )


@attrs.frozen(kw_only=True)
class HuggingFaceProvider(HTTPProvider):
    """Hugging Face: the Inference Providers router, or a text-generation-inference server.

    Attributes:
        api: ``openai``: Chat Completions (the router at ``router.huggingface.co/v1``,
            or a TGI server's Messages API at ``http://host:port/v1``); ``tgi``: a TGI
            server's native ``/generate`` and ``/generate_stream``.
        base_url: Defaults to the router (``openai``) or ``http://127.0.0.1:8080``
            (``tgi``, the server's root, no ``/v1``).
        api_key: A Hugging Face token, sent as ``Authorization: Bearer``.
        template: ``tgi`` only: how a conversation becomes the prompt.
    """

    kind: Literal["huggingface"] = "huggingface"
    api: Literal["openai", "tgi"] = "openai"
    base_url: str = url_field(attrs.Factory(_hf_url, takes_self=True))
    api_key: SecretRef | None = None
    template: Template = "chatml"
    models: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class ReplicateProvider(HTTPProvider):
    """Replicate's predictions API; a target names ``owner/name`` (an official model's
    deployment-free endpoint) or ``owner/name:version``.

    Attributes:
        api_key: A Replicate API token, sent as ``Authorization: Bearer``.
        wait: How long a non-streamed prediction is held open (``Prefer: wait=N``,
            1 to 60 s) before the router polls it.
        poll_interval: Between two polls of a prediction still running.
        max_tokens_input: The model's input that limits output tokens (``max_tokens``
            for current language models, ``max_new_tokens`` for older ones).
        cancel_after: A deadline Replicate enforces itself (``Cancel-After``): a
            prediction not done by then is cancelled even if the router could not
            cancel it (a create held by ``Prefer: wait`` has no id to cancel yet).
    """

    kind: Literal["replicate"] = "replicate"
    base_url: str = url_field(REPLICATE_URL)
    api_key: SecretRef | None = None
    wait: Duration = attrs.field(default=60.0, validator=_between(1, 60))
    poll_interval: Duration = attrs.field(default=0.5, validator=positive)
    max_tokens_input: str = attrs.field(default="max_tokens", validator=_input_name)
    cancel_after: Duration | None = attrs.field(default=None, validator=positive)
    models: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class RunPodProvider(HTTPProvider):
    """A RunPod serverless endpoint, by its id.

    Attributes:
        endpoint_id: The endpoint to call.
        api: ``openai``: the endpoint's OpenAI-compatible route (the vLLM worker),
            ``{base_url}/{endpoint_id}/openai/v1``; ``native``: ``/runsync``, polled
            through ``/status/{id}``, streamed through ``/run`` and ``/stream/{id}``.
        base_url: ``https://api.runpod.ai/v2``.
        api_key: A RunPod API key, sent as ``Authorization: Bearer``.
        poll_interval: Between two polls of a job (its status, or its stream).
    """

    kind: Literal["runpod"] = "runpod"
    endpoint_id: str = attrs.field(validator=_endpoint_id)
    api: Literal["openai", "native"] = "openai"
    base_url: str = url_field(RUNPOD_URL)
    api_key: SecretRef | None = None
    poll_interval: Duration = attrs.field(default=0.5, validator=positive)
    models: tuple[str, ...] = ()
