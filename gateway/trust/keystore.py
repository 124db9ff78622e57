"""The gateway's own keys on disk: generated at run time, never committed.

A key directory holds one PEM file per private key (mode 0600) and ``keys.json``, the
manifest naming each key's ``kid``, purpose (``seal`` for receipts and vouchers, ``http`` for
RFC 9421 message signatures), algorithm and whether it is sandbox material. Production mode
refuses a directory whose manifest or key ids are marked sandbox.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from gateway.domain.errors import ConfigurationError, UnknownKeyError
from gateway.trust.keys import (
    HTTP,
    PURPOSE_MEMBER,
    SEAL,
    SigningKey,
    VerificationKey,
    generate_private_key,
    jwk_thumbprint,
    load_private_key,
    private_key_pem,
    public_jwk,
)

MANIFEST = "keys.json"
SANDBOX_PREFIX = "sandbox-"
PURPOSES = (SEAL, HTTP)


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The gateway's signing keys: the newest key of each purpose signs; all are published."""

    keys: tuple[SigningKey, ...]
    sandbox: bool

    def current(self, purpose: str) -> SigningKey:
        for key in reversed(self.keys):
            if key.purpose == purpose:
                return key
        raise ConfigurationError(f"no {purpose} key in the key ring")

    def resolve(self, kid: str) -> VerificationKey:
        """One of the gateway's own public keys, for checking the gateway's own signatures."""
        for key in self.keys:
            if key.kid == kid:
                return replace(key.public, owner="gateway")
        raise UnknownKeyError("not a key of this gateway")

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Every key, marked with what it is for: a seal key never verifies as HTTP and back."""
        return {"keys": [{**k.jwk(), PURPOSE_MEMBER: k.purpose} for k in self.keys]}


def write_private(path: Path, data: bytes) -> None:
    """Create a private key file readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def generate(directory: Path, *, sandbox: bool, alg: str = "ecdsa-p256-sha256") -> KeyRing:
    """Generate one seal key and one HTTP-signature key into ``directory`` (kept if present)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    manifest = directory / MANIFEST
    entries = json.loads(manifest.read_text()) if manifest.exists() else {"keys": []}
    if manifest.exists() and entries.get("sandbox") != sandbox:
        raise ConfigurationError(f"{directory} already holds keys of the other mode")
    now = datetime.now(UTC)
    for purpose in PURPOSES:
        private = generate_private_key(alg)
        thumb = jwk_thumbprint(public_jwk(private.public_key(), kid="-"))[:12]
        kid = f"{SANDBOX_PREFIX if sandbox else ''}gw-{purpose}-{now:%Y%m%d}-{thumb}"
        filename = f"{kid}.pem"
        write_private(directory / filename, private_key_pem(private))
        entries["keys"].append(
            {
                "kid": kid,
                "purpose": purpose,
                "alg": alg,
                "file": filename,
                "created": now.isoformat(),
            }
        )
    entries["sandbox"] = sandbox
    manifest.write_text(json.dumps(entries, indent=2) + "\n")
    return load(directory)


def load(directory: Path) -> KeyRing:
    manifest = directory / MANIFEST
    try:
        entries = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the key manifest {manifest}: {exc}") from None
    keys = []
    for entry in entries.get("keys", []):
        try:
            private = load_private_key(directory / entry["file"])
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigurationError(f"cannot load key {entry.get('kid')}: {exc}") from None
        keys.append(
            SigningKey(
                kid=entry["kid"],
                private_key=private,
                alg=entry["alg"],
                sandbox=bool(entries.get("sandbox")) or entry["kid"].startswith(SANDBOX_PREFIX),
                purpose=entry["purpose"],
            )
        )
    ring = KeyRing(tuple(keys), sandbox=any(k.sandbox for k in keys))
    for purpose in PURPOSES:
        ring.current(purpose)
    return ring
