"""Every answer names itself as its client's format does, whatever provider gave it:
OpenAI-format answers have a ``chatcmpl-`` id and a creation time (Anthropic, Bedrock
and Cohere give none), the same in every chunk of a stream; Anthropic-format answers
have a ``msg_`` id."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tests.conformance.conftest import kinds

if TYPE_CHECKING:
    from tests.conformance._case import ProviderCase
    from tests.conformance.conftest import Gateway

HI: Any = [{"role": "user", "content": "hi there"}]


@kinds()
async def test_openai_answers_have_openais_id_and_a_creation_time(
    gateway: Gateway, case: ProviderCase
) -> None:
    before = int(time.time())
    async with gateway(case) as served:
        answer = await served.client.chat.completions.create(model="chat", messages=HI)
        chunks = await served.stream("chat", stream_options={"include_usage": True})
    after = int(time.time())
    assert answer.id.startswith("chatcmpl-")
    assert answer.id != "chatcmpl-"
    # The upstream's own time where it gave one (the fakes say 2023), else now.
    assert 1_600_000_000 <= answer.created <= after
    assert {c.id for c in chunks} == {chunks[0].id}
    assert {c.created for c in chunks} == {chunks[0].created}
    assert chunks[0].id.startswith("chatcmpl-")
    assert 1_600_000_000 <= chunks[0].created <= after
    if case.kind in ("anthropic", "bedrock", "cohere"):  # no creation time of their own
        assert before <= answer.created <= after
        assert before <= chunks[0].created <= after


@kinds()
async def test_anthropic_answers_have_a_message_id(gateway: Gateway, case: ProviderCase) -> None:
    async with gateway(case) as served, served.anthropic() as client:
        message = await client.messages.create(model="chat", max_tokens=50, messages=HI)
        async with client.messages.stream(model="chat", max_tokens=50, messages=HI) as stream:
            final = await stream.get_final_message()
    for answer in (message, final):
        assert answer.id.startswith("msg_")
        assert answer.id != "msg_"
        assert "chatcmpl" not in answer.id
