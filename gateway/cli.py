"""``gba-gateway``: the one command.

::

    gba-gateway serve   [--config FILE] [--host H] [--port P] [--workers N]   production
    gba-gateway sandbox ...                                      the sandbox (a plug-in)
    gba-gateway conformance run --target URL --key FILE|DIR      the conformance kit (plug-in)
    gba-gateway identities conflicts [--sandbox]                 identity links to review
    gba-gateway outbox list|retry ID|requeue [--sandbox]          forwarded messages
    gba-gateway archive export ID --out FILE | verify FILE --jwks F   closed cases
    gba-gateway keys generate --out DIR [--sandbox]              the gateway's signing keys
    gba-gateway --version

``sandbox`` and ``conformance`` are plug-ins (gateway/extensions.py): their commands come
from their packages' entry points, and a build without them says so.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway import __version__, extensions, jurisdictions
from gateway.domain.errors import ConfigurationError, GatewayError
from gateway.observability import configure_logging
from gateway.settings import Settings, load_settings
from gateway.trust import e_certificates, keystore

DEFAULT_URL = "http://127.0.0.1:8080"


def serving_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1; GBA_HOST)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8080; GBA_PORT)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gba-gateway",
        description="Greater Bay Area cross-border interoperability gateway.",
    )
    parser.add_argument("--version", action="version", version=f"gba-gateway {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the gateway in production mode",
        description="Run the gateway in production mode from a TOML "
        "file and GBA_* environment variables.",
    )
    serve.add_argument("--config", type=Path, help="TOML settings file")
    serving_options(serve)
    serve.add_argument(
        "--workers",
        type=int,
        help="serving processes sharing the port (default 1; GBA_WORKERS; more than one "
        "needs PostgreSQL)",
    )

    _plugin_commands(commands)

    keys = commands.add_parser("keys", help="manage the gateway's signing keys")
    keys_commands = keys.add_subparsers(dest="keys_command", metavar="SUBCOMMAND", required=True)
    generate = keys_commands.add_parser(
        "generate",
        help="generate a seal key and an HTTP-signature key",
        description="Generate the gateway's receipt seal key and RFC 9421 signing key into "
        "DIR (private keys mode 0600, with a keys.json manifest).",
    )
    generate.add_argument("--out", type=Path, required=True, help="key directory")
    generate.add_argument(
        "--sandbox",
        action="store_true",
        help="mark the keys as sandbox material (refused in production)",
    )
    generate.add_argument(
        "--alg",
        choices=["ecdsa-p256-sha256", "ed25519"],
        default="ecdsa-p256-sha256",
        help="key algorithm (default ES256)",
    )
    _agency_commands(commands)
    identities = commands.add_parser("identities", help="review what logins taught the gateway")
    sub = identities.add_subparsers(dest="identities_command", metavar="SUBCOMMAND", required=True)
    conflicts = sub.add_parser(
        "conflicts",
        help="list identity links flagged for review (never merged)",
        description="List documents that a login asserted but that are linked to another "
        "person, or whose birth date disagrees. Numbers are masked.",
    )
    _store_options(conflicts)
    _delivery_commands(commands)
    _evidence_commands(commands)
    _mapping_commands(commands)
    return parser


def _plugin_commands(commands: Any) -> None:
    """Each installed plug-in's commands; a known plug-in that is absent says so."""
    installed = extensions.plugins()
    for name in [*extensions.KNOWN, *sorted(installed.keys() - extensions.KNOWN.keys())]:
        plugin = installed.get(name)
        if plugin is not None and plugin.register_commands is not None:
            plugin.register_commands(commands)
        elif plugin is None:
            absent = commands.add_parser(
                name, help=f"({extensions.not_installed(name)})", add_help=False
            )
            absent.add_argument("anything", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            absent.set_defaults(handler=lambda _args, name=name: _absent(name))


def _absent(name: str) -> int:
    print(f"gba-gateway: {extensions.not_installed(name)}", file=sys.stderr)
    return 2


def _delivery_commands(commands: Any) -> None:
    outbox = commands.add_parser("outbox", help="inspect and release forwarded messages")
    sub = outbox.add_subparsers(dest="outbox_command", metavar="SUBCOMMAND", required=True)
    listing = sub.add_parser(
        "list", help="messages in the order they are due, with attempts and last error"
    )
    _store_options(listing)
    listing.add_argument(
        "--status", choices=["pending", "in_flight", "delivered", "dead", "withheld"]
    )
    listing.add_argument("--destination", help="one destination agency")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    retry = sub.add_parser("retry", help="send one waiting or dead message now")
    _store_options(retry)
    retry.add_argument("message_id")
    requeue = sub.add_parser("requeue", help="put every dead message back in the queue")
    _store_options(requeue)
    requeue.add_argument("--destination", help="only the dead messages to this agency")

    archive = commands.add_parser("archive", help="export and verify closed cases (Art. 23)")
    sub = archive.add_subparsers(dest="archive_command", metavar="SUBCOMMAND", required=True)
    export = sub.add_parser("export", help="write a closed case as one signed bundle")
    _store_options(export)
    export.add_argument("application_id")
    export.add_argument("--out", type=Path, required=True, help="the bundle file to write")
    verify = sub.add_parser(
        "verify",
        help="check a bundle offline: signature, every member, vouchers, audit proof",
        description="Verify an archive bundle against the gateway's JWKS. Needs no database. "
        "Exit 1 when anything does not verify.",
    )
    verify.add_argument("bundle", type=Path)
    verify.add_argument(
        "--jwks", type=Path, required=True, help="the gateway's /.well-known/jwks.json, saved"
    )


def _mapping_commands(commands: Any) -> None:
    # checked when the command runs, against the settings' jurisdictions too
    formats = "canonical, " + ", ".join(jurisdictions.registered().formats)
    mappings = commands.add_parser("mappings", help="check, report on and use the mapping data")
    sub = mappings.add_subparsers(dest="mappings_command", metavar="SUBCOMMAND", required=True)
    check = sub.add_parser(
        "check",
        help="load and check every matter, field mapping and schema",
        description="Load mappings/ and list every problem: invalid codes, promised > "
        "statutory, unknown transforms, schema references, version overlaps, routes to "
        "unknown agencies. Exit 1 when there is any.",
    )
    check.add_argument(
        "--sandbox-agencies",
        action="store_true",
        help="also require every route to name a sandbox agency",
    )
    sub.add_parser("report", help="which canonical fields each jurisdiction maps; gaps")
    translate = sub.add_parser("translate", help="translate a document between formats")
    translate.add_argument("--from", dest="source", required=True, help=formats)
    translate.add_argument("--to", dest="target", required=True, help=formats)
    translate.add_argument("file", type=Path, help="the document ('-' for standard input)")
    sample = sub.add_parser("sample", help="print a sample application the sandbox accepts")
    sample.add_argument("matter", help="the matter's implementation code")
    sample.add_argument("--format", default="canonical", help=formats)
    sample.add_argument("--persona", help="persona id (see GET /sandbox/v1/personas)")
    schema = sub.add_parser(
        "schema",
        help="print the XSD a native format is validated with (particulars generated)",
        description="Print the XSD of a native XML format (hk, macau) as the gateway generates "
        "it from the jurisdiction's schema and the catalog's particulars: what GET /v1/schemas "
        "serves.",
    )
    schema.add_argument("format", help="a jurisdiction's XML format: hk, macau, ...")


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML settings file (as for serve)")
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="work on the sandbox's database (.sandbox/gateway.db)",
    )


def _key_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--jwk", type=Path, help="file holding the public JWK")
    source.add_argument(
        "--certificate",
        type=Path,
        help="file holding the PEM chain (leaf first) to the trust anchor",
    )
    parser.add_argument("--kid", help="key id (default: the JWK's kid / from the certificate)")
    parser.add_argument("--not-before", help="valid from (ISO 8601 with time zone)")
    parser.add_argument("--not-after", help="valid until (ISO 8601 with time zone)")


def _agency_commands(commands: Any) -> None:
    agencies = commands.add_parser(
        "agencies",
        help="manage the partner-agency registry",
        description="Manage partner agencies and their keys in the "
        "database. Changes apply to every gateway process at once.",
    )
    sub = agencies.add_subparsers(dest="agencies_command", metavar="SUBCOMMAND", required=True)
    add = sub.add_parser("add", help="register an agency (or update one) with a key")
    _store_options(add)
    add.add_argument("--id", required=True, help="agency id (lower-case letters, digits, -)")
    add.add_argument("--jurisdiction", required=True, help="its code: HK, MO, GD, ...")
    add.add_argument(
        "--name",
        action="append",
        default=[],
        metavar="LANG=TEXT",
        help="display name, e.g. en=Companies Registry (repeatable)",
    )
    add.add_argument("--endpoint", help="URL where it receives forwarded applications")
    add.add_argument(
        "--receives",
        choices=jurisdictions.registered().receivable(),
        help="format forwards reach it in: HK or MO XML, GD message, canonical JSON "
        "(default: its jurisdiction's)",
    )
    add.add_argument(
        "--matter",
        action="append",
        default=[],
        metavar="CODE",
        help="matter it may submit or handle; '*' for all (default: none)",
    )
    add.add_argument(
        "--evidence",
        action="append",
        default=[],
        metavar="TYPE",
        help="evidence type it issues, e.g. hk-br-extract (repeatable; mappings/evidence.yaml)",
    )
    _key_options(add)
    listing = sub.add_parser("list", help="list agencies, their rights and keys")
    _store_options(listing)
    revoke = sub.add_parser("revoke", help="revoke a key now, for every process")
    _store_options(revoke)
    revoke.add_argument("kid", help="the key id to revoke")
    rotate = sub.add_parser("rotate", help="add a new key; older keys end after an overlap")
    _store_options(rotate)
    rotate.add_argument("agency", help="agency id")
    rotate.add_argument(
        "--overlap-days", type=float, default=7.0, help="days the older keys stay valid (default 7)"
    )
    _key_options(rotate)


def _evidence_commands(commands: Any) -> None:
    receipts = commands.add_parser("receipts", help="verify receipts and vouchers offline")
    sub = receipts.add_subparsers(dest="receipts_command", metavar="SUBCOMMAND", required=True)
    verify = sub.add_parser(
        "verify",
        help="verify one receipt against a JWKS file",
        description="Verify a receipt (compact JWS) offline against the "
        "gateway's published key set and print its claims.",
    )
    verify.add_argument("file", type=Path, help="file holding the receipt")
    verify.add_argument(
        "--jwks",
        type=Path,
        required=True,
        help="the gateway's /.well-known/jwks.json, saved to a file",
    )
    certificates = commands.add_parser("certificates", help="verify e-certificates offline")
    sub = certificates.add_subparsers(
        dest="certificates_command", metavar="SUBCOMMAND", required=True
    )
    verify = sub.add_parser(
        "verify",
        help="verify one e-certificate against its issuer's JWKS file",
        description="Verify an e-certificate offline: a compact JWS file, a document with "
        "its detached signature (--signature), or the JSON the resident fetched from "
        "/v1/me/certificates/{id}. Prints issuer, kid and the subject digest; exit 1 if it "
        "does not verify. The issuer's keys: GET /v1/agencies/{agency_id}/jwks.json.",
    )
    verify.add_argument("file", type=Path, help="the certificate (JWS, document or JSON)")
    verify.add_argument(
        "--jwks", type=Path, required=True, help="the issuing agency's JWKS, saved to a file"
    )
    verify.add_argument("--signature", type=Path, help="the detached JWS of a document")
    verify.add_argument("--media-type", help="the document's media type, to check (cty)")
    verify.set_defaults(handler=_certificates_verify)
    audit = commands.add_parser("audit", help="check the tamper-evident audit chain")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    audit_verify = audit_sub.add_parser(
        "verify",
        help="verify every entry and signed checkpoint",
        description="Recompute the audit hash chain and check its signed checkpoints; report "
        "the first entry that was modified, deleted, inserted or reordered. Exit 1 if broken.",
    )
    _store_options(audit_verify)
    audit_verify.add_argument(
        "--jwks",
        type=Path,
        help="key set to check checkpoints with (default: the gateway's own key directory)",
    )
    audit_verify.add_argument(
        "--checkpoints",
        type=Path,
        help="checkpoints kept outside the database (the JSON of /v1/audit/checkpoints)",
    )


def banner(settings: Settings, more: Sequence[str] = ()) -> str:
    """What the gateway prints once it listens; a plug-in adds its own lines (``more``)."""
    base = settings.base_url
    lines = [
        f"gba-gateway {__version__} — {settings.mode} mode",
        "",
        f"  API            {base}/",
        f"  OpenAPI        {base}/openapi.json",
        f"  JWKS           {base}/.well-known/jwks.json",
        f"  matters        {base}/v1/matters",
        f"  health         {base}/healthz   ready {base}/readyz   metrics {base}/metrics",
        *more,
    ]
    return "\n".join(lines)


async def serve(settings: Settings, started: Callable[[], None]) -> None:
    """Serve in this process until SIGINT or SIGTERM."""
    from gateway.workers import run_server

    await run_server(settings, started=started)


def run_gateway(settings: Settings, more_banner: Callable[[], Sequence[str]] = lambda: ()) -> int:
    """Serve in one process, or ``settings.workers`` under a supervisor (gateway/workers.py),
    printing the banner once listening."""

    def started() -> None:
        print(banner(settings, more_banner()), flush=True)

    if settings.workers == 1:
        return run(serve(settings, started))
    from gateway.workers import supervise

    return supervise(settings, started=started)


def run(coro: object) -> int:
    try:
        asyncio.run(coro)  # type: ignore[arg-type]
    except ConfigurationError as exc:
        print(f"gba-gateway: {exc.detail}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gba-gateway: {exc}", file=sys.stderr)
        return 1
    return 0


def _mappings(args: argparse.Namespace) -> int:
    from gateway import operations
    from gateway.mapping.report import coverage_report

    settings = load_settings(mode="sandbox")
    if args.mappings_command == "check":
        return (
            0
            if operations.mappings_check(
                settings, sandbox_agencies=args.sandbox_agencies, say=print
            )
            else 1
        )
    if args.mappings_command == "report":
        print(coverage_report(settings.mappings_dir, jurisdictions.for_settings(settings)))
        return 0
    if args.mappings_command == "translate":
        data = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
        sys.stdout.buffer.write(
            operations.mappings_translate(settings, args.source, args.target, data)
        )
        return 0
    if args.mappings_command == "schema":
        sys.stdout.buffer.write(operations.mappings_schema(settings, args.format))
        return 0
    sys.stdout.buffer.write(
        operations.mappings_sample(settings, args.matter, args.format, args.persona)
    )
    return 0


def _operate(args: argparse.Namespace) -> int:
    from gateway import operations

    if args.command == "archive" and args.archive_command == "verify":
        from gateway import archive_ops

        return 0 if archive_ops.archive_verify(args.bundle, args.jwks, print) else 1
    if args.command == "receipts":
        from gateway.trust.receipts import verify_receipt_file

        claims = verify_receipt_file(args.file, args.jwks)
        print(json.dumps(claims, ensure_ascii=False, indent=2))
        return 0
    settings = load_settings(args.config, mode="sandbox" if args.sandbox else None)
    if args.command == "audit":
        intact = asyncio.run(operations.audit_verify(settings, args.jwks, print, args.checkpoints))
        return 0 if intact else 1
    if args.command == "identities":
        return run(operations.identity_conflicts(settings, print))
    if args.command == "outbox":
        from gateway import outbox_ops

        if args.outbox_command == "list":
            return run(
                outbox_ops.outbox_list(settings, print, args.status, args.destination, args.limit)
            )
        if args.outbox_command == "retry":
            return run(outbox_ops.outbox_retry(settings, args.message_id, print))
        return run(outbox_ops.outbox_requeue(settings, print, args.destination))
    if args.command == "archive":
        from gateway import archive_ops

        return run(archive_ops.archive_export(settings, args.application_id, args.out, print))
    if args.agencies_command == "list":
        return run(operations.agencies_list(settings, print))
    if args.agencies_command == "revoke":
        return run(operations.agencies_revoke(settings, args.kid, print))
    key = operations.KeySource(
        args.jwk, args.certificate, args.kid, args.not_before, args.not_after
    )
    if args.agencies_command == "rotate":
        overlap = timedelta(days=args.overlap_days)
        return run(operations.agencies_rotate(settings, args.agency, key, overlap, print))
    names = dict(item.split("=", 1) for item in args.name if "=" in item)
    spec = {
        "agency_id": args.id,
        "jurisdiction": args.jurisdiction,
        "names": names,
        "endpoint": args.endpoint,
        "matters": args.matter,
        "receives": args.receives,
        "issues_evidence": args.evidence,
    }
    return run(operations.agencies_add(settings, spec, key, print))


def _certificates_verify(args: argparse.Namespace) -> int:
    """Exit 0 and print what the certificate says when its signature verifies; else 1."""
    jwks = json.loads(args.jwks.read_text(encoding="utf-8"))
    data = args.file.read_bytes()
    signature = args.signature.read_text(encoding="ascii").strip() if args.signature else None
    media_type = args.media_type
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        fetched = json.loads(data)  # the resident's answer from /v1/me/certificates/{id}
        if isinstance(fetched, dict) and "certificate" in fetched:
            data = str(fetched["certificate"]).encode("ascii")
        elif isinstance(fetched, dict) and "document" in fetched:
            data = base64.b64decode(str(fetched["document"]))
            signature = signature or str(fetched.get("signature"))
            media_type = media_type or fetched.get("media_type")
    now = datetime.now(UTC)
    try:
        if signature is not None:
            verified = e_certificates.verify_document(
                data, signature, jwks, now=now, media_type=media_type
            )
        else:
            verified = e_certificates.verify_token(data.decode("ascii").strip(), jwks, now=now)
    except (e_certificates.CertificateRefused, UnicodeDecodeError) as refused:
        print(f"gba-gateway: the certificate does not verify: {refused}", file=sys.stderr)
        return 1
    subject = verified.subject
    subject_digest = hashlib.sha256(subject.encode()).hexdigest() if subject else "-"
    print(f"issuer:          {verified.issuer or jwks.get('issuer') or '-'}")
    print(f"kid:             {verified.kid}")
    print(f"subject sha-256: {subject_digest}")
    print(f"signed sha-256:  {verified.digest}")
    print("signature:       valid")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "handler", None) is not None:
            return int(args.handler(args))
        if args.command == "serve":
            settings = load_settings(
                args.config, mode="production", host=args.host, port=args.port, workers=args.workers
            )
            configure_logging(settings.log_level, settings.log_format, sys.stderr)
            return run_gateway(settings)
        if args.command == "mappings":
            return _mappings(args)
        if args.command in ("agencies", "receipts", "audit", "identities", "outbox", "archive"):
            return _operate(args)
        if args.command == "keys":
            ring = keystore.generate(args.out, sandbox=args.sandbox, alg=args.alg)
            for key in ring.keys:
                print(f"{key.kid}  {key.purpose}  {key.alg}")
            return 0
    except GatewayError as exc:
        print(f"gba-gateway: {exc.detail}", file=sys.stderr)
        for error in exc.errors:
            where = error.pointer if error.pointer is not None else error.xpath
            print(f"  {where}: {error.code} ({error.message.en})", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gba-gateway: {exc}", file=sys.stderr)
        return 1
    parser.print_help()
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
