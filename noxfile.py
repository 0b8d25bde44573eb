"""Developer and CI sessions: tests, clients, lint, typecheck, serve, bench, soak."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"

PACKAGES = ["router", "adapters", "rules"]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, with coverage (OTLP export included: its tests send spans)."""
    session.install("-e", ".[test,otlp]")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "report", "--fail-under=95")


CLIENT_TESTS = [
    f"tests/router/http/test_{name}_e2e.py"
    for name in ("langchain", "pydantic_ai", "instructor", "litellm")
]


@nox.session
def clients(session: nox.Session) -> None:
    """The client libraries as the daemon's clients, with the heavy ones ([clients]:
    instructor, LiteLLM) that the tests session leaves out (their tests skip there)."""
    session.install("-e", ".[test,clients]")
    session.run("pytest", *CLIENT_TESTS, *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy strict on the three packages and on the tests (pyproject's [tool.mypy])."""
    # [test] too: mypy follows the tests' imports, so it needs whatever they import.
    session.install("-e", ".[test,typecheck]")
    session.run("mypy", *PACKAGES, "tests", *session.posargs)


@nox.session
def serve(session: nox.Session) -> None:
    """Run the daemon on the shipped router.toml (extra args go to `serve`)."""
    session.install("-e", ".")
    session.run("llm-router", "serve", "--config", "router.toml", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Throughput and latency, direct vs through the router (plain HTTP, TLS and HTTP/2
    upstreams), held streams up to 5,000 clients, overload, cold start; writes
    docs/benchmarks.md (about 7 minutes). `-- --quick` for fewer, shorter points;
    `-- --only held,cold` for some groups; `-- --only soak` for the 10-minute soak."""
    session.install("-e", ".", "trustme>=1.1")  # trustme: the TLS rows' throwaway CA
    session.run("python", "tests/bench/run.py", *session.posargs)


@nox.session
def screenshot(session: nox.Session) -> None:
    """docs/img/admin-ui.png: the status page in headless Chromium after three minutes
    of traffic on the shipped config (needs chromium and chromedriver; not in the
    default sessions; `-- --seconds 30` for a quicker one)."""
    session.install("-e", ".[test]")
    session.run(
        "python", "-m", "tests.router.http.screenshot_status_page", "docs/img/admin-ui.png",
        *session.posargs,
    )  # fmt: skip


@nox.session
def soak(session: nox.Session) -> None:
    """Minutes of mixed traffic with client hang-ups: RSS flat, descriptors back (not
    in the default sessions; `-- --duration 60` for a shorter run)."""
    session.install("-e", ".")
    session.run("python", "tests/soak/run.py", *session.posargs)
