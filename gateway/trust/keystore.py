"""The gateway's own keys on disk: generated at run time, never committed.

A key directory holds one PEM file per private key (mode 0600) and ``keys.json``, the
manifest naming each key's ``kid``, purpose (``seal`` for receipts and vouchers, ``http`` for
RFC 9421 message signatures, ``oidc`` for the tokens the gateway issues as OpenID Provider and
the client assertions it sends as relying party), algorithm and whether it is sandbox
material. Production mode refuses a directory whose manifest or key ids are marked sandbox,
and a private key file that its group or others may read or write (``owner_only``).

The ``oidc`` key is always ECDSA P-256 (JWS ``ES256``), whatever algorithm the other keys use:
portals and partner agencies verify the gateway's tokens with the most widely supported JWS
algorithm. A directory generated before the ``oidc`` purpose existed lacks it; :func:`load`
reports that, and ``load(directory, generate_missing=True)`` (sandbox) adds it.
"""

from __future__ import annotations

import json
import os
import stat
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
OIDC = "oidc"  # ID tokens, access tokens (at+jwt), client assertions sent upstream
PURPOSES = (SEAL, HTTP, OIDC)
FIXED_ALGS = {OIDC: "ecdsa-p256-sha256"}  # purposes whose algorithm never follows --alg


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


def private_dir(directory: Path) -> None:
    """Create ``directory`` and every missing parent readable by its owner only (0700)."""
    for missing in reversed([d for d in (directory, *directory.parents) if not d.exists()]):
        missing.mkdir(mode=0o700, exist_ok=True)


def generate(
    directory: Path,
    *,
    sandbox: bool,
    alg: str = "ecdsa-p256-sha256",
    purposes: tuple[str, ...] = PURPOSES,
) -> KeyRing:
    """Generate one new key per purpose into ``directory`` (existing keys are kept)."""
    private_dir(directory)
    manifest = directory / MANIFEST
    entries = json.loads(manifest.read_text()) if manifest.exists() else {"keys": []}
    if manifest.exists() and entries.get("sandbox") != sandbox:
        raise ConfigurationError(f"{directory} already holds keys of the other mode")
    now = datetime.now(UTC)
    for purpose in purposes:
        key_alg = FIXED_ALGS.get(purpose, alg)
        private = generate_private_key(key_alg)
        thumb = jwk_thumbprint(public_jwk(private.public_key(), kid="-"))[:12]
        kid = f"{SANDBOX_PREFIX if sandbox else ''}gw-{purpose}-{now:%Y%m%d}-{thumb}"
        filename = f"{kid}.pem"
        write_private(directory / filename, private_key_pem(private))
        entries["keys"].append(
            {
                "kid": kid,
                "purpose": purpose,
                "alg": key_alg,
                "file": filename,
                "created": now.isoformat(),
            }
        )
    entries["sandbox"] = sandbox
    manifest.write_text(json.dumps(entries, indent=2) + "\n")
    return load(directory)


def check_owner_only(path: Path) -> None:
    """ConfigurationError unless only the file's owner may read or write it (0600 or 0400)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigurationError(f"cannot read the private key file {path}: {exc}") from None
    if mode & 0o077:
        raise ConfigurationError(
            f"the private key file {path} is open to its group or others"
            f" (mode {stat.S_IMODE(mode):04o}): run `chmod 600 {path}`"
        )


def load(directory: Path, *, generate_missing: bool = False, owner_only: bool = False) -> KeyRing:
    """The key ring in ``directory``; every purpose must have a key.

    ``generate_missing`` (sandbox only) adds a key for each purpose the directory lacks, such
    as the ``oidc`` key in a directory generated by an earlier version. ``owner_only``
    (production) refuses a private key file its group or others may read or write.
    """
    manifest = directory / MANIFEST
    try:
        entries = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the key manifest {manifest}: {exc}") from None
    present = {entry.get("purpose") for entry in entries.get("keys", [])}
    missing = tuple(p for p in PURPOSES if p not in present)
    if missing and generate_missing:
        return generate(directory, sandbox=bool(entries.get("sandbox")), purposes=missing)
    if missing:
        raise ConfigurationError(
            f"the key directory {directory} has no key for {', '.join(missing)}"
            f" (the oidc key signs the tokens the gateway issues; it is ES256): run"
            f" `gba-gateway keys generate --out {directory}` to add one key per purpose"
        )
    keys = []
    for entry in entries.get("keys", []):
        if owner_only and "file" in entry:
            check_owner_only(directory / entry["file"])
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
