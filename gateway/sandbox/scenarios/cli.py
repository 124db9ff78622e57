"""``gba-gateway sandbox scenario list|run NAME``: the scenarios' command line.

``run`` prints each step as it ends and exits 0 when every scenario passed, 1 when one
failed (or the sandbox did not answer), 2 when there is no scenario of that name.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8080"


def register(sandbox_commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``scenario`` under ``sandbox``; its handler is set with set_defaults."""
    scenario = sandbox_commands.add_parser(
        "scenario",
        help="run scripted interop scenarios against a running sandbox",
        description="Scripted scenarios that check a running sandbox end to end: every "
        "matter, supplements, a joint rejection, a partner outage, an agent and a "
        "low-assurance login. See docs/scenarios.md.",
    )
    commands = scenario.add_subparsers(dest="scenario_command", metavar="SUBCOMMAND")
    commands.required = True
    listing = commands.add_parser("list", help="list the scenarios with what each checks")
    listing.set_defaults(handler=list_scenarios)
    run = commands.add_parser(
        "run",
        help="run one scenario, or all of them in order",
        description="Run NAME (or 'all') against the sandbox at --url, printing each step "
        "(✓/✗, what it checked, elapsed ms) and, on failure, what was expected and seen. "
        "Exit 0 when every scenario passed, 1 otherwise.",
    )
    run.add_argument("name", metavar="NAME", help="a scenario name (see 'list'), or 'all'")
    run.add_argument("--url", default=DEFAULT_URL, help=f"gateway URL (default {DEFAULT_URL})")
    run.add_argument(
        "--data-dir",
        type=Path,
        dest="scenario_data_dir",
        help="the sandbox folder holding the agency keys (default .sandbox)",
    )
    run.add_argument(
        "--token",
        help="the sandbox access token, needed beyond loopback (default: GBA_SANDBOX_TOKEN, "
        "else the data folder's access-token)",
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for anything the sandbox does on its own (default 30)",
    )
    run.set_defaults(handler=run_scenarios_command)


def list_scenarios(args: argparse.Namespace) -> int:
    from gateway.sandbox.scenarios.registry import SCENARIOS

    width = max(len(s.name) for s in SCENARIOS)
    for scenario in SCENARIOS:
        print(f"{scenario.name:<{width}}  {scenario.description}")
    return 0


def run_scenarios_command(args: argparse.Namespace) -> int:
    from gateway.sandbox.access import client_token
    from gateway.sandbox.scenarios.context import Options
    from gateway.sandbox.scenarios.registry import SCENARIOS, find
    from gateway.sandbox.scenarios.report import Reporter
    from gateway.sandbox.scenarios.runner import run_scenarios
    from gateway.settings import load_settings

    try:
        chosen = find(args.name)
    except KeyError:
        names = ", ".join(s.name for s in SCENARIOS)
        print(f"gba-gateway: no scenario {args.name!r} (one of: {names}, all)", file=sys.stderr)
        return 2
    if args.timeout <= 0:
        print("gba-gateway: --timeout must be positive", file=sys.stderr)
        return 2
    settings = load_settings(mode="sandbox")
    data_dir = args.scenario_data_dir or getattr(args, "data_dir", None) or settings.sandbox_dir
    options = Options(
        url=args.url,
        data_dir=data_dir,
        mappings_dir=settings.mappings_dir,
        patience=args.timeout,
        token=client_token(args.token, data_dir),
    )
    results = asyncio.run(run_scenarios(chosen, options, Reporter(sys.stdout)))
    return 0 if results and all(result.passed for result in results) else 1
