"""Sandbox commands that talk to a running sandbox over its API: register, fault, route.

::

    gba-gateway sandbox register --agency-id ID --jurisdiction HK --key FILE [--endpoint URL]
        [--receives HK|MO|GD|canonical]
    gba-gateway sandbox fault AGENCY [--down|--up] [--latency MS] [--status 503] ... | --reset
    gba-gateway sandbox faults
    gba-gateway sandbox route MATTER --lead AGENCY [--reviewer AGENCY ...] | --reset
    gba-gateway sandbox idp rotate|keys PROVIDER [--keep-previous]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization

from gateway import jurisdictions
from gateway.sandbox.access import TOKEN_ENV, TOKEN_FILE, client_token
from gateway.trust.keys import public_jwk

DEFAULT_URL = "http://127.0.0.1:8080"


class CommandError(RuntimeError):
    """What went wrong, said to the tester in one line (plus the problem's field errors)."""


def register(sandbox_commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``register``, ``fault``, ``faults`` and ``route`` under ``sandbox``."""
    reg = sandbox_commands.add_parser(
        "register",
        help="register your own agency and its public key with a running sandbox",
        description="Register a tester's agency (POST /sandbox/v1/agencies). Requests signed "
        "with the key are then that agency's; with --endpoint, the gateway forwards the cases "
        "routed to it (see `sandbox route`) to that URL, signed.",
    )
    reg.add_argument("--agency-id", required=True, help="lower-case id, e.g. hk-td-tester")
    reg.add_argument(
        "--jurisdiction", required=True, choices=list(jurisdictions.registered().codes)
    )
    reg.add_argument(
        "--key",
        required=True,
        type=Path,
        action="append",
        help="public key: PEM public key, PEM certificate chain or JWK (repeatable)",
    )
    reg.add_argument("--kid", help="key id for a PEM public key (default: the file name stem)")
    reg.add_argument("--name", action="append", default=[], metavar="LANG=NAME")
    reg.add_argument("--endpoint", help="your inbox URL, where forwarded cases are sent")
    reg.add_argument(
        "--receives",
        choices=jurisdictions.registered().receivable(),
        help="the format forwards reach you in (default: your jurisdiction's: HK or Macau "
        "XML message, Guangdong JSON message); canonical for the canonical JSON message",
    )
    reg.add_argument(
        "--matter", action="append", default=[], help="matter codes it handles (default: all)"
    )
    _url(reg)
    reg.set_defaults(handler=_reported(_register))

    fault = sandbox_commands.add_parser(
        "fault",
        help="switch a sandbox agency's faults on or off",
        description="Change a sandbox agency's fault switches at run time (PATCH "
        "/sandbox/v1/agencies/ID/faults); switches not named keep their state.",
    )
    fault.add_argument("agency", help="sandbox agency id (see `gba-gateway sandbox faults`)")
    fault.add_argument("--down", action=argparse.BooleanOptionalAction, help="answer 503")
    fault.add_argument("--up", action="store_true", help="same as --no-down")
    fault.add_argument("--latency", type=int, metavar="MS", help="delay every answer")
    fault.add_argument("--status", type=int, metavar="5XX", help="answer this 5xx status")
    fault.add_argument("--no-status", action="store_true", help="stop answering a 5xx")
    fault.add_argument("--timeout", action=argparse.BooleanOptionalAction, help="never answer")
    fault.add_argument("--signature", choices=["valid", "wrong", "missing"])
    fault.add_argument("--clock-skew", type=int, metavar="SECONDS", help="skew its clock")
    fault.add_argument("--duplicates", action=argparse.BooleanOptionalAction)
    fault.add_argument("--out-of-order", action=argparse.BooleanOptionalAction)
    fault.add_argument(
        "--broken",
        action=argparse.BooleanOptionalAction,
        help="the broken agency (lax): verifies nothing, de-duplicates nothing",
    )
    fault.add_argument(
        "--e-certificate",
        choices=["none", "jws", "document", "forged"],
        help="what its approvals carry: no e-certificate, a signed JWS, a signed document, "
        "or a certificate signed by another key (refused by the gateway)",
    )
    fault.add_argument(
        "--evidence",
        choices=["answer", "refuse", "silent"],
        help="an evidence issuer's answers: answer, refuse every request, or never answer",
    )
    fault.add_argument("--reset", action="store_true", help="every switch off")
    _url(fault)
    fault.set_defaults(handler=_reported(_fault))

    faults = sandbox_commands.add_parser("faults", help="list the sandbox agencies' faults")
    _url(faults)
    faults.set_defaults(handler=_reported(_faults))

    route = sandbox_commands.add_parser(
        "route",
        help="choose which agencies handle a matter's new cases",
        description="Send a matter's new cases to the agencies named, e.g. your own "
        "registered agency (PUT /sandbox/v1/routes/MATTER); --reset restores the catalog's.",
    )
    route.add_argument("matter", help="matter code (see GET /v1/matters)")
    route.add_argument("--lead", help="the agency that accepts and leads")
    route.add_argument("--reviewer", action="append", default=[], help="joint reviewer")
    route.add_argument("--reset", action="store_true", help="route by the catalog again")
    _url(route)
    route.set_defaults(handler=_reported(_route))

    idp = sandbox_commands.add_parser(
        "idp",
        help="rotate a sandbox identity provider's signing key, or show its keys",
        description="rotate: the provider signs ID tokens with a new key (new kid) from now on "
        "and drops the old one from its JWKS (POST /sandbox/v1/idps/PROVIDER/rotate-key); "
        "keys: the current kid, the published ones and how often the key set was fetched.",
    )
    idp.add_argument("action", choices=["rotate", "keys"])
    idp.add_argument(
        "provider", choices=[j.provider for j in jurisdictions.registered() if j.sandbox_idp]
    )
    idp.add_argument(
        "--keep-previous",
        action="store_true",
        help="rotate gracefully: keep the old key published beside the new one",
    )
    _url(idp)
    idp.set_defaults(handler=_reported(_idp))


def _url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the sandbox (default {DEFAULT_URL})")
    parser.add_argument(
        "--token",
        help=f"the sandbox access token, needed beyond loopback (default: {TOKEN_ENV}, else "
        f"the data folder's {TOKEN_FILE})",
    )


def read_public_keys(path: Path, kid: str | None) -> list[dict[str, Any]]:
    """Registry key entries from a PEM public key, a PEM certificate chain or a JWK file."""
    data = path.read_bytes()
    if b"-----BEGIN CERTIFICATE-----" in data:
        return [{"certificate": data.decode()}]
    if b"-----BEGIN" in data:
        try:
            public = serialization.load_pem_public_key(data)
        except ValueError:
            raise CommandError(f"{path}: not a PEM public key") from None
        return [public_jwk(public, kid=kid or path.stem)]  # type: ignore[arg-type]
    try:
        jwk = json.loads(data)
    except ValueError:
        raise CommandError(f"{path}: neither PEM nor JSON") from None
    keys = jwk.get("keys", [jwk]) if isinstance(jwk, dict) else []
    if not keys or not all(isinstance(k, dict) and k.get("kid") for k in keys):
        raise CommandError(f"{path}: a JWK (or JWKS) with a kid is needed")
    return list(keys)


def _register(args: argparse.Namespace) -> int:
    keys = [entry for path in args.key for entry in read_public_keys(path, args.kid)]
    names = dict(pair.split("=", 1) for pair in args.name if "=" in pair)
    body: dict[str, Any] = {
        "agency_id": args.agency_id,
        "jurisdiction": args.jurisdiction,
        "names": names or {"en": args.agency_id},
        "keys": keys,
        "matters": args.matter or ["*"],
    }
    if args.endpoint:
        body["endpoint"] = args.endpoint
    if args.receives:
        body["receives"] = args.receives
    agency = _call(args, "POST", "/sandbox/v1/agencies", body)
    print(f"registered {agency['agency_id']} ({agency['jurisdiction']})")
    for key in agency.get("keys", []):
        print(f"  key      {key['kid']}")
    print(f"  endpoint {agency.get('endpoint') or '(none: it only calls the gateway)'}")
    print(f"  receives {agency.get('receives')}")
    print(f"  matters  {', '.join(agency.get('matters', []))}")
    return 0


def _fault(args: argparse.Namespace) -> int:
    path = f"/sandbox/v1/agencies/{args.agency}/faults"
    if args.reset:
        faults = _call(args, "DELETE", path)
    else:
        changes = _fault_changes(args)
        if not changes:
            raise CommandError("name a switch to change (see --help), or --reset")
        faults = _call(args, "PATCH", path, changes)
    print(_describe(faults))
    return 0


def _fault_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if args.down is not None or args.up:
        changes["down"] = bool(args.down) and not args.up
    options = {
        "latency_ms": args.latency,
        "timeout": args.timeout,
        "signature": args.signature,
        "clock_skew_s": args.clock_skew,
        "duplicates": args.duplicates,
        "out_of_order": args.out_of_order,
        "lax": args.broken,
        "e_certificate": args.e_certificate,
        "evidence": args.evidence,
    }
    changes.update({name: value for name, value in options.items() if value is not None})
    if args.status is not None or args.no_status:
        changes["error_status"] = None if args.no_status else args.status
    return changes


def _faults(args: argparse.Namespace) -> int:
    for item in _call(args, "GET", "/sandbox/v1/faults")["items"]:
        print(_describe(item))
    return 0


def _describe(faults: dict[str, Any]) -> str:
    """One line: the agency and the switches that are on."""
    on = []
    for name, value in faults.items():
        if name in ("agency_id", "healthy") or value in (False, 0, None, "valid", "none", "answer"):
            continue
        on.append(name if value is True else f"{name}={value}")
    return f"{faults['agency_id']:<12} {', '.join(on) if on else 'healthy'}"


def _route(args: argparse.Namespace) -> int:
    path = f"/sandbox/v1/routes/{args.matter}"
    if args.reset:
        route = _call(args, "DELETE", path)
    elif args.lead:
        route = _call(args, "PUT", path, {"lead": args.lead, "reviewers": args.reviewer})
    else:
        raise CommandError("name the --lead agency, or --reset")
    reviewers = ", ".join(route["reviewers"]) or "none"
    source = "sandbox override" if route["overridden"] else "catalog"
    print(f"{route['matter']}: lead {route['lead']}, reviewers {reviewers} ({source})")
    return 0


def _idp(args: argparse.Namespace) -> int:
    path = f"/sandbox/v1/idps/{args.provider}"
    if args.action == "rotate":
        keys = _call(args, "POST", path + "/rotate-key", {"keep_previous": args.keep_previous})
    else:
        keys = _call(args, "GET", path + "/keys")
    print(f"{keys['provider']}: signs with {keys['kid']}")
    print(f"  published      {', '.join(keys['published_kids'])}")
    print(f"  before         {keys['previous_kid'] or '(no rotation yet)'}")
    print(f"  key set served {keys['jwks_requests']} time(s)")
    return 0


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    """One call to the running sandbox (with its access token when there is one); a problem
    answer becomes a CommandError."""
    url = args.url
    token = client_token(args.token, getattr(args, "data_dir", None))
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call() -> Any:
        timeout = aiohttp.ClientTimeout(total=30)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, url.rstrip("/") + path, json=body, headers=headers) as response,
        ):
            answer = await response.json(content_type=None)
            if response.status >= 400:
                raise CommandError(_problem_text(response.status, answer))
            return answer

    try:
        return asyncio.run(call())
    except aiohttp.ClientError as exc:
        raise CommandError(f"cannot reach the sandbox at {url}: {exc}") from None


def _problem_text(status: int, answer: Any) -> str:
    if not isinstance(answer, dict):
        return f"the sandbox answered {status}"
    lines = [f"{answer.get('title', status)}: {answer.get('detail', '')}"]
    for error in answer.get("errors", []):
        message = error.get("message", {}).get("en", "")
        lines.append(f"  {error.get('pointer', '')}: {error.get('code')} ({message})")
    return "\n".join(lines)


def _reported(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A command whose failure is one clear line on stderr and exit status 1."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (CommandError, OSError) as exc:
            print(f"gba-gateway: {exc}", file=sys.stderr)
            return 1

    return run
