"""The ``huggingface`` kind: Hugging Face's Inference Providers router, or a
text-generation-inference server.

``api = "openai"`` (the default) is Chat Completions, served by the ``openai``
adapter: the router at ``https://router.huggingface.co/v1`` (``Authorization: Bearer``
with a Hugging Face token; a model may name its provider, ``meta-llama/...:novita``, or
a policy, ``:fastest``, ``:cheapest``), or a TGI server's Messages API at
``http://host:port/v1``. ``api = "tgi"`` is a TGI server's native API
(``adapters._tgi``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._configs_hosted import HF_ROUTER_URL, TGI_URL
from ._openai import OpenAIAdapter
from ._tgi import TGIAdapter

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._base import HTTPAdapter

__all__ = ["make_adapter"]


def make_adapter(name: str, settings: Mapping[str, Any]) -> HTTPAdapter:
    """The registry's factory: ``settings`` are :class:`HuggingFaceProvider`'s fields."""
    headers = dict(settings.get("headers") or {})
    if settings.get("api") == "tgi":
        return TGIAdapter(
            base_url=settings.get("base_url") or TGI_URL,
            api_key=settings.get("api_key"),
            headers=headers,
            name=name,
            template=settings.get("template") or "chatml",
        )
    # Not every provider behind the router takes stream_options: usage when it comes.
    return OpenAIAdapter(
        base_url=settings.get("base_url") or HF_ROUTER_URL,
        api_key=settings.get("api_key"),
        headers=headers,
        name=name,
        stream_usage=False,
    )
