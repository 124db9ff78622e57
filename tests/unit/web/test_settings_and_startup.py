"""Settings come from TOML and GBA_* environment; production refuses sandbox material."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.bootstrap import create_app
from gateway.domain.errors import ConfigurationError
from gateway.settings import load_settings
from gateway.trust import keystore


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


def test_production_starts_with_its_own_keys_anchors_and_registry(tmp_path: Path) -> None:
    keystore.generate(tmp_path / "keys", sandbox=False)
    anchors = tmp_path / "certs" / "hk"
    anchors.mkdir(parents=True)
    (anchors / "root.pem").write_text("-")
    agencies = tmp_path / "agencies.yaml"
    agencies.write_text("agencies: []\n")
    app = create_app(
        _production(
            tmp_path,
            keys_dir=tmp_path / "keys",
            trust_anchors_dir=tmp_path / "certs",
            agencies_file=agencies,
        )
    )
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert "/v1/applications" in paths
    assert not any(p.startswith("/sandbox") for p in paths)


def test_generated_private_keys_are_owner_only(tmp_path: Path) -> None:
    ring = keystore.generate(tmp_path / "keys", sandbox=False)
    assert {k.purpose for k in ring.keys} == {"seal", "http"}
    for pem in (tmp_path / "keys").glob("*.pem"):
        assert pem.stat().st_mode & 0o077 == 0
    assert not any(k.kid.startswith("sandbox-") for k in ring.keys)
    with pytest.raises(ConfigurationError, match="other mode"):
        keystore.generate(tmp_path / "keys", sandbox=True)
