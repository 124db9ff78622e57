"""Certification path checks behind ``gateway.trust.certificates``.

Three steps, each raising :class:`PathRefused` with a short detail naming the failed check:
:func:`build_path` chains the presented certificates by name and signature up to an anchor,
:func:`check_certificates` checks validity periods, constraints and key usage along the path
(and that the leaf names the agency it is registered for), and :func:`check_revocation` looks
each certificate up in its issuer's revocation lists, refusing one that is out of date.

The leaf of an agency certificate names the agency as a subjectAltName URI
``urn:gba:agency:<agency_id>`` (exactly one such URI), carries ``digitalSignature`` but
neither ``keyCertSign`` nor ``cRLSign``, and, when it has an extended key usage, allows
``clientAuth`` (or ``anyExtendedKeyUsage``): the agency's key authenticates it to the gateway.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import pairwise

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID

from gateway.trust.keys import KeyMisuseError, alg_for_public_key

MAX_CHAIN_LENGTH = 5  # certificates in a path, leaf and anchor included
AGENCY_URI_PREFIX = "urn:gba:agency:"  # + the agency id: the leaf's subjectAltName URI
_SIGNING_PURPOSES = frozenset(
    {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
)

_RSA_PKCS1 = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
    }
)
_RSA_OIDS = _RSA_PKCS1 | {SignatureAlgorithmOID.RSASSA_PSS}
_RSA_DIGESTS = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_UNDERSTOOD = frozenset(
    cls.oid
    for cls in (
        x509.BasicConstraints,
        x509.KeyUsage,
        x509.ExtendedKeyUsage,
        x509.SubjectAlternativeName,
        x509.SubjectKeyIdentifier,
        x509.AuthorityKeyIdentifier,
    )
)

Signed = x509.Certificate | x509.CertificateRevocationList


class PathRefused(Exception):
    """A check failed; the message is the detail shown to the caller (no names, no data)."""


def public_key_or_none(cert: x509.Certificate) -> object:
    """The certificate's key, or None when cryptography does not support its type."""
    try:
        return cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return None


def signature_failure(signed: Signed, key: object) -> str | None:
    """Why ``key`` does not verify ``signed`` with an allowed algorithm; None if it does."""
    if isinstance(signed, x509.Certificate):
        data = signed.tbs_certificate_bytes
    else:
        data = signed.tbs_certlist_bytes
    oid, signature = signed.signature_algorithm_oid, signed.signature
    try:
        if oid == SignatureAlgorithmOID.ED25519 and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif (
            oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
            and isinstance(key, ec.EllipticCurvePublicKey)
            and isinstance(key.curve, ec.SECP256R1)
        ):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif oid in _RSA_OIDS and isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
            digest = signed.signature_hash_algorithm
            if not isinstance(digest, _RSA_DIGESTS):
                return "signature algorithm not allowed"
            # PSS is verified with MGF1 over the signature's own hash, whatever salt length.
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if oid in _RSA_PKCS1
                else padding.PSS(padding.MGF1(digest), padding.PSS.AUTO)
            )
            key.verify(signature, data, pad, digest)
        else:
            return "signature algorithm not allowed"
    except InvalidSignature:
        return "signature does not verify"
    except UnsupportedAlgorithm:
        return "signature algorithm not allowed"
    return None


def _issuer_among(
    cert: x509.Certificate, candidates: Iterable[x509.Certificate]
) -> tuple[x509.Certificate | None, str | None]:
    """The first candidate named as ``cert``'s issuer whose key verifies it, else why not."""
    failure = None
    for candidate in candidates:
        if candidate.subject == cert.issuer:
            failure = signature_failure(cert, public_key_or_none(candidate))
            if failure is None:
                return candidate, None
    return None, failure


def build_path(
    certs: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    foreign_anchors: Sequence[x509.Certificate],
) -> list[x509.Certificate]:
    """Leaf, intermediates and anchor: ``certs[0]`` chained up to one of ``anchors``.

    The other presented certificates may come in any order; each is used at most once, and a
    self-signed one among them is never trusted for being presented.
    """
    path, pool = [certs[0]], list(certs[1:])
    while True:
        current = path[-1]
        anchor, anchor_failure = _issuer_among(current, anchors)
        if anchor is not None:
            if len(path) + 1 > MAX_CHAIN_LENGTH:
                raise PathRefused("chain too long")
            return [*path, anchor]
        issuer, failure = _issuer_among(current, pool)
        if issuer is None:
            if anchor_failure or failure:
                raise PathRefused(anchor_failure or failure)
            if _issuer_among(current, foreign_anchors)[0] is not None:
                raise PathRefused("chain ends at another jurisdiction's anchor")
            raise PathRefused("issuer not trusted")
        if len(path) + 2 > MAX_CHAIN_LENGTH:  # this issuer and, above it, an anchor
            raise PathRefused("chain too long")
        pool.remove(issuer)
        path.append(issuer)


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _check_leaf(leaf: x509.Certificate, agency_id: str) -> None:
    constraints = _extension(leaf, x509.BasicConstraints)
    if isinstance(constraints, x509.BasicConstraints) and constraints.ca:
        raise PathRefused("leaf is a CA certificate")
    usage = _extension(leaf, x509.KeyUsage)
    if not isinstance(usage, x509.KeyUsage) or not usage.digital_signature:
        raise PathRefused("leaf lacks the digitalSignature key usage")
    if usage.key_cert_sign or usage.crl_sign:
        raise PathRefused("leaf key usage allows signing certificates or revocation lists")
    purposes = _extension(leaf, x509.ExtendedKeyUsage)
    if isinstance(purposes, x509.ExtendedKeyUsage) and not _SIGNING_PURPOSES & set(purposes):
        raise PathRefused("leaf extended key usage does not allow clientAuth")
    _check_agency(leaf, agency_id)
    try:
        alg_for_public_key(leaf.public_key())  # type: ignore[arg-type]
    except (KeyMisuseError, UnsupportedAlgorithm):
        raise PathRefused("leaf key type not allowed") from None


def _check_agency(leaf: x509.Certificate, agency_id: str) -> None:
    """The leaf names exactly one agency, as a subjectAltName URI, and it is ``agency_id``."""
    names = _extension(leaf, x509.SubjectAlternativeName)
    uris = (
        names.get_values_for_type(x509.UniformResourceIdentifier)
        if isinstance(names, x509.SubjectAlternativeName)
        else []
    )
    named = {uri[len(AGENCY_URI_PREFIX) :] for uri in uris if uri.startswith(AGENCY_URI_PREFIX)}
    if agency_id not in named:
        raise PathRefused("leaf does not name the agency (subjectAltName urn:gba:agency:)")
    if len(named) > 1:
        raise PathRefused("leaf names more than one agency")


def check_issuer(cert: x509.Certificate, role: str, below: int, anchor: bool) -> None:
    """An issuer with ``below`` intermediates between it and the leaf."""
    constraints = _extension(cert, x509.BasicConstraints)
    if not isinstance(constraints, x509.BasicConstraints) or not constraints.ca:
        raise PathRefused(f"{role} is not a CA certificate")
    if constraints.path_length is not None and below > constraints.path_length:
        raise PathRefused("path length constraint exceeded")
    usage = _extension(cert, x509.KeyUsage)
    if usage is None and anchor:
        return  # RFC 5280 lets a trust anchor omit keyUsage
    if not isinstance(usage, x509.KeyUsage) or not usage.key_cert_sign:
        raise PathRefused(f"{role} lacks the keyCertSign key usage")


def check_certificates(path: Sequence[x509.Certificate], at: datetime, agency_id: str) -> None:
    """Validity at ``at``, critical extensions, constraints and key usage along ``path``;
    the leaf must name ``agency_id``."""
    last = len(path) - 1
    for index, cert in enumerate(path):
        role = "leaf" if index == 0 else "anchor" if index == last else "intermediate"
        if at < cert.not_valid_before_utc:
            raise PathRefused(f"{role} certificate not yet valid")
        if at > cert.not_valid_after_utc:
            raise PathRefused(f"{role} certificate expired")
        if any(ext.critical and ext.oid not in _UNDERSTOOD for ext in cert.extensions):
            raise PathRefused(f"{role} has an unsupported critical extension")
        if index == 0:
            _check_leaf(cert, agency_id)
        else:
            check_issuer(cert, role, index - 1, anchor=index == last)


def check_revocation(
    path: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    at: datetime,
) -> None:
    """Refuse a certificate listed by a revocation list of its issuer in the path.

    A list of an issuer in the path that does not verify, or that is out of date at ``at``
    (past its ``nextUpdate``, or without one), refuses the chain: revocation fails closed.
    """
    for cert, issuer in pairwise(path):
        for crl in crls:
            if crl.issuer != issuer.subject:
                continue
            if signature_failure(crl, public_key_or_none(issuer)) is not None:
                raise PathRefused("revocation list signature does not verify")
            if crl.next_update_utc is None or at > crl.next_update_utc:
                raise PathRefused("revocation list out of date (past its nextUpdate)")
            if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
                raise PathRefused("revoked")
