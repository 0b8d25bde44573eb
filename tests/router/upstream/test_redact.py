"""Redacting pieces of secrets: any run of 8+ characters of a key, wherever it is."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from router.upstream._redact import PIECE, REDACTED, Redactor

KEY = "sk-proj-Zq8WmT4vR1xYb7NcK2pLs9Hd"

# Secrets over a small alphabet (so text and secret overlap often), text over a larger one.
secrets = st.text("abcdefgh-0123", min_size=PIECE, max_size=40)
texts = st.text("abcdefgh-0123 :[]", max_size=60)


def windows(secret: str) -> set[str]:
    return {secret[i : i + PIECE] for i in range(len(secret) - PIECE + 1)}


def leaks(text: str, secret: str) -> set[str]:
    return {w for w in windows(secret) if w in text}


@given(secrets, texts, texts, st.data())
def test_no_piece_of_8_survives(secret: str, before: str, after: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(secret) - PIECE))
    end = data.draw(st.integers(start + PIECE, len(secret)))
    text = before + secret[start:end] + after
    redacted = Redactor([secret])(text)
    assert not leaks(redacted, secret)
    assert REDACTED in redacted


@given(secrets, texts)
def test_text_without_a_piece_is_unchanged(secret: str, text: str) -> None:
    if not leaks(text, secret):
        assert Redactor([secret])(text) == text


@given(st.lists(secrets, min_size=1, max_size=3), texts, st.data())
def test_only_the_pieces_go(found: list[str], text: str, data: st.DataObject) -> None:
    """What is left between the redactions is text that was there, in order."""
    secret = data.draw(st.sampled_from(found))
    piece = secret[: data.draw(st.integers(PIECE, len(secret)))]
    original = text + piece + text
    redacted = Redactor(found)(original)
    assert all(not leaks(redacted, s) for s in found)
    position = 0
    for part in redacted.split(REDACTED):
        found_at = original.find(part, position)
        assert found_at >= 0
        position = found_at + len(part)


def test_prefix_suffix_and_middle_of_a_key() -> None:
    redact = Redactor([KEY])
    echoes = {
        f"Incorrect API key provided: {KEY[:12]}****{KEY[-4:]}": (
            "Incorrect API key provided: [redacted]****" + KEY[-4:]
        ),
        f"key ending in {KEY[-10:]}.": "key ending in [redacted].",
        f"(...{KEY[9:21]}...)": "(...[redacted]...)",
        f"{KEY} and again {KEY}": "[redacted] and again [redacted]",
        f"only {KEY[:7]} is too short to say anything": f"only {KEY[:7]} is too short to say anything",
    }
    for echo, expected in echoes.items():
        assert redact(echo) == expected


def test_a_short_secret_is_redacted_when_whole() -> None:
    assert (
        Redactor(["hunter2"])("the password hunter2 was sent") == "the password [redacted] was sent"
    )


def test_no_secrets_change_nothing() -> None:
    assert Redactor()("anything at all") == "anything at all"
    assert not Redactor([""])


def test_long_text_is_scanned_in_linear_time() -> None:
    redact = Redactor([KEY, *(f"other-secret-{i:04d}-abcdefgh" for i in range(50))])
    text = ("lorem ipsum dolor sit amet " * 40_000) + KEY[3:20]
    assert redact(text).endswith(REDACTED)
