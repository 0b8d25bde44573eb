"""``llm-router simulate``: its arguments, and what it prints and writes."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import attrs

from adapters import provider_kinds
from rules import Config, ConfigError, load_config, parse_duration

from ._simulate import simulate
from ._simulate_fit import fit_ledger
from ._simulate_plot import render_svg
from ._simulate_report import Run, figures, render_json, render_table
from ._traffic_spec import parse_traffic

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

__all__ = ["add_simulate", "run_simulate"]

DEFAULT_TRAFFIC = "rate=10/s"


def add_simulate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``simulate`` subcommand's arguments."""
    sim = commands.add_parser(
        "simulate", help="run a config's routing in virtual time against modelled providers"
    )
    sim.add_argument("--config", default="router.toml", help="default: ./router.toml")
    sim.add_argument(
        "--traffic",
        default=DEFAULT_TRAFFIC,
        help="e.g. rate=50/s,burst=200,stream=0.3,prompt=500 (default: %(default)s)",
    )
    sim.add_argument("--duration", default="10m", help="virtual time, e.g. 1h (default 10m)")
    sim.add_argument("--seed", type=int, default=1, help="same seed, same figures")
    sim.add_argument("--compare", metavar="OTHER.toml", help="a second config, same traffic")
    sim.add_argument("--plot", metavar="FILE.svg", help="write the latency CDFs as SVG")
    sim.add_argument("--json", action="store_true", help="the figures as JSON")
    sim.add_argument(
        "--fit",
        nargs="?",
        const="",
        metavar="USAGE_DB",
        help="play providers as the usage ledger saw them (default: server.usage_db)",
    )


def run_simulate(args: argparse.Namespace) -> int:
    """Run the simulation(s) and report; 1 with a message for bad input."""
    try:
        traffic = parse_traffic(args.traffic)
        duration = parse_duration(args.duration)
        paths: Sequence[str] = [args.config] + ([args.compare] if args.compare else [])
        configs = [load_config(p, kinds=provider_kinds()) for p in paths]
        if args.fit is not None:
            configs = [fitted(config, args.fit) for config in configs]
        runs = []
        for path, config in zip(paths, configs, strict=False):
            samples = simulate(config, traffic, duration, args.seed)
            order = traffic.routes or tuple(config.routes)
            runs.append(Run(os.path.basename(path), figures(samples, order), samples))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 1
    if args.plot:
        with open(args.plot, "w", encoding="utf-8") as file:
            file.write(render_svg(runs))
    if args.json:
        header = {"traffic": traffic.describe(), "duration": duration, "seed": args.seed}
        print(render_json(runs, header))
    else:
        total = sum(f.requests for run in runs[:1] for f in run.routes.values())
        print(
            f"simulated {args.duration} of {traffic.describe()} (seed {args.seed}): "
            f"{total} requests"
        )
        print(render_table(runs))
    return 0


def fitted(config: Config, ledger: str) -> Config:
    """``config`` with its providers' profiles fitted from ``ledger`` (empty: the
    config's own ``server.usage_db``); its ``[simulate.providers.*]`` tables win.

    Raises:
        ValueError: no ledger, or one that cannot be read.
    """
    path = ledger or config.server.usage_db
    if not path:
        raise ValueError("--fit needs a usage ledger: give its path, or set server.usage_db")
    profiles = {**fit_ledger(path), **config.simulate.providers}
    return attrs.evolve(config, simulate=attrs.evolve(config.simulate, providers=profiles))
