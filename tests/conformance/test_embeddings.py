"""``POST /v1/embeddings`` through the daemon to every provider kind, the official OpenAI
SDK as the client: floats and base64 alike, ``dimensions``, token arrays where the kind
takes them (a 400 ``unsupported_parameter`` where not), and a kind without embeddings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import openai
import pytest

from tests.conformance._cases import CASES
from tests.conformance.conftest import kinds
from tests.fakes._vectors import fake_vector

if TYPE_CHECKING:
    from tests.conformance._case import ProviderCase
    from tests.conformance.conftest import Gateway


@attrs.frozen
class Embeds:
    """What one kind's embeddings look like.

    Attributes:
        model: The embeddings model of route ``embed``.
        paths: The upstream path(s) of a request with the two texts of :data:`TEXTS`.
        tokens: The ``prompt_tokens`` the client gets for them (the kind's count, or
            the router's estimate where the kind gives none).
        dimensions: A size the model takes.
        token_arrays: Whether the kind takes token arrays.
        failing: A model whose calls fail with the kind's 500.
    """

    model: str
    paths: tuple[str, ...]
    tokens: int
    dimensions: int = 2
    token_arrays: bool = False
    failing: str = "fail-500"


TEXTS = ["one two", "three"]
EMBEDS = {
    "openai": Embeds("text-embedding-3-small", ("/v1/embeddings",), 3, token_arrays=True),
    "azure": Embeds(
        "embed-deploy", ("/openai/deployments/embed-deploy/embeddings",), 3, token_arrays=True
    ),
    # Gemini counts no tokens: 7 and 5 characters at ~4 a token.
    "gemini": Embeds(
        "gemini-embedding-001", ("/v1beta/models/gemini-embedding-001:batchEmbedContents",), 4
    ),
    # Titan: one text per call.
    "bedrock": Embeds(
        "amazon.titan-embed-text-v2:0",
        ("/model/amazon.titan-embed-text-v2%3A0/invoke",) * 2,
        3,
        dimensions=256,
        failing="cohere.embed-fail-500",
    ),
    "cohere": Embeds("embed-v4.0", ("/v2/embed",), 3, dimensions=256),
    "ollama": Embeds("nomic-embed-text", ("/api/embed",), 3),
}


def route(case: ProviderCase) -> str:
    return f'[routes.embed]\nfallback = ["p:{EMBEDS[case.kind].model}"]\n'


def embeds(case: ProviderCase) -> bool:
    return case.kind in EMBEDS


def test_every_kind_but_anthropic_embeds() -> None:
    assert {c.kind for c in CASES} - set(EMBEDS) == {"anthropic"}


@kinds(embeds)
async def test_vectors_in_floats_and_base64(gateway: Gateway, case: ProviderCase) -> None:
    spec = EMBEDS[case.kind]
    async with gateway(case, route(case)) as served:
        raw = await served.client.embeddings.with_raw_response.create(model="embed", input=TEXTS)
        floats = await served.client.embeddings.create(
            model="embed", input=TEXTS, encoding_format="float"
        )
    packed = raw.parse()  # the SDK asked for base64 and decoded it
    expected = [fake_vector(text) for text in TEXTS]
    assert [d.embedding for d in packed.data] == expected
    assert [d.embedding for d in floats.data] == expected
    assert [d.index for d in floats.data] == [0, 1]
    assert (packed.usage.prompt_tokens, packed.usage.total_tokens) == (spec.tokens, spec.tokens)
    assert raw.headers["x-router-target"] == f"p:{spec.model}"
    assert raw.headers["x-router-route"] == "embed"
    sent = [r for r in served.fake.received if r.method == "POST"]
    assert tuple(r.path for r in sent) == spec.paths * 2  # one request, then the other
    served.check_auth(sent[0])


@kinds(embeds)
async def test_dimensions_reach_the_provider(gateway: Gateway, case: ProviderCase) -> None:
    spec = EMBEDS[case.kind]
    async with gateway(case, route(case)) as served:
        answer = await served.client.embeddings.create(
            model="embed", input="one", dimensions=spec.dimensions
        )
    assert answer.data[0].embedding == fake_vector("one", spec.dimensions)


@kinds(embeds)
async def test_token_arrays_go_only_where_they_are_understood(
    gateway: Gateway, case: ProviderCase
) -> None:
    spec = EMBEDS[case.kind]
    async with gateway(case, route(case)) as served:
        if spec.token_arrays:
            answer = await served.client.embeddings.create(
                model="embed", input=[[1, 2, 3], [4]], encoding_format="float"
            )
            assert [d.embedding for d in answer.data] == [fake_vector([1, 2, 3]), fake_vector([4])]
            return
        with pytest.raises(openai.BadRequestError) as caught:
            await served.client.embeddings.create(model="embed", input=[[1, 2, 3]])
        assert not [r for r in served.fake.received if r.method == "POST"]  # never sent
    error = caught.value.body
    assert isinstance(error, dict)
    assert (error["code"], error["param"]) == ("unsupported_parameter", "input")


@kinds(embeds)
async def test_an_upstream_failure_is_a_502_naming_the_target(
    gateway: Gateway, case: ProviderCase
) -> None:
    failing = EMBEDS[case.kind].failing
    table = f'[routes.embed]\nfallback = ["p:{failing}"]\n'
    async with gateway(case, table) as served:
        with pytest.raises(openai.InternalServerError) as caught:
            await served.client.embeddings.create(model="embed", input="x")
    assert caught.value.status_code == 502
    assert caught.value.response.headers["x-router-target"] == f"p:{failing}"


@kinds(lambda case: not embeds(case))
async def test_a_kind_without_embeddings_says_so(gateway: Gateway, case: ProviderCase) -> None:
    async with gateway(case, '[routes.embed]\nfallback = ["p:any-model"]\n') as served:
        with pytest.raises(openai.BadRequestError) as caught:
            await served.client.embeddings.create(model="embed", input="x")
        assert served.fake.received == []
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "unsupported_capability"
    assert "has no embeddings" in error["message"]


@kinds(lambda case: case.kind == "bedrock")
async def test_cohere_embed_on_bedrock_counts_tokens_from_its_header(
    gateway: Gateway, case: ProviderCase
) -> None:
    table = '[routes.embed]\nfallback = ["p:cohere.embed-english-v3"]\n'
    async with gateway(case, table) as served:
        answer = await served.client.embeddings.create(model="embed", input=TEXTS)
    assert [d.embedding for d in answer.data] == [fake_vector(text) for text in TEXTS]
    assert answer.usage.prompt_tokens == 3
    [sent] = [r for r in served.fake.received if r.method == "POST"]
    assert sent.path == "/model/cohere.embed-english-v3/invoke"
    assert sent.body == {
        "texts": TEXTS,
        "input_type": "search_document",
        "embedding_types": ["float"],
    }
    served.check_auth(sent)
