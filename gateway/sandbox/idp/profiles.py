"""What each sandbox identity provider says about a persona: subject, acr, amr, profile.

The claim names and values are a contract the relying party codes against, and belong to the
jurisdiction: each jurisdiction folder declares its provider's as data and two functions
(``adapters/<jurisdiction>/sandbox.py``, a :class:`~gateway.jurisdictions.
SandboxIdentityProvider` on its ``ADAPTER``). The sandbox runs one provider for every
registered jurisdiction that has one:

- ``hk`` (iAM Smart): a pairwise tokenised account id, ``iamsmart:basic`` / ``iamsmart`` /
  ``iamsmart+``, the e-ME profile and ``orgProfile`` for a company representative;
- ``macau`` (One Account): ``MO-`` account id, ``mo:loa:1..3``, BIR number and names;
- ``guangdong`` (unified identity): account id, ``gd:loa:1..3``, certificate type and number,
  ``bound_ids`` for an HK or Macao resident bound to the home login, ``org``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway import jurisdictions
from gateway.jurisdictions import SandboxIdentityProvider
from gateway.sandbox.personas import Persona

ASSURANCE = ("low", "substantial", "high")


@dataclass(frozen=True)
class Profile:
    """One jurisdiction's sandbox identity provider, as the provider uses it."""

    name: str
    idp: SandboxIdentityProvider

    @property
    def title(self) -> str:
        return self.idp.title

    @property
    def signing_alg(self) -> str:
        return self.idp.signing_alg

    @property
    def subject_type(self) -> str:
        return self.idp.subject_type

    @property
    def acr(self) -> tuple[str, str, str]:
        return self.idp.acr

    @property
    def scopes(self) -> tuple[str, ...]:
        return self.idp.scopes

    @property
    def claims(self) -> tuple[str, ...]:
        return self.idp.claims

    @property
    def locales(self) -> tuple[str, ...]:
        return self.idp.locales

    @property
    def par(self) -> bool:
        return self.idp.par

    def acr_for(self, persona: Persona) -> str:
        return self.idp.acr[ASSURANCE.index(persona.assurance)]

    def amr_for(self, persona: Persona) -> list[str]:
        return list(self.idp.amr[ASSURANCE.index(persona.assurance)])

    def subject(self, persona: Persona, client_id: str) -> str:
        return self.idp.subject(persona, client_id)

    def profile(self, persona: Persona) -> dict[str, Any]:
        return self.idp.profile(persona)


def profiles() -> dict[str, Profile]:
    """The sandbox identity provider of each registered jurisdiction that has one, by name."""
    return {
        j.provider: Profile(j.provider, j.sandbox_idp)
        for j in jurisdictions.registered()
        if j.sandbox_idp is not None
    }
