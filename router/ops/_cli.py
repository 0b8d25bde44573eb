"""``llm-router``: serve, check, status, simulate."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from functools import partial
from typing import TYPE_CHECKING

import trio

from adapters import provider_kinds
from rules import (
    ConfigError,
    compile_routes,
    connection_warnings,
    load_config,
    render_tree,
    timeout_warnings,
)

from ..traffic._budgets import Budgets
from ..traffic._state import StateFile

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `llm-router check x | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llm-router", description="A local LLM gateway.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the daemon")
    serve.add_argument("--config", default="router.toml", help="default: ./router.toml")
    serve.add_argument("--listen", help="HOST:PORT, overrides server.listen")
    serve.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="overrides server.log_level of the config",
    )
    check = commands.add_parser("check", help="validate a config file and print its routes")
    check.add_argument("path")
    status = commands.add_parser("status", help="the live state of a running daemon")
    status.add_argument("--url", default="http://127.0.0.1:8080", help="the daemon's address")
    status.add_argument("--admin-key", help="needed when the daemon is not on loopback")
    status.add_argument("--json", action="store_true", help="the raw /admin/status JSON")
    from ._simulate_cli import add_simulate, run_simulate

    add_simulate(commands)
    args = parser.parse_args(argv)
    if args.command == "simulate":
        return run_simulate(args)
    if args.command == "check":
        return _check(args.path)
    if args.command == "status":
        from ._status import show_status  # keeps `serve` free of the client

        return show_status(args.url, args.admin_key, as_json=args.json)
    return _serve(args.config, args.listen, args.log_level)


def _check(path: str) -> int:
    from ._secrets import resolve_secrets_now

    try:
        # Plugins' kinds are registered first, so their blocks parse.
        table = compile_routes(load_config(path, kinds=provider_kinds()))
        if table.config.server.state_file is not None:  # as `serve` reads it at start
            StateFile(table.config.server.state_file, Budgets()).load()
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    # Secrets are read as serve would: a value that cannot be a key fails the check; one
    # that cannot be read here (another machine's environment) is not for check to say.
    secrets = resolve_secrets_now(table.config)
    if secrets.malformed:
        print(str(ConfigError(secrets.malformed)), file=sys.stderr)
        return 1
    print(f"{path}: OK")
    print(render_tree(table))
    warnings = [
        *timeout_warnings(table),  # the file is valid: warnings do not fail it
        *connection_warnings(table.config.providers),
        *secrets.warnings,
    ]
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _serve(config: str, listen: str | None, level: str | None) -> int:
    from ._daemon import run_daemon  # keeps `check` free of server imports

    logging.basicConfig(
        level=(level or "info").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        trio.run(partial(run_daemon, config, listen, log_level=level))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
