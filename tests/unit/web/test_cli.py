"""The gba-gateway command: help on every command, version, key generation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway import __version__
from gateway.cli import build_parser, main


@pytest.mark.parametrize(
    "argv", [[], ["serve"], ["sandbox"], ["sandbox", "demo"], ["keys"], ["keys", "generate"]]
)
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*argv, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: gba-gateway")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"gba-gateway {__version__}"


def test_keys_generate_writes_a_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "generate", "--out", str(tmp_path / "k"), "--sandbox"]) == 0
    manifest = json.loads((tmp_path / "k" / "keys.json").read_text())
    assert manifest["sandbox"] is True
    assert {k["purpose"] for k in manifest["keys"]} == {"seal", "http", "oidc"}
    printed = capsys.readouterr().out
    assert all(k["kid"] in printed for k in manifest["keys"])


def test_serve_refuses_an_incomplete_production_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GBA_MODE", raising=False)
    config = tmp_path / "gateway.toml"
    config.write_text(f'keys_dir = "{tmp_path / "none"}"\n')
    assert main(["serve", "--config", str(config), "--port", "8099"]) == 2
    assert "cannot read the key manifest" in capsys.readouterr().err
