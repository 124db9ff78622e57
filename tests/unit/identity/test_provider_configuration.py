"""identity_providers_file: three named providers, asymmetric algorithms, every problem at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.domain.errors import ConfigurationError
from gateway.identity.discovery import load_providers, sandbox_providers

GOOD = """
providers:
  - name: hk
    discovery_url: https://iamsmart.example.gov.hk/.well-known/openid-configuration
    client_id: gba-gateway
    id_token_algs: [ES256]
    scopes: [openid, eidapi_profile]
    use_par: true
  - name: macau
    discovery_url: https://account.example.gov.mo/.well-known/openid-configuration
    client_id: gba-gateway
    id_token_algs: [PS256]
"""


def test_a_good_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "idps.yaml"
    path.write_text(GOOD)
    hk, macau = load_providers(path)
    assert (hk.name, hk.use_par, hk.scopes) == ("hk", True, ("openid", "eidapi_profile"))
    assert (macau.id_token_algs, macau.use_par) == (("PS256",), None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("[PS256]", "[HS256]"), "id_token_algs"),
        (GOOD.replace("[PS256]", "[none]"), "id_token_algs"),
        (GOOD.replace("name: macau", "name: taipei"), "name"),
        (GOOD.replace("https://account", "http://account"), "https"),
        (GOOD.replace("name: macau", "name: hk"), "twice"),
        (GOOD.replace("use_par: true", "use_par: maybe"), "use_par"),
    ],
)
def test_bad_files_are_refused_before_start(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "idps.yaml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        load_providers(path)


def test_the_sandbox_providers_sit_under_the_gateway() -> None:
    configs = {c.name: c for c in sandbox_providers("http://127.0.0.1:8080")}
    assert configs["macau"].id_token_algs == ("PS256",)
    assert configs["hk"].discovery_url == (
        "http://127.0.0.1:8080/sandbox/idp/hk/.well-known/openid-configuration"
    )
