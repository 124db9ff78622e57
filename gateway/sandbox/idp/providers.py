"""The sandbox identity providers together, as the gateway's sandbox mode holds them."""

from __future__ import annotations

from typing import Any

from gateway.sandbox.idp.profiles import profiles
from gateway.sandbox.idp.provider import SandboxProvider
from gateway.services.ports import Clock


class SandboxIdentityProviders:
    """One for each registered jurisdiction with a sandbox provider: ``hk`` (iAM Smart),
    ``macau`` (One Account), ``guangdong`` (unified identity).

    The issuer of provider ``N`` is ``<base URL>/sandbox/idp/N``.
    """

    def __init__(self, base_url: str, clock: Clock) -> None:
        self._providers = {
            name: SandboxProvider(name, f"{base_url}/sandbox/idp/{name}", clock)
            for name in profiles()
        }

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._providers)

    def provider(self, name: str) -> SandboxProvider:
        """The provider called ``name``; KeyError if there is none."""
        return self._providers[name]

    def tamper(self, **faults: Any) -> None:
        """Set faults on every provider (``tamper()`` resets them all); see
        :meth:`SandboxProvider.tamper`."""
        for provider in self._providers.values():
            provider.tamper(**faults)
