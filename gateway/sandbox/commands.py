"""``gba-gateway sandbox``: the sandbox plug-in's command (gateway/extensions.py).

::

    gba-gateway sandbox [--host H] [--port P] [--data-dir DIR]   sandbox mode, SQLite
    gba-gateway sandbox demo [--url URL] [--data-dir DIR]        the tracer flow, narrated
    gba-gateway sandbox login PERSONA [--idp NAME] [--url URL]   a resident's gateway tokens
    gba-gateway sandbox scenario list | run NAME|all [--url URL]  scripted cases, each step
    gba-gateway sandbox register|route|fault|faults [--url URL]   tester self-service
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from gateway import cli, jurisdictions
from gateway.observability import configure_logging
from gateway.sandbox import cli as tester_cli
from gateway.sandbox.access import TOKEN_FILE, beyond_loopback, read_token
from gateway.sandbox.agencies import SANDBOX_AGENCIES
from gateway.sandbox.demo import DemoError, run_demo
from gateway.sandbox.personas import PERSONAS, persona
from gateway.sandbox.portal import PortalError, SandboxPortal
from gateway.sandbox.scenarios import cli as scenario_cli
from gateway.settings import Settings, load_settings

DEFAULT_URL = cli.DEFAULT_URL


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``sandbox`` and its sub-commands to the top-level commands."""
    sandbox = commands.add_parser(
        "sandbox",
        help="run the gateway in sandbox mode",
        description="Run the gateway in sandbox mode on an embedded "
        "SQLite file, with sandbox agencies, personas and keys "
        "generated into the sandbox folder.",
    )
    cli.serving_options(sandbox)
    sandbox.add_argument(
        "--data-dir", type=Path, help="sandbox folder for keys and the database (default .sandbox)"
    )
    sandbox.set_defaults(handler=serve_sandbox)
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND")
    tester_cli.register(sandbox_commands)
    scenario_cli.register(sandbox_commands)
    demo = sandbox_commands.add_parser(
        "demo",
        help="run the tracer flow against a running sandbox",
        description="Submit the sample HK application for 陳大文 as the sandbox HK agency and "
        "follow it to the Guangdong agency's decision, printing each step.",
    )
    demo.add_argument("--url", default=DEFAULT_URL, help=f"gateway URL (default {DEFAULT_URL})")
    demo.add_argument(
        "--data-dir",
        type=Path,
        dest="demo_data_dir",
        help="the sandbox folder holding the agency keys (default .sandbox)",
    )
    demo.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the decision (default 30)"
    )
    demo.set_defaults(handler=_demo)
    login = sandbox_commands.add_parser(
        "login",
        help="log a persona in without a browser and print the gateway tokens",
        description="Register a throwaway portal (RFC 7591), log PERSONA in through a sandbox "
        "identity provider (login_hint) and print the access token, the ID token and the "
        "ID token's claims as JSON. Use the access token as 'Authorization: Bearer' on /v1/me.",
    )
    login.add_argument("persona", help="persona id (see GET /sandbox/v1/personas)")
    login.add_argument(
        "--idp",
        choices=[j.provider for j in jurisdictions.registered() if j.sandbox_idp],
        help="identity provider (default: the persona's home provider)",
    )
    login.add_argument("--url", default=DEFAULT_URL, help=f"gateway URL (default {DEFAULT_URL})")
    login.add_argument("--agency", help="the partner agency the portal acts for (default sandbox)")
    login.set_defaults(handler=_login)


def serve_sandbox(args: argparse.Namespace) -> int:
    settings = load_settings(
        mode="sandbox",
        host=args.host,
        port=args.port,
        sandbox_dir=args.data_dir,
        log_format=os.environ.get("GBA_LOG_FORMAT", "console"),
    )
    configure_logging(settings.log_level, settings.log_format, sys.stderr)
    return cli.run_gateway(settings, lambda: banner_lines(settings))


def banner_lines(settings: Settings) -> list[str]:
    """What the sandbox adds to the start-up banner."""
    base = settings.base_url
    pki = settings.trust_anchors_dir or settings.sandbox_dir / "pki"
    token = read_token(settings.sandbox_dir) if beyond_loopback(settings) else None
    access = (
        [
            f"  access token   {token}",
            f"                 (reachable beyond loopback: /sandbox/v1 and the console need it; "
            f"kept in {settings.sandbox_dir / TOKEN_FILE})",
            f"  console        {base}/sandbox/console?token={token}",
        ]
        if token
        else [f"  console        {base}/sandbox/console"]
    )
    if token and not settings.public_url:
        access.append(
            "  note           set GBA_PUBLIC_URL=http://<the address testers use>:PORT: other "
            "Host names answer 421 (or list them in GBA_ALLOWED_HOSTS)"
        )
    return [
        *access,
        f"  portal         {base}/portal/   (the reference resident portal, in a browser)",
        f"  personas       {base}/sandbox/v1/personas",
        f"  agencies       {base}/sandbox/v1/agencies   (POST to register your own)",
        f"  faults         {base}/sandbox/v1/faults",
        f"  routes         {base}/sandbox/v1/routes",
        f"  notifications  {base}/sandbox/v1/notifications",
        f"  gateway as OP  {base}/.well-known/openid-configuration",
        *(
            f"  IdP {name:<10} {base}/sandbox/idp/{name}/.well-known/openid-configuration"
            for name in (j.provider for j in jurisdictions.registered() if j.sandbox_idp)
        ),
        f"  test PKI       {pki}/<{'|'.join(jurisdictions.registered().formats)}>"
        "/sandbox-root.pem (one CA each)",
        f"  data           {settings.sandbox_dir}",
        "",
        "  Sandbox agencies (keys <data>/keys/agencies/, inbox /sandbox/partners/ID/messages):",
        *(f"    {a.id:<10} {a.jurisdiction}  {a.names['en']}" for a in SANDBOX_AGENCIES),
        "",
        "  Personas:",
        *(
            f"    {p.id:<14} {p.jurisdiction}  {p.name_original} {p.family_name_latin} "
            f"{p.given_names_latin}  ({p.assurance})"
            for p in PERSONAS
        ),
        "",
        "  Try it:  gba-gateway sandbox scenario run all",
        "           gba-gateway sandbox demo",
        "           gba-gateway sandbox login chan-tai-man   (a resident's gateway token)",
        "           gba-gateway sandbox fault gd-hq-csb --down",
        "           gba-gateway conformance run --target URL --key <data>/keys/gateway",
        "  Everything here is sandbox material (kids sandbox-*, CAs 'GBA sandbox'):",
        "  production mode refuses it.",
    ]


def _demo(args: argparse.Namespace) -> int:
    data_dir = args.demo_data_dir or load_settings(mode="sandbox").sandbox_dir
    try:
        return cli.run(run_demo(args.url, data_dir, patience=args.timeout))
    except (DemoError, aiohttp.ClientError) as exc:
        print(f"gba-gateway: demo failed: {exc}", file=sys.stderr)
        return 1


def _login(args: argparse.Namespace) -> int:
    try:
        who = persona(args.persona)
    except KeyError:
        print(f"gba-gateway: no persona {args.persona!r}", file=sys.stderr)
        return 2
    idp = args.idp or who.providers()[0]

    async def login() -> dict[str, Any]:
        portal = await SandboxPortal.register(args.url, agency_id=args.agency)
        tokens = await portal.login(idp, who.id)
        return {
            "client_id": portal.client_id,
            "idp": idp,
            "access_token": tokens.access_token,
            "expires_in": tokens.expires_in,
            "id_token": tokens.id_token,
            "id_token_claims": jwt.decode(tokens.id_token, options={"verify_signature": False}),
        }

    try:
        result = asyncio.run(login())
    except (PortalError, aiohttp.ClientError) as exc:
        print(f"gba-gateway: login failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0
