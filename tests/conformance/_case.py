"""What the conformance suite knows of one provider kind: a :class:`ProviderCase`.

A case names the fake that plays the provider, the TOML that points a provider of that
kind at it (with credentials it accepts, and with ones it refuses), and what the shared
scenarios expect of that kind: the request it must send, the answer the client gets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from tests.fakes._base import FakeServer

__all__ = ["PNG", "TOOLS", "WEATHER", "Credentials", "Path", "ProviderCase", "api_key", "dig"]

#: A path into a JSON body: keys and indexes.
Path = tuple[str | int, ...]

PNG = "iVBORw0KGgo="
WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "Weather by city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
TOOLS: list[Any] = [{"type": "function", "function": WEATHER}]


def dig(body: Any, path: Path) -> Any:
    for step in path:
        body = body[step]
    return body


@attrs.frozen
class Credentials:
    """
    Attributes:
        settings: TOML lines of a provider that the fake accepts.
        wrong: TOML lines whose credentials the fake refuses.
        secret: What :attr:`wrong` holds that must never reach a client.
        env: Environment variables the TOML reads.
    """

    settings: str
    wrong: str
    secret: str
    env: Mapping[str, str]


def api_key(name: str, key: str, wrong: str, more: str = "") -> Credentials:
    """An API key read from ``{name}_TEST_KEY``, a refused one from ``{name}_WRONG_KEY``."""
    return Credentials(
        settings=f'api_key = "env:{name}_TEST_KEY"\n{more}',
        wrong=f'api_key = "env:{name}_WRONG_KEY"\n{more}',
        secret=wrong,
        env={f"{name}_TEST_KEY": key, f"{name}_WRONG_KEY": wrong},
    )


@attrs.frozen(kw_only=True)
class ProviderCase:
    """One provider kind, as the shared scenarios see it.

    Attributes:
        kind: The ``kind`` in the config.
        fake: Makes the fake, holding the credentials of :attr:`settings`.
        base: What follows the fake's address in ``base_url``.
        credentials: What the provider is configured with.
        model: The model route ``chat`` names.
        answered: The model an answer names.
        usage: ``(prompt, completion)`` tokens of the plain answer, then of the stream.
        path: The path of a request, then of a streamed one.
        query: The query of a request, then of a streamed one.
        auth: Headers every request carries (values are regular expressions).
        absent: Headers no request carries.
        body: The body sent for the plain scenario's request.
        streamed: Fields a streamed request's body holds.
        tool_id: The id of the ``get_weather`` call the client gets.
        streamed_arguments: Its arguments, as the stream's pieces join.
        tool_pieces: How many pieces of it the stream brings (as they come, unbuffered).
        tool_choice: Per ``tool_choice`` the client sends, fields the body holds; one
            not listed is refused (``unsupported_parameter``).
        tool_turn: Where the conversation is in the body, and what follows the first
            turn when the client sends a call and its result back.
        tool_answer: What the fake answers to that.
        image: Where the image of the image scenario is in the body, and what it is.
        vision_model: The model for images, when :attr:`model` takes none.
        image_urls: Whether image URLs go upstream as URLs (else the daemon refuses them).
        retry_after: The ``retry-after`` a client gets on a 429.
        context: Whether the kind reports a prompt too long (``fail-ctx``).
        overloaded: The kind's overloaded status and a fragment of its message.
        operator: Statuses that are the operator's problem (502 to the client).
        long: The model whose answer ends for length.
        unsafe: The model whose answer a filter ends, its content, its streamed text.
        blocked: The model whose prompt a filter refuses, a fragment of the message.
        stream_error: A fragment of the error an in-band stream error gives the client.
        prefill: Whether the kind continues a trailing assistant message (the adapter's
            default ``prefill`` capability for :attr:`story`); else it answers anew.
        story: The model that tells :data:`tests.fakes._base.STORY`.
    """

    kind: str
    fake: Callable[[], FakeServer]
    base: str = ""
    credentials: Credentials
    model: str
    answered: str
    usage: tuple[tuple[int, int], tuple[int, int]]
    path: tuple[str, str]
    query: tuple[Mapping[str, str], Mapping[str, str]] = ({}, {})
    auth: Mapping[str, str]
    absent: tuple[str, ...] = ()
    body: Mapping[str, Any]
    streamed: Mapping[str, Any] = {}
    tool_id: str
    streamed_arguments: str = '{"city":"Paris"}'
    tool_pieces: int = 4
    tool_choice: Mapping[str, Mapping[str, Any]]
    tool_turn: tuple[str, list[Any]]
    tool_answer: str = "echo: weather in Paris?"
    image: tuple[Path, Any]
    vision_model: str | None = None
    image_urls: bool = False
    retry_after: str | None = None
    context: bool = True
    overloaded: tuple[int, str]
    operator: tuple[int, ...] = ()
    long: str = "long"
    unsafe: tuple[str, str | None, str] | None = None
    blocked: tuple[str, str] | None = None
    stream_error: str
    truncated: str = "before the answer was complete"
    prefill: bool = True
    story: str = "story"

    def __str__(self) -> str:
        return self.kind
