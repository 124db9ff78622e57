"""The identity broker: a portal's authorization request in, an upstream login, a code out.

The SATOSA pattern in three steps. :meth:`Broker.start` checks the portal's request
(:class:`~gateway.identity.provider.OpenIdProvider`) and starts the upstream login it asks
for with ``idp_hint`` (:class:`~gateway.identity.relying_party.RelyingParty`), keeping the
portal's request with the pending login, bound to the browser; without ``idp_hint`` it raises
:class:`ChooseProvider` and the resident picks one on the chooser page.
:meth:`Broker.finish` completes the upstream login in the browser that started it, records
it with the ``sign_in`` use case — the only write outside the broker's own state — and
answers the redirect that carries the portal's code. A refused login records nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from gateway.domain.errors import ConfigurationError
from gateway.domain.identity import CanonicalIdentity
from gateway.identity.ports import Client, OidcStore
from gateway.identity.provider import OpenIdProvider
from gateway.identity.relying_party import RelyingParty
from gateway.services.identity import SignIn


class ChooseProvider(Exception):
    """A valid authorization request without ``idp_hint``: the resident chooses a provider."""

    def __init__(self, client: Client, providers: list[str]) -> None:
        super().__init__("choose an identity provider")
        self.client = client
        self.providers = providers


@dataclass(frozen=True, slots=True)
class Broker:
    relying_party: RelyingParty
    provider: OpenIdProvider
    store: OidcStore
    sign_in: Callable[[CanonicalIdentity], Awaitable[SignIn]]
    sandbox: bool

    async def start(
        self, query: Mapping[str, str], *, idp_hint: str | None, browser_hash: str
    ) -> str:
        """The URL to send the resident to: the upstream provider's authorization endpoint;
        :class:`ChooseProvider` when the (valid) request names no provider."""
        authorization = await self.provider.authorization_request(
            query, idp_hint=idp_hint, sandbox=self.sandbox
        )
        if authorization.provider is None:
            raise ChooseProvider(authorization.client, self.relying_party.providers())
        return await self.relying_party.begin(
            authorization.provider,
            authorization.request,
            login_hint=authorization.login_hint,
            browser_hash=browser_hash,
        )

    async def finish(
        self,
        provider: str,
        query: Mapping[str, str],
        *,
        browser_hash: str | None,
        session_hash: str,
    ) -> str:
        """The portal's redirect URI with a fresh code, once the upstream login holds in the
        browser that started it; the login's session is kept under ``session_hash``."""
        identity, transaction = await self.relying_party.complete(
            provider, query, browser_hash=browser_hash
        )
        signed_in = await self.sign_in(identity)
        return await self.provider.issue_code(
            transaction.request,
            login_id=signed_in.login_id,
            person_id=signed_in.person_id,
            identity=signed_in.identity,
            browser_hash=session_hash,
        )

    async def register_clients(self, clients: list[Client], now: datetime) -> None:
        """Clients from ``clients_file``, each bound to a registered agency (checked here)."""
        unknown = [c.client_id for c in clients if not await self.store.agency_exists(c.agency_id)]
        if unknown:
            raise ConfigurationError(
                "clients_file: clients bound to unregistered agencies: " + ", ".join(unknown)
            )
        for client in clients:
            await self.store.save_client(client, now)
