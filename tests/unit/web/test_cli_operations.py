"""Operator commands: the agency registry and offline receipt verification."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.trust import keystore
from gateway.trust.keys import generate_private_key, public_jwk
from gateway.trust.receipts import JwsReceiptIssuer


def _jwk_file(path: Path, kid: str) -> Path:
    path.write_text(json.dumps(public_jwk(generate_private_key("ed25519").public_key(), kid=kid)))
    return path


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("GBA_MODE", "GBA_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "gateway.toml"
    path.write_text(f'database_url = "sqlite:///{tmp_path / "registry.db"}"\n')
    return path


def test_add_list_rotate_and_revoke(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _jwk_file(tmp_path / "k1.json", "gd-test-2026-1")
    assert (
        main(
            [
                "agencies",
                "add",
                "--config",
                str(config),
                "--id",
                "gd-test",
                "--jurisdiction",
                "GD",
                "--name",
                "en=Test Bureau",
                "--matter",
                "*",
                "--endpoint",
                "https://gd-test.example/inbox",
                "--jwk",
                str(first),
            ]
        )
        == 0
    )
    assert "registered gd-test (GD) with key gd-test-2026-1" in capsys.readouterr().out

    second = _jwk_file(tmp_path / "k2.json", "gd-test-2026-2")
    assert (
        main(
            [
                "agencies",
                "rotate",
                "gd-test",
                "--config",
                str(config),
                "--jwk",
                str(second),
                "--overlap-days",
                "2",
            ]
        )
        == 0
    )
    assert "1 older key(s) end at" in capsys.readouterr().out

    assert main(["agencies", "revoke", "gd-test-2026-1", "--config", str(config)]) == 0
    assert main(["agencies", "list", "--config", str(config)]) == 0
    listing = capsys.readouterr().out
    assert "gd-test  GD  Test Bureau" in listing
    assert "key gd-test-2026-1  ed25519  revoked" in listing
    assert "key gd-test-2026-2  ed25519  valid  until open-ended" in listing
    assert "receives: GD" in listing  # by default, its jurisdiction's format


def test_an_agency_declares_the_format_it_receives(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["agencies", "add", "--config", str(config), "--jurisdiction", "HK"]
    key = _jwk_file(tmp_path / "k.json", "hk-test-1")

    assert main([*base, "--id", "hk-test", "--receives", "canonical", "--jwk", str(key)]) == 0
    with pytest.raises(SystemExit) as refused:
        main([*base, "--id", "hk-other", "--receives", "PDF", "--jwk", str(key)])
    assert refused.value.code == 2
    assert "invalid choice: 'PDF'" in capsys.readouterr().err

    assert main(["agencies", "list", "--config", str(config)]) == 0
    listing = capsys.readouterr().out
    assert "hk-test  HK" in listing
    assert "receives: canonical" in listing
    assert "hk-other" not in listing  # nothing stored


def test_bad_registrations_and_unknown_keys_are_refused(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private = tmp_path / "private.json"
    private.write_text(
        json.dumps({"kty": "OKP", "crv": "Ed25519", "x": "AA", "d": "AA", "kid": "x"})
    )
    assert (
        main(
            [
                "agencies",
                "add",
                "--config",
                str(config),
                "--id",
                "Bad Id!",
                "--jurisdiction",
                "HK",
                "--jwk",
                str(private),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "/agency_id wrong_type" in err
    assert "/keys/0 invalid_key" in err
    assert main(["agencies", "revoke", "no-such-kid", "--config", str(config)]) == 2
    assert "no key 'no-such-kid'" in capsys.readouterr().err


def test_receipts_verify_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ring = keystore.generate(tmp_path / "keys", sandbox=False)
    token = JwsReceiptIssuer(ring.current("seal")).issue(
        {"iss": "https://gw.example", "sub": "app_1", "iat": 1_790_000_000, "jti": "rcp_1"}
    )
    receipt, jwks = tmp_path / "receipt.jws", tmp_path / "jwks.json"
    receipt.write_text(token + "\n")
    jwks.write_text(json.dumps(ring.jwks()))
    assert main(["receipts", "verify", str(receipt), "--jwks", str(jwks)]) == 0
    assert json.loads(capsys.readouterr().out)["sub"] == "app_1"

    receipt.write_text(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert main(["receipts", "verify", str(receipt), "--jwks", str(jwks)]) == 2
    assert "does not verify" in capsys.readouterr().err


def test_receipts_verify_on_a_missing_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "receipts",
                "verify",
                str(tmp_path / "none.jws"),
                "--jwks",
                str(tmp_path / "none.json"),
            ]
        )
        == 1
    )
    assert "No such file" in capsys.readouterr().err
