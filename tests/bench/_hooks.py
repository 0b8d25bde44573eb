"""The ``hooks`` group: what content hooks cost a request.

The fast upstream, c=16, the router with and without a ``pii`` hook (every category)
and a ``regex`` hook on its route: a short chat request (the usual bench body), a
request with a 1 KiB prompt holding an e-mail address (non-stream, wrk only), and a
short stream (its answer through the stream scanner). The difference in the router's
CPU per request is the hooks' cost.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from _fmt import fmt_ms, fmt_rate, fmt_share
from _load import LoadSpec, run_loadgen, run_wrk
from _model import FAST, Measured
from _procs import post
from _servers import router_url, servers, short_error
from loadgen import CHAT_BODY, STREAM_BODY

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from _load import Result
    from _model import Run
    from _servers import Context

CONCURRENCY = 16
HOOKS = """hooks = ["pii", "words"]

[hooks.pii]
kind = "pii"

[hooks.words]
kind = "regex"
patterns = ["project-[a-z]+", "(?i)confidential"]
"""
VARIANTS = (("none", ""), ("pii + regex", HOOKS))
_NOTE = (
    "Please summarise this note for the team. The quarterly numbers went up in every "
    "region, shipping times went down, and two new hires start on Monday. "
)
#: About 1 KiB of prose, with one address for the pii hook to find.
LONG_PROMPT = (_NOTE * 7) + "Questions to jane.doe@example.org."
LONG_BODY = '{"model":"bench","messages":[{"role":"user","content":"' + LONG_PROMPT + '"}]}'
MODES = ("short", "1 KiB prompt", "stream")


def write_long_lua(tmp: Path) -> Path:
    """The wrk script that POSTs the 1 KiB-prompt request."""
    path = tmp / "post-long.lua"
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{LONG_BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return path


def _point(mode: str, url: str, ctx: Context, pid: int, long_lua: Path) -> Result | None:
    """One mode's load (as ``_scenarios.measure`` does: wrk for non-stream if present)."""
    if mode == "stream" or ctx.wrk is None:
        if mode == "1 KiB prompt":
            return None  # loadgen sends the short body only
        spec = LoadSpec(url, CONCURRENCY, ctx.duration, ctx.warmup, stream=mode == "stream")
        return run_loadgen(spec, ctx.load_cpus, pid)
    lua = long_lua if mode == "1 KiB prompt" else ctx.lua
    return run_wrk(ctx.wrk, lua, url, CONCURRENCY, ctx.duration, ctx.warmup, ctx.load_cpus, pid)


def bench_hooks(ctx: Context, run: Run) -> None:
    """Each mode at c=16, without hooks and with the pii and regex hooks; and the
    hooks' own CPU per request, measured apart."""
    run.hook_costs = hook_costs()
    print(
        "hooks  own CPU per request: "
        + ", ".join(f"{mode} {us:.0f} µs" for mode, us in run.hook_costs.items()),
        flush=True,
    )
    long_lua = write_long_lua(ctx.tmp)
    for variant, route in VARIANTS:
        try:
            # The usual probe wants 20 stream events; hooks hold text back and send
            # fewer (the same text), so the answer's text is checked instead.
            with servers(FAST, ctx, route=route, probe=not route) as s:
                assert s.router is not None
                if route:
                    probe_text(s.router_port)
                for mode in MODES:
                    result = _point(mode, router_url(s.router_port), ctx, s.router.pid, long_lua)
                    if result is None:
                        continue
                    extra: Result = {"hooks": variant, "mode": mode}
                    run.hooks.append(
                        Measured(f"{variant}, {mode}", CONCURRENCY, result, None, extra)
                    )
                    print(hooks_line(run.hooks[-1]), flush=True)
        except RuntimeError as exc:
            for mode in MODES:
                extra = {"hooks": variant, "mode": mode}
                run.hooks.append(
                    Measured(f"{variant}, {mode}", CONCURRENCY, None, short_error(exc), extra)
                )


def probe_text(port: int) -> None:
    """The router answers the whole text, plain and streamed."""
    for body, expected in (
        (CHAT_BODY, b"Hello from the bench upstream."),
        (STREAM_BODY, b"small delta."),
    ):
        status, answer = post(port, body)
        text = b"".join(re.findall(rb'"content":"([^"]*)"', answer))
        if (
            status != 200
            or not text.startswith(b"Hello from the bench upstream")
            or not text.endswith(expected)
        ):
            raise RuntimeError(f"router probe with hooks: {status} {answer[:500]!r}")


def hook_costs(iterations: int = 2000) -> dict[str, float]:
    """The hooks' own CPU per request, in this process (microseconds): the request's
    texts screened, and its answer (whole, or as the bench upstream's 20 stream chunks
    through the stream scanner). Free of the load's noise, unlike the table's rows."""
    import json
    import time

    from upstream import CONTENT, WORDS

    from adapters import (
        ChatChunk,
        Choice,
        ChunkChoice,
        Delta,
        GatewayRequest,
        GatewayResponse,
        Message,
        request_from_wire,
    )
    from router.traffic._content import AnswerScreen, screen_answer, screen_request
    from rules import PIIHookConfig, RegexHookConfig, compile_hook

    hooks = (
        compile_hook("pii", PIIHookConfig()),
        compile_hook("words", RegexHookConfig(patterns=("project-[a-z]+", "(?i)confidential"))),
    )
    whole = GatewayResponse("id", "m", 0, (Choice(0, Message("assistant", CONTENT), "stop"),))
    pieces = [w if i == 0 else " " + w for i, w in enumerate(WORDS)]
    chunks = [ChatChunk("id", "m", 0, (ChunkChoice(0, Delta(content=p)),)) for p in pieces]
    chunks.append(ChatChunk("id", "m", 0, (ChunkChoice(0, Delta(), "stop"),)))

    def stream() -> None:
        screen = AnswerScreen(hooks)
        for chunk in chunks:
            screen.feed([chunk])
        screen.close()

    def answer_whole() -> None:
        screen_answer(hooks, whole)

    cases: dict[str, tuple[GatewayRequest, Callable[[], None]]] = {
        "short": (request_from_wire(json.loads(CHAT_BODY)), answer_whole),
        "1 KiB prompt": (request_from_wire(json.loads(LONG_BODY)), answer_whole),
        "stream": (request_from_wire(json.loads(STREAM_BODY)), stream),
    }
    costs = {}
    for mode, (req, answer) in cases.items():
        started = time.process_time()
        for _ in range(iterations):
            screen_request(hooks, req)
            answer()
        costs[mode] = (time.process_time() - started) / iterations * 1e6
    return costs


def cpu_us(result: Result) -> float | None:
    """The router's CPU per request, in microseconds."""
    cpu, rps = result.get("router_cpu"), result.get("rps")
    if cpu is None or not rps:
        return None
    return float(cpu) / float(rps) * 1e6


def hooks_line(m: Measured) -> str:
    """One stdout line for a hooks point."""
    r = m.result
    if r is None:
        return f"hooks  {m.label}: {m.error}"
    us = cpu_us(r)
    return (
        f"hooks  {m.label:28} {r['rps']:7.0f} req/s, p50 {fmt_ms(r['p50_ms'])} ms, "
        f"router CPU {'-' if us is None else f'{us:.0f}'} µs/request"
    )


def hooks_section(run: Run) -> str:
    """The table of the hooks group, and the cost per request it shows."""
    if "hooks" not in run.groups or not run.hooks:
        return ""
    text = (
        "## Content hooks\n\n"
        f"Fast upstream, c={CONCURRENCY}, the bench route without hooks and with a `pii` "
        "hook (every category) and a `regex` hook (two patterns), redacting, on requests "
        "and answers: the usual short request, a request with a 1 KiB prompt holding an "
        "e-mail address (wrk only), and a short stream (its answer through the stream "
        "scanner, which holds back a window of text).\n\n"
        "| request | hooks | req/s | p50 / p99 ms | router CPU | router CPU µs/request |\n"
        "| --- | --- | --- | --- | --- | --- |\n"
    )
    costs: dict[str, dict[str, float | None]] = {}
    for m in run.hooks:
        mode, variant = str(m.extra["mode"]), str(m.extra["hooks"])
        r = m.result
        if r is None:
            text += f"| {mode} | {variant} | failed: {m.error} | | | |\n"
            continue
        us = cpu_us(r)
        costs.setdefault(mode, {})[variant] = us
        text += (
            f"| {mode} | {variant} | {fmt_rate(r['rps'])} | {fmt_ms(r['p50_ms'])} / "
            f"{fmt_ms(r['p99_ms'])} | {fmt_share(r['router_cpu'])} | "
            f"{'-' if us is None else f'{us:.0f}'} |\n"
        )
    lines = []
    for mode, by in costs.items():
        base, hooked = by.get("none"), by.get("pii + regex")
        if base is not None and hooked is not None:
            lines.append(f"{mode}: {hooked - base:+.0f} µs ({(hooked - base) / base:+.0%})")
    if lines:
        text += (
            "\nThe difference in the router's CPU per request, with the hooks and without "
            "(under this run's load; compare with the line below): " + "; ".join(lines) + ".\n"
        )
    if run.hook_costs:
        own = "; ".join(f"{mode}: {us:.0f} µs" for mode, us in run.hook_costs.items())
        text += (
            "\nThe hooks' own CPU per request, measured apart in one process (the request's "
            "texts screened, and its answer, whole or as the 20 chunks of the stream through "
            f"the stream scanner): {own}.\n"
        )
    return text
