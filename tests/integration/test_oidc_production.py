"""Outside sandbox mode: no dynamic registration, clients from a file, providers from a file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from gateway.bootstrap import create_app
from gateway.domain.errors import ConfigurationError
from gateway.identity.discovery import load_providers
from gateway.trust import keystore
from gateway.trust.keys import generate_private_key, public_jwk
from gateway.web.bearer import BROKER
from gateway.web.keys import READINESS
from tests.unit.web.test_settings_and_startup import ROUTED, _ca, _production, _registry

IDPS = """
providers:
  - name: hk
    discovery_url: https://127.0.0.1:1/.well-known/openid-configuration
    client_id: gba-gateway
    id_token_algs: [ES256]
"""


def _clients(tmp_path: Path, agency: str) -> Path:
    jwk = public_jwk(generate_private_key("ecdsa-p256-sha256").public_key(), kid="kiosk-1-2026")
    path = tmp_path / "clients.yaml"
    entry = {
        "client_id": "kiosk-1",
        "agency_id": agency,
        "channel": "kiosk",
        "redirect_uris": ["https://kiosk.example/cb"],
        "jwks": {"keys": [jwk]},
    }
    path.write_text(yaml.safe_dump({"clients": [entry]}))
    return path


def _app(tmp_path: Path, agency: str, *, keys: bool = True) -> web.Application:
    if keys:
        keystore.generate(tmp_path / "keys", sandbox=False)
    (tmp_path / "idps.yaml").write_text(IDPS)
    return create_app(
        _production(
            tmp_path,
            keys_dir=tmp_path / "keys",
            trust_anchors_dir=_ca(tmp_path / "certs"),
            agencies_file=_registry(tmp_path, *ROUTED),
            clients_file=_clients(tmp_path, agency),
            identity_providers_file=tmp_path / "idps.yaml",
        )
    )


async def test_production_has_no_registration_and_reports_an_unreachable_provider(
    tmp_path: Path,
) -> None:
    app = _app(tmp_path, "gd-hq-csb")
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert "/oauth2/authorize" in paths
    assert "/oauth2/register" not in paths
    runner = web.AppRunner(app)
    await runner.setup()  # starts although the provider cannot be fetched
    try:
        client = await app[BROKER].store.client("kiosk-1")
        assert client is not None
        assert (client.agency_id, client.channel) == ("gd-hq-csb", "kiosk")
        assert app[BROKER].relying_party.providers() == ["hk"]
        assert "registration_endpoint" not in app[BROKER].provider.discovery(sandbox=False)
        for _ in range(50):
            if app[READINESS].get("identity_provider_hk") is False:
                break
            await asyncio.sleep(0.05)
        assert app[READINESS]["identity_provider_hk"] is False
    finally:
        await runner.cleanup()


async def test_a_client_bound_to_an_unregistered_agency_stops_the_start(tmp_path: Path) -> None:
    runner = web.AppRunner(_app(tmp_path, "no-such-agency"))
    with pytest.raises(ConfigurationError, match="kiosk-1"):
        await runner.setup()
    await runner.cleanup()


def test_a_production_key_directory_without_an_oidc_key_is_reported(tmp_path: Path) -> None:
    keystore.generate(tmp_path / "keys", sandbox=False)
    manifest = tmp_path / "keys" / keystore.MANIFEST
    entries = json.loads(manifest.read_text())
    entries["keys"] = [k for k in entries["keys"] if k["purpose"] != "oidc"]
    manifest.write_text(json.dumps(entries))
    with pytest.raises(ConfigurationError, match="no key for oidc"):
        _app(tmp_path, "gd-hq-csb", keys=False)


SANDBOX_IDP = "https://gw.example/sandbox/idp/{}/.well-known/openid-configuration"


@pytest.mark.parametrize("name", ["hk", "macau", "guangdong"])
def test_production_refuses_a_sandbox_identity_provider_at_start(tmp_path: Path, name: str) -> None:
    keystore.generate(tmp_path / "keys", sandbox=False)
    entry = {"name": name, "discovery_url": SANDBOX_IDP.format(name), "client_id": "gba-gateway"}
    (tmp_path / "idps.yaml").write_text(
        yaml.safe_dump({"providers": [{**entry, "id_token_algs": ["ES256"]}]})
    )
    settings = _production(
        tmp_path,
        keys_dir=tmp_path / "keys",
        trust_anchors_dir=_ca(tmp_path / "certs"),
        agencies_file=_registry(tmp_path, *ROUTED),
        identity_providers_file=tmp_path / "idps.yaml",
    )

    with pytest.raises(ConfigurationError, match="sandbox identity provider is refused"):
        create_app(settings)
    assert load_providers(tmp_path / "idps.yaml", sandbox=True)[0].name == name
