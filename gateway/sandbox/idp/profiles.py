"""What each sandbox identity provider says about a persona: subject, acr, amr, profile.

The claim names and values are a contract the relying party codes against:

- ``hk`` (iAM Smart): a pairwise tokenised account id, ``iamsmart:basic`` / ``iamsmart`` /
  ``iamsmart+``, the e-ME profile (``idNo``, ``enName``, ``chName``, ``birthDate``,
  ``gender``) and ``orgProfile`` for a company representative;
- ``macau`` (One Account): ``MO-`` account id, ``mo:loa:1..3``, ``bir_no``, ``name_zh``,
  ``name_pt``, ``birthdate``, ``hrp_no`` and ``rp_no`` when held;
- ``guangdong`` (unified identity): account id, ``gd:loa:1..3``, ``cert_type``, ``cert_no``,
  ``name`` in Simplified Chinese, ``birthdate``, ``hrp_no``, ``bound_ids`` for an HK or
  Macao resident bound to the home login, ``org`` for a company representative.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import cache
from typing import Any

import opencc

from gateway.sandbox.personas import Persona

ASSURANCE = ("low", "substantial", "high")


@cache
def _hk2s() -> opencc.OpenCC:
    return opencc.OpenCC("hk2s.json")


def simplified(text: str) -> str:
    return str(_hk2s().convert(text))


def _digits(label: str, persona_id: str, count: int) -> str:
    number = int.from_bytes(hashlib.sha256(f"{label}|{persona_id}".encode()).digest()[:8])
    return f"{number % 10**count:0{count}d}"


@dataclass(frozen=True)
class Profile:
    name: str
    signing_alg: str
    subject_type: str
    acr: tuple[str, str, str]  # for assurance low, substantial, high
    amr: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    scopes: tuple[str, ...]
    claims: tuple[str, ...]
    locales: tuple[str, ...]
    title: str  # shown on the persona picker

    def acr_for(self, persona: Persona) -> str:
        return self.acr[ASSURANCE.index(persona.assurance)]

    def amr_for(self, persona: Persona) -> list[str]:
        return list(self.amr[ASSURANCE.index(persona.assurance)])

    def subject(self, persona: Persona, client_id: str) -> str:
        if self.name == "hk":
            digest = hashlib.sha256(f"{client_id}|{persona.id}".encode()).digest()
            return "TA" + base64.b32encode(digest).decode("ascii")[:24]
        if self.name == "macau":
            return "MO-" + _digits("macau", persona.id, 8)
        return "GD-" + _digits("guangdong", persona.id, 12)

    def profile(self, persona: Persona) -> dict[str, Any]:
        return {"hk": _hk, "macau": _macau, "guangdong": _guangdong}[self.name](persona)


def _hk(p: Persona) -> dict[str, Any]:
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


def _with_permits(p: Persona, out: dict[str, Any], *, rp: bool) -> dict[str, Any]:
    if hrp := p.document("HRP"):
        out["hrp_no"] = hrp
    if rp and (permit := p.document("RESIDENCE_PERMIT")):
        out["rp_no"] = permit
    return out


def _macau(p: Persona) -> dict[str, Any]:
    out = {
        "bir_no": p.document("MO_BIR"),
        "name_zh": p.name_original,
        "name_pt": f"{p.family_name_latin} {p.given_names_latin}".upper(),
        "birthdate": p.birth_date,
    }
    return _with_permits(p, out, rp=True)


_BOUND = {"HK": ("iamsmart", "HKID"), "MO": ("one-account", "MO_BIR")}


def _guangdong(p: Persona) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if p.jurisdiction == "GD":
        out |= {"cert_type": "ID_CARD", "cert_no": p.document("CN_RIC")}
    else:
        out |= {"cert_type": "HK_MO_RESIDENCE_PERMIT", "cert_no": p.document("RESIDENCE_PERMIT")}
    out |= {"name": simplified(p.name_original), "birthdate": p.birth_date}
    _with_permits(p, out, rp=False)
    if p.jurisdiction in _BOUND:
        idp, id_type = _BOUND[p.jurisdiction]
        out["bound_ids"] = [{"idp": idp, "id_type": id_type, "id_no": p.document(id_type)}]
    if p.organisation is not None and p.organisation.id_type == "USCC":
        out["org"] = {"uscc": p.organisation.number, "name": p.organisation.name_zh}
    return out


PROFILES: dict[str, Profile] = {
    "hk": Profile(
        name="hk",
        signing_alg="ES256",
        subject_type="pairwise",
        acr=("iamsmart:basic", "iamsmart", "iamsmart+"),
        amr=(("hwk", "pin"), ("hwk", "pin"), ("hwk", "face", "mfa")),
        scopes=("openid", "profile", "eidapi_auth", "eidapi_profiles"),
        claims=("idNo", "enName", "chName", "birthDate", "gender", "orgProfile"),
        locales=("zh-Hant", "en"),
        title="智方便 iAM Smart",
    ),
    "macau": Profile(
        name="macau",
        signing_alg="PS256",
        subject_type="public",
        acr=("mo:loa:1", "mo:loa:2", "mo:loa:3"),
        amr=(("pwd",), ("pwd", "otp", "mfa"), ("pwd", "face", "mfa")),
        scopes=("openid", "profile"),
        claims=("bir_no", "name_zh", "name_pt", "birthdate", "hrp_no", "rp_no"),
        locales=("zh-Hant", "pt", "en"),
        title="澳門公共服務一戶通 Macao One Account",
    ),
    "guangdong": Profile(
        name="guangdong",
        signing_alg="ES256",
        subject_type="public",
        acr=("gd:loa:1", "gd:loa:2", "gd:loa:3"),
        amr=(("pwd",), ("pwd", "sms", "mfa"), ("pwd", "face", "mfa")),
        scopes=("openid", "profile"),
        claims=(
            "cert_type",
            "cert_no",
            "name",
            "birthdate",
            "hrp_no",
            "bound_ids",
            "org",
        ),
        locales=("zh-Hans", "en"),
        title="广东省统一身份认证平台 Guangdong unified identity",
    ),
}
