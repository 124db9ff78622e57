"""Sandbox mode: register the sandbox agencies and mount their inboxes and the sandbox API."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.bootstrap import codecs
from gateway.sandbox import tester_routes
from gateway.sandbox.agencies import SANDBOX_AGENCIES, ensure_agency_key
from gateway.sandbox.console import install_console
from gateway.sandbox.idp import install_identity_providers
from gateway.sandbox.mailbox import install_sinks
from gateway.sandbox.notifications import install_recording_notifier
from gateway.sandbox.partners import SandboxPartners
from gateway.sandbox.routes import ANCHORS, FAULTS, PARTNERS, ROUTING, routes
from gateway.sandbox.routing import RoutedCatalog
from gateway.services.ports import Clock
from gateway.settings import Settings
from gateway.store.unit_of_work import SqlUnitOfWorkFactory
from gateway.trust.certificates import TrustAnchors
from gateway.trust.keystore import KeyRing
from gateway.trust.registry import KeySpec, Registration


def install_sandbox(
    app: web.Application,
    settings: Settings,
    ring: KeyRing,
    uow: SqlUnitOfWorkFactory,
    clock: Clock,
    anchors: TrustAnchors | None,
    routing: RoutedCatalog,
) -> None:
    """Sandbox agencies get keys (generated once into the sandbox folder) and an inbox."""
    agencies, registrations = {}, []
    for sandbox_agency in SANDBOX_AGENCIES:
        key = ensure_agency_key(settings.sandbox_dir, sandbox_agency)
        spec = KeySpec(key.kid, key.jwk(), sandbox=True)
        registrations.append(
            Registration(sandbox_agency.agency(settings.base_url), (spec,), sandbox=True)
        )
        agencies[sandbox_agency.id] = (sandbox_agency, key)
    partners = SandboxPartners(
        agencies, ring.resolve, settings.base_url, clock, formats=codecs(settings)
    )
    app[PARTNERS] = partners
    app[FAULTS] = partners.faults
    app[ROUTING] = routing
    if anchors is not None:
        app[ANCHORS] = anchors

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with uow() as tx:
            for registration in registrations:
                await tx.agencies.register(registration, clock.now())
            await tx.commit()
        await partners.start()
        yield
        await partners.stop()

    app.cleanup_ctx.append(lifecycle)
    app.add_routes(routes)
    app.add_routes(tester_routes.routes)
    install_identity_providers(app, settings, clock)
    install_recording_notifier(app)
    install_sinks(app, settings)
    install_console(app)
