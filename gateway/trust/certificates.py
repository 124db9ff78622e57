"""Agency certificates: X.509 chains checked against each jurisdiction's trust anchors.

An agency may register its public key as a certificate chain (leaf first) instead of a JWK.
The chain must end at a trust anchor of the agency's own jurisdiction: the self-signed CA
certificates kept in ``<anchors>/hk/``, ``<anchors>/macau/`` and ``<anchors>/guangdong/``
(``certs/README.md``). Revocation lists (``*.crl.pem`` or ``*.crl``, PEM) live beside them.

Path validation is implemented here rather than with ``cryptography.x509.verification``:
that verifier refuses Ed25519 CA keys, has no revocation lists and reports one opaque error.
Every certificate of the path is checked for its validity period, each issuer for
``basicConstraints`` CA (and ``pathLen``) and ``keyCertSign``, the leaf for
``digitalSignature`` (without ``keyCertSign``/``cRLSign``), no CA flag, an allowed key
(``gateway.trust.keys``), an extended key usage allowing ``clientAuth`` when it has one, and
the subjectAltName URI ``urn:gba:agency:<agency_id>`` naming the agency registering it.
Signatures are ECDSA P-256/SHA-256, Ed25519, or RSA (>= 2048 bits) PKCS#1 v1.5 or PSS with
SHA-256/384/512.

A revocation list issued by an anchor must verify when it is loaded (ConfigurationError
otherwise). One issued by an intermediate is checked against that intermediate when a path
goes through it, and a list that fails then refuses the chain: revocation fails closed. A list
past its ``nextUpdate`` (or without one) counts as unavailable and refuses the chains it
covers in the same way.
A listed serial is refused whatever its revocation date.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from gateway import jurisdictions
from gateway.domain.errors import CertificateError, ConfigurationError
from gateway.trust.certpath import (
    MAX_CHAIN_LENGTH,
    PathRefused,
    build_path,
    check_certificates,
    check_issuer,
    check_revocation,
    public_key_or_none,
    signature_failure,
)
from gateway.trust.keys import PublicKey, VerificationKey, alg_for_public_key

MAX_CHAIN_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ValidatedCertificate:
    """The leaf of a chain that validated: its key and what identifies it."""

    public_key: PublicKey
    alg: str
    subject: str
    serial: int
    not_before: datetime
    not_after: datetime
    fingerprint: str


def _check_anchor(cert: x509.Certificate, label: str) -> None:
    if cert.subject != cert.issuer or signature_failure(cert, public_key_or_none(cert)):
        raise ConfigurationError(
            f"trust anchor {label} is not self-signed with an allowed signature algorithm"
        )
    try:
        check_issuer(cert, "anchor", below=0, anchor=True)
    except (PathRefused, ValueError):
        raise ConfigurationError(f"trust anchor {label} is not a CA certificate") from None


def _load_crl(data: bytes, label: str) -> x509.CertificateRevocationList:
    try:
        return x509.load_pem_x509_crl(data)
    except ValueError:
        raise ConfigurationError(f"{label} is not a PEM certificate revocation list") from None


def _jurisdiction(code: str) -> str:
    try:
        return jurisdictions.registered().parse_code(code)
    except ValueError:
        raise ConfigurationError(f"unknown jurisdiction {code!r}") from None


SANDBOX_ORGANIZATION = "GBA sandbox"  # the organisation of every sandbox CA and certificate


@dataclass(frozen=True, eq=False)
class TrustAnchors:
    """The CA certificates (and revocation lists) each jurisdiction's agencies chain to."""

    anchors: Mapping[str, tuple[x509.Certificate, ...]] = field(default_factory=dict)
    crls: dict[str, list[x509.CertificateRevocationList]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        anchors = {_jurisdiction(code): tuple(certs) for code, certs in self.anchors.items()}
        for code, certs in anchors.items():
            for cert in certs:
                _check_anchor(cert, f"{code} {cert.fingerprint(hashes.SHA256()).hex()[:16]}")
        object.__setattr__(self, "anchors", {k: v for k, v in anchors.items() if v})

    @classmethod
    def load(cls, directory: Path) -> TrustAnchors:
        """Read ``<directory>/<format>/*.pem`` (``hk``, ``macau``, ``guangdong``: each
        registered jurisdiction's format name) and the revocation lists beside them."""
        if not directory.is_dir():
            raise ConfigurationError(f"the trust anchor folder {directory} does not exist")
        anchors: dict[str, tuple[x509.Certificate, ...]] = {}
        crl_files: list[tuple[str, Path]] = []
        for folder, code in jurisdictions.registered().format_codes().items():
            certs: list[x509.Certificate] = []
            for path in sorted((directory / folder).glob("*")):
                if path.name.endswith((".crl.pem", ".crl")):
                    crl_files.append((code, path))
                elif path.suffix == ".pem":
                    certs.extend(_read_anchor_file(path))
            anchors[code] = tuple(certs)
        trusted = cls(anchors)
        for code, path in crl_files:
            trusted.add_crl(code, _load_crl(path.read_bytes(), path.name))
        return trusted

    def jurisdictions(self) -> set[str]:
        return set(self.anchors)

    def sandbox_anchors(self) -> list[str]:
        """Subjects of anchors marked as sandbox material (production refuses them)."""
        return [
            cert.subject.rfc4514_string()
            for certs in self.anchors.values()
            for cert in certs
            if any(
                attr.value == SANDBOX_ORGANIZATION
                for attr in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
            )
        ]

    def is_empty(self) -> bool:
        return not self.anchors

    def add_crl(self, jurisdiction: str, crl: x509.CertificateRevocationList | bytes) -> None:
        """Add a revocation list; one issued by an anchor must verify against that anchor."""
        code = _jurisdiction(jurisdiction)
        if isinstance(crl, bytes):
            crl = _load_crl(crl, "the revocation list")
        issuers = [a for a in self.anchors.get(code, ()) if a.subject == crl.issuer]
        if issuers and all(signature_failure(crl, public_key_or_none(a)) for a in issuers):
            raise ConfigurationError(f"a {code} revocation list does not verify against its CA")
        self.crls.setdefault(code, []).append(crl)

    def validate_chain(
        self, jurisdiction: str, chain: Sequence[bytes] | bytes, at: datetime, *, agency_id: str
    ) -> ValidatedCertificate:
        """Validate a PEM chain (leaf first) at ``at`` for the agency ``agency_id``, which the
        leaf must name; CertificateError names what failed."""
        if at.tzinfo is None:
            raise ValueError("the validation time needs a time zone")
        try:
            code = jurisdictions.registered().parse_code(jurisdiction)
        except ValueError:
            raise CertificateError("unknown jurisdiction") from None
        if code not in self.anchors:
            raise CertificateError("no trust anchor for the jurisdiction")
        certs = _parse_chain(chain)
        foreign = [a for other, anchors in self.anchors.items() if other != code for a in anchors]
        try:
            path = build_path(certs, self.anchors[code], foreign)
            check_certificates(path, at, agency_id)
            check_revocation(path, self.crls.get(code, ()), at)
            leaf = path[0]
            public_key = leaf.public_key()
            alg = alg_for_public_key(public_key)  # type: ignore[arg-type]
        except PathRefused as refused:
            raise CertificateError(str(refused)) from None
        except (ValueError, UnsupportedAlgorithm):
            raise CertificateError("malformed certificate") from None
        return ValidatedCertificate(
            public_key=public_key,  # type: ignore[arg-type]
            alg=alg,
            subject=leaf.subject.rfc4514_string(),
            serial=leaf.serial_number,
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            fingerprint=leaf.fingerprint(hashes.SHA256()).hex(),
        )


def _read_anchor_file(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        raise ConfigurationError(f"trust anchor file {path.name} holds a private key")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigurationError(
            f"trust anchor file {path.name} is not a PEM certificate"
        ) from None
    for cert in certs:
        _check_anchor(cert, path.name)
    return certs


def _parse_chain(chain: Sequence[bytes] | bytes) -> list[x509.Certificate]:
    blobs = [chain] if isinstance(chain, bytes | bytearray) else list(chain)
    if not all(isinstance(blob, bytes | bytearray) for blob in blobs):
        raise CertificateError("malformed certificate")
    if sum(len(blob) for blob in blobs) > MAX_CHAIN_BYTES:
        raise CertificateError("chain too large")
    certs: list[x509.Certificate] = []
    for blob in blobs:
        if b"PRIVATE KEY" in blob:
            raise CertificateError("the chain holds a private key")
        try:
            certs.extend(x509.load_pem_x509_certificates(bytes(blob)))
        except ValueError:
            raise CertificateError("malformed certificate") from None
    if not certs:
        raise CertificateError("no certificate in the chain")
    if len(certs) > MAX_CHAIN_LENGTH:
        raise CertificateError("chain too long")
    return certs


def verification_key_from_certificate(
    owner: str, kid: str, validated: ValidatedCertificate, sandbox: bool = False
) -> VerificationKey:
    """A registered key valid for as long as its certificate is."""
    return VerificationKey(
        kid=kid,
        owner=owner,
        public_key=validated.public_key,
        alg=validated.alg,
        not_before=validated.not_before.astimezone(UTC),
        not_after=validated.not_after.astimezone(UTC),
        sandbox=sandbox,
    )
