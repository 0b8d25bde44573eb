"""Starting the fake upstreams and the router for one measurement, and stopping them."""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from _model import RouterStart, Upstream
from _procs import free_port, post, read_port_line, rss_mb, spawn, stop, wait_healthy
from loadgen import CHAT_BODY, STREAM_BODY

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator

    from _tls import Certs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ROUTER_START_LIMIT_S = 30.0
CONFIG = """\
[server]
listen = ["127.0.0.1:0"]
{server}
[providers.up]
kind = "openai"
base_url = "{base}/v1"
api_key = "env:BENCH_KEY"
{pool}
[routes.bench]
fallback = ["up:bench-model"]
{route}
{routes}"""
_serial = itertools.count(1)


@dataclass(frozen=True)
class Context:
    """What every measurement needs."""

    tmp: Path
    python: str
    router_cpus: set[int] | None
    load_cpus: set[int] | None
    wrk: str | None
    lua: Path
    duration: float
    warmup: float
    direct_only: bool
    certs: Certs | None = None
    #: How the router is started, after the interpreter (a profiling wrapper may stand in).
    router_module: tuple[str, ...] = ("-m", "router")

    def direct_url(self, up: Upstream, port: int) -> str:
        """The chat URL of the upstream itself (by address: the load tools need no DNS)."""
        scheme = "https" if up.tls else "http"
        return f"{scheme}://127.0.0.1:{port}/v1/chat/completions"


@dataclass
class Servers:
    """A running upstream and (unless ``--direct-only``) a router in front of it."""

    upstream_port: int
    upstream_pid: int
    router: subprocess.Popen[bytes] | None
    router_port: int
    start: RouterStart | None


def start_upstream(up: Upstream, ctx: Context) -> tuple[subprocess.Popen[bytes], int]:
    """Spawn the fake upstream on the load CPU; return it and its port."""
    script = HERE / ("upstream_h2.py" if up.proto == "h2" else "upstream.py")
    cmd = [sys.executable, str(script), "--port", "0", "--delay-ms", str(up.delay_ms)]
    cmd += ["--chunk-delay-ms", str(up.chunk_delay_ms)]
    if up.tls:
        assert ctx.certs is not None
        cmd += ["--tls", str(ctx.certs.cert), str(ctx.certs.key)]
    proc = spawn(cmd, ctx.load_cpus)
    try:
        return proc, read_port_line(proc)
    except BaseException:
        stop(proc)
        raise


def router_config(
    up: Upstream,
    upstream_port: int,
    server: str = "",
    ca_file: Path | None = None,
    routes: str = "",
    provider: str = "",
    route: str = "",
) -> str:
    """The router's config: one OpenAI-compatible provider on the fake upstream.

    ``server`` holds extra ``[server]`` lines (``backlog = 4096``, ``max_in_flight``);
    ``routes`` more route tables (the embeddings route); ``provider`` extra lines of the
    provider (``limits = {...}``).
    ``route`` extra lines of the bench route, and tables after it (its ``hooks``).
    A TLS upstream is named ``localhost``, as its certificate is, and trusted through the
    provider's ``tls.ca_file`` (the run's throwaway CA).
    """
    base = f"https://localhost:{upstream_port}" if up.tls else f"http://127.0.0.1:{upstream_port}"
    pool = "pool = { http2 = true }\n" if up.proto == "h2" else ""
    if up.tls and ca_file is not None:
        pool += f'tls = {{ ca_file = "{ca_file}" }}\n'
    server = server + "\n" if server else ""
    pool += provider + "\n" if provider else ""
    return CONFIG.format(server=server, base=base, pool=pool, route=route, routes=routes)


def start_router(
    up: Upstream,
    upstream_port: int,
    ctx: Context,
    *,
    server: str = "",
    probe: bool = True,
    routes: str = "",
    args: tuple[str, ...] = (),
    pinned: bool = True,
    provider: str = "",
    route: str = "",
) -> tuple[subprocess.Popen[bytes], int, RouterStart]:
    """Spawn the router on the router CPU; return it, its port and its start measurement.

    ``probe`` sends one plain and one streamed request through it first; a cold-start
    measurement skips that, so the router has no upstream connection yet. ``args`` go
    to ``serve``; ``pinned=False`` lets it use every CPU (``--workers``).
    """
    tag = f"{up.name}-{next(_serial)}"
    config = ctx.tmp / f"router-{tag}.toml"
    ca_file = ctx.certs.ca if ctx.certs is not None else None
    config.write_text(router_config(up, upstream_port, server, ca_file, routes, provider, route))
    port = free_port()
    cmd = [ctx.python, *ctx.router_module, "serve", "--config", str(config)]
    cmd += ["--listen", f"127.0.0.1:{port}", *args]
    env = {**os.environ, "BENCH_KEY": "sk-bench"}
    log_path = ctx.tmp / f"router-{tag}.log"
    log = log_path.open("wb")
    started = time.perf_counter()
    cpus = ctx.router_cpus if pinned else None
    proc = spawn(cmd, cpus, env=env, cwd=ROOT, stdout=log, stderr=log)
    log.close()
    try:
        start_s = wait_healthy(proc, port, started, ROUTER_START_LIMIT_S)
        if probe:
            probe_router(port)
    except BaseException as exc:
        stop(proc)
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{exc}\n--- router log (tail) ---\n{tail}") from exc
    return proc, port, RouterStart(up.name, start_s, rss_mb(proc.pid))


def probe_router(port: int) -> None:
    """Check the router answers one plain and one streaming request correctly."""
    status, body = post(port, CHAT_BODY)
    if status != 200 or b"Hello from the bench upstream." not in body:
        raise RuntimeError(f"router non-stream probe: {status} {body[:500]!r}")
    status, body = post(port, STREAM_BODY)
    if status != 200 or b"[DONE]" not in body or body.count(b"data:") < 20:
        raise RuntimeError(f"router stream probe: {status} {body[:500]!r}")


@contextlib.contextmanager
def servers(
    up: Upstream,
    ctx: Context,
    *,
    server: str = "",
    probe: bool = True,
    router: bool = True,
    routes: str = "",
    router_args: tuple[str, ...] = (),
    pinned: bool = True,
    route: str = "",
) -> Iterator[Servers]:
    """Run ``up`` and a router on it for the ``with`` block; stop both by PID after."""
    upstream: subprocess.Popen[bytes] | None = None
    proc: subprocess.Popen[bytes] | None = None
    try:
        upstream, uport = start_upstream(up, ctx)
        if not router or ctx.direct_only:
            yield Servers(uport, upstream.pid, None, 0, None)
            return
        proc, rport, start = start_router(
            up,
            uport,
            ctx,
            server=server,
            probe=probe,
            routes=routes,
            args=router_args,
            pinned=pinned,
            route=route,
        )
        yield Servers(uport, upstream.pid, proc, rport, start)
    finally:
        stop(proc)
        stop(upstream)


def router_url(port: int) -> str:
    """The router's chat URL."""
    return f"http://127.0.0.1:{port}/v1/chat/completions"


def short_error(exc: BaseException) -> str:
    """The first line of a failure, for the report (the router log's tail is printed)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]
