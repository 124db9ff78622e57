"""The keys of a run: the gateway's signing key the partner trusts, and the partner's
public keys to check its answers with.

``--key`` is a PEM private key (its kid is the file stem unless ``--kid`` says otherwise) or a
key directory with a ``keys.json`` manifest (:mod:`gateway.trust.keystore`), whose newest
``http`` key is used — in sandbox, ``<sandbox_dir>/keys/gateway``.

The partner's keys come from a JWKS (``{"keys": [JWK with kid]}``) or a sandbox agency
document (``{"agency_id", "keys": [{"kid", "jwk", "not_before", "not_after", "revoked"}]}``),
read from a file or a URL. For a sandbox inbox (``/sandbox/partners/{agency_id}/messages``)
the default is ``{origin}/sandbox/v1/agencies/{agency_id}``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from gateway.domain.errors import ConfigurationError, UnknownKeyError
from gateway.trust.keys import (
    HTTP,
    KeyMisuseError,
    SigningKey,
    VerificationKey,
    alg_for_public_key,
    load_private_key,
    public_key_from_jwk,
)
from gateway.trust.keystore import MANIFEST

_SANDBOX_INBOX = re.compile(r"^/sandbox/partners/(?P<agency>[a-z0-9-]{1,64})/messages$")


def load_signing_key(path: Path, kid: str | None = None) -> SigningKey:
    """The gateway's HTTP-signing key from a PEM file or a key directory."""
    if path.is_dir():
        path, default_kid = _newest_http_key(path)
    else:
        default_kid = path.stem
    try:
        private = load_private_key(path)
        alg = alg_for_public_key(private.public_key())
    except (OSError, ValueError, TypeError) as exc:  # KeyMisuseError is a ValueError
        raise ConfigurationError(f"cannot load the signing key {path}: {exc}") from None
    return SigningKey(kid=kid or default_kid, private_key=private, alg=alg)


def _newest_http_key(directory: Path) -> tuple[Path, str]:
    manifest = directory / MANIFEST
    try:
        entries = json.loads(manifest.read_text("utf-8")).get("keys", [])
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigurationError(f"cannot read the key manifest {manifest}: {exc}") from None
    http = [
        (str(entry.get("created", "")), index, entry)
        for index, entry in enumerate(entries)
        if isinstance(entry, dict) and entry.get("purpose") == HTTP and "file" in entry
    ]
    if not http:
        raise ConfigurationError(f"{manifest} names no key with purpose {HTTP!r}")
    entry = max(http, key=lambda item: item[:2])[2]
    file = directory / str(entry["file"])
    return file, str(entry.get("kid") or file.stem)


def sandbox_agency_url(target: str) -> str | None:
    """Where a sandbox agency publishes its keys, when ``target`` is a sandbox inbox."""
    parts = urlsplit(target)
    found = _SANDBOX_INBOX.match(parts.path)
    if found is None:
        return None
    return f"{parts.scheme}://{parts.netloc}/sandbox/v1/agencies/{found['agency']}"


class PartnerKeys:
    """The partner's public keys, by kid; an unknown kid raises :class:`UnknownKeyError`."""

    def __init__(
        self,
        keys: Mapping[str, VerificationKey],
        source: str,
        receives: str | None = None,
        issues_evidence: tuple[str, ...] = (),
    ) -> None:
        self.keys = dict(keys)
        self.source = source
        self.receives = receives  # the format an agency document declares, if it does
        self.issues_evidence = issues_evidence  # the evidence types it declares it issues

    def __call__(self, kid: str) -> VerificationKey:
        key = self.keys.get(kid)
        if key is None:
            raise UnknownKeyError(f"key {kid!r} is not one of the partner's keys ({self.source})")
        return key

    @classmethod
    def from_document(cls, data: Any, source: str) -> PartnerKeys:
        """A JWKS or a sandbox agency document."""
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise ConfigurationError(f"{source}: not a JWKS or an agency document (no keys list)")
        owner = str(data.get("agency_id") or "partner")
        keys = {}
        for entry in data["keys"]:
            key = _verification_key(entry, owner, source)
            if key is not None:
                keys[key.kid] = key
        if not keys:
            raise ConfigurationError(f"{source}: no usable signing key")
        receives = data.get("receives")
        evidence = data.get("issues_evidence")
        issued = (
            tuple(e for e in evidence if isinstance(e, str)) if isinstance(evidence, list) else ()
        )
        return cls(
            keys, source, receives if isinstance(receives, str) and receives else None, issued
        )


def _verification_key(entry: Any, owner: str, source: str) -> VerificationKey | None:
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{source}: a key entry is not an object")
    if entry.get("revoked") is True:
        return None
    jwk = entry.get("jwk", entry)
    kid = entry.get("kid") or (jwk.get("kid") if isinstance(jwk, dict) else None)
    if not isinstance(jwk, dict) or not isinstance(kid, str) or jwk.get("use") == "enc":
        return None
    try:
        public = public_key_from_jwk(jwk)
        alg = alg_for_public_key(public)
        return VerificationKey(
            kid=kid,
            owner=owner,
            public_key=public,
            alg=alg,
            not_before=_instant(entry.get("not_before")),
            not_after=_instant(entry.get("not_after")),
        )
    except (KeyMisuseError, ValueError) as exc:
        raise ConfigurationError(f"{source}: key {kid!r}: {exc}") from None


def _instant(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


async def partner_keys(
    source: str | None, target: str, session: aiohttp.ClientSession
) -> PartnerKeys:
    """The partner's keys from ``source`` (URL or file), or the sandbox default for ``target``."""
    if source is None:
        source = sandbox_agency_url(target)
        if source is None:
            raise ConfigurationError(
                "--partner-jwks is required: the target is not a sandbox inbox "
                "(/sandbox/partners/{agency_id}/messages), so its keys cannot be found"
            )
    if urlsplit(source).scheme in ("http", "https"):
        try:
            async with session.get(
                source, headers={"Accept": "application/json"}, allow_redirects=False
            ) as response:
                if response.status != 200:
                    raise ConfigurationError(f"{source} answered {response.status}")
                data = json.loads(await response.read())
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ConfigurationError(
                f"cannot fetch the partner's keys from {source}: {exc}"
            ) from None
    else:
        try:
            data = json.loads(await asyncio.to_thread(Path(source).read_text, "utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"cannot read the partner's keys from {source}: {exc}"
            ) from None
    return PartnerKeys.from_document(data, source)
