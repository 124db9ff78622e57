"""Settings come from TOML and GBA_* environment; production refuses sandbox material."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.bootstrap import create_app
from gateway.domain.errors import ConfigurationError, UnknownKeyError
from gateway.settings import load_settings
from gateway.trust import keystore
from gateway.trust.keys import generate_private_key, public_jwk
from gateway.web.keys import REGISTRY


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\nport = 9000\nhost = "::1"\nkeys_dir = "keys"\n')
    settings = load_settings(config, environ={"GBA_PORT": "9100"})
    assert settings.port == 9100
    assert settings.host == "::1"
    assert settings.keys_dir == tmp_path / "keys"
    assert settings.base_url == "http://[::1]:9100"


def test_unknown_and_invalid_settings_are_refused_together(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigurationError, match="unknown settings colour"):
        load_settings(config, environ={})
    with pytest.raises(ConfigurationError) as info:
        load_settings(environ={"GBA_PORT": "0", "GBA_SIGNATURE_MAX_SKEW": "5"})
    assert "port" in info.value.detail
    assert "signature_max_skew" in info.value.detail


def _production(tmp_path: Path, **changes: object):
    values = {"mode": "production", "database_url": f"sqlite:///{tmp_path}/g.db"}
    values.update(changes)
    return load_settings(environ={}, **values)


def test_production_refuses_sandbox_keys(tmp_path: Path) -> None:
    keystore.generate(tmp_path / "keys", sandbox=True)
    anchors = tmp_path / "certs"
    anchors.mkdir()
    (anchors / "hk-root.pem").write_text("placeholder: chain validation arrives with the registry")
    agencies = tmp_path / "agencies.yaml"
    agencies.write_text("agencies: []\n")
    settings = _production(
        tmp_path, keys_dir=tmp_path / "keys", trust_anchors_dir=anchors, agencies_file=agencies
    )
    with pytest.raises(ConfigurationError, match="sandbox keys"):
        create_app(settings)


def test_production_refuses_to_start_without_trust_anchors(tmp_path: Path) -> None:
    keystore.generate(tmp_path / "keys", sandbox=False)
    settings = _production(tmp_path, keys_dir=tmp_path / "keys")
    with pytest.raises(ConfigurationError) as info:
        create_app(settings)
    assert "trust anchors" in info.value.detail
    assert "agency registry" in info.value.detail


def _registry(tmp_path: Path, *agency_ids: str) -> Path:
    """A production registry file with one real public key per agency."""
    entries = []
    for agency_id in agency_ids:
        private = generate_private_key("ecdsa-p256-sha256")
        jwk = public_jwk(private.public_key(), kid=f"{agency_id}-2026")
        entries.append(
            {
                "id": agency_id,
                "jurisdiction": "GD",
                "names": {"en": agency_id},
                "endpoint": f"https://{agency_id}.example/inbox",
                "matters": ["*"],
                "keys": [{"jwk": jwk, "not_before": "2026-01-01T00:00:00+08:00"}],
            }
        )
    path = tmp_path / "agencies.yaml"
    path.write_text(yaml.safe_dump({"agencies": entries}, allow_unicode=True))
    return path


def _anchors(tmp_path: Path) -> Path:
    anchors = tmp_path / "certs" / "hk"
    anchors.mkdir(parents=True)
    (anchors / "root.pem").write_text("-")
    return tmp_path / "certs"


def test_production_starts_with_its_own_keys_anchors_and_registry(tmp_path: Path) -> None:
    keystore.generate(tmp_path / "keys", sandbox=False)
    app = create_app(
        _production(
            tmp_path,
            keys_dir=tmp_path / "keys",
            trust_anchors_dir=_anchors(tmp_path),
            agencies_file=_registry(tmp_path, "gd-hq-csb"),
        )
    )
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert "/v1/applications" in paths
    assert not any(p.startswith("/sandbox") for p in paths)
    registry = app[REGISTRY]
    assert registry.resolve_key("gd-hq-csb-2026").owner == "gd-hq-csb"
    with pytest.raises(UnknownKeyError):
        registry.resolve_key("../gd-hq-csb-2026")


def test_production_refuses_matters_routed_to_unregistered_agencies(tmp_path: Path) -> None:
    keystore.generate(tmp_path / "keys", sandbox=False)
    settings = _production(
        tmp_path,
        keys_dir=tmp_path / "keys",
        trust_anchors_dir=_anchors(tmp_path),
        agencies_file=_registry(tmp_path, "gd-other"),
    )
    with pytest.raises(ConfigurationError, match=r"unregistered agencies: gd-hq-csb"):
        create_app(settings)


def test_generated_private_keys_are_owner_only(tmp_path: Path) -> None:
    ring = keystore.generate(tmp_path / "keys", sandbox=False)
    assert {k.purpose for k in ring.keys} == {"seal", "http"}
    for pem in (tmp_path / "keys").glob("*.pem"):
        assert pem.stat().st_mode & 0o077 == 0
    assert not any(k.kid.startswith("sandbox-") for k in ring.keys)
    with pytest.raises(ConfigurationError, match="other mode"):
        keystore.generate(tmp_path / "keys", sandbox=True)
