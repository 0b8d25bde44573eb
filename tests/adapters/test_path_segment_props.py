"""A model name in a URL path stays one segment, whatever its characters."""

from __future__ import annotations

import re
from urllib.parse import unquote

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import GatewayRequest, Message
from adapters._azure import AzureAdapter
from adapters._base import path_segment
from adapters._bedrock import BedrockAdapter
from adapters._gemini import GeminiAdapter

SEGMENT = re.compile(r"(?:[A-Za-z0-9\-._~]|%[0-9A-F]{2})*")
HOSTILE = ["..", ".", "../../x", "a/../../b", "x?key=1", "x#y", "a%2F..%2Fb", "a\r\nb", " "]


@given(st.text())
def test_a_segment_round_trips_and_holds_no_delimiter(text: str) -> None:
    segment = path_segment(text)
    assert SEGMENT.fullmatch(segment)
    assert unquote(segment, errors="strict") == text
    assert segment not in (".", "..")


@given(st.text(min_size=1))
def test_a_url_parser_keeps_the_segment_in_place(text: str) -> None:
    url = httpx2.URL(f"https://host/v1/models/{path_segment(text)}:generate")
    assert url.raw_path == f"/v1/models/{path_segment(text)}:generate".encode()
    assert not url.query
    assert not url.fragment


@pytest.mark.parametrize("model", HOSTILE)
def test_every_kind_with_the_model_in_its_path_escapes_it(model: str) -> None:
    req = GatewayRequest("x", (Message("user", "hi"),))
    seg = path_segment(model)
    built: list[tuple[GeminiAdapter | BedrockAdapter | AzureAdapter, str]] = [
        (
            GeminiAdapter("https://g.test/v1beta", api_key="k"),
            f"/v1beta/models/{seg}:generateContent",
        ),
        (BedrockAdapter("us-east-1", "https://b.test", api_key="k"), f"/model/{seg}/converse"),
        (
            AzureAdapter("https://a.test", "2024-10-21", api_key="k"),
            f"/openai/deployments/{seg}/chat/completions",
        ),
    ]
    for adapter, path in built:
        url = httpx2.URL(adapter.build_request(req, model).url)
        raw_path, _, query = url.raw_path.decode().partition("?")
        assert raw_path == path  # no step up, nothing cut off as a query or fragment
        assert query in ("", "api-version=2024-10-21")
        assert not url.fragment
