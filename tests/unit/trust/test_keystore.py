"""The gateway's key ring: purposes are published and never mixed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.domain.errors import SignatureInvalidError
from gateway.trust import keystore
from gateway.trust.receipts import JwsReceiptIssuer, verify_receipt

CLAIMS = {"iss": "https://gw.example", "sub": "app_1", "iat": 1_790_000_000, "jti": "rcp_1"}


def test_the_key_set_says_what_each_key_is_for(tmp_path: Path) -> None:
    ring = keystore.generate(tmp_path, sandbox=False)
    purposes = {k["kid"]: k["gba_use"] for k in ring.jwks()["keys"]}
    assert purposes == {
        ring.current("seal").kid: "seal",
        ring.current("http").kid: "http",
        ring.current("oidc").kid: "oidc",
    }
    assert all("d" not in k for k in ring.jwks()["keys"])


def test_a_receipt_sealed_with_the_http_key_is_refused(tmp_path: Path) -> None:
    ring = keystore.generate(tmp_path, sandbox=False)
    sealed = JwsReceiptIssuer(ring.current("seal")).issue(CLAIMS)
    assert verify_receipt(sealed, ring.jwks())["sub"] == "app_1"
    forged = JwsReceiptIssuer(ring.current("http")).issue(CLAIMS)
    with pytest.raises(SignatureInvalidError):
        verify_receipt(forged, ring.jwks())


def test_rotation_keeps_old_keys_published_and_signs_with_the_newest(tmp_path: Path) -> None:
    first = keystore.generate(tmp_path, sandbox=False)
    old_receipt = JwsReceiptIssuer(first.current("seal")).issue(CLAIMS)
    second = keystore.generate(tmp_path, sandbox=False)
    assert second.current("seal").kid != first.current("seal").kid
    assert len(second.jwks()["keys"]) == 6
    assert verify_receipt(old_receipt, second.jwks())["jti"] == "rcp_1"


def test_an_audit_checkpoint_signed_with_the_http_key_is_refused(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from gateway.trust.audit import GENESIS, sign_checkpoint, verify_checkpoint

    ring = keystore.generate(tmp_path, sandbox=False)
    at = datetime(2026, 11, 27, tzinfo=UTC)
    good = sign_checkpoint(ring.current("seal"), 10, GENESIS, at)
    assert verify_checkpoint(good, ring.jwks()).seq == 10
    with pytest.raises(SignatureInvalidError):
        verify_checkpoint(sign_checkpoint(ring.current("http"), 10, GENESIS, at), ring.jwks())


def test_the_oidc_key_is_es256_whatever_the_other_keys_use(tmp_path: Path) -> None:
    ring = keystore.generate(tmp_path, sandbox=False, alg="ed25519")
    assert ring.current("http").alg == "ed25519"
    assert ring.current("oidc").alg == "ecdsa-p256-sha256"
    assert ring.current("oidc").jwk()["alg"] == "ES256"


def _drop_oidc(directory: Path) -> None:
    import json

    manifest = directory / keystore.MANIFEST
    entries = json.loads(manifest.read_text())
    entries["keys"] = [k for k in entries["keys"] if k["purpose"] != "oidc"]
    manifest.write_text(json.dumps(entries))


def test_an_older_key_directory_without_an_oidc_key_is_reported(tmp_path: Path) -> None:
    from gateway.domain.errors import ConfigurationError

    keystore.generate(tmp_path, sandbox=False)
    _drop_oidc(tmp_path)
    with pytest.raises(ConfigurationError, match="no key for oidc"):
        keystore.load(tmp_path)


def test_the_sandbox_adds_the_missing_oidc_key_and_keeps_the_others(tmp_path: Path) -> None:
    first = keystore.generate(tmp_path, sandbox=True)
    _drop_oidc(tmp_path)
    ring = keystore.load(tmp_path, generate_missing=True)
    assert ring.current("seal").kid == first.current("seal").kid
    assert ring.current("oidc").kid.startswith("sandbox-gw-oidc-")
    assert keystore.load(tmp_path).current("oidc").kid == ring.current("oidc").kid
