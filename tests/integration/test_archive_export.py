"""Art. 23: a closed case exports as one signed bundle that verifies offline (both databases)."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import aiohttp
import jwt
import pytest

from gateway.archive_ops import archive_export, archive_verify
from gateway.cli import main
from gateway.domain.errors import ConflictError, NotFoundError
from gateway.sandbox.demo import run_demo
from gateway.trust.digest import content_digest
from tests.conftest import RunningGateway
from tests.support import send

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


async def _save_jwks(gateway: RunningGateway, path: Path) -> Path:
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/.well-known/jwks.json") as response,
    ):
        data = await response.read()
    await asyncio.to_thread(path.write_bytes, data)
    return path


async def test_an_approved_case_exports_and_verifies_offline(
    gateway: RunningGateway, tmp_path: Path
) -> None:
    view = await run_demo(
        gateway.url, gateway.settings.sandbox_dir, patience=20, say=lambda _: None
    )
    assert view["status"] == "approved"
    app_id = view["application_id"]
    jwks_file = await _save_jwks(gateway, tmp_path / "jwks.json")
    out = tmp_path / f"{app_id}.gba-archive.json"
    said: list[str] = []

    assert await archive_export(gateway.settings, app_id, out, said.append) == out

    assert archive_verify(out, jwks_file, said.append), said
    assert said[-1].startswith(f"archive verified: application {app_id} (approved)")
    document = json.loads(out.read_bytes())
    claims = jwt.decode(document["manifest"], options={"verify_signature": False})
    members = {name: base64.b64decode(value) for name, value in document["members"].items()}
    # The exact HK XML the agency signed, and the receipt it was given.
    submitted = members["submission"]
    assert submitted.lstrip().startswith(b"<")
    assert content_digest(submitted) == claims["submission"]["content_digest"]
    timeline = json.loads(members["timeline.json"])
    assert [e["type"] for e in timeline] == [e["type"] for e in view["timeline"]]
    assert any(v["source"].startswith("/responses/") for v in claims["vouchers"])
    # The signed decision of the Guangdong agency is a signed message about the case.
    bodies = [members[m["member"]] for m in claims["messages"] if m["member"] is not None]
    assert submitted in bodies
    assert any(b'"approved"' in body for body in bodies)
    # The signed forward to Guangdong and its signed acknowledgement.
    assert [d["kind"] for d in claims["deliveries"]] == ["forward", "acknowledgement"]
    checkpoint = jwt.decode(members["audit/checkpoint.jws"], options={"verify_signature": False})
    assert claims["audit"]["case_seqs"][-1] <= checkpoint["seq"]
    assert len(members["audit/entries.jsonl"].split(b"\n")) == (
        checkpoint["seq"] - claims["audit"]["first_seq"] + 1
    )

    # One changed byte anywhere is refused, with its reason.
    data = bytearray(out.read_bytes())
    middle = data.index(document["members"]["timeline.json"].encode()) + 10
    data[middle] ^= 0x01
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(bytes(data))
    said.clear()
    assert not archive_verify(tampered, jwks_file, said.append)
    assert said == [
        "archive NOT verified (member-digest): member timeline.json does not have the digest "
        "the manifest signs"
    ]


async def test_only_closed_cases_export(gateway: RunningGateway, tmp_path: Path) -> None:
    document = json.loads(
        (FIXTURES / "documents" / "hk-individual-business.canonical.json").read_text("utf-8")
    )
    document["commitments"] = []  # incomplete: stays awaiting_supplement
    answer = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=json.dumps(document).encode(),
        content_type="application/json",
    )
    assert answer.json()["status"] == "awaiting_supplement"
    out = tmp_path / "open.json"

    with pytest.raises(ConflictError, match="awaiting_supplement, not closed"):
        await archive_export(gateway.settings, answer.json()["application_id"], out, print)
    with pytest.raises(NotFoundError):
        await archive_export(gateway.settings, "app_NOSUCHCASE", out, print)
    assert not out.exists()


async def test_the_archive_commands_export_and_verify(
    gateway: RunningGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    view = await run_demo(
        gateway.url, gateway.settings.sandbox_dir, patience=20, say=lambda _: None
    )
    app_id = view["application_id"]
    jwks_file = await _save_jwks(gateway, tmp_path / "jwks.json")
    out = tmp_path / "case.json"
    database = ["--config", str(_config(gateway, tmp_path))]

    exported = await asyncio.to_thread(
        main, ["archive", "export", app_id, "--out", str(out), *database]
    )
    verified = await asyncio.to_thread(
        main, ["archive", "verify", str(out), "--jwks", str(jwks_file)]
    )
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x01
    out.write_bytes(bytes(data))
    refused = await asyncio.to_thread(
        main, ["archive", "verify", str(out), "--jwks", str(jwks_file)]
    )

    assert (exported, verified, refused) == (0, 0, 1)
    printed = capsys.readouterr().out
    assert f"archive verified: application {app_id}" in printed
    assert "archive NOT verified" in printed


def _config(gateway: RunningGateway, tmp_path: Path) -> Path:
    """A settings file naming the test gateway's database and keys (as an operator's would)."""
    settings = gateway.settings
    lines = [
        'mode = "sandbox"',
        f'database_url = "{settings.database_url}"',
        f'database_schema = "{settings.database_schema}"',
        f'sandbox_dir = "{settings.sandbox_dir}"',
    ]
    path = tmp_path / "gateway.toml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path
