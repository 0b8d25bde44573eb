"""A prefilled request (the text delivered so far as a trailing assistant message, as a
resumed stream sends it) reaches every kind in its prefill form: a kind that continues
it answers with the rest of the answer, the others anew; a model that takes no prefill
refuses it with a 400 the client gets as an invalid request. And the ``story`` models'
cuts, which resumes are tested against, break where they say."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import attrs
import openai
import pytest

from adapters import Seam
from tests.conformance._cases import OPENAI
from tests.conformance.conftest import kinds, text_of
from tests.fakes._base import PREFILL_REFUSED, STORY

if TYPE_CHECKING:
    from tests.conformance._case import ProviderCase
    from tests.conformance.conftest import Gateway, Served

#: What a broken stream had delivered: the story's first 20 words (their spaces in front).
DELIVERED = " ".join(STORY.split(" ")[:20])
ASK: Any = {"role": "user", "content": "tell me a story"}


def sent_prefill(case: ProviderCase, delivered: str) -> str:
    """The prefill the kind's adapter sends for ``delivered``."""
    return delivered.rstrip() if case.kind == "anthropic" else delivered


def expected(case: ProviderCase, delivered: str) -> str:
    """What the kind answers a request prefilled with ``delivered``."""
    if not case.prefill:
        return STORY  # anew
    return STORY[len(sent_prefill(case, delivered)) :]


async def prefilled(served: Served, model: str, delivered: str) -> tuple[str, str]:
    """The plain answer and the streamed one to a request prefilled with ``delivered``."""
    messages: Any = [ASK, {"role": "assistant", "content": delivered}]
    create = served.client.chat.completions.create
    answer = await create(model=model, messages=messages)
    chunks = await create(model=model, messages=messages, stream=True)
    return answer.choices[0].message.content or "", text_of([c async for c in chunks])


@kinds()
@pytest.mark.parametrize("delivered", [DELIVERED, DELIVERED + " "], ids=["word", "space"])
async def test_a_prefilled_request_gets_the_rest(
    gateway: Gateway, case: ProviderCase, delivered: str
) -> None:
    async with gateway(case) as served:
        plain, streamed = await prefilled(served, f"p:{case.story}", delivered)
    assert plain == streamed == expected(case, delivered)
    last = served.fake.received[-1]
    assert served.fake.prefill(last) == sent_prefill(case, delivered)
    if case.prefill:  # and the seam joins the rest onto what was delivered, exactly
        assert delivered + Seam.after(delivered).feed(streamed) == STORY


@kinds()
async def test_a_model_that_takes_no_prefill_refuses_it_with_a_400(
    gateway: Gateway, case: ProviderCase
) -> None:
    messages: Any = [ASK, {"role": "assistant", "content": DELIVERED}]
    async with gateway(case) as served:
        create = served.client.chat.completions.create
        with pytest.raises(openai.BadRequestError) as plain:
            await create(model=f"p:{case.story}-no-prefill", messages=messages)
        with pytest.raises(openai.BadRequestError) as streamed:
            await create(model=f"p:{case.story}-no-prefill", messages=messages, stream=True)
        # without a prefill the same model answers
        whole = await create(model=f"p:{case.story}-no-prefill", messages=[ASK])
    for caught in (plain, streamed):
        assert caught.value.status_code == 400
        assert caught.value.type == "invalid_request_error"  # InvalidRequest, the client's
        assert PREFILL_REFUSED in caught.value.message
    assert whole.choices[0].message.content == STORY


@kinds()
async def test_a_fake_set_to_refuse_prefill_refuses_it_for_every_model(
    gateway: Gateway, case: ProviderCase
) -> None:
    async with gateway(case) as served:
        served.fake.reject_prefill = True
        with pytest.raises(openai.BadRequestError, match=re.escape(PREFILL_REFUSED)):
            await served.client.chat.completions.create(
                model=f"p:{case.story}",
                messages=[ASK, {"role": "assistant", "content": DELIVERED}],
            )
        whole = await served.client.chat.completions.create(model=f"p:{case.story}", messages=[ASK])
    assert whole.choices[0].message.content == STORY


@kinds()
async def test_the_anthropic_ingress_prefill_reaches_every_kind(
    gateway: Gateway, case: ProviderCase
) -> None:
    async with gateway(case) as served, served.anthropic() as client:
        message = await client.messages.create(
            model=f"p:{case.story}",
            max_tokens=200,
            messages=[ASK, {"role": "assistant", "content": DELIVERED}],
        )
    assert "".join(b.text for b in message.content if b.type == "text") == expected(case, DELIVERED)


@pytest.mark.parametrize("kind", ["vllm", "mistral"])
async def test_openai_compatible_hosts_that_continue_a_prefill(gateway: Gateway, kind: str) -> None:
    # vLLM is told continue_final_message, Mistral prefix: true; the fake honours both.
    case = attrs.evolve(OPENAI, kind=kind, prefill=True)
    async with gateway(case) as served:
        plain, streamed = await prefilled(served, "p:story", DELIVERED)
    assert plain == streamed == STORY[len(DELIVERED) :]


@kinds()
@pytest.mark.parametrize(
    ("cut", "words", "one_write"),
    [
        ("story-break-40", 40, False),
        ("story-corrupt-10", 9, False),
        ("story-corrupt-10", 9, True),
        ("story-end-30", 30, False),
    ],
    ids=["story-break-40", "story-corrupt-10", "story-corrupt-10-one-write", "story-end-30"],
)
async def test_story_cuts(
    gateway: Gateway, case: ProviderCase, cut: str, words: int, one_write: bool
) -> None:
    """The story stops short where its name says (the 10th word's event is garbage):
    the words before the garbage reach the client even when they came in the same read
    as it (``one_write``: the whole body in one write)."""
    model = f"p:{case.story.replace('story', cut)}"
    async with gateway(case, one_write=one_write) as served:
        chunks = await served.client.chat.completions.create(
            model=model, messages=[ASK], stream=True
        )
        received: list[str] = []

        async def read() -> None:
            async for chunk in chunks:
                received.append(text_of([chunk]))

        with pytest.raises(openai.APIError):
            await read()
    assert "".join(received) == " ".join(STORY.split(" ")[:words])
