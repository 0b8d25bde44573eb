"""llm-router, the daemon: CLI, ASGI app, engine, upstream transports, lifecycle."""

from .http._app import App as App
from .ops._daemon import hypercorn_config as hypercorn_config
from .ops._daemon import run_daemon as run_daemon
from .routing._engine import Engine as Engine
from .routing._request import RequestOptions as RequestOptions
from .routing._request import RequestTrace as RequestTrace
from .routing._request import RoutedRequest as RoutedRequest
from .routing._runtime import Runtime as Runtime
from .upstream._h2pool import H2Pool as H2Pool
from .upstream._pool import H11Pool as H11Pool
from .upstream._transport import HttpxTransport as HttpxTransport
from .upstream._transport import Transport as Transport
from .upstream._transport import UpstreamResponse as UpstreamResponse
