"""Adapters by provider ``kind``, with third-party ones from the ``llm_router.adapters``
entry-point group.

A factory takes the provider's name and its settings as plain values (secret references
already resolved by the daemon) and returns an :class:`HTTPAdapter`. Keeping config
objects out of the signature keeps adapters independent of the config language.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from ._base import HTTPAdapter
from ._compat import compat_fixups
from ._openai import OpenAIAdapter

__all__ = ["AdapterFactory", "adapter_factory", "known_kinds", "register_adapter"]

AdapterFactory = Callable[[str, Mapping[str, Any]], HTTPAdapter]

ENTRY_POINT_GROUP = "llm_router.adapters"


def _openai(name: str, settings: Mapping[str, Any]) -> HTTPAdapter:
    headers = dict(settings.get("headers") or {})
    if settings.get("organization"):
        headers["OpenAI-Organization"] = settings["organization"]
    return OpenAIAdapter(
        base_url=settings["base_url"],
        api_key=settings.get("api_key"),
        headers=headers,
        name=name,
        fixups=compat_fixups(settings.get("kind") or "openai"),
        stream_usage=(settings.get("kind") or "openai") in _STREAM_USAGE,
    )


# Hosts known to take stream_options.include_usage (generic compatible hosts may not).
_STREAM_USAGE = frozenset(
    {"openai", "vllm", "together", "groq", "deepseek", "openrouter", "fireworks"}
)


_FACTORIES: dict[str, AdapterFactory] = {
    "openai": _openai,
    "openai_compatible": _openai,
    # OpenAI-compatible hosts by name: the same adapter, with their quirks handled there.
    **dict.fromkeys(
        ("vllm", "together", "groq", "mistral", "deepseek", "openrouter", "fireworks"), _openai
    ),
}
# Built-in adapters in their own modules, imported when first asked for: a daemon that
# uses only OpenAI never imports botocore.
_BUILT_IN = {
    "anthropic": "adapters._anthropic",
    "gemini": "adapters._gemini",
    "bedrock": "adapters._bedrock",
    "azure": "adapters._azure",
    "ollama": "adapters._ollama",
    "cohere": "adapters._cohere",
}
_loaded_entry_points = False


def register_adapter(kind: str, factory: AdapterFactory) -> None:
    """Make ``kind`` available to ``[providers.*]`` tables."""
    _FACTORIES[kind] = factory


def adapter_factory(kind: str) -> AdapterFactory:
    """The factory for ``kind``. Raises KeyError if no adapter knows it."""
    _load_entry_points()
    if kind not in _FACTORIES and kind in _BUILT_IN:
        module = importlib.import_module(_BUILT_IN[kind])
        _FACTORIES[kind] = module.make_adapter
    return _FACTORIES[kind]


def known_kinds() -> tuple[str, ...]:
    _load_entry_points()
    return tuple(sorted({*_FACTORIES, *_BUILT_IN}))


def _load_entry_points() -> None:
    global _loaded_entry_points
    if _loaded_entry_points:
        return
    _loaded_entry_points = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _FACTORIES.setdefault(ep.name, ep.load())
