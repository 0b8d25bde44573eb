"""OpenAI content parts beyond text and images, translated (no passthrough body): an
OpenAI-format target's body holds them as the client sent them; a target of another
format refuses them by name, and a refusal part is text to it."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from adapters import UnsupportedParameter, refuse_untranslated
from adapters._openai_request import request_from_wire, request_to_wire
from adapters._passthrough import ANTHROPIC, OPENAI, translated
from adapters._types import RefusalPart, TextPart, WirePart

FILE = {"type": "file", "file": {"file_id": "file-abc"}}
AUDIO = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
REFUSAL = {"type": "refusal", "refusal": "No."}
LATER = {"type": "input_video", "input_video": {"url": "https://example.com/v.mp4"}}


def _body(*parts: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [
            {"role": "assistant", "content": [REFUSAL]},
            {"role": "user", "content": [{"type": "text", "text": "hi"}, *parts]},
        ],
    }


def test_the_translated_openai_body_holds_the_parts_as_sent() -> None:
    body = _body(FILE, AUDIO, LATER)
    req = attrs.evolve(request_from_wire(body), raw=None)
    assert request_to_wire(req, "m")["messages"] == body["messages"]


def test_the_unified_parts() -> None:
    req = request_from_wire(_body(FILE))
    assert req.messages[0].content == (RefusalPart("No."),)
    assert isinstance(req.messages[0].content[0], TextPart)  # text to other formats
    assert req.messages[1].content == (
        TextPart("hi"),
        WirePart(OPENAI, FILE, "messages[1].content[1]"),
    )


@pytest.mark.parametrize("part", [FILE, AUDIO, LATER])
def test_another_format_refuses_them_by_name(part: dict[str, Any]) -> None:
    req = request_from_wire(_body(part))
    refuse_untranslated(req, OPENAI, "oa")  # same format: taken
    refuse_untranslated(attrs.evolve(req, raw=None), OPENAI, "oa")  # translated too
    for same_format in (ANTHROPIC, None):
        with pytest.raises(UnsupportedParameter) as refused:
            refuse_untranslated(req, same_format, "claude")
        assert refused.value.param == "messages[1].content[1]"


def test_a_resumed_stream_carries_them_on() -> None:
    req = translated(request_from_wire(_body(FILE)))
    assert req.raw is None
    assert request_to_wire(req, "m")["messages"][1]["content"][1] == FILE
