"""Sandbox partner agencies: one per jurisdiction, with keys generated at run time.

Their private keys live in ``<sandbox_dir>/keys/agencies/`` (ignored by git) so that the
demo and testers' scripts can sign as them. Every key id starts ``sandbox-``: production
mode refuses such keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.services.ports import Agency
from gateway.trust.keys import (
    SigningKey,
    generate_private_key,
    load_private_key,
    private_key_pem,
)
from gateway.trust.keystore import SANDBOX_PREFIX, write_private

INBOX = "/sandbox/partners/{agency_id}/messages"


@dataclass(frozen=True, slots=True)
class SandboxAgency:
    id: str
    jurisdiction: str
    names: dict[str, str]
    alg: str
    auto_decision: str | None  # what it decides on every case it receives, if anything

    @property
    def kid(self) -> str:
        return f"{SANDBOX_PREFIX}{self.id}-1"

    def agency(self, base_url: str) -> Agency:
        return Agency(
            id=self.id,
            jurisdiction=self.jurisdiction,
            names=self.names,
            endpoint=base_url + INBOX.format(agency_id=self.id),
            matters=("*",),
        )


SANDBOX_AGENCIES: tuple[SandboxAgency, ...] = (
    SandboxAgency(
        id="hk-ird",
        jurisdiction="HK",
        names={
            "zh-Hant": "稅務局商業登記署",
            "zh-Hans": "税务局商业登记署",
            "en": "Inland Revenue Department, Business Registration Office",
        },
        alg="ed25519",
        auto_decision=None,
    ),
    SandboxAgency(
        id="mo-dsf",
        jurisdiction="MO",
        names={
            "zh-Hant": "財政局",
            "zh-Hans": "财政局",
            "en": "Financial Services Bureau",
            "pt": "Direcção dos Serviços de Finanças",
        },
        alg="ecdsa-p256-sha256",
        auto_decision=None,
    ),
    SandboxAgency(
        id="gd-hq-csb",
        jurisdiction="GD",
        names={
            "zh-Hans": "横琴粤澳深度合作区商事服务局",
            "zh-Hant": "橫琴粵澳深度合作區商事服務局",
            "en": "Hengqin Commercial Services Bureau",
        },
        alg="ecdsa-p256-sha256",
        auto_decision="approved",
    ),
)


def sandbox_agency(agency_id: str) -> SandboxAgency:
    for agency in SANDBOX_AGENCIES:
        if agency.id == agency_id:
            return agency
    raise KeyError(agency_id)


def agency_key_path(sandbox_dir: Path, agency_id: str) -> Path:
    return sandbox_dir / "keys" / "agencies" / f"{agency_id}.pem"


def ensure_agency_key(sandbox_dir: Path, agency: SandboxAgency) -> SigningKey:
    """The agency's signing key, generated on first use and reused afterwards."""
    path = agency_key_path(sandbox_dir, agency.id)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(path, private_key_pem(generate_private_key(agency.alg)))
    return SigningKey(agency.kid, load_private_key(path), agency.alg, sandbox=True)
