"""``llm-router``: serve, check, status, usage, simulate."""

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
    Config,
    ConfigError,
    compile_routes,
    connection_warnings,
    load_config,
    render_tree,
    timeout_warnings,
)

from ..traffic._budgets import Budgets
from ..traffic._state import StateFile
from ._usage_cli import add_usage_command, show_usage
from ._usage_db import check_path

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
    serve.add_argument(
        "--workers",
        type=_positive,
        help="processes serving the same sockets (overrides server.workers; default 1)",
    )
    serve.add_argument("--worker", help=argparse.SUPPRESS)  # set by the main process
    check = commands.add_parser("check", help="validate a config file and print its routes")
    check.add_argument("path")
    check.add_argument(
        "--fetch-secrets",
        action="store_true",
        help="also read every secret, aws-sm: and vault: ones included, and fail if one cannot be",
    )
    status = commands.add_parser("status", help="the live state of a running daemon")
    status.add_argument("--url", default="http://127.0.0.1:8080", help="the daemon's address")
    status.add_argument("--admin-key", help="needed when the daemon is not on loopback")
    status.add_argument("--json", action="store_true", help="the raw /admin/status JSON")
    add_usage_command(commands)
    from ._simulate_cli import add_simulate, run_simulate

    add_simulate(commands)
    args = parser.parse_args(argv)
    if args.command == "simulate":
        return run_simulate(args)
    if args.command == "check":
        return _check(args.path, fetch=args.fetch_secrets)
    if args.command == "status":
        from ._status import show_status  # keeps `serve` free of the client

        return show_status(args.url, args.admin_key, as_json=args.json)
    if args.command == "usage":
        return show_usage(args)
    return _serve(args.config, args.listen, args.log_level, args.workers, args.worker)


def _check(path: str, *, fetch: bool = False) -> int:
    from ._secrets import resolve_secrets, resolve_secrets_now

    try:
        # Plugins' kinds are registered first, so their blocks parse.
        table = compile_routes(load_config(path, kinds=provider_kinds()))
        if table.config.server.state_file is not None:  # as `serve` reads it at start
            StateFile(table.config.server.state_file, Budgets()).load()
        if table.config.server.usage_db is not None:  # as `serve` opens it at start
            check_path(table.config.server.usage_db)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    # Secrets are read as serve would: a value that cannot be a key fails the check; one
    # that cannot be read here (another machine's environment) is not for check to say.
    # Asked to fetch (--fetch-secrets), every secret must be readable, remote ones too.
    if fetch:
        secrets = trio.run(resolve_secrets, table.config)
    else:
        secrets = resolve_secrets_now(table.config)
    problems = (*secrets.malformed, *secrets.unreadable) if fetch else secrets.malformed
    if problems:
        print(str(ConfigError(problems)), file=sys.stderr)
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


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _serve(
    config: str,
    listen: str | None,
    level: str | None,
    workers: int | None = None,
    worker: str | None = None,
) -> int:
    from ._daemon import run_daemon  # keeps `check` free of server imports
    from ._worker import WorkerSpec

    spec = WorkerSpec.decode(worker) if worker is not None else None
    who = f" [worker {spec.index} pid %(process)d]" if spec is not None else ""
    logging.basicConfig(
        level=(level or "info").upper(),
        format=f"%(asctime)s %(levelname)s %(name)s{who}: %(message)s",
    )
    try:
        if spec is None and workers != 1:
            # The file decides unless the command line did; one process unless it says more.
            loaded = load_config(config, kinds=provider_kinds())
            count = workers if workers is not None else loaded.server.workers
            if count > 1:
                given = workers is not None
                return _supervise(config, loaded, listen, level, count, workers_given=given)
        trio.run(partial(run_daemon, config, listen, log_level=level, worker=spec))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def _supervise(
    config: str,
    loaded: Config,
    listen: str | None,
    level: str | None,
    count: int,
    *,
    workers_given: bool,
) -> int:
    from ._supervisor import Supervisor

    if loaded.server.state_file is not None:  # each worker would write over the others
        print(
            "server.state_file: cannot be used with several workers (each would overwrite"
            " the others' spend); unset it, or run one worker",
            file=sys.stderr,
        )
        return 1
    overridden = (
        *(["server.listen"] if listen else []),
        *(["server.log_level"] if level is not None else []),
        *(["server.workers"] if workers_given else []),
    )
    if level is None:
        logging.getLogger().setLevel(loaded.server.log_level.upper())
    supervisor = Supervisor(
        config, loaded, count, listen=listen, log_level=level, overridden=tuple(overridden)
    )
    try:
        return trio.run(supervisor.run)
    except OSError as exc:  # an address in use, a descriptor that is not a socket
        print(f"llm-router: cannot listen: {exc}", file=sys.stderr)
        return 1
