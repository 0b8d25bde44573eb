"""The built-in ``complexity`` score of a prompt, for ``when`` rules: 0 (trivial) to 1.

Pure and deterministic: the same prompt always scores the same, so a route's choice can
be predicted from the prompt alone and tested without a model. It is a heuristic, not a
judgement; ``[defaults] complexity = "package.module:function"`` replaces it with a
function of the same shape (the prompt's text in, a number out, clamped to 0..1).

The score adds four parts, each capped, with these weights:

- length (0.3): words / 1500;
- code (0.2): fenced code blocks (three backticks) / 2;
- questions (0.15): question marks / 4;
- reasoning (0.35): distinct reasoning words (``why``, ``prove``, ``derive``,
  ``step by step``, ``trade-off``, ... see `REASONING`) / 4.

So a one-line greeting scores about 0, a short "why" question about 0.13, and a long
prompt with code that asks to analyse and compare trade-offs close to 1. The result is
rounded to three decimals.
"""

import re

__all__ = ["REASONING", "complexity"]

#: Words and phrases that ask for reasoning rather than recall.
REASONING = frozenset(
    {
        "algorithm",
        "analyse",
        "analyze",
        "architecture",
        "calculate",
        "compare",
        "debug",
        "derive",
        "design",
        "evaluate",
        "explain",
        "optimize",
        "proof",
        "prove",
        "reason",
        "refactor",
        "step by step",
        "theorem",
        "trade-off",
        "tradeoff",
        "why",
    }
)
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)?")
_PHRASES = tuple(p for p in REASONING if " " in p)


def complexity(text: str) -> float:
    """Score ``text`` (a prompt's messages, joined) from 0 to 1; see the module doc."""
    lowered = text.lower()
    words = _WORD.findall(lowered)
    found = {w for w in words if w in REASONING}
    found.update(p for p in _PHRASES if p in lowered)
    score = (
        0.3 * min(len(words) / 1500, 1.0)
        + 0.2 * min(lowered.count("```") // 2 / 2, 1.0)
        + 0.15 * min(lowered.count("?") / 4, 1.0)
        + 0.35 * min(len(found) / 4, 1.0)
    )
    return round(min(max(score, 0.0), 1.0), 3)
