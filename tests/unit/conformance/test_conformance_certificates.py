"""``gba-gateway conformance certificate``: a partner's e-certificate judged as the decision
route would judge it, check by check."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway import cli
from gateway.conformance.certificates import CertificateVerdict, judge_certificate
from gateway.conformance.credentials import PartnerKeys
from gateway.trust.e_certificates import sign_certificate, sign_document
from gateway.trust.keys import SigningKey, generate_private_key, public_jwk

NOW = datetime(2026, 9, 22, 2, 0, tzinfo=UTC)
AGENCY = "tester-agency"
PDF = b"%PDF-1.7\n%%EOF\n"


def _key(alg: str = "ed25519", kid: str = "tester-1") -> SigningKey:
    return SigningKey(kid, generate_private_key(alg), alg)


def _keys(*keys: SigningKey) -> PartnerKeys:
    return PartnerKeys({k.kid: k.public for k in keys}, "test")


def _claims(iss: str = AGENCY) -> dict[str, object]:
    return {"iss": iss, "iat": int(NOW.timestamp()), "jti": "j1", "sub": "application:app_1"}


def _outcomes(verdicts: list[CertificateVerdict]) -> dict[str, str]:
    return {v.id: v.outcome for v in verdicts}


def test_a_good_certificate_passes_every_check() -> None:
    key = _key()
    token = sign_certificate(key, _claims()).encode()
    verdicts = judge_certificate(token, _keys(key), AGENCY, now=lambda: NOW)
    assert _outcomes(verdicts) == {
        "certificate-key": "pass",
        "certificate-form": "pass",
        "certificate-signature": "pass",
        "certificate-issuer": "pass",
    }


def test_another_issuer_or_another_key_fails_its_check() -> None:
    key = _key()
    wrong_iss = sign_certificate(key, _claims("someone-else")).encode()
    assert (
        _outcomes(judge_certificate(wrong_iss, _keys(key), AGENCY, now=lambda: NOW))[
            "certificate-issuer"
        ]
        == "fail"
    )
    forged = sign_certificate(_key(), _claims()).encode()  # same kid, another key
    outcomes = _outcomes(judge_certificate(forged, _keys(key), AGENCY, now=lambda: NOW))
    assert (outcomes["certificate-signature"], outcomes["certificate-issuer"]) == ("fail", "skip")


def test_an_rsa_only_partner_cannot_sign_certificates() -> None:
    rsa = _key("rsa-pss-sha512", "rsa-1")
    token = sign_certificate(_key(), _claims()).encode()
    outcomes = _outcomes(judge_certificate(token, _keys(rsa), AGENCY, now=lambda: NOW))
    assert outcomes == {
        "certificate-key": "fail",
        "certificate-form": "pass",
        "certificate-signature": "skip",
        "certificate-issuer": "skip",
    }


def test_a_document_needs_its_detached_signature() -> None:
    key = _key("ecdsa-p256-sha256")
    signature = sign_document(key, PDF, "application/pdf")
    good = judge_certificate(
        PDF, _keys(key), AGENCY, signature=signature, media_type="application/pdf", now=lambda: NOW
    )
    assert _outcomes(good)["certificate-signature"] == "pass"
    attached = signature.replace("..", ".eyJhIjoxfQ.")
    bad = judge_certificate(PDF, _keys(key), AGENCY, signature=attached, now=lambda: NOW)
    assert _outcomes(bad)["certificate-form"] == "fail"
    binary = judge_certificate(b"\xff\xfe", _keys(key), AGENCY, now=lambda: NOW)
    assert _outcomes(binary)["certificate-form"] == "fail"


def test_the_command_exits_1_on_a_failed_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = _key()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(key.private_key.public_key(), kid=key.kid)]}))
    good, bad = tmp_path / "good.jws", tmp_path / "bad.jws"
    good.write_text(sign_certificate(key, {**_claims(), "iat": int(datetime.now(UTC).timestamp())}))
    bad.write_text(
        sign_certificate(key, {**_claims("x"), "iat": int(datetime.now(UTC).timestamp())})
    )
    base = ["conformance", "certificate", "--agency-id", AGENCY, "--partner-jwks", str(jwks)]

    assert cli.main([*base, str(good)]) == 0
    assert "certificate-signature    PASS" in capsys.readouterr().out
    assert cli.main([*base, str(bad)]) == 1
    assert "certificate-issuer       FAIL" in capsys.readouterr().out
