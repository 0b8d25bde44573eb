"""AI21 Studio's Jamba chat API: OpenAI's Chat Completions with documented differences.

``POST https://api.ai21.com/studio/v1/chat/completions`` with ``Authorization: Bearer``
takes ``model``, ``messages`` (roles ``system``, ``user``, ``assistant``, ``tool``; the
content a string), ``tools`` (functions only), ``documents``, ``response_format``
(``text`` or ``json_object`` only), ``max_tokens``, ``temperature``, ``top_p``,
``stop``, ``n`` and ``stream``; answers and stream chunks are OpenAI's, the last chunk
carrying ``usage``; errors are ``{"detail": ...}``. So, before a body is sent:

* ``developer`` becomes ``system``; content parts become one string (AI21 takes no
  images: a request with one is refused here, never sent);
* a ``json_schema`` response format becomes ``json_object`` (JSON mode is what AI21
  has; the schema's shape is then the prompt's to ask for);
* ``tool_choice`` and ``stream_options`` are dropped (not part of its API: the model
  decides when to call a tool, and usage comes on every stream anyway).
"""

from __future__ import annotations

from typing import Any

from ._errors import UnsupportedCapability

__all__ = ["ai21_request"]

_DROPPED = ("tool_choice", "stream_options", "parallel_tool_calls")


def _content(content: Any) -> Any:
    if not isinstance(content, list):
        return content
    texts = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "text":
            texts.append(str(part.get("text") or ""))
        else:
            raise UnsupportedCapability("ai21 takes text only: no images or other parts")
    return "".join(texts)


def ai21_request(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI Chat body as AI21 takes it. Raises UnsupportedCapability."""
    body = {k: v for k, v in body.items() if k not in _DROPPED}
    messages = body.get("messages")
    if isinstance(messages, list):
        body["messages"] = [
            {
                **m,
                "role": "system" if m.get("role") == "developer" else m.get("role"),
                **({"content": _content(m["content"])} if "content" in m else {}),
            }
            if isinstance(m, dict)
            else m
            for m in messages
        ]
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        body["response_format"] = {"type": "json_object"}
    return body
