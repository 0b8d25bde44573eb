"""Each provider's embeddings translation: the request it builds, the answer it reads,
and what it refuses before sending (``unsupported_parameter``, so routing moves on)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import attrs
import orjson
import pytest

from adapters import (
    AnthropicAdapter,
    EmbeddingRequest,
    InvalidRequest,
    OpenAIAdapter,
    SerializationError,
    SimulatedModel,
    UnsupportedCapability,
    UnsupportedParameter,
    Usage,
)
from adapters._azure import AzureAdapter
from adapters._bedrock import make_adapter as bedrock_adapter
from adapters._cohere import CohereAdapter
from adapters._gemini import GeminiAdapter
from adapters._ollama import OllamaAdapter

TEXTS = EmbeddingRequest("route", ("first text", "second"))
ONE = EmbeddingRequest("route", ("only",))
TOKENS = EmbeddingRequest("route", ((1, 2, 3),))


def body_of(request: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(request.body)
    return loaded


# -- OpenAI, compatible hosts, Azure -------------------------------------------------


def test_openai_posts_the_request_as_it_came() -> None:
    adapter = OpenAIAdapter("https://api.example/v1", api_key="sk-test")
    req = EmbeddingRequest("route", ((5, 6),), 128, "base64", "u", {"x": True})
    built = adapter.build_embedding_request(req, "text-embedding-3-large")
    assert (built.method, built.url) == ("POST", "https://api.example/v1/embeddings")
    assert ("authorization", "Bearer sk-test") in built.headers
    assert body_of(built) == {
        "x": True,
        "model": "text-embedding-3-large",
        "input": [[5, 6]],
        "encoding_format": "float",
        "dimensions": 128,
        "user": "u",
    }
    assert adapter.embedding_batch("any") == 2048


def test_ada_cannot_shorten_its_vectors() -> None:
    adapter = OpenAIAdapter("https://api.example/v1")
    with pytest.raises(UnsupportedParameter) as caught:
        adapter.build_embedding_request(
            EmbeddingRequest("r", ("a",), dimensions=8), "text-embedding-ada-002"
        )
    assert caught.value.param == "dimensions"
    assert caught.value.code == "unsupported_parameter"
    adapter.build_embedding_request(EmbeddingRequest("r", ("a",)), "text-embedding-ada-002")


def test_openai_reads_its_answer_for_the_inputs() -> None:
    adapter = OpenAIAdapter("https://api.example/v1")
    body = orjson.dumps(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 2, "total_tokens": 2},
        }
    )
    resp = adapter.parse_embedding_response(ONE, "m", 200, (), body)
    assert resp.vectors == ((0.1, 0.2),)
    assert resp.usage == Usage(2)
    with pytest.raises(SerializationError):
        adapter.parse_embedding_response(TEXTS, "m", 200, (), body)


def test_azure_names_the_deployment_in_the_url_not_the_body() -> None:
    adapter = AzureAdapter("https://res.openai.azure.com", "2024-10-21", api_key="az-key")
    built = adapter.build_embedding_request(TEXTS, "embed-deploy")
    assert built.url == (
        "https://res.openai.azure.com/openai/deployments/embed-deploy/embeddings"
        "?api-version=2024-10-21"
    )
    assert ("api-key", "az-key") in built.headers
    assert body_of(built) == {"input": ["first text", "second"], "encoding_format": "float"}


# -- Gemini ---------------------------------------------------------------------------


def test_gemini_embeds_one_input_with_embed_content() -> None:
    adapter = GeminiAdapter("https://g.example/v1beta", api_key="gm")
    built = adapter.build_embedding_request(
        EmbeddingRequest("r", ("only",), dimensions=768), "gemini-embedding-001"
    )
    assert built.url == "https://g.example/v1beta/models/gemini-embedding-001:embedContent"
    assert body_of(built) == {
        "content": {"parts": [{"text": "only"}]},
        "outputDimensionality": 768,
    }


def test_gemini_embeds_several_with_batch_embed_contents() -> None:
    adapter = GeminiAdapter("https://g.example/v1beta", api_key="gm")
    built = adapter.build_embedding_request(TEXTS, "models/text-embedding-004")
    assert built.url == "https://g.example/v1beta/models/text-embedding-004:batchEmbedContents"
    assert body_of(built) == {
        "requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": t}]}}
            for t in TEXTS.inputs
        ]
    }
    assert adapter.embedding_batch("m") == 100


def test_gemini_reads_both_answers() -> None:
    adapter = GeminiAdapter()
    one = adapter.parse_embedding_response(
        ONE, "m", 200, (), b'{"embedding": {"values": [1.0, 2.0]}}'
    )
    assert (one.vectors, one.usage) == (((1.0, 2.0),), None)
    body = b'{"embeddings": [{"values": [1.0]}, {"values": [2.0]}]}'
    assert adapter.parse_embedding_response(TEXTS, "m", 200, (), body).vectors == (
        (1.0,),
        (2.0,),
    )
    with pytest.raises(SerializationError):
        adapter.parse_embedding_response(
            TEXTS, "m", 200, (), b'{"embeddings": [{"values": [1.0]}]}'
        )


@pytest.mark.parametrize(
    ("req", "model", "param"),
    [
        (TOKENS, "gemini-embedding-001", "input"),
        (
            EmbeddingRequest("r", ("a",), extra={"task_type": "x"}),
            "text-embedding-004",
            "task_type",
        ),
        (EmbeddingRequest("r", ("a",), dimensions=8), "embedding-001", "dimensions"),
    ],
)
def test_gemini_refuses_what_it_cannot_take(req: EmbeddingRequest, model: str, param: str) -> None:
    with pytest.raises(UnsupportedParameter) as caught:
        GeminiAdapter().build_embedding_request(req, model)
    assert caught.value.param == param


# -- Bedrock --------------------------------------------------------------------------

BEDROCK = {"region": "us-east-1", "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "s"}


def test_titan_v2_embeds_one_text_per_call_normalized() -> None:
    adapter = bedrock_adapter("aws", BEDROCK)
    model = "amazon.titan-embed-text-v2:0"
    assert adapter.embedding_batch(model) == 1
    built = adapter.build_embedding_request(EmbeddingRequest("r", ("hi",), 512), model)
    assert built.url == (
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.titan-embed-text-v2%3A0/invoke"
    )
    assert body_of(built) == {"inputText": "hi", "normalize": True, "dimensions": 512}
    resp = adapter.parse_embedding_response(
        ONE, model, 200, (), b'{"embedding": [0.5], "inputTextTokenCount": 3}'
    )
    assert (resp.vectors, resp.usage, resp.input_tokens) == (((0.5,),), Usage(3), (3,))


@pytest.mark.parametrize(
    ("model", "dimensions"),
    [
        ("amazon.titan-embed-text-v2:0", 300),
        ("amazon.titan-embed-text-v1", 256),
        ("cohere.embed-english-v3", 256),
        ("us.cohere.embed-v4:0", 300),
    ],
)
def test_bedrock_refuses_dimensions_a_model_cannot_honour(model: str, dimensions: int) -> None:
    adapter = bedrock_adapter("aws", BEDROCK)
    with pytest.raises(UnsupportedParameter) as caught:
        adapter.build_embedding_request(EmbeddingRequest("r", ("a",), dimensions), model)
    assert caught.value.param == "dimensions"


def test_titan_v1_takes_only_its_text() -> None:
    adapter = bedrock_adapter("aws", BEDROCK)
    built = adapter.build_embedding_request(ONE, "amazon.titan-embed-text-v1")
    assert body_of(built) == {"inputText": "only"}


def test_cohere_on_bedrock_takes_up_to_96_texts_and_counts_tokens_from_the_header() -> None:
    adapter = bedrock_adapter("aws", BEDROCK)
    model = "us.cohere.embed-v4:0"
    assert adapter.embedding_batch(model) == 96
    built = adapter.build_embedding_request(attrs_dims(TEXTS, 1024), model)
    assert body_of(built) == {
        "texts": ["first text", "second"],
        "input_type": "search_document",
        "embedding_types": ["float"],
        "output_dimension": 1024,
    }
    by_type = b'{"embeddings": {"float": [[1.0], [2.0]]}, "response_type": "embeddings_by_type"}'
    headers = [("x-amzn-bedrock-input-token-count", "6")]
    resp = adapter.parse_embedding_response(TEXTS, model, 200, headers, by_type)
    assert (resp.vectors, resp.usage) == (((1.0,), (2.0,)), Usage(6))
    floats = b'{"embeddings": [[1.0], [2.0]], "response_type": "embeddings_floats"}'
    v3 = "cohere.embed-english-v3"
    assert adapter.parse_embedding_response(TEXTS, v3, 200, (), floats).vectors == (
        (1.0,),
        (2.0,),
    )


def test_bedrock_refuses_a_model_it_cannot_embed_with() -> None:
    adapter = bedrock_adapter("aws", BEDROCK)
    with pytest.raises(UnsupportedCapability, match="no embeddings model"):
        adapter.build_embedding_request(ONE, "anthropic.claude-3-5-haiku-20241022-v1:0")


def test_bedrock_embeddings_are_signed_as_converse_is() -> None:
    adapter = bedrock_adapter("aws", BEDROCK)
    built = adapter.build_embedding_request(ONE, "amazon.titan-embed-text-v2:0")
    signed = adapter.sign(built, datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    names = {k for k, _ in signed.headers}
    assert {"authorization", "x-amz-date"} <= names


def attrs_dims(req: EmbeddingRequest, dimensions: int) -> EmbeddingRequest:
    return attrs.evolve(req, dimensions=dimensions)


# -- Cohere ---------------------------------------------------------------------------


def test_cohere_posts_v2_embed_for_floats() -> None:
    adapter = CohereAdapter("https://co.example", api_key="co-key")
    req = EmbeddingRequest("r", ("a", "b"), extra={"input_type": "search_query"})
    built = adapter.build_embedding_request(req, "embed-english-v3.0")
    assert built.url == "https://co.example/v2/embed"
    assert body_of(built) == {
        "model": "embed-english-v3.0",
        "texts": ["a", "b"],
        "input_type": "search_query",
        "embedding_types": ["float"],
    }
    body = b'{"id": "x", "embeddings": {"float": [[1.0], [2.0]]}, "meta": {"billed_units": {"input_tokens": 4}}}'
    resp = adapter.parse_embedding_response(req, "embed-english-v3.0", 200, (), body)
    assert (resp.vectors, resp.usage) == (((1.0,), (2.0,)), Usage(4))


def test_cohere_refuses_what_it_cannot_take() -> None:
    adapter = CohereAdapter()
    with pytest.raises(InvalidRequest, match="input_type"):
        adapter.build_embedding_request(
            EmbeddingRequest("r", ("a",), extra={"input_type": "poems"}), "embed-v4.0"
        )
    with pytest.raises(UnsupportedParameter):
        adapter.build_embedding_request(TOKENS, "embed-v4.0")
    with pytest.raises(UnsupportedParameter):
        adapter.build_embedding_request(
            EmbeddingRequest("r", ("a",), dimensions=256), "embed-english-v3.0"
        )
    v4 = adapter.build_embedding_request(
        EmbeddingRequest("r", ("a",), dimensions=256), "embed-v4.0"
    )
    assert body_of(v4)["output_dimension"] == 256


# -- Ollama ---------------------------------------------------------------------------


def test_ollama_posts_api_embed() -> None:
    adapter = OllamaAdapter("http://127.0.0.1:11434")
    built = adapter.build_embedding_request(attrs_dims(TEXTS, 64), "nomic-embed-text")
    assert built.url == "http://127.0.0.1:11434/api/embed"
    assert body_of(built) == {
        "model": "nomic-embed-text",
        "input": ["first text", "second"],
        "dimensions": 64,
    }
    body = b'{"model": "nomic-embed-text", "embeddings": [[1.0], [2.0]], "prompt_eval_count": 5}'
    resp = adapter.parse_embedding_response(TEXTS, "nomic-embed-text", 200, (), body)
    assert (resp.model, resp.vectors, resp.usage) == (
        "nomic-embed-text",
        ((1.0,), (2.0,)),
        Usage(5),
    )
    with pytest.raises(UnsupportedParameter):
        adapter.build_embedding_request(TOKENS, "nomic-embed-text")


# -- kinds without embeddings, and the simulated provider ------------------------------


def test_anthropic_has_no_embeddings() -> None:
    adapter = AnthropicAdapter(api_key="k")
    assert adapter.embedding_batch("claude") == 0
    with pytest.raises(UnsupportedCapability):
        adapter.build_embedding_request(ONE, "claude")


def test_simulated_vectors_depend_only_on_model_input_and_dimensions() -> None:
    a = SimulatedModel(median=0.1, p99=0.2, seed=1).embed_plan(TEXTS, "embed")
    b = SimulatedModel(median=0.1, p99=0.2, seed=2).embed_plan(
        EmbeddingRequest("other", ("second",)), "embed"
    )
    assert a.response.vectors[1] == b.response.vectors[0]
    assert a.response.vectors[0] != a.response.vectors[1]
    assert len(a.response.vectors[0]) == 256
    assert math.isclose(sum(v * v for v in a.response.vectors[0]), 1.0)
    assert a.response.usage == Usage(3)  # words
    short = SimulatedModel(median=0.1, p99=0.2).embed_plan(attrs_dims(ONE, 8), "embed")
    assert len(short.response.vectors[0]) == 8
    with pytest.raises(UnsupportedParameter):
        SimulatedModel(median=0.1, p99=0.2).embed_plan(attrs_dims(ONE, 5000), "embed")


def test_simulated_refuses_parameters_it_has_no_use_for() -> None:
    with pytest.raises(UnsupportedParameter) as caught:
        SimulatedModel(median=0.1, p99=0.2).embed_plan(
            EmbeddingRequest("r", ("a",), extra={"truncate_prompt_tokens": 3}), "embed"
        )
    assert caught.value.param == "truncate_prompt_tokens"
