"""The one module that imports everything: it wires the gateway from its Settings.

:func:`create_app` builds the aiohttp application. What must be valid before anything
starts is loaded and checked at once, so a bad configuration never serves a request: keys,
the agency registry, the matter catalog and field mappings. Resources with a lifetime are one
cleanup context each, set up and torn down side by side: the database engine, the relay task
and the partner HTTP sessions. Tests call the same function with fakes for the clock or the
partner transport.

The sandbox is not imported here: it is an :class:`~gateway.extensions.Extension` that
``create_app`` is given, or finds as a plug-in in sandbox mode (gateway/extensions.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from gateway import jurisdictions
from gateway.domain.errors import ConfigurationError
from gateway.domain.materials import MaterialLimits
from gateway.domain.values import local_date
from gateway.egress.mail import SmtpSender
from gateway.egress.sms import HttpSmsSender
from gateway.extensions import Extension, Wiring, app_extensions
from gateway.mapping.appeals import AppealRoutes
from gateway.mapping.canonical import CanonicalCodec
from gateway.mapping.catalog import Catalog
from gateway.mapping.evidence import FILE_NAME as EVIDENCE_FILE_NAME
from gateway.mapping.evidence import EvidenceTypes
from gateway.mapping.matter_schema import MatterSchemas
from gateway.mapping.published import published_schemas
from gateway.services import lifecycle, materials
from gateway.services.calendars import HolidayCalendar
from gateway.services.handlers import Dependencies
from gateway.services.milestones import settle
from gateway.services.ports import (
    BlobStore,
    Clock,
    DocumentCodec,
    MatterCatalog,
    PartnerTransport,
)
from gateway.services.relay import Relay, RelayPolicy
from gateway.settings import Settings
from gateway.store.audit import write_checkpoint
from gateway.store.blobs import DatabaseBlobStore, FolderBlobStore
from gateway.store.database import create_engine, create_schema
from gateway.store.jobs import JobLease
from gateway.store.pg_listener import REGISTRY_CHANNEL, PgListener
from gateway.store.unit_of_work import SqlUnitOfWorkFactory
from gateway.store.wakeups import OutboxListener
from gateway.trust import keystore
from gateway.trust.certificates import TrustAnchors
from gateway.trust.keys import VerificationKey
from gateway.trust.receipts import JwsReceiptIssuer
from gateway.trust.registry import load_registry_file
from gateway.web import (
    case_routes,
    catalog_routes,
    certificate_routes,
    complaint_routes,
    material_routes,
    me_routes,
    oidc_routes,
    pages,
    partner_routes,
    public_routes,
)
from gateway.web.hosts import host_check
from gateway.web.keys import (
    DEPENDENCIES,
    KEYRING,
    MATTER_SCHEMAS,
    METRICS,
    RATE_LIMITS,
    READINESS,
    RELAY,
    SCHEMAS,
    SETTINGS,
    STORE,
)
from gateway.web.metrics import Metrics
from gateway.web.middlewares import request_context, sign_partner_responses
from gateway.web.notifier import install_notifications
from gateway.web.partner_client import HttpPartnerTransport
from gateway.web.problems import problem_middleware
from gateway.web.rate_limits import RateLimits, limit_by_address
from gateway.web.serving import body_deadline

log = structlog.get_logger("gateway.bootstrap")
# Scheduled work that one process runs at a time across every process on the database.
HOUSEKEEPING = web.AppKey("housekeeping", JobLease)
# PostgreSQL only: told at once of what other processes commit (None on SQLite).
LISTENER = web.AppKey("listener", PgListener | None)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Overrides:
    """Seams for tests: a fixed clock, a fake transport, a quieter relay."""

    clock: Clock | None = None
    transport: PartnerTransport | None = None
    relay_policy: RelayPolicy | None = None


def check_production(settings: Settings, ring: keystore.KeyRing) -> None:
    """Production refuses sandbox material and a missing trust configuration."""
    if settings.sandbox:
        return
    problems = []
    if ring.sandbox:
        problems.append("the key directory holds sandbox keys")
    anchors = settings.trust_anchors_dir
    if anchors is None or not anchors.is_dir() or not any(anchors.rglob("*.pem")):
        problems.append("no trust anchors are configured (trust_anchors_dir with *.pem files)")
    if settings.agencies_file is None:
        problems.append("no agency registry is configured (agencies_file)")
    if not settings.database_url:
        problems.append("no database is configured (database_url)")
    elif (
        settings.blob_store == "folder"
        and settings.data_dir is None
        and not settings.database_url.startswith("sqlite:")
    ):
        problems.append("blob_store 'folder' needs data_dir (a folder every process shares)")
    if problems:
        raise ConfigurationError("production mode refuses to start: " + "; ".join(problems))


def check_routes(catalog: Catalog, registered: set[str], today: date) -> None:
    """Every agency a matter in force routes cases to must be registered."""
    missing = sorted(
        {
            f"{agency} (matter {matter.code})"
            for matter in catalog.all(today)
            for agency in matter.route.handlers
            if agency not in registered
        }
    )
    if missing:
        raise ConfigurationError(
            "matters route cases to unregistered agencies: " + ", ".join(missing)
        )


def load_keyring(settings: Settings) -> keystore.KeyRing:
    if settings.sandbox:
        directory = settings.keys_dir or settings.sandbox_dir / "keys" / "gateway"
        if not (directory / keystore.MANIFEST).exists():
            return keystore.generate(directory, sandbox=True)
        return keystore.load(directory, generate_missing=True)
    if settings.keys_dir is None:
        raise ConfigurationError("production mode refuses to start: keys_dir is not set")
    return keystore.load(settings.keys_dir, owner_only=True)


# Loaded codecs and catalogs, by what they are loaded from: every app of a process (the test
# suite starts hundreds) compiles each format's mapping and XSD, and reads the matters, once.
_LOADED_CODECS: dict[tuple[Any, ...], dict[str, DocumentCodec]] = {}
_LOADED_CATALOGS: dict[tuple[Any, ...], Catalog] = {}


def _files_under(*folders: Path) -> tuple[tuple[str, int, int], ...]:
    """Each file below ``folders`` with its modification time and size: a copy edited in
    place is loaded again."""
    found = []
    for folder in folders:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else ():
            if path.is_file() and "__pycache__" not in path.parts:
                stat = path.stat()
                found.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(found)


def load_catalog(mappings_dir: Path) -> Catalog:
    """The matter catalog under ``mappings_dir`` (``matters/`` and ``evidence.yaml``). A
    catalog is immutable (frozen matters), so like the codecs one load serves every app of
    the process that reads the same files (the key includes their modification times)."""
    matters = mappings_dir / "matters"
    evidence = mappings_dir / EVIDENCE_FILE_NAME
    key = (
        matters.resolve(),
        _files_under(matters),
        (evidence.stat().st_mtime_ns, evidence.stat().st_size) if evidence.is_file() else None,
    )
    catalog = _LOADED_CATALOGS.get(key)
    if catalog is None:
        catalog = Catalog.load(matters)
        if len(_LOADED_CATALOGS) >= 16:
            _LOADED_CATALOGS.clear()
        _LOADED_CATALOGS[key] = catalog
    return catalog


def codecs(settings: Settings, catalog: Catalog | None = None) -> dict[str, DocumentCodec]:
    """The canonical codec and each registered jurisdiction's, by jurisdiction code; the
    native XML formats write the particulars of every matter of ``catalog`` (None: the
    catalog under ``mappings_dir``). Codecs are immutable once loaded, so one load serves
    every app of the process that reads the same files (the key includes their
    modification times)."""
    if catalog is None:
        catalog = load_catalog(settings.mappings_dir)
    particulars = catalog.particulars()
    adapters = jurisdictions.for_settings(settings)
    key = (
        settings.mappings_dir.resolve(),
        particulars,
        tuple((a.code, a.folder.resolve(), a.codec) for a in adapters),
        _files_under(settings.mappings_dir / "schemas", *(a.folder for a in adapters)),
    )
    table = _LOADED_CODECS.get(key)
    if table is None:
        table = {"canonical": CanonicalCodec(settings.mappings_dir / "schemas")}
        for adapter in adapters:
            table[adapter.code] = adapter.load_codec(settings.mappings_dir, particulars)
        if len(_LOADED_CODECS) >= 16:
            _LOADED_CODECS.clear()
        _LOADED_CODECS[key] = table
    return dict(table)


def generated_schemas(table: Mapping[str, DocumentCodec]) -> dict[str, bytes]:
    """The schema documents the codecs generated at load (an XSD with the catalog's
    particulars), by file name: published instead of the files they were generated from."""
    out: dict[str, bytes] = {}
    for codec in table.values():
        name, document = (
            getattr(codec, "schema_name", None),
            getattr(codec, "schema_document", None),
        )
        if name and document:
            out[name] = document
    return out


def email_sender(settings: Settings) -> SmtpSender | None:
    """The residents' e-mail channel from the settings (None: no ``smtp_host``)."""
    if not settings.smtp_host:
        return None
    password = None
    if settings.smtp_password_file is not None:
        password = settings.smtp_password_file.read_text("utf-8").strip()
    return SmtpSender(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_sender,
        starttls=settings.smtp_starttls,
        username=settings.smtp_username or None,
        password=password,
        timeout=settings.smtp_timeout,
        domain=urlsplit(settings.base_url).hostname or "gateway.invalid",
    )


def sms_sender(settings: Settings) -> HttpSmsSender | None:
    """The residents' SMS channel from the settings (None: no ``sms_gateway_url``)."""
    if not settings.sms_gateway_url:
        return None
    token = None
    if settings.sms_gateway_token_file is not None:
        token = settings.sms_gateway_token_file.read_text("utf-8").strip()
    return HttpSmsSender(
        settings.sms_gateway_url,
        egress=settings.egress,
        token=token,
        timeout=settings.smtp_timeout,
    )


def database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    keystore.private_dir(settings.sandbox_dir)
    return f"sqlite:///{settings.sandbox_dir / 'gateway.db'}"


def trust_anchors(
    settings: Settings, extensions: Sequence[Extension] | None = None
) -> TrustAnchors | None:
    """The configured anchors, unless an extension has its own (the sandbox's test PKI,
    generated at run time)."""
    jurisdictions.for_settings(settings)  # each registered jurisdiction has its folder
    for extension in app_extensions(settings) if extensions is None else extensions:
        anchors = extension.trust_anchors(settings)
        if anchors is not None:
            return anchors
    return TrustAnchors.load(settings.trust_anchors_dir) if settings.trust_anchors_dir else None


async def sweep_deadlines(app: web.Application) -> dict[str, int]:
    """Deemed acceptance and overdue cases (Art. 19(3), Art. 20): counted, logged, notified."""
    done = await lifecycle.sweep(app[DEPENDENCIES])
    metrics = app[METRICS]
    metrics.deemed_acceptances.inc(done["deemed_accepted"])
    metrics.overdue.inc(done["overdue"])
    if done["deemed_accepted"] or done["overdue"]:
        log.warning("deadline.sweep", **done)
    return done


async def housekeeping_round(app: web.Application) -> dict[str, Any] | None:
    """One round of scheduled work, run only by the process holding the ``housekeeping``
    lease (ADR 0011), which it takes or renews first: sign an audit checkpoint if the chain
    moved, forget expired nonces, sweep deadlines. None when another process holds it."""
    lease, uow, clock = app[HOUSEKEEPING], app[STORE], app[DEPENDENCIES].clock
    was_held = lease.held
    if not await lease.hold(clock.now()):
        if was_held:
            log.warning("housekeeping.lease_lost", holder=lease.holder)
        return None
    if not was_held:
        log.info("housekeeping.lease_taken", holder=lease.holder, seconds=lease.seconds)
    checkpoint = await write_checkpoint(uow, app[KEYRING].current("seal"), clock.now())
    async with uow() as tx:
        purged = await tx.nonces.purge(clock.now())
        await tx.commit()
    expired = await materials.expire_unbound(app[DEPENDENCIES], clock.now())
    return {
        "checkpoint": checkpoint,
        "nonces_purged": purged,
        "materials_expired": expired,
        **await sweep_deadlines(app),
    }


def blob_store(settings: Settings, uow: SqlUnitOfWorkFactory) -> BlobStore:
    """The data folder or the database, as ``blob_store`` says (docs/materials.md)."""
    if settings.blob_store_kind(uow.engine.dialect.name) == "database":
        return DatabaseBlobStore(uow.begin)
    return FolderBlobStore(settings.blob_folder)


def create_app(
    settings: Settings,
    overrides: Overrides | None = None,
    extensions: Sequence[Extension] | None = None,
) -> web.Application:
    """The gateway as an aiohttp application. Nothing starts until the app starts.

    ``extensions`` (None: :func:`~gateway.extensions.app_extensions`, the sandbox's in
    sandbox mode and none in production) are installed before the gateway's own routes."""
    overrides = overrides or Overrides()
    known_jurisdictions = jurisdictions.for_settings(settings)
    extensions = app_extensions(settings) if extensions is None else tuple(extensions)
    clock = overrides.clock or SystemClock()
    ring = load_keyring(settings)
    check_production(settings, ring)
    anchors = trust_anchors(settings, extensions)
    if not settings.sandbox and anchors is not None and anchors.sandbox_anchors():
        raise ConfigurationError(
            "production mode refuses to start: sandbox trust anchors in trust_anchors_dir"
        )
    registrations = (
        load_registry_file(
            settings.agencies_file, anchors=anchors, now=clock.now(), egress=settings.egress
        )
        if settings.agencies_file
        else []
    )
    catalog = load_catalog(settings.mappings_dir)
    view: MatterCatalog = catalog  # in sandbox, testers may route a matter to their agency
    for extension in extensions:
        view = extension.catalog(view)

    checked_host = host_check(settings)
    limits = RateLimits.from_settings(settings)
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            request_context,
            sign_partner_responses(ring, settings.base_url, clock),
            problem_middleware(settings.base_url),
            *([checked_host] if checked_host is not None else []),
            limit_by_address(limits),
            body_deadline(settings.body_timeout),
        ],
    )
    app[SETTINGS] = settings
    app[RATE_LIMITS] = limits
    app[KEYRING] = ring
    app[METRICS] = Metrics()
    table = codecs(settings, catalog)
    app[SCHEMAS] = published_schemas(
        settings.mappings_dir / "schemas",
        generated_schemas(table),
        jurisdiction_dirs=[j.schemas_dir for j in known_jurisdictions],
    )
    app[MATTER_SCHEMAS] = MatterSchemas.load(settings.mappings_dir / "schemas")
    app[READINESS] = {
        "keys": bool(ring.keys),
        "mappings": bool(catalog.all(local_date(clock.now()))),
    }
    engine = create_engine(database_url(settings), schema=settings.database_schema or None)
    uow = SqlUnitOfWorkFactory(engine)
    uow.committer.clock = clock.now
    uow.committer.observer = app[METRICS].commit_observer()

    async def key_lookup(kid: str) -> VerificationKey:
        """A partner's acknowledgement key, from the process's registry snapshot when it has
        one (no transaction per delivery); the relay checks it again where it records the
        acknowledgement (``check_ack_keys``)."""
        key, _agency = await uow.signer(kid)
        return key

    transport = overrides.transport or HttpPartnerTransport(
        lambda: ring.current("http"),
        key_lookup,
        clock,
        egress=settings.egress,
        timeout=settings.partner_timeout,
        connections_per_partner=settings.relay_per_partner,
    )
    blobs = blob_store(settings, uow)
    relay = Relay(
        uow,
        transport,
        clock,
        overrides.relay_policy
        or RelayPolicy(
            concurrency=settings.relay_concurrency,
            per_partner=settings.relay_per_partner,
            backoff_initial=settings.relay_backoff[0],
            backoff_max=settings.relay_backoff[1],
            max_attempts=settings.relay_attempts,
        ),
        settle=lambda case, tx, now: settle(case, tx, app[DEPENDENCIES], now),
        observer=app[METRICS].relay_observer(),
        check_ack_keys=True,
        blobs=blobs,
        notify=True,
    )
    app[RELAY] = relay
    app[STORE] = uow
    app[DEPENDENCIES] = Dependencies(
        uow=uow,
        clock=clock,
        catalog=view,
        codecs=table,
        receipts=JwsReceiptIssuer(ring.current("seal")),
        calendar=HolidayCalendar(),
        issuer=settings.base_url,
        outbox_written=relay.wake,
        appeals=AppealRoutes.load(settings.mappings_dir / "appeals.yaml"),
        notify=True,
        blobs=blobs,
        material_limits=MaterialLimits(
            file_bytes=settings.max_material_bytes,
            application_bytes=settings.max_application_material_bytes,
            expiry_seconds=settings.material_expiry_seconds,
            digest_only=settings.accept_digest_only_materials,
        ),
        evidence_types=EvidenceTypes.load(settings.mappings_dir),
        evidence_answer_within=timedelta(seconds=settings.evidence_answer_seconds),
    )

    async def database(app: web.Application) -> AsyncIterator[None]:
        await create_schema(engine)
        async with uow() as tx:
            for registration in registrations:
                await tx.agencies.register(registration, clock.now())
            await tx.commit()
        yield
        await uow.close()

    # PostgreSQL: a registry write in any process drops this process's snapshot at once.
    listener = app[LISTENER] = (
        PgListener(
            database_url(settings),
            settings.database_schema or None,
            {REGISTRY_CHANNEL: uow.registry.told},
        )
        if engine.dialect.name == "postgresql"
        else None
    )

    async def listening(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(listener.run()) if listener is not None else None
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def routed(app: web.Application) -> AsyncIterator[None]:
        async with uow() as tx:
            registered = {agency.id for agency, _ in await tx.agencies.all()}
        check_routes(catalog, registered, local_date(clock.now()))
        yield

    async def delivery(app: web.Application) -> AsyncIterator[None]:
        tasks = []
        if settings.relay_enabled:
            tasks.append(asyncio.create_task(relay.run()))
            if engine.dialect.name == "postgresql":  # woken by other processes' commits too
                listener = OutboxListener(
                    database_url(settings), relay.wake, schema=settings.database_schema or None
                )
                tasks.append(asyncio.create_task(listener.run()))
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if isinstance(transport, HttpPartnerTransport):
            await transport.close()

    # Renewed every round, so it outlives the pause between two; a holder that dies is
    # replaced at another process's first round after its lease ran out.
    app[HOUSEKEEPING] = JobLease(uow, "housekeeping", seconds=2 * settings.audit_checkpoint_seconds)

    async def housekeeping(app: web.Application) -> AsyncIterator[None]:
        async def every_interval() -> None:
            while True:
                await asyncio.sleep(settings.audit_checkpoint_seconds)
                try:
                    await housekeeping_round(app)
                except Exception:  # the database may be away; try again next time
                    log.exception("housekeeping.failed")

        task = asyncio.create_task(every_interval())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):  # seal what this process appended, if it can
            await write_checkpoint(uow, ring.current("seal"), clock.now())
        with contextlib.suppress(Exception):  # another process takes over at its next round
            await app[HOUSEKEEPING].release()

    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(listening)
    app.cleanup_ctx.append(housekeeping)
    for extension in extensions:
        extension.install(app, Wiring(settings, ring, uow, clock, anchors))
    oidc_routes.install(app, ring, known_jurisdictions.identity_profiles())
    app.cleanup_ctx.append(routed)
    app.cleanup_ctx.append(delivery)
    app.add_routes(partner_routes.routes)
    app.add_routes(catalog_routes.routes)
    app.add_routes(public_routes.routes)
    app.add_routes(me_routes.routes)
    app.add_routes(material_routes.routes)
    app.add_routes(case_routes.routes)
    app.add_routes(complaint_routes.routes)
    app.add_routes(certificate_routes.routes)
    pages.install_pages(app)
    install_notifications(
        app,
        uow,
        clock,
        lambda: ring.current("http"),
        egress=settings.egress,
        enabled=settings.relay_enabled,
        email=email_sender(settings),
        sms=sms_sender(settings),
        progress_url=settings.base_url + "/me/applications/{application_id}",
    )
    return app
