"""The ceiling: a fixed-answer raw ASGI app on one hypercorn-trio worker.

Nothing built on hypercorn's trio worker can beat it on the same core, so the report
measures it in the same run and gives the router's rate as a share of it; that share is
what carries over between machines of different speed.

``python tests/bench/ceiling.py --port N``
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

if TYPE_CHECKING:
    from hypercorn.typing import (
        ASGIReceiveCallable,
        ASGISendCallable,
        HTTPResponseBodyEvent,
        HTTPResponseStartEvent,
        Scope,
    )

BODY = orjson.dumps(
    {
        "id": "chatcmpl-ceiling",
        "object": "chat.completion",
        "created": 0,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the bench upstream."},
                "finish_reason": "stop",
            }
        ],
    }
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
START: HTTPResponseStartEvent = {"type": "http.response.start", "status": 200, "headers": HEADERS}
# more_body is optional in ASGI (default False); hypercorn's TypedDict requires it.
END: HTTPResponseBodyEvent = {"type": "http.response.body", "body": BODY, "more_body": False}


async def app(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/healthz":
        await send(START)
        await send(END)
        return
    while (await receive()).get("more_body"):
        pass
    await send(START)
    await send(END)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    config = Config()
    config.bind = [f"127.0.0.1:{parser.parse_args().port}"]
    config.accesslog = None
    trio.run(serve, app, config)


if __name__ == "__main__":
    main()
