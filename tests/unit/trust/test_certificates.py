"""Agency certificate chains against per-jurisdiction trust anchors, and the sandbox PKI.

Every certificate and key is generated in the test; no private key is ever a fixture file.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.domain.errors import ConfigurationError
from gateway.sandbox.pki import ROOT_CERT, ROOT_KEY, generate_test_pki, issue_agency_certificate
from gateway.trust.certificates import (
    CertificateError,
    TrustAnchors,
    ValidatedCertificate,
    verification_key_from_certificate,
)
from gateway.trust.certpath import AGENCY_URI_PREFIX
from gateway.trust.keys import PrivateKey

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: PrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _p256() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _issue(
    cn: str,
    issuer: Issued | None = None,
    *,
    key: PrivateKey | None = None,
    ca: bool | None = False,
    path_length: int | None = None,
    key_cert_sign: bool | None = None,
    digital_signature: bool = True,
    not_before: datetime = NOW - DAY,
    not_after: datetime = NOW + 30 * DAY,
    signer: PrivateKey | None = None,
    pss: bool = False,
    san_uris: list[str] | None = None,
    purposes: list[x509.ObjectIdentifier] | None = None,
) -> Issued:
    """A certificate for ``key`` (new P-256 by default), self-signed when ``issuer`` is None.

    A leaf (``ca=False``) names the agency ``cn`` (subjectAltName ``urn:gba:agency:<cn>``)
    unless ``san_uris`` says otherwise; ``purposes`` adds an extended key usage."""
    key = key or _p256()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca is not None:
        bc = x509.BasicConstraints(ca=ca, path_length=path_length if ca else None)
        builder = builder.add_extension(bc, critical=True)
    cert_sign = bool(ca) if key_cert_sign is None else key_cert_sign
    usage = x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
    builder = builder.add_extension(usage, critical=True)
    if san_uris is None and ca is False:
        san_uris = [AGENCY_URI_PREFIX + cn]
    if san_uris:
        names = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in san_uris])
        builder = builder.add_extension(names, critical=False)
    if purposes is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
    signer = signer or (issuer.key if issuer else key)
    digest = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    extra = {"rsa_padding": padding.PSS(padding.MGF1(hashes.SHA256()), 32)} if pss else {}
    return Issued(builder.sign(signer, digest, **extra), key)  # type: ignore[arg-type]


def _root(cn: str, **kwargs: object) -> Issued:
    return _issue(cn, ca=True, digital_signature=False, **kwargs)  # type: ignore[arg-type]


def _intermediate(cn: str, issuer: Issued, **kwargs: object) -> Issued:
    return _issue(cn, issuer, ca=True, digital_signature=False, **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Pki:
    directory: Path
    roots: dict[str, Issued]

    def anchors(self) -> TrustAnchors:
        return TrustAnchors.load(self.directory)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    roots = {}
    for folder, code in (("hk", "HK"), ("macau", "MO"), ("guangdong", "GD")):
        roots[code] = _root(f"Test {code} Root CA")
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "root.pem").write_bytes(roots[code].pem)
    return Pki(tmp_path, roots)


def _refused(
    anchors: TrustAnchors, chain: list[bytes], code: str = "HK", agency_id: str = "agency-a"
) -> str:
    with pytest.raises(CertificateError) as refused:
        anchors.validate_chain(code, chain, NOW, agency_id=agency_id)
    assert refused.value.status == 422
    return refused.value.detail


def test_a_leaf_issued_by_the_root_validates(pki: Pki) -> None:
    leaf = _issue("agency-a", pki.roots["HK"])

    validated = pki.anchors().validate_chain("HK", [leaf.pem], NOW, agency_id="agency-a")

    assert validated.alg == "ecdsa-p256-sha256"
    assert validated.public_key == leaf.key.public_key()
    assert validated.subject == "CN=agency-a"
    assert validated.serial == leaf.cert.serial_number
    assert validated.not_before == leaf.cert.not_valid_before_utc
    assert validated.not_after == leaf.cert.not_valid_after_utc
    assert validated.fingerprint == leaf.cert.fingerprint(hashes.SHA256()).hex()
    assert pki.anchors().jurisdictions() == {"HK", "MO", "GD"}


@pytest.mark.parametrize(
    ("make_key", "alg"),
    [
        (_p256, "ecdsa-p256-sha256"),
        (ed25519.Ed25519PrivateKey.generate, "ed25519"),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa-pss-sha512"),
    ],
    ids=["p256", "ed25519", "rsa2048"],
)
def test_the_leaf_key_type_gives_its_algorithm(pki: Pki, make_key: object, alg: str) -> None:
    leaf = _issue("agency-a", pki.roots["MO"], key=make_key())  # type: ignore[operator]

    validated = pki.anchors().validate_chain("mo", [leaf.pem], NOW, agency_id="agency-a")

    assert validated.alg == alg
    assert type(validated.public_key) is type(leaf.key.public_key())


@pytest.mark.parametrize(
    ("ca_key", "pss"),
    [
        (_p256, False),
        (ed25519.Ed25519PrivateKey.generate, False),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), False),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), True),
    ],
    ids=["ecdsa", "ed25519", "rsa-pkcs1", "rsa-pss"],
)
def test_a_chain_through_one_intermediate_validates(pki: Pki, ca_key: object, pss: bool) -> None:
    sub = _intermediate("HK Sub CA", pki.roots["HK"], key=ca_key())  # type: ignore[operator]
    leaf = _issue("agency-a", sub, pss=pss)

    separate = pki.anchors().validate_chain("HK", [leaf.pem, sub.pem], NOW, agency_id="agency-a")
    one_blob = pki.anchors().validate_chain(
        "HK", leaf.pem + sub.pem + pki.roots["HK"].pem, NOW, agency_id="agency-a"
    )

    assert separate == one_blob
    assert separate.subject == "CN=agency-a"


def test_an_expired_leaf_is_refused(pki: Pki) -> None:
    leaf = _issue("agency-a", pki.roots["HK"], not_after=NOW - timedelta(seconds=1))

    assert _refused(pki.anchors(), [leaf.pem]) == "leaf certificate expired"


def test_a_leaf_not_yet_valid_is_refused(pki: Pki) -> None:
    leaf = _issue("agency-a", pki.roots["HK"], not_before=NOW + timedelta(minutes=1))

    assert _refused(pki.anchors(), [leaf.pem]) == "leaf certificate not yet valid"


def test_an_expired_intermediate_is_refused(pki: Pki) -> None:
    sub = _intermediate("HK Sub CA", pki.roots["HK"], not_after=NOW - DAY)
    leaf = _issue("agency-a", sub)

    assert _refused(pki.anchors(), [leaf.pem, sub.pem]) == "intermediate certificate expired"


def test_a_leaf_of_an_untrusted_ca_is_refused(pki: Pki) -> None:
    rogue = _root("Rogue Root CA")
    leaf = _issue("agency-a", rogue)

    assert _refused(pki.anchors(), [leaf.pem]) == "issuer not trusted"
    assert _refused(pki.anchors(), [leaf.pem, rogue.pem]) == "issuer not trusted"


def test_a_chain_ending_at_another_jurisdictions_anchor_is_refused(pki: Pki) -> None:
    leaf = _issue("agency-a", pki.roots["GD"])
    anchors = pki.anchors()

    assert (
        anchors.validate_chain("GD", [leaf.pem], NOW, agency_id="agency-a").subject == "CN=agency-a"
    )
    assert _refused(anchors, [leaf.pem], "HK") == "chain ends at another jurisdiction's anchor"
    assert (
        _refused(anchors, [leaf.pem, pki.roots["GD"].pem], "MO")
        == "chain ends at another jurisdiction's anchor"
    )


def test_an_intermediate_without_the_ca_flag_is_refused(pki: Pki) -> None:
    sub = _issue("HK Sub CA", pki.roots["HK"], ca=False, key_cert_sign=True)
    leaf = _issue("agency-a", sub)

    assert _refused(pki.anchors(), [leaf.pem, sub.pem]) == "intermediate is not a CA certificate"


def test_an_intermediate_without_key_cert_sign_is_refused(pki: Pki) -> None:
    sub = _intermediate("HK Sub CA", pki.roots["HK"], key_cert_sign=False)
    leaf = _issue("agency-a", sub)

    detail = _refused(pki.anchors(), [leaf.pem, sub.pem])

    assert detail == "intermediate lacks the keyCertSign key usage"


def test_a_path_length_constraint_is_enforced(tmp_path: Path) -> None:
    root = _root("Test HK Root CA", path_length=0)
    (tmp_path / "hk").mkdir()
    (tmp_path / "hk" / "root.pem").write_bytes(root.pem)
    sub = _intermediate("HK Sub CA", root)
    leaf = _issue("agency-a", sub)

    detail = _refused(TrustAnchors.load(tmp_path), [leaf.pem, sub.pem])

    assert detail == "path length constraint exceeded"


def test_a_leaf_without_digital_signature_is_refused(pki: Pki) -> None:
    leaf = _issue("agency-a", pki.roots["HK"], digital_signature=False)

    assert _refused(pki.anchors(), [leaf.pem]) == "leaf lacks the digitalSignature key usage"


def test_a_leaf_that_is_a_ca_is_refused(pki: Pki) -> None:
    leaf = _issue("agency-a", pki.roots["HK"], ca=True)

    assert _refused(pki.anchors(), [leaf.pem]) == "leaf is a CA certificate"
    assert _refused(pki.anchors(), [pki.roots["HK"].pem]) == "leaf is a CA certificate"


def test_a_tampered_certificate_is_refused(pki: Pki) -> None:
    leaf = _issue("agency-a", pki.roots["HK"], san_uris=[AGENCY_URI_PREFIX + "agency-x"])
    der = leaf.cert.public_bytes(serialization.Encoding.DER)
    assert der.count(b"agency-x") == 1
    tampered = x509.load_der_x509_certificate(der.replace(b"agency-x", b"agency-a"))

    detail = _refused(pki.anchors(), [tampered.public_bytes(serialization.Encoding.PEM)])

    assert detail == "signature does not verify"


def test_a_leaf_signed_with_another_key_than_its_issuers_is_refused(pki: Pki) -> None:
    leaf = _issue("agency-a", pki.roots["HK"], signer=_p256())

    assert _refused(pki.anchors(), [leaf.pem]) == "signature does not verify"


def test_a_weak_signature_algorithm_is_refused(pki: Pki) -> None:
    rsa_root = _root(
        "RSA Root CA", key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    (pki.directory / "hk" / "rsa-root.pem").write_bytes(rsa_root.pem)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agency-a")])
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(rsa_root.cert.subject)
        .public_key(_p256().public_key())
        .serial_number(7)
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + DAY)
        .sign(rsa_root.key, hashes.SHA224())  # type: ignore[arg-type]
    )

    detail = _refused(pki.anchors(), [leaf.public_bytes(serialization.Encoding.PEM)])

    assert detail == "signature algorithm not allowed"


def _crl(issuer: Issued, *serials: int, signer: PrivateKey | None = None) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(NOW - DAY)
        .next_update(NOW + DAY)
    )
    for serial in serials:
        revoked = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW - DAY)
        builder = builder.add_revoked_certificate(revoked.build())
    signed = builder.sign(signer or issuer.key, hashes.SHA256())  # type: ignore[arg-type]
    return signed.public_bytes(serialization.Encoding.PEM)


def test_a_leaf_listed_by_its_roots_revocation_list_is_refused(pki: Pki) -> None:
    leaf = _issue("agency-a", pki.roots["HK"])
    other = _issue("agency-b", pki.roots["HK"])
    (pki.directory / "hk" / "root.crl.pem").write_bytes(
        _crl(pki.roots["HK"], leaf.cert.serial_number)
    )
    anchors = pki.anchors()

    assert _refused(anchors, [leaf.pem]) == "revoked"
    assert (
        anchors.validate_chain("HK", [other.pem], NOW, agency_id="agency-b").subject
        == "CN=agency-b"
    )


def test_revocation_by_an_intermediate_and_of_an_intermediate(pki: Pki) -> None:
    sub = _intermediate("HK Sub CA", pki.roots["HK"])
    leaf = _issue("agency-a", sub)
    by_sub, of_sub = pki.anchors(), pki.anchors()
    by_sub.add_crl("HK", _crl(sub, leaf.cert.serial_number))
    of_sub.add_crl("HK", _crl(pki.roots["HK"], sub.cert.serial_number))

    assert _refused(by_sub, [leaf.pem, sub.pem]) == "revoked"
    assert _refused(of_sub, [leaf.pem, sub.pem]) == "revoked"


def test_a_revocation_list_that_does_not_verify_is_not_loaded(pki: Pki) -> None:
    forged = _crl(pki.roots["HK"], 1, signer=_p256())
    (pki.directory / "hk" / "root.crl").write_bytes(forged)

    with pytest.raises(ConfigurationError, match="revocation list"):
        pki.anchors()


def test_an_intermediates_unverifiable_revocation_list_refuses_the_chain(pki: Pki) -> None:
    sub = _intermediate("HK Sub CA", pki.roots["HK"])
    leaf = _issue("agency-a", sub)
    anchors = pki.anchors()
    anchors.add_crl("HK", _crl(sub, 1, signer=_p256()))

    assert _refused(anchors, [leaf.pem, sub.pem]) == "revocation list signature does not verify"


@pytest.mark.parametrize(
    "garbage",
    [b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
    ids=["empty", "text", "bad-base64-der"],
)
def test_garbage_pem_is_refused(pki: Pki, garbage: bytes) -> None:
    assert _refused(pki.anchors(), [garbage]) == "malformed certificate"


def test_a_chain_with_a_private_key_is_refused(pki: Pki) -> None:
    leaf = _issue("agency-a", pki.roots["HK"])
    key_pem = leaf.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )

    assert _refused(pki.anchors(), [leaf.pem + key_pem]) == "the chain holds a private key"


def test_a_chain_longer_than_five_certificates_is_refused(pki: Pki) -> None:
    cas = [pki.roots["HK"]]
    for depth in range(4):
        cas.append(_intermediate(f"HK Sub CA {depth}", cas[-1]))
    leaf = _issue("agency-a", cas[-1])
    anchors = pki.anchors()
    four_deep = _issue("agency-b", cas[3])

    assert _refused(anchors, [leaf.pem, *(ca.pem for ca in reversed(cas[1:]))]) == "chain too long"
    assert _refused(anchors, [leaf.pem, *(ca.pem for ca in cas)]) == "chain too long"
    assert anchors.validate_chain(
        "HK", [four_deep.pem, *(c.pem for c in cas[1:4])], NOW, agency_id="agency-b"
    )


def test_an_rsa_1024_leaf_key_is_refused(pki: Pki) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (on purpose)
    leaf = _issue("agency-a", pki.roots["HK"], key=weak)

    assert _refused(pki.anchors(), [leaf.pem]) == "leaf key type not allowed"


def test_an_unknown_jurisdiction_or_one_without_anchors_is_refused(tmp_path: Path) -> None:
    root = _root("Test HK Root CA")
    (tmp_path / "hk").mkdir()
    (tmp_path / "hk" / "root.pem").write_bytes(root.pem)
    leaf = _issue("agency-a", root)
    anchors = TrustAnchors.load(tmp_path)

    assert anchors.jurisdictions() == {"HK"}
    assert _refused(anchors, [leaf.pem], "TW") == "unknown jurisdiction"
    assert _refused(anchors, [leaf.pem], "MO") == "no trust anchor for the jurisdiction"
    assert TrustAnchors.load(tmp_path / "hk").is_empty()


@pytest.mark.parametrize(
    "anchor",
    [
        lambda: _issue("Sub CA", _root("Root CA"), ca=True),  # CA, but not self-signed
        lambda: _issue("Self-signed leaf", ca=False),  # self-signed, but not a CA
        lambda: _issue("No constraints", ca=None, key_cert_sign=True),
    ],
    ids=["not-self-signed", "not-a-ca", "no-basic-constraints"],
)
def test_loading_refuses_an_anchor_that_is_not_a_self_signed_ca(
    tmp_path: Path, anchor: object
) -> None:
    (tmp_path / "macau").mkdir()
    (tmp_path / "macau" / "odd-anchor.pem").write_bytes(anchor().pem)  # type: ignore[operator]

    with pytest.raises(ConfigurationError, match=r"odd-anchor\.pem"):
        TrustAnchors.load(tmp_path)


def test_a_verification_key_takes_the_certificates_validity(pki: Pki) -> None:
    leaf = _issue("agency-a", pki.roots["HK"], key=ed25519.Ed25519PrivateKey.generate())
    validated = pki.anchors().validate_chain("HK", [leaf.pem], NOW, agency_id="agency-a")

    key = verification_key_from_certificate("hk-ird", "hk-ird-1", validated, sandbox=True)

    assert (key.owner, key.kid, key.alg, key.sandbox) == ("hk-ird", "hk-ird-1", "ed25519", True)
    assert (key.not_before, key.not_after) == (validated.not_before, validated.not_after)
    assert key.valid_at(NOW)
    assert not key.valid_at(NOW + 31 * DAY)


def test_the_sandbox_pki_is_generated_once_with_private_keys(tmp_path: Path) -> None:
    first = generate_test_pki(tmp_path / "pki")
    second = generate_test_pki(tmp_path / "pki")

    assert first.certificates == second.certificates
    for folder, code in (("hk", "HK"), ("macau", "MO"), ("guangdong", "GD")):
        key_file = tmp_path / "pki" / folder / ROOT_KEY
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert (tmp_path / "pki" / folder / ROOT_CERT).read_bytes() == first.certificate_pem(code)
        subject = first.certificates[code].subject.rfc4514_string()
        assert f"CN=GBA Sandbox {code} Root CA" in subject
        assert "O=GBA sandbox" in subject


def test_a_sandbox_agency_certificate_validates_for_its_jurisdiction_only(tmp_path: Path) -> None:
    pki = generate_test_pki(tmp_path)
    agency_key = ed25519.Ed25519PrivateKey.generate()
    pem = issue_agency_certificate(pki, "MO", "mo-dsf", agency_key.public_key(), days=30)
    anchors = TrustAnchors.load(tmp_path)
    now = datetime.now(UTC)

    validated = anchors.validate_chain("MO", [pem], now, agency_id="mo-dsf")

    assert isinstance(validated, ValidatedCertificate)
    assert validated.subject == "CN=mo-dsf,O=GBA sandbox"
    assert validated.alg == "ed25519"
    assert validated.not_after <= now + timedelta(days=30)
    with pytest.raises(CertificateError, match="another jurisdiction"):
        anchors.validate_chain("GD", [pem], now, agency_id="mo-dsf")


# --- the leaf names its agency and may sign for it (issue 13) ---------------------------------


@pytest.mark.parametrize(
    ("san_uris", "detail"),
    [
        ([], "leaf does not name the agency (subjectAltName urn:gba:agency:)"),
        (
            ["https://agency-a.example"],
            "leaf does not name the agency (subjectAltName urn:gba:agency:)",
        ),
        (
            [AGENCY_URI_PREFIX + "agency-b"],
            "leaf does not name the agency (subjectAltName urn:gba:agency:)",
        ),
        (
            [AGENCY_URI_PREFIX + "agency-a-2"],
            "leaf does not name the agency (subjectAltName urn:gba:agency:)",
        ),
        (
            [AGENCY_URI_PREFIX + "AGENCY-A"],
            "leaf does not name the agency (subjectAltName urn:gba:agency:)",
        ),
        (
            [AGENCY_URI_PREFIX + "agency-a", AGENCY_URI_PREFIX + "agency-b"],
            "leaf names more than one agency",
        ),
    ],
    ids=["no-uri", "other-uri", "other-agency", "prefix-of-id", "case", "two-agencies"],
)
def test_a_leaf_that_does_not_name_exactly_its_agency_is_refused(
    pki: Pki, san_uris: list[str], detail: str
) -> None:
    leaf = _issue("agency-a", pki.roots["HK"], san_uris=san_uris)  # CN=agency-a does not count

    assert _refused(pki.anchors(), [leaf.pem]) == detail


def test_a_leaf_validates_only_for_the_agency_it_names(pki: Pki) -> None:
    leaf = _issue("agency-a", pki.roots["HK"])
    anchors = pki.anchors()

    assert anchors.validate_chain("HK", [leaf.pem], NOW, agency_id="agency-a")
    assert _refused(anchors, [leaf.pem], agency_id="agency-b").startswith("leaf does not name")


@pytest.mark.parametrize(
    ("purposes", "accepted"),
    [
        ([ExtendedKeyUsageOID.CLIENT_AUTH], True),
        ([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], True),
        ([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE], True),
        ([ExtendedKeyUsageOID.SERVER_AUTH], False),
        ([ExtendedKeyUsageOID.CODE_SIGNING], False),
        ([ExtendedKeyUsageOID.OCSP_SIGNING], False),
    ],
    ids=["client", "server-and-client", "any", "server-only", "code-signing", "ocsp-signing"],
)
def test_an_extended_key_usage_must_allow_client_auth(
    pki: Pki, purposes: list[x509.ObjectIdentifier], accepted: bool
) -> None:
    leaf = _issue("agency-a", pki.roots["HK"], purposes=purposes)
    if accepted:
        assert pki.anchors().validate_chain("HK", [leaf.pem], NOW, agency_id="agency-a")
    else:
        assert _refused(pki.anchors(), [leaf.pem]) == (
            "leaf extended key usage does not allow clientAuth"
        )


def test_a_leaf_whose_key_usage_allows_certificate_signing_is_refused(pki: Pki) -> None:
    leaf = _issue("agency-a", pki.roots["HK"], key_cert_sign=True)

    assert _refused(pki.anchors(), [leaf.pem]) == (
        "leaf key usage allows signing certificates or revocation lists"
    )


def _stale_crl(issuer: Issued, next_update: datetime) -> bytes:
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(next_update - 7 * DAY)
        .next_update(next_update)
        .sign(issuer.key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return crl.public_bytes(serialization.Encoding.PEM)


def test_a_revocation_list_past_its_next_update_refuses_the_chains_it_covers(pki: Pki) -> None:
    """Out of date counts as unavailable: fail closed, as for a list that does not verify."""
    leaf = _issue("agency-a", pki.roots["HK"])
    (pki.directory / "hk" / "root.crl.pem").write_bytes(
        _stale_crl(pki.roots["HK"], NOW - timedelta(seconds=1))
    )
    anchors = pki.anchors()  # it loads (it verifies); it refuses the chains it covers
    moment_before = NOW - timedelta(seconds=2)
    not_yet_stale = _issue("agency-a", pki.roots["HK"], not_before=moment_before - DAY)

    assert _refused(anchors, [leaf.pem]) == "revocation list out of date (past its nextUpdate)"
    assert anchors.validate_chain("HK", [not_yet_stale.pem], moment_before, agency_id="agency-a")
    other = _issue("agency-a", pki.roots["MO"])  # another issuer's chain is not concerned
    assert anchors.validate_chain("MO", [other.pem], NOW, agency_id="agency-a")


def test_an_intermediates_out_of_date_revocation_list_refuses_the_chain(pki: Pki) -> None:
    sub = _intermediate("HK Sub CA", pki.roots["HK"])
    leaf = _issue("agency-a", sub)
    anchors = pki.anchors()
    anchors.add_crl("HK", _stale_crl(sub, NOW - DAY))

    detail = _refused(anchors, [leaf.pem, sub.pem])

    assert detail == "revocation list out of date (past its nextUpdate)"


def test_a_sandbox_agency_certificate_names_its_agency_and_allows_client_auth(
    tmp_path: Path,
) -> None:
    pki = generate_test_pki(tmp_path)
    agency_key = _p256()
    pem = issue_agency_certificate(pki, "HK", "hk-ird", agency_key.public_key())
    cert = x509.load_pem_x509_certificate(pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    purposes = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    anchors = TrustAnchors.load(tmp_path)
    now = datetime.now(UTC)

    assert names.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:gba:agency:hk-ird"]
    assert list(purposes) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert anchors.validate_chain("HK", [pem], now, agency_id="hk-ird").subject.startswith(
        "CN=hk-ird"
    )
    with pytest.raises(CertificateError, match="does not name the agency"):
        anchors.validate_chain("HK", [pem], now, agency_id="hk-other")
