"""Sandbox mode: register the sandbox agencies and mount their inboxes and the sandbox API."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.sandbox.agencies import SANDBOX_AGENCIES, ensure_agency_key
from gateway.sandbox.partners import SandboxPartners
from gateway.sandbox.routes import PARTNERS, routes
from gateway.services.ports import Clock
from gateway.settings import Settings
from gateway.trust.keys import VerificationKey
from gateway.trust.keystore import KeyRing
from gateway.trust.registry import AgencyRegistry


def install_sandbox(
    app: web.Application,
    settings: Settings,
    ring: KeyRing,
    registry: AgencyRegistry,
    clock: Clock,
) -> None:
    """Sandbox agencies get keys (generated once into the sandbox folder) and an inbox."""
    agencies = {}
    for sandbox_agency in SANDBOX_AGENCIES:
        key = ensure_agency_key(settings.sandbox_dir, sandbox_agency)
        public = VerificationKey(
            key.kid, sandbox_agency.id, key.public.public_key, key.alg, sandbox=True
        )
        registry.add(sandbox_agency.agency(settings.base_url), [public])
        agencies[sandbox_agency.id] = (sandbox_agency, key)
    partners = SandboxPartners(agencies, ring.resolve, settings.base_url, clock)
    app[PARTNERS] = partners

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await partners.start()
        yield
        await partners.stop()

    app.cleanup_ctx.append(lifecycle)
    app.add_routes(routes)
