"""The sandbox's iAM Smart (智方便): what it says about a persona, as data and two functions.

The sandbox plug-in runs the provider (``gateway/sandbox/idp``); what is Hong Kong's about it
lives here: a pairwise tokenised account id, ``iamsmart:basic`` / ``iamsmart`` /
``iamsmart+``, pushed authorization requests, and the e-ME profile (``idNo``, ``enName``,
``chName``, ``birthDate``, ``gender``) with ``orgProfile`` for a company representative. A
persona is read by attribute (``gateway.sandbox.personas.Persona``): adapters never import the
sandbox.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from gateway.jurisdictions import SandboxIdentityProvider


def subject(persona: Any, client_id: str) -> str:
    """iAM Smart gives each online service its own account id for the same person."""
    digest = hashlib.sha256(f"{client_id}|{persona.id}".encode()).digest()
    return "TA" + base64.b32encode(digest).decode("ascii")[:24]


def profile(p: Any) -> dict[str, Any]:
    hkid = p.document("HKID") or ""
    number, _, check = hkid.partition("(")
    out: dict[str, Any] = {
        "idNo": {"Identification": number, "CheckDigit": check.rstrip(")")},
        "enName": {"UnstructuredName": f"{p.family_name_latin}, {p.given_names_latin}"},
        "chName": {"ChineseName": p.name_original},
        "birthDate": p.birth_date.replace("-", ""),
        "gender": p.gender,
    }
    if p.organisation is not None and p.organisation.id_type == "HK_BRN":
        org = p.organisation
        out["orgProfile"] = {"brNo": org.number, "enName": org.name_en, "chName": org.name_zh}
    return out


IDENTITY_PROVIDER = SandboxIdentityProvider(
    title="智方便 iAM Smart",
    signing_alg="ES256",
    subject_type="pairwise",
    acr=("iamsmart:basic", "iamsmart", "iamsmart+"),
    amr=(("hwk", "pin"), ("hwk", "pin"), ("hwk", "face", "mfa")),
    scopes=("openid", "profile", "eidapi_auth", "eidapi_profiles"),
    claims=("idNo", "enName", "chName", "birthDate", "gender", "orgProfile"),
    locales=("zh-Hant", "en"),
    subject=subject,
    profile=profile,
    par=True,
)
