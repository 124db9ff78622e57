"""A sandbox PKI generated at run time: one root CA per jurisdiction, never committed.

``generate_test_pki(directory)`` lays the roots out as a trust anchor folder
(``<directory>/hk/sandbox-root.pem`` and so on, readable by ``TrustAnchors.load``) with each
root's private key beside it as ``sandbox-root.key`` (mode 0600; ``*.key`` is git-ignored).
It reuses what is already there. ``issue_agency_certificate`` then issues agency signing
certificates under a root so that sandbox users can register keys as X.509 chains; each names
its agency as the gateway requires (subjectAltName ``urn:gba:agency:<agency_id>``, key usage
``digitalSignature``, extended key usage ``clientAuth``). Every name says "sandbox": none of
this material is fit for production.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway import jurisdictions
from gateway.domain.errors import ConfigurationError
from gateway.trust.certificates import SANDBOX_ORGANIZATION
from gateway.trust.certpath import AGENCY_URI_PREFIX
from gateway.trust.keys import PublicKey, alg_for_public_key, load_private_key, private_key_pem
from gateway.trust.keystore import write_private

ROOT_CERT = "sandbox-root.pem"
ROOT_KEY = "sandbox-root.key"
ROOT_DAYS = 3650
SANDBOX_UNIT = "Sandbox test material, not for production"


@dataclass(frozen=True, slots=True)
class TestPki:
    """The sandbox root CAs: certificate and private key per jurisdiction code."""

    __test__ = False  # not a pytest test class, whatever its name

    directory: Path
    certificates: Mapping[str, x509.Certificate]
    keys: Mapping[str, ec.EllipticCurvePrivateKey]

    def certificate_pem(self, jurisdiction: str) -> bytes:
        code = jurisdictions.registered().parse_code(jurisdiction)
        return self.certificates[code].public_bytes(serialization.Encoding.PEM)


def _usage(*, digital_signature: bool = False, ca: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _root_certificate(code: str, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, SANDBOX_ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, SANDBOX_UNIT),
            x509.NameAttribute(NameOID.COMMON_NAME, f"GBA Sandbox {code} Root CA"),
        ]
    )
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=ROOT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _existing_key(path: Path) -> ec.EllipticCurvePrivateKey | None:
    if not path.exists():
        return None
    try:
        key = load_private_key(path)
    except ValueError as exc:
        raise ConfigurationError(f"cannot load the sandbox CA key {path}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigurationError(f"the sandbox CA key {path} is not an EC P-256 key")
    return key


def _existing_root(path: Path, key: ec.EllipticCurvePrivateKey) -> x509.Certificate | None:
    """The root certificate on disk if it belongs to ``key`` and is valid now."""
    if not path.exists():
        return None
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        return None
    now = datetime.now(UTC)
    if cert.public_key() != key.public_key() or not (
        cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
    ):
        return None
    return cert


def generate_test_pki(directory: Path) -> TestPki:
    """Create (or reuse) a sandbox root CA for each jurisdiction under ``directory``."""
    certificates: dict[str, x509.Certificate] = {}
    keys: dict[str, ec.EllipticCurvePrivateKey] = {}
    for jurisdiction in jurisdictions.registered():
        code, folder = jurisdiction.code, directory / jurisdiction.format
        folder.mkdir(parents=True, exist_ok=True)
        key = _existing_key(folder / ROOT_KEY)
        if key is None:
            key = ec.generate_private_key(ec.SECP256R1())
            write_private(folder / ROOT_KEY, private_key_pem(key))
        cert = _existing_root(folder / ROOT_CERT, key)
        if cert is None:
            cert = _root_certificate(code, key)
            (folder / ROOT_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        certificates[code], keys[code] = cert, key
    return TestPki(directory, certificates, keys)


def issue_agency_certificate(
    pki: TestPki, jurisdiction: str, agency_id: str, public_key: PublicKey, *, days: int = 365
) -> bytes:
    """A PEM signing certificate for ``public_key``, issued by the jurisdiction's sandbox root."""
    alg_for_public_key(public_key)  # KeyMisuseError for a key the gateway would not accept
    code = jurisdictions.registered().parse_code(jurisdiction)
    issuer, issuer_key = pki.certificates[code], pki.keys[code]
    now = datetime.now(UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, SANDBOX_ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, agency_id),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + timedelta(days=days), issuer.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(digital_signature=True), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(AGENCY_URI_PREFIX + agency_id)]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)
