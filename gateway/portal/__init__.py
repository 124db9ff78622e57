"""The reference resident portal (``/portal/``, sandbox mode only): a plain client of the
gateway's public API and OpenID Provider.

It imports nothing of the gateway's core, store, identity, trust, mapping or sandbox (an
import contract in ``pyproject.toml`` says so): it registers itself at the gateway's OP by
RFC 7591 with a key generated at run time, logs residents in with code + PKCE and
private_key_jwt, and calls ``/v1/matters``, ``/v1/me/...`` and the materials API over HTTP
with the resident's access token. The sandbox mounts it (:func:`gateway.portal.app.install`).
How it works and the journey: docs/portal.md; why: docs/adr/0029-reference-portal.md.
"""
