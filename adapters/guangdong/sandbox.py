"""The sandbox's Guangdong unified identity (广东省统一身份认证平台): what it says about a persona.

The sandbox plug-in runs the provider (``gateway/sandbox/idp``); what is Guangdong's about it
lives here: account id, ``gd:loa:1..3``, ``cert_type``, ``cert_no``, ``name`` in Simplified
Chinese, ``birthdate``, ``hrp_no``, ``bound_ids`` for an HK or Macao resident bound to the home
login, ``org`` for a company representative. A persona is read by attribute
(``gateway.sandbox.personas.Persona``): adapters never import the sandbox.
"""

from __future__ import annotations

import hashlib
from typing import Any

from gateway.jurisdictions import SandboxIdentityProvider
from gateway.mapping.identity import person_names

# The home login an HK or Macao resident may have bound (mutual recognition, 2023) and the
# document it names.
BOUND_LOGINS = {"HK": ("iamsmart", "HKID"), "MO": ("one-account", "MO_BIR")}


def subject(persona: Any, client_id: str) -> str:
    number = int.from_bytes(hashlib.sha256(f"guangdong|{persona.id}".encode()).digest()[:8])
    return f"GD-{number % 10**12:012d}"


def profile(p: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if p.jurisdiction == "GD":
        out |= {"cert_type": "ID_CARD", "cert_no": p.document("CN_RIC")}
    else:
        out |= {"cert_type": "HK_MO_RESIDENCE_PERMIT", "cert_no": p.document("RESIDENCE_PERMIT")}
    names = person_names(p.name_original, simplified_original=p.jurisdiction == "GD")
    out |= {"name": names.zh_hans, "birthdate": p.birth_date}
    if hrp := p.document("HRP"):
        out["hrp_no"] = hrp
    if p.jurisdiction in BOUND_LOGINS:
        idp, id_type = BOUND_LOGINS[p.jurisdiction]
        out["bound_ids"] = [{"idp": idp, "id_type": id_type, "id_no": p.document(id_type)}]
    if p.organisation is not None and p.organisation.id_type == "USCC":
        out["org"] = {"uscc": p.organisation.number, "name": p.organisation.name_zh}
    return out


IDENTITY_PROVIDER = SandboxIdentityProvider(
    title="广东省统一身份认证平台 Guangdong unified identity",
    signing_alg="ES256",
    subject_type="public",
    acr=("gd:loa:1", "gd:loa:2", "gd:loa:3"),
    amr=(("pwd",), ("pwd", "sms", "mfa"), ("pwd", "face", "mfa")),
    scopes=("openid", "profile"),
    claims=("cert_type", "cert_no", "name", "birthdate", "hrp_no", "bound_ids", "org"),
    locales=("zh-Hans", "en"),
    subject=subject,
    profile=profile,
)
