"""Sandbox OpenID Connect identity providers, modelled on HK iAM Smart (``hk``), Macao One
Account (``macau``) and Guangdong unified identity (``guangdong``): one for each registered
jurisdiction whose folder describes one (gateway/jurisdictions.py).

Real OpenID providers built on authlib's server side, in memory, for sandbox mode only: code
flow with PKCE S256, ``private_key_jwt`` client authentication, RFC 9207 ``iss`` in every
authorization response, pushed authorization requests at ``hk``, and a tamper seam for the
relying party's negative tests.
"""

from gateway.sandbox.idp.keys import SIGNING_MODES
from gateway.sandbox.idp.provider import Faults, SandboxProvider
from gateway.sandbox.idp.providers import SandboxIdentityProviders
from gateway.sandbox.idp.routes import IDENTITY_PROVIDERS, install_identity_providers

__all__ = [
    "IDENTITY_PROVIDERS",
    "SIGNING_MODES",
    "Faults",
    "SandboxIdentityProviders",
    "SandboxProvider",
    "install_identity_providers",
]
