"""llm-router, the daemon: CLI, ASGI app, engine, upstream transports, lifecycle."""

from ._app import App as App
from ._daemon import hypercorn_config as hypercorn_config
from ._daemon import run_daemon as run_daemon
from ._engine import Engine as Engine
from ._engine import RequestTrace as RequestTrace
from ._pool import H11Pool as H11Pool
from ._runtime import Runtime as Runtime
from ._transport import HttpxTransport as HttpxTransport
from ._transport import Transport as Transport
from ._transport import UpstreamResponse as UpstreamResponse
