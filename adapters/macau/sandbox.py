"""The sandbox's Macao One Account (澳門公共服務一戶通): what it says about a persona.

The sandbox plug-in runs the provider (``gateway/sandbox/idp``); what is Macau's about it
lives here: an ``MO-`` account id, ``mo:loa:1..3``, ``bir_no``, ``name_zh``, ``name_pt``,
``birthdate``, and ``hrp_no`` and ``rp_no`` when held. A persona is read by attribute
(``gateway.sandbox.personas.Persona``): adapters never import the sandbox.
"""

from __future__ import annotations

import hashlib
from typing import Any

from gateway.jurisdictions import SandboxIdentityProvider


def account_digits(label: str, persona_id: str, count: int) -> str:
    """A stable synthetic account number for a persona (the same at every start)."""
    number = int.from_bytes(hashlib.sha256(f"{label}|{persona_id}".encode()).digest()[:8])
    return f"{number % 10**count:0{count}d}"


def subject(persona: Any, client_id: str) -> str:
    return "MO-" + account_digits("macau", persona.id, 8)


def profile(p: Any) -> dict[str, Any]:
    out = {
        "bir_no": p.document("MO_BIR"),
        "name_zh": p.name_original,
        "name_pt": f"{p.family_name_latin} {p.given_names_latin}".upper(),
        "birthdate": p.birth_date,
    }
    if hrp := p.document("HRP"):
        out["hrp_no"] = hrp
    if permit := p.document("RESIDENCE_PERMIT"):
        out["rp_no"] = permit
    return out


IDENTITY_PROVIDER = SandboxIdentityProvider(
    title="澳門公共服務一戶通 Macao One Account",
    signing_alg="PS256",
    subject_type="public",
    acr=("mo:loa:1", "mo:loa:2", "mo:loa:3"),
    amr=(("pwd",), ("pwd", "otp", "mfa"), ("pwd", "face", "mfa")),
    scopes=("openid", "profile"),
    claims=("bir_no", "name_zh", "name_pt", "birthdate", "hrp_no", "rp_no"),
    locales=("zh-Hant", "pt", "en"),
    subject=subject,
    profile=profile,
)
