"""A throwaway production set-up for ``gba-gateway serve`` in the write bench: the gateway's
keys, a trust anchor, a registry (the submitting HK agency with a key the bench holds, and
the lead agencies of the catalogue's matters) and the TOML settings file. Nothing here is
real: everything is generated into the bench's temporary folder."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.mapping.catalog import Catalog
from gateway.trust import keystore
from gateway.trust.keys import SigningKey, generate_private_key, private_key_pem, public_jwk

SUBMITTER = "hk-ird"
_MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"


def _handlers() -> tuple[str, ...]:
    """Every agency the catalogue's matters route cases to (lead or reviewer), today: the
    gateway refuses to start while one of them is not registered."""
    catalog = Catalog.load(_MAPPINGS / "matters")
    found = {a for m in catalog.all(datetime.now(UTC).date()) for a in m.route.handlers}
    return tuple(sorted(found - {SUBMITTER}))


def _jurisdiction(agency_id: str) -> str:
    return {"hk": "HK", "mo": "MO"}.get(agency_id.split("-", 1)[0], "GD")


def _trust_anchor(directory: Path) -> Path:
    """A self-signed root CA, public part only, in ``directory/hk/root.pem``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench Root")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (directory / "hk").mkdir(parents=True, exist_ok=True)
    (directory / "hk" / "root.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return directory


def _registry(directory: Path, submitter: SigningKey) -> Path:
    entries = []
    for agency_id in (SUBMITTER, *_handlers()):
        public = (
            submitter.private_key.public_key()
            if agency_id == SUBMITTER
            else generate_private_key("ed25519").public_key()
        )
        kid = submitter.kid if agency_id == SUBMITTER else f"{agency_id}-bench"
        entries.append(
            {
                "id": agency_id,
                "jurisdiction": _jurisdiction(agency_id),
                "names": {"en": agency_id},
                "endpoint": f"https://{agency_id}.example/inbox",
                "matters": ["*"],
                "keys": [
                    {"jwk": public_jwk(public, kid=kid), "not_before": "2026-01-01T00:00:00Z"}
                ],
            }
        )
    path = directory / "agencies.yaml"
    path.write_text(yaml.safe_dump({"agencies": entries}, allow_unicode=True))
    return path


def production(directory: Path, port: int, database_url: str, schema: str = "") -> Path:
    """Keys, trust anchor, registry and ``gateway.toml`` in ``directory``; the TOML's path.
    The submitter's private key is ``directory/submitter.pem`` (kid ``hk-ird-bench``)."""
    directory.mkdir(parents=True, exist_ok=True)
    submitter = SigningKey("hk-ird-bench", generate_private_key("ed25519"), "ed25519")
    (directory / "submitter.pem").write_bytes(private_key_pem(submitter.private_key))
    keystore.generate(directory / "keys", sandbox=False)
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "database_url": database_url,
        "keys_dir": str(directory / "keys"),
        "trust_anchors_dir": str(_trust_anchor(directory / "certs")),
        "agencies_file": str(_registry(directory, submitter)),
    }
    if schema:
        values["database_schema"] = schema
    config = directory / "gateway.toml"
    config.write_text(
        "[gateway]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
    )
    return config
