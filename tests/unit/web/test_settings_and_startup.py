"""Settings come from TOML and GBA_* environment; production refuses sandbox material."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.bootstrap import create_app
from gateway.domain.errors import ConfigurationError, UnknownKeyError
from gateway.sandbox.pki import generate_test_pki
from gateway.settings import load_settings
from gateway.trust import keystore
from gateway.trust.keys import generate_private_key, public_jwk
from gateway.web.keys import STORE


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


def test_identity_provider_refresh_settings_are_read_and_bounded() -> None:
    settings = load_settings(
        environ={"GBA_IDP_METADATA_REFRESH_SECONDS": "900", "GBA_IDP_JWKS_REFETCH_SECONDS": "30"}
    )
    assert (settings.idp_metadata_refresh_seconds, settings.idp_jwks_refetch_seconds) == (900, 30)
    with pytest.raises(ConfigurationError) as info:
        load_settings(
            environ={"GBA_IDP_METADATA_REFRESH_SECONDS": "0", "GBA_IDP_JWKS_REFETCH_SECONDS": "0"}
        )
    assert "idp_metadata_refresh_seconds" in info.value.detail
    assert "idp_jwks_refetch_seconds" in info.value.detail


def test_the_access_token_lifetime_is_a_bounded_setting_of_five_minutes_by_default() -> None:
    assert load_settings(environ={}).access_token_seconds == 300
    assert load_settings(environ={"GBA_ACCESS_TOKEN_SECONDS": "3"}).access_token_seconds == 3
    for bad in ("0", "3601"):
        with pytest.raises(ConfigurationError) as info:
            load_settings(environ={"GBA_ACCESS_TOKEN_SECONDS": bad})
        assert "access_token_seconds must be 1-3600 seconds" in info.value.detail


# Every agency a matter in mappings/matters routes cases to (lead or reviewer).
ROUTED = (
    "gd-hq-csb",
    "sz-amr",
    "gz-psb",
    "zh-hrss",
    "gz-vmo",
    "jm-nrb",
    "gd-tax",
    "zs-ca",
    "sz-hc",
    "gz-hpf",
    "hk-mchk",
    "hk-td",
    "hk-immd",
    "mo-dsat",
    "mo-ipim",
    "mo-crc",
    "mo-fss",
)


def _production(tmp_path: Path, **changes: object):
    values = {"mode": "production", "database_url": f"sqlite:///{tmp_path}/g.db"}
    values.update(changes)
    return load_settings(environ={}, **values)


def _ca(directory: Path, organisation: str = "Example Digital Policy Office") -> Path:
    """A self-signed root CA (public part only on disk) in ``directory/hk/root.pem``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, "HK Agencies Root"),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    (directory / "hk").mkdir(parents=True, exist_ok=True)
    (directory / "hk" / "root.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return directory


def _registry(tmp_path: Path, *agency_ids: str) -> Path:
    """A production registry file with one real public key per agency."""
    entries = []
    for agency_id in agency_ids:
        private = generate_private_key("ecdsa-p256-sha256")
        jwk = public_jwk(private.public_key(), kid=f"{agency_id}-2026")
        entries.append(
            {
                "id": agency_id,
                "jurisdiction": agency_id[:2].upper() if agency_id[:3] in ("hk-", "mo-") else "GD",
                "names": {"en": agency_id},
                "endpoint": f"https://{agency_id}.example/inbox",
                "matters": ["*"],
                "keys": [{"jwk": jwk, "not_before": "2026-01-01T00:00:00+08:00"}],
            }
        )
    path = tmp_path / "agencies.yaml"
    path.write_text(yaml.safe_dump({"agencies": entries}, allow_unicode=True))
    return path


def test_production_refuses_sandbox_keys(tmp_path: Path) -> None:
    keystore.generate(tmp_path / "keys", sandbox=True)
    settings = _production(
        tmp_path,
        keys_dir=tmp_path / "keys",
        trust_anchors_dir=_ca(tmp_path / "certs"),
        agencies_file=_registry(tmp_path, "gd-hq-csb"),
    )
    with pytest.raises(ConfigurationError, match="sandbox keys"):
        create_app(settings)


def test_production_refuses_sandbox_trust_anchors(tmp_path: Path) -> None:
    keystore.generate(tmp_path / "keys", sandbox=False)
    generate_test_pki(tmp_path / "certs")
    settings = _production(
        tmp_path,
        keys_dir=tmp_path / "keys",
        trust_anchors_dir=tmp_path / "certs",
        agencies_file=_registry(tmp_path, "gd-hq-csb"),
    )
    with pytest.raises(ConfigurationError, match="sandbox trust anchors"):
        create_app(settings)


def test_production_refuses_to_start_without_trust_anchors(tmp_path: Path) -> None:
    keystore.generate(tmp_path / "keys", sandbox=False)
    settings = _production(tmp_path, keys_dir=tmp_path / "keys")
    with pytest.raises(ConfigurationError) as info:
        create_app(settings)
    assert "trust anchors" in info.value.detail
    assert "agency registry" in info.value.detail


async def test_production_starts_with_its_own_keys_anchors_and_registry(tmp_path: Path) -> None:
    keystore.generate(tmp_path / "keys", sandbox=False)
    app = create_app(
        _production(
            tmp_path,
            keys_dir=tmp_path / "keys",
            trust_anchors_dir=_ca(tmp_path / "certs"),
            agencies_file=_registry(tmp_path, *ROUTED),
        )
    )
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert "/v1/applications" in paths
    assert not any(p.startswith("/sandbox") for p in paths)
    runner = web.AppRunner(app)
    await runner.setup()  # runs the start-up: schema, registry import, route check
    try:
        async with app[STORE]() as uow:
            key = await uow.agencies.key("gd-hq-csb-2026")
            assert key.owner == "gd-hq-csb"
            assert key.not_before == datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=8)
            with pytest.raises(UnknownKeyError):
                await uow.agencies.key("../gd-hq-csb-2026")
    finally:
        await runner.cleanup()


async def test_production_refuses_matters_routed_to_unregistered_agencies(tmp_path: Path) -> None:
    keystore.generate(tmp_path / "keys", sandbox=False)
    app = create_app(
        _production(
            tmp_path,
            keys_dir=tmp_path / "keys",
            trust_anchors_dir=_ca(tmp_path / "certs"),
            agencies_file=_registry(tmp_path, "gd-other"),
        )
    )
    runner = web.AppRunner(app)
    with pytest.raises(ConfigurationError, match=r"unregistered agencies: gd-hq-csb"):
        await runner.setup()
    await runner.cleanup()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o620])
def test_production_refuses_a_private_key_file_open_to_group_or_others(
    tmp_path: Path, mode: int
) -> None:
    ring = keystore.generate(tmp_path / "keys", sandbox=False)
    exposed = tmp_path / "keys" / f"{ring.current('http').kid}.pem"
    exposed.chmod(mode)
    settings = _production(
        tmp_path,
        keys_dir=tmp_path / "keys",
        trust_anchors_dir=_ca(tmp_path / "certs"),
        agencies_file=_registry(tmp_path, *ROUTED),
    )
    with pytest.raises(ConfigurationError) as refused:
        create_app(settings)
    assert str(exposed) in refused.value.detail
    assert f"mode {mode:04o}" in refused.value.detail
    assert f"chmod 600 {exposed}" in refused.value.detail
    assert exposed.stat().st_mode & 0o777 == mode  # nothing is changed behind the operator
    exposed.chmod(0o400)  # read-only for the owner is as private
    assert create_app(settings) is not None


def test_the_sandbox_still_loads_its_own_keys_whatever_their_mode(tmp_path: Path) -> None:
    ring = keystore.generate(tmp_path / "keys", sandbox=True)
    (tmp_path / "keys" / f"{ring.current('seal').kid}.pem").chmod(0o644)
    assert keystore.load(tmp_path / "keys").current("seal").kid == ring.current("seal").kid


def test_generated_private_keys_are_owner_only(tmp_path: Path) -> None:
    ring = keystore.generate(tmp_path / "keys", sandbox=False)
    assert {k.purpose for k in ring.keys} == {"seal", "http", "oidc"}
    for pem in (tmp_path / "keys").glob("*.pem"):
        assert pem.stat().st_mode & 0o077 == 0
    assert not any(k.kid.startswith("sandbox-") for k in ring.keys)
    with pytest.raises(ConfigurationError, match="other mode"):
        keystore.generate(tmp_path / "keys", sandbox=True)


def test_the_blob_folder_is_next_to_the_sqlite_file_unless_data_dir_says(tmp_path: Path) -> None:
    on_sqlite = load_settings(environ={"GBA_DATABASE_URL": f"sqlite:///{tmp_path}/db/g.db"})
    assert on_sqlite.blob_folder == tmp_path / "db" / "blobs"
    assert on_sqlite.blob_store_kind("sqlite") == "folder"
    chosen = load_settings(environ={"GBA_DATA_DIR": str(tmp_path / "data")})
    assert chosen.blob_folder == tmp_path / "data" / "blobs"
    on_postgres = load_settings(environ={"GBA_DATABASE_URL": "postgresql://db/gba"})
    assert on_postgres.blob_store_kind("postgresql") == "database"
    with pytest.raises(ConfigurationError, match="blob_store"):
        load_settings(environ={"GBA_BLOB_STORE": "s3"})
    with pytest.raises(ConfigurationError, match="max_application_material_bytes"):
        load_settings(
            environ={
                "GBA_MAX_MATERIAL_BYTES": "2000000",
                "GBA_MAX_APPLICATION_MATERIAL_BYTES": "1000",
            }
        )


def test_production_refuses_a_blob_folder_no_process_shares(tmp_path: Path) -> None:
    keystore.generate(tmp_path / "keys", sandbox=False)
    settings = _production(
        tmp_path,
        keys_dir=tmp_path / "keys",
        trust_anchors_dir=_ca(tmp_path / "certs"),
        agencies_file=_registry(tmp_path, *ROUTED),
        database_url="postgresql://db/gba",
        blob_store="folder",
    )
    with pytest.raises(ConfigurationError, match="data_dir"):
        create_app(settings)
