"""No private key, password or deployment folder can be committed by accident.

``.gitignore`` is read by git itself (``git check-ignore --no-index``, so tracked files are
judged by the rules too), and the tracked files are searched for PEM private-key blocks.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from gateway.settings import REPO_ROOT

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (REPO_ROOT / ".git").exists(),
    reason="needs git and a git checkout",
)

IGNORED = [
    "gw-seal-20260101-abcdef012345.pem",  # `gba-gateway keys generate` output, anywhere
    "keys/gw-http-20260101-abcdef012345.pem",
    "certs/hk/agency-private.pem",  # even in the trust-anchor folder
    "certs/macau/sandbox-root.key",
    "tests/fixtures/rfc9421/test-key-ed25519.pem",  # a private test key beside public ones
    "partner.p12",
    "client.pfx",
    "deploy/gateway.toml",
    "deploy/pgpass",
    "deploy/postgres-password",
    "deploy/keys/keys.json",
    "deploy/trust-anchors/hk/root.pem",
    ".sandbox/gateway.db",
    "gateway.db-wal",
]
KEPT = [
    "certs/README.md",
    "certs/hk/README.md",
    "tests/fixtures/rfc9421/test-key-ed25519.pub.pem",
    "tests/fixtures/rfc9421/test-key-rsa-pss.pub.pem",
    "gateway/trust/keystore.py",
    "docs/deploy.md",
]


def _ignored(paths: list[str]) -> set[str]:
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],  # noqa: S607 - git from PATH
        input="\n".join(paths) + "\n",
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return set(result.stdout.split())


@pytest.mark.parametrize("path", IGNORED)
def test_key_and_deployment_files_are_ignored(path: str) -> None:
    assert _ignored([path]) == {path}


@pytest.mark.parametrize("path", KEPT)
def test_public_material_and_code_are_not_ignored(path: str) -> None:
    assert _ignored([path]) == set()


def test_no_tracked_file_holds_a_pem_private_key() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z"],  # noqa: S607 - git from PATH
        capture_output=True,
        cwd=REPO_ROOT,
        check=True,
    ).stdout.split(b"\0")
    block = re.compile(rb"-----BEGIN [A-Z ]*" + rb"PRIVATE KEY-----")
    holding = [
        name.decode()
        for name in listed
        if name and (REPO_ROOT / name.decode()).is_file()
        if block.search((REPO_ROOT / name.decode()).read_bytes())
    ]
    assert holding == []
