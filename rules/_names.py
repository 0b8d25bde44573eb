"""What a model name may be: the rule for names a client sends and names a config writes.

A model name ends up in an upstream's URL path (Gemini's ``models/{model}``, Bedrock's
``model/{modelId}``, an Azure deployment), in response headers and in logs. Adapters
percent-encode it as one path segment, but a name that would need it is refused before
any of that: a ``..`` segment, ``?``, ``#``, ``%``, whitespace or a control character
(CR and LF included). ``/`` stays allowed (``meta-llama/Llama-3.1-8B``), and so does
``:`` (``anthropic.claude-3-5-haiku-20241022-v1:0``).
"""

import re
from typing import TYPE_CHECKING, Any

from ._errors import FieldError
from ._fields import field_local

if TYPE_CHECKING:
    import attrs

__all__ = ["MAX_MODEL_NAME", "model_name", "model_problem"]

#: Longest model name served, in characters (the longest real ids, Bedrock ARNs, are
#: about 100): each name a client invents is kept as a target, so its size is bounded.
MAX_MODEL_NAME = 512

# Whitespace of any kind (Unicode included), C0 and C1 controls, DEL, and ? # %.
_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f-\x9f?#%]")
_NAMES = {
    " ": "a space",
    "?": '"?"',
    "#": '"#"',
    "%": '"%"',
}


def model_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a model name, or None when it may be used.

    Returns:
        A short phrase for an error message (``"contains a line break"``); it never
        repeats the name, which the caller quotes (escaped) if it wants to.
    """
    if not name:
        return "is empty"
    if len(name) > MAX_MODEL_NAME:
        return f"is longer than {MAX_MODEL_NAME} characters"
    bad = _FORBIDDEN.search(name)
    if bad is not None:
        char = bad.group()
        if char in "\r\n":
            what = "a line break"
        elif char in _NAMES:
            what = _NAMES[char]
        elif char.isspace():
            what = "whitespace"
        else:
            what = f"a control character (U+{ord(char):04X})"
        return f"contains {what}"
    if any(segment in (".", "..") for segment in name.split("/")):
        return 'has a "." or ".." path segment'
    return None


@field_local
def model_name(instance: object, attribute: "attrs.Attribute[Any]", value: str | None) -> None:
    """An attrs validator: a model name field (None allowed) follows `model_problem`."""
    if value is not None and (problem := model_problem(value)) is not None:
        raise FieldError(f"the model name {problem}", (attribute.name,))
