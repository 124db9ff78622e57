"""The sandbox as a plug-in of the gateway (gateway/extensions.py).

The production gateway never imports this package: ``pyproject.toml`` declares
:data:`PLUGIN` as the entry point ``sandbox`` of ``gba_gateway.extensions``, and
``create_app`` in sandbox mode installs the :class:`SandboxExtension` it makes.
"""

from __future__ import annotations

from aiohttp import web

from gateway.extensions import Plugin, Wiring
from gateway.identity.discovery import SANDBOX_CLIENT_ID
from gateway.portal import app as portal
from gateway.sandbox import commands
from gateway.sandbox.access import install_access
from gateway.sandbox.agencies import SANDBOX_AGENCIES
from gateway.sandbox.idp import IDENTITY_PROVIDERS
from gateway.sandbox.pki import generate_test_pki
from gateway.sandbox.routing import RoutedCatalog
from gateway.sandbox.samples import sample_application
from gateway.sandbox.setup import install_sandbox
from gateway.services.ports import MatterCatalog
from gateway.settings import Settings
from gateway.trust import keystore
from gateway.trust.certificates import TrustAnchors


class SandboxExtension:
    """Sandbox agencies and their inboxes, identity providers, the tester API, the console,
    a test PKI, matter routes a tester may change, and the reference resident portal."""

    name = "sandbox"

    def __init__(self) -> None:
        self.routing: RoutedCatalog | None = None

    def trust_anchors(self, settings: Settings) -> TrustAnchors | None:
        """A test PKI, one CA per jurisdiction, generated at run time into the data folder."""
        pki_dir = settings.trust_anchors_dir or settings.sandbox_dir / "pki"
        generate_test_pki(pki_dir)
        return TrustAnchors.load(pki_dir)

    def catalog(self, catalog: MatterCatalog) -> MatterCatalog:
        self.routing = RoutedCatalog(catalog)
        return self.routing

    def install(self, app: web.Application, wiring: Wiring) -> None:
        assert self.routing is not None, "create_app asks for the catalog before installing"
        install_sandbox(
            app,
            wiring.settings,
            wiring.ring,
            wiring.uow,
            wiring.clock,
            wiring.anchors,
            self.routing,
        )
        register_at_sandbox_providers(app, wiring.settings, wiring.ring)
        install_access(app, wiring.settings)
        portal.install(app, wiring.settings.base_url)  # the reference portal at /portal/


def register_at_sandbox_providers(
    app: web.Application, settings: Settings, ring: keystore.KeyRing
) -> None:
    """The gateway, as relying party, is a client of each sandbox identity provider."""
    providers, base_url = app[IDENTITY_PROVIDERS], settings.base_url
    jwks = {"keys": [key.jwk() for key in ring.keys if key.purpose == keystore.OIDC]}
    for name in providers.names:
        providers.provider(name).register_client(
            SANDBOX_CLIENT_ID, jwks=jwks, redirect_uris=[f"{base_url}/auth/{name}/callback"]
        )


def extension(settings: Settings) -> SandboxExtension | None:
    """The sandbox extension in sandbox mode; nothing in production mode."""
    return SandboxExtension() if settings.sandbox else None


PLUGIN = Plugin(
    name="sandbox",
    register_commands=commands.register,
    extension=extension,
    agency_ids=tuple(agency.id for agency in SANDBOX_AGENCIES),
    sample_application=sample_application,
)
