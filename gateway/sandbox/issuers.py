"""Sandbox evidence issuers: answer the gateway's evidence requests from persona data.

A sandbox agency that declares ``issues_evidence`` answers a signed evidence request (a JSON
message of ``type`` ``evidence_request``, docs/evidence.md) in its signed acknowledgement:
the evidence document, built from the persona the request's identifying fields name, or a
refusal (``no_record``: no persona matches, or it holds nothing of the kind;
``not_issued``: the agency does not issue that type). Its ``evidence`` fault switch makes it
``refuse`` every request, or stay ``silent`` (it acknowledges and never answers); ``down``,
``latency_ms``, ``timeout`` and the signature switches apply as to any message.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import opencc

from gateway.domain.evidence import EVIDENCE_DOCUMENT, EVIDENCE_REFUSAL
from gateway.sandbox.agencies import SandboxAgency
from gateway.sandbox.personas import PERSONAS, Persona

_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]")


def answer(
    agency: SandboxAgency, request: Mapping[str, Any], mode: str, now: datetime
) -> dict[str, Any]:
    """The acknowledgement body answering ``request`` (its type was checked by the caller)."""
    request_id = str(request.get("request_id") or "")
    kind = str(request.get("evidence_type") or "")
    if mode == "silent":  # taken, never answered: the gateway's time runs out
        return {"message_id": request_id, "status": "received", "received_at": now.isoformat()}
    if kind not in agency.issues_evidence:
        return _refusal(request_id, "not_issued")
    if mode == "refuse":
        return _refusal(request_id, "refused")
    subject = request.get("subject")
    persona = _persona(subject if isinstance(subject, dict) else {})
    record = None if persona is None else _RECORDS[kind](persona)
    if record is None:
        return _refusal(request_id, "no_record")
    return {
        "type": EVIDENCE_DOCUMENT,
        "request_id": request_id,
        "evidence_type": kind,
        "issuer": agency.id,
        "issued_at": now.isoformat(),
        "document": record,
        "sandbox": True,
    }


def _refusal(request_id: str, reason: str) -> dict[str, Any]:
    return {"type": EVIDENCE_REFUSAL, "request_id": request_id, "reason": reason}


def _persona(subject: Mapping[str, Any]) -> Persona | None:
    """The persona every identifying field of the request names, if one does (none names
    no one)."""
    if not subject:
        return None
    for persona in PERSONAS:
        if all(_matches(persona, name, str(value)) for name, value in subject.items()):
            return persona
    return None


def _matches(persona: Persona, name: str, value: str) -> bool:
    if name.startswith("document:"):
        held = persona.document(name.removeprefix("document:"))
        return held is not None and _compact(held) == _compact(value)
    if name == "names.original":  # in either script: the login's provider chose one
        return _simplified(persona.name_original) == _simplified(value)
    if name == "birth_date":
        return persona.birth_date == value
    return False  # a field the sandbox does not know names no one


@functools.cache
def _converter() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def _simplified(text: str) -> str:
    return str(_converter().convert(text))


def _compact(number: str) -> str:
    return _NOT_ALNUM.sub("", number).upper()


def _br_extract(persona: Persona) -> dict[str, Any] | None:
    org = persona.organisation
    if org is None or org.id_type != "HK_BRN":
        return None
    return {
        "business_registration_number": org.number,
        "business_name": {"en": org.name_en, "zh-Hant": org.name_zh},
        "status": "live",
        "representative": persona.name_original,
    }


def _resident_status(persona: Persona) -> dict[str, Any] | None:
    number = persona.document("MO_BIR")
    if number is None:
        return None
    return {
        "bir_number": number,
        "name": persona.name_original,
        "birth_date": persona.birth_date,
        "status": "permanent_resident" if number[:1] in "157" else "resident",
    }


def _residence_permit(persona: Persona) -> dict[str, Any] | None:
    number = persona.document("RESIDENCE_PERMIT")
    if number is None:
        return None
    return {
        "permit_number": number,
        "name": persona.name_original,
        "issuing_authority": "广州市公安局",
        "status": "valid",
        "holder_of": {"810000": "HK", "820000": "MO"}.get(number[:6], "?"),
    }


_RECORDS: dict[str, Callable[[Persona], dict[str, Any] | None]] = {
    "hk-br-extract": _br_extract,
    "mo-resident-status": _resident_status,
    "gd-residence-permit": _residence_permit,
}
