"""``gba-gateway conformance run|list``: the kit's command line.

::

    gba-gateway conformance run --target URL --key FILE|DIR [--kid KID]
        [--partner-jwks URL_OR_FILE] [--junit FILE] [--timeout S]
    gba-gateway conformance certificate FILE --agency-id ID --partner-jwks URL_OR_FILE
        [--signature SIG --media-type TYPE]
    gba-gateway conformance materials --gateway URL --agency ID --key FILE [--kid KID]
    gba-gateway conformance list

``run`` exits 0 when every check passes, 1 when any fails, 2 on a usage or configuration
error (a key that cannot be loaded, partner keys that cannot be found).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from urllib.parse import urlsplit

from gateway import jurisdictions
from gateway.domain.errors import ConfigurationError
from gateway.extensions import Plugin

USAGE_ERROR = 2


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``conformance`` to the top-level commands; its handler is set with set_defaults."""
    conformance = commands.add_parser(
        "conformance",
        help="check a partner agency's inbox against the partner API contract",
        description="The conformance kit: act as the gateway towards a partner agency's inbox "
        "and report, check by check, whether it keeps the partner API contract "
        "(see docs/conformance.md).",
    )
    sub = conformance.add_subparsers(
        dest="conformance_command", metavar="SUBCOMMAND", required=True
    )
    run = sub.add_parser(
        "run",
        help="run every check against an inbox; exit 0 if all pass, 1 if any fails",
        description="Send forwarded messages to TARGET as the gateway would (signed with "
        "--key), plus tampered, replayed, stale and unsigned ones, and check every answer. "
        "Exit 0 when all checks pass, 1 when any fails, 2 on a usage or configuration error.",
    )
    run.add_argument(
        "--target",
        required=True,
        metavar="URL",
        help="the partner's inbox URL, exactly as registered (where the gateway forwards)",
    )
    run.add_argument(
        "--key",
        type=Path,
        required=True,
        metavar="FILE|DIR",
        help="PEM private key the partner trusts as the gateway's HTTP-signing key, or a key "
        "directory with keys.json (its newest http key), e.g. .sandbox/keys/gateway",
    )
    run.add_argument(
        "--kid", metavar="KID", help="key id to sign with (default: the key file's stem)"
    )
    run.add_argument(
        "--partner-jwks",
        metavar="URL_OR_FILE",
        help="the partner's public keys: URL or file, a JWKS or a sandbox agency document "
        "(default for a sandbox inbox: {origin}/sandbox/v1/agencies/{agency_id})",
    )
    run.add_argument(
        "--format",
        choices=jurisdictions.registered().receivable(),
        help="the format the partner declared it receives (default: the receives of its "
        "sandbox agency document, else canonical); the accepts-own-format check sends it",
    )
    run.add_argument(
        "--evidence-type",
        metavar="TYPE",
        help="for an evidence issuer: the type to request (default: the first its sandbox "
        "agency document declares; none: the answers-evidence-request check is skipped)",
    )
    run.add_argument(
        "--evidence-subject",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="an identifying field of the evidence request, e.g. "
        "document:RESIDENCE_PERMIT=810000198803150123 (repeatable)",
    )
    run.add_argument(
        "--junit", type=Path, metavar="FILE", help="write JUnit XML here (one testcase per check)"
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to wait for each answer (default 10)",
    )
    run.set_defaults(handler=run_command)
    certificate = sub.add_parser(
        "certificate",
        help="check that the gateway would accept one of the partner's e-certificates",
        description="Check an e-certificate the partner made (a compact JWS, or a document "
        "with --signature) against the partner's keys, as the gateway's decision route does. "
        "Exit 0 when no check fails, 1 when one does, 2 on a usage or configuration error.",
    )
    certificate.add_argument("file", type=Path, help="the certificate: JWS or document")
    certificate.add_argument(
        "--agency-id", required=True, help="the partner's agency id (the JWS's iss)"
    )
    certificate.add_argument(
        "--partner-jwks",
        required=True,
        metavar="URL_OR_FILE",
        help="the partner's public keys: a JWKS or a sandbox agency document, URL or file",
    )
    certificate.add_argument("--signature", type=Path, help="the detached JWS of a document")
    certificate.add_argument("--media-type", help="the document's media type (its cty)")
    certificate.set_defaults(handler=certificate_command)
    materials = sub.add_parser(
        "materials",
        help="check a sandbox gateway's material upload and fetch as your own agency",
        description="Act as your registered agency (--agency, signing with --key) towards a "
        "sandbox gateway: upload a file, fetch the file of a case forwarded to you, and see "
        "an unrelated fetch refused with 404 (docs/conformance.md). Exit 0 when all pass.",
    )
    materials.add_argument("--gateway", required=True, metavar="URL", help="the sandbox gateway")
    materials.add_argument("--agency", required=True, metavar="ID", help="your agency's id")
    materials.add_argument(
        "--key", type=Path, required=True, metavar="FILE", help="your agency's PEM private key"
    )
    materials.add_argument("--kid", metavar="KID", help="its key id (default: the file's stem)")
    materials.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="seconds per answer (10)"
    )
    materials.set_defaults(handler=materials_command)
    listing = sub.add_parser("list", help="list the checks: id, what is expected, the rule")
    listing.set_defaults(handler=list_command)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _usage(message: str) -> int:
    sys.stderr.write(f"gba-gateway conformance: {message}\n")
    return USAGE_ERROR


def run_command(args: argparse.Namespace) -> int:
    # Imported here: every other command of gba-gateway starts without the kit's imports.
    from gateway.bootstrap import codecs
    from gateway.conformance.credentials import load_signing_key
    from gateway.conformance.junit import write_junit
    from gateway.conformance.runner import run_conformance
    from gateway.settings import load_settings

    target = urlsplit(args.target)
    if target.scheme not in ("http", "https") or not target.netloc:
        return _usage(f"--target must be an http(s) URL, not {args.target!r}")
    if not args.timeout > 0:
        return _usage("--timeout must be more than 0 seconds")
    try:
        key = load_signing_key(args.key, args.kid)
        settings = load_settings()
        report = asyncio.run(
            run_conformance(
                args.target,
                key,
                schemas_dir=settings.mappings_dir / "schemas",
                partner_jwks=args.partner_jwks,
                request_timeout=args.timeout,
                say=_say,
                formats=codecs(settings),
                receives=args.format,
                evidence_type=args.evidence_type,
                evidence_subject=dict(
                    item.split("=", 1) for item in args.evidence_subject if "=" in item
                ),
            )
        )
    except ConfigurationError as exc:
        return _usage(exc.detail)
    if args.junit is not None:
        write_junit(report, args.junit)
        _say(f"JUnit XML written to {args.junit}")
    return report.exit_code


def certificate_command(args: argparse.Namespace) -> int:
    import aiohttp

    from gateway.conformance.certificates import FAIL, judge_certificate
    from gateway.conformance.credentials import PartnerKeys, partner_keys

    async def keys() -> PartnerKeys:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            return await partner_keys(args.partner_jwks, "", session)

    try:
        content = args.file.read_bytes()
        signature = args.signature.read_text("ascii").strip() if args.signature else None
        found = asyncio.run(keys())
    except (OSError, UnicodeDecodeError) as exc:
        return _usage(str(exc))
    except ConfigurationError as exc:
        return _usage(exc.detail)
    verdicts = judge_certificate(
        content,
        found,
        args.agency_id,
        signature=signature,
        media_type=args.media_type,
    )
    for verdict in verdicts:
        _say(f"{verdict.id:<24} {verdict.outcome.upper():<4}  {verdict.reason}")
    return 1 if any(v.outcome == FAIL for v in verdicts) else 0


def materials_command(args: argparse.Namespace) -> int:
    from gateway.conformance.credentials import load_signing_key
    from gateway.conformance.materials import run_material_checks

    target = urlsplit(args.gateway)
    if target.scheme not in ("http", "https") or not target.netloc:
        return _usage(f"--gateway must be an http(s) URL, not {args.gateway!r}")
    try:
        key = load_signing_key(args.key, args.kid)
    except ConfigurationError as exc:
        return _usage(exc.detail)
    results = asyncio.run(
        run_material_checks(args.gateway, args.agency, key, say=_say, request_timeout=args.timeout)
    )
    failed = [r.check_id for r in results if r.verdict.outcome == "fail"]
    _say(f"{len(results)} checks: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def list_command(args: argparse.Namespace) -> int:
    from gateway.conformance.checks import CHECKS

    for check in CHECKS:
        _say(f"{check.id:<30} {check.description}")
        _say(f"{'':<30}   expects: {check.expects}")
    return 0


PLUGIN = Plugin(name="conformance", register_commands=register)
