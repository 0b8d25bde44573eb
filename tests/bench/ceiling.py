"""The ceiling: a fixed-answer raw ASGI app on one hypercorn-trio worker.

Nothing built on hypercorn's trio worker can beat it on the same core, so the report
measures it in the same run and gives the router's rate as a share of it; that share is
what carries over between machines of different speed.

``python tests/bench/ceiling.py --port N``
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

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


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/healthz":
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": BODY})
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    config = Config()
    config.bind = [f"127.0.0.1:{parser.parse_args().port}"]
    config.accesslog = None
    trio.run(serve, app, config)


if __name__ == "__main__":
    main()
