"""The provider kinds the conformance suite runs against, one :class:`ProviderCase` each."""

from __future__ import annotations

from typing import Any

from tests.conformance._case import PNG, TOOLS, WEATHER, Credentials, ProviderCase, api_key
from tests.fakes.anthropic_upstream import REFUSAL, FakeAnthropic
from tests.fakes.azure_upstream import FakeAzure
from tests.fakes.bedrock_upstream import FakeBedrock
from tests.fakes.cohere_upstream import FakeCohere
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI

__all__ = ["ANTHROPIC", "AZURE", "BEDROCK", "CASES", "COHERE", "GEMINI", "OLLAMA", "OPENAI"]


def _aws(secret: str) -> str:
    return (
        'region = "us-west-2"\naws_access_key_id = "env:FAKE_AWS_KEY_ID"\n'
        f'aws_secret_access_key = "env:{secret}"\naws_session_token = "env:FAKE_AWS_TOKEN"'
    )


def _chat(*, model: str = "gpt-4o", **more: Any) -> dict[str, Any]:
    """The Chat Completions body of the plain scenario's request."""
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi there"}]
    return {"model": model, "messages": messages, **more}


_SAMPLING: dict[str, Any] = {"temperature": 0.5, "top_p": 0.9, "max_tokens": 50, "stop": ["END"]}
_CALL: dict[str, Any] = {"id": "call_abc", "type": "function", "function": {"name": "get_weather"}}
_OPENAI_TURN: list[dict[str, Any]] = [
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {**_CALL, "function": {**_CALL["function"], "arguments": '{"city":"Paris"}'}}
        ],
    },
    {"role": "tool", "content": "18C and sunny", "tool_call_id": "call_abc"},
]
_PASSED = {
    "auto": {"tools": TOOLS, "tool_choice": "auto"},
    "required": {"tools": TOOLS, "tool_choice": "required"},
}
_IMAGE_URL = {
    "type": "image_url",
    "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"},
}

_TOOL_SPEC = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Weather by city",
        "inputSchema": {"json": WEATHER["parameters"]},
    }
}

_GUARDED = "Sorry, the model cannot answer this question."

OPENAI = ProviderCase(
    kind="openai",
    fake=lambda: FakeOpenAI(key="sk-openai-secret"),
    base="/v1",
    credentials=api_key("OPENAI", "sk-openai-secret", "sk-openai-wrong"),
    model="gpt-4o",
    answered="gpt-4o-2024-08-06",
    usage=((7, 5), (7, 5)),
    path=("/v1/chat/completions", "/v1/chat/completions"),
    auth={"authorization": "Bearer sk-openai-secret"},
    body=_chat(**_SAMPLING),
    streamed={"stream": True, "stream_options": {"include_usage": True}},
    tool_id="call_abc",
    tool_choice=_PASSED,
    tool_turn=("messages", _OPENAI_TURN),
    image=(("messages", 0, "content", 1), _IMAGE_URL),
    image_urls=True,
    retry_after="2",
    overloaded=(503, "overloaded"),
    unsafe=("unsafe", None, ""),
    stream_error="The server had an error.",
    prefill=False,  # Chat Completions answers a trailing assistant message anew
)
ANTHROPIC = ProviderCase(
    kind="anthropic",
    fake=lambda: FakeAnthropic(key="sk-ant-secret"),
    credentials=api_key("ANTHROPIC", "sk-ant-secret", "sk-ant-wrong"),
    model="claude-test",
    answered="claude-test-20250101",
    usage=((25, 9), (25, 9)),
    path=("/v1/messages", "/v1/messages"),
    auth={"x-api-key": "sk-ant-secret", "anthropic-version": "2023-06-01"},
    body={
        "model": "claude-test",
        "max_tokens": 50,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}],
        "temperature": 0.5,
        "top_p": 0.9,
        "stop_sequences": ["END"],
    },
    streamed={"stream": True},
    tool_id="toolu_01fake",
    streamed_arguments='{"city": "Paris"}',
    tool_choice={
        "auto": {
            "tools": [
                {
                    "name": "get_weather",
                    "description": "Weather by city",
                    "input_schema": WEATHER["parameters"],
                }
            ]
        },
        "required": {"tool_choice": {"type": "any"}},
    },
    tool_turn=(
        "messages",
        [
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "call_abc",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_abc", "content": "18C and sunny"}
                ],
            },
        ],
    ),
    image=(
        ("messages", 0, "content", 1),
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    ),
    image_urls=True,
    retry_after="7",
    overloaded=(529, "Overloaded"),
    unsafe=("refuser", None, REFUSAL),
    stream_error="overloaded_error: Overloaded",
    truncated="ended before message_stop",
)
AZURE = ProviderCase(
    kind="azure",
    fake=lambda: FakeAzure(api_key="azure-secret"),
    credentials=api_key("AZURE", "azure-secret", "azure-wrong", 'api_version = "2024-10-21"'),
    model="gpt-4o",
    answered="gpt-4o-2024-08-06",
    usage=((9, 4), (9, 4)),
    path=("/openai/deployments/gpt-4o/chat/completions",) * 2,
    query=({"api-version": "2024-10-21"},) * 2,
    auth={"api-key": "azure-secret"},
    absent=("authorization",),
    body={k: v for k, v in _chat(**_SAMPLING).items() if k != "model"},
    streamed={"stream": True, "stream_options": {"include_usage": True}},
    tool_id="call_az1",
    tool_choice=_PASSED,
    tool_turn=("messages", _OPENAI_TURN),
    image=(("messages", 0, "content", 1), _IMAGE_URL),
    image_urls=True,
    retry_after="2",
    overloaded=(503, "overloaded"),
    unsafe=("unsafe", None, ""),
    blocked=("blocked", "violence"),
    stream_error="The server had an error.",
    prefill=False,
)
BEDROCK = ProviderCase(
    kind="bedrock",
    fake=lambda: FakeBedrock(
        region="us-west-2",
        access_key="AKIDFAKEEXAMPLE",
        secret_key="fake-secret-key/with+chars",
        session_token="FQoGZXIvYXdzEFAKETOKEN",
    ),
    credentials=Credentials(
        settings=_aws("FAKE_AWS_SECRET"),
        wrong=_aws("WRONG_AWS_SECRET"),
        secret="not-the-secret",
        env={
            "FAKE_AWS_KEY_ID": "AKIDFAKEEXAMPLE",
            "FAKE_AWS_SECRET": "fake-secret-key/with+chars",
            "FAKE_AWS_TOKEN": "FQoGZXIvYXdzEFAKETOKEN",
            "WRONG_AWS_SECRET": "not-the-secret",
        },
    ),
    model="anthropic.claude-3-haiku-20240307-v1:0",
    answered="anthropic.claude-3-haiku-20240307-v1:0",  # Converse names none: ours
    usage=((7, 5), (7, 5)),
    path=(
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream",
    ),
    auth={
        "authorization": r"AWS4-HMAC-SHA256 Credential=AKIDFAKEEXAMPLE/\d{8}/us-west-2/bedrock/"
        r"aws4_request, SignedHeaders=\S+, Signature=[0-9a-f]{64}",
        "x-amz-security-token": "FQoGZXIvYXdzEFAKETOKEN",
    },
    body={
        "messages": [{"role": "user", "content": [{"text": "hi there"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {
            "maxTokens": 50,
            "temperature": 0.5,
            "topP": 0.9,
            "stopSequences": ["END"],
        },
    },
    tool_id="tooluse_fake1",
    tool_choice={
        "auto": {"toolConfig": {"tools": [_TOOL_SPEC], "toolChoice": {"auto": {}}}},
        "required": {"toolConfig": {"tools": [_TOOL_SPEC], "toolChoice": {"any": {}}}},
    },
    tool_turn=(
        "messages",
        [
            {
                "role": "assistant",
                "content": [
                    {
                        "toolUse": {
                            "toolUseId": "call_abc",
                            "name": "get_weather",
                            "input": {"city": "Paris"},
                        }
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": "call_abc",
                            "content": [{"text": "18C and sunny"}],
                            "status": "success",
                        }
                    }
                ],
            },
        ],
    ),
    image=(
        ("messages", 0, "content", 1),
        {"image": {"format": "png", "source": {"bytes": PNG}}},
    ),
    overloaded=(503, "Too many connections"),
    operator=(403,),
    unsafe=("guarded", _GUARDED, _GUARDED),
    stream_error="modelStreamErrorException: The model stream broke.",
    story="anthropic.story",  # Converse continues a prefill for Anthropic's models
)
COHERE = ProviderCase(
    kind="cohere",
    fake=lambda: FakeCohere(api_key="cohere-secret"),
    credentials=api_key("COHERE", "cohere-secret", "cohere-wrong"),
    model="command-a-03-2025",
    answered="command-a-03-2025",  # Cohere names none: the target's id
    usage=((71, 4), (71, 4)),
    path=("/v2/chat", "/v2/chat"),
    auth={"authorization": "Bearer cohere-secret"},
    body={
        **_chat(model="command-a-03-2025"),
        "stream": False,
        "max_tokens": 50,
        "temperature": 0.5,
        "p": 0.9,
        "stop_sequences": ["END"],
    },
    streamed={"stream": True},
    tool_id="get_weather_k1",
    tool_choice={"auto": {"tools": TOOLS}, "required": {"tools": TOOLS, "tool_choice": "REQUIRED"}},
    tool_turn=(
        "messages",
        [{k: v for k, v in _OPENAI_TURN[0].items() if k != "content"}, _OPENAI_TURN[1]],
    ),
    image=(("messages", 0, "content", 1), _IMAGE_URL),
    vision_model="command-a-vision-07-2025",
    image_urls=True,
    overloaded=(503, "service unavailable"),
    stream_error="Cohere reported an error (finish_reason ERROR)",
    truncated="ended before message-end",
    prefill=False,  # Cohere documents no continuation
)
GEMINI = ProviderCase(
    kind="gemini",
    fake=lambda: FakeGemini(key="AIza-gemini-secret"),
    base="/v1beta",
    credentials=api_key("GEMINI", "AIza-gemini-secret", "AIza-wrong-key"),
    model="gemini-2.5-flash",
    answered="gemini-2.5-flash-001",  # the model that really answered
    usage=((7, 7), (7, 7)),  # completion tokens include the thoughts'
    path=(
        "/v1beta/models/gemini-2.5-flash:generateContent",
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
    ),
    query=({}, {"alt": "sse"}),  # the key never travels in the URL
    auth={"x-goog-api-key": "AIza-gemini-secret"},
    body={
        "contents": [{"role": "user", "parts": [{"text": "hi there"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "temperature": 0.5,
            "topP": 0.9,
            "maxOutputTokens": 50,
            "stopSequences": ["END"],
        },
    },
    tool_id="call_0",  # Gemini gives none: synthesised
    tool_pieces=1,
    tool_choice={
        "auto": {
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "get_weather",
                            "description": "Weather by city",
                            "parametersJsonSchema": WEATHER["parameters"],
                        }
                    ]
                }
            ],
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        },
        "required": {"toolConfig": {"functionCallingConfig": {"mode": "ANY"}}},
    },
    tool_turn=(
        "contents",
        [
            {
                "role": "model",
                "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
            },
            {
                "role": "user",
                "parts": [
                    {
                        "functionResponse": {
                            "name": "get_weather",
                            "response": {"output": "18C and sunny"},
                        }
                    }
                ],
            },
        ],
    ),
    tool_answer="tool said: 18C and sunny",
    image=(
        ("contents", 0, "parts"),
        [{"text": "what is this?"}, {"inlineData": {"mimeType": "image/png", "data": PNG}}],
    ),
    retry_after="7",  # from RetryInfo "7s"
    overloaded=(503, "overloaded"),
    operator=(401,),
    unsafe=("unsafe", None, "I was about"),
    blocked=("blocked", "SAFETY"),
    stream_error="An internal error has occurred",
)
OLLAMA = ProviderCase(
    kind="ollama",
    fake=lambda: FakeOllama(api_key="ollama-secret"),
    credentials=api_key("OLLAMA", "ollama-secret", "ollama-wrong"),
    model="llama3.2",
    answered="llama3.2:latest",
    usage=((26, 3), (26, 4)),
    path=("/api/chat", "/api/chat"),
    auth={"authorization": "Bearer ollama-secret"},
    body={
        **_chat(model="llama3.2"),
        "stream": False,
        "options": {"temperature": 0.5, "top_p": 0.9, "num_predict": 50, "stop": ["END"]},
    },
    streamed={"stream": True},
    tool_id="call_0",  # Ollama gives none: synthesised
    tool_pieces=1,
    tool_choice={"auto": {"tools": TOOLS}},  # "required": Ollama cannot force a call
    tool_turn=(
        "messages",
        [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_abc",
                        "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                    }
                ],
            },
            {**_OPENAI_TURN[1], "tool_name": "get_weather"},
        ],
    ),
    image=(("messages", 0), {"role": "user", "content": "what is this?", "images": [PNG]}),
    context=False,  # Ollama cuts an over-long prompt rather than failing
    overloaded=(503, "server busy"),
    operator=(500,),
    stream_error="an error was encountered while running the model",
    truncated="ended before its done line",
)

CASES = [OPENAI, ANTHROPIC, AZURE, BEDROCK, COHERE, GEMINI, OLLAMA]
