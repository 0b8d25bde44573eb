"""The built-in complexity score: deterministic, bounded, and ordered as documented."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from router.routing._complexity import complexity


def test_documented_examples() -> None:
    assert complexity("hi there") == 0.0
    assert complexity("Why is the sky blue?") == 0.126  # one reasoning word, one question
    code = "```py\nx = 1\n```\n"
    assert complexity(code * 2) == 0.201  # two blocks, and four short words
    assert complexity("word " * 3000) == 0.3


def test_more_reasons_score_higher() -> None:
    plain = "Tell me the capital of France."
    hard = "Explain step by step why, then compare the trade-off and prove it."
    assert complexity(plain) < complexity("Why?") < complexity(hard)
    assert complexity(hard) == 0.352  # four reasoning words or more, twelve words


@given(st.text(max_size=3000))
def test_the_score_is_bounded_and_repeatable(text: str) -> None:
    score = complexity(text)
    assert 0.0 <= score <= 1.0
    assert complexity(text) == score
