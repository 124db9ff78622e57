"""Agency registrations: who an agency is, which keys are its own, what it may do.

A registration comes from the production registry file (YAML), the ``gba-gateway agencies``
command, or — in sandbox mode only — ``POST /sandbox/v1/agencies``. Each key is either a
public JWK or an X.509 chain that must chain to that jurisdiction's trust anchor. The
``endpoint`` must pass the egress policy as written (:meth:`EgressPolicy.url_refusal`:
https in production unless the operator lists the host in ``egress_allow_http``, and no
refused address when the host is an IP literal); where its name resolves is judged again at
every connection. The
registrations are stored in the database (``gateway.store.registry``) so that every gateway
process sees a revocation at once; ``keyid`` is an exact-match lookup there and nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from gateway import jurisdictions
from gateway.domain.agencies import Agency
from gateway.domain.documents import problem
from gateway.domain.errors import (
    CertificateError,
    ConfigurationError,
    FieldProblem,
    GatewayError,
)
from gateway.egress.policy import EgressPolicy
from gateway.trust.keys import (
    KeyMisuseError,
    VerificationKey,
    alg_for_public_key,
    public_jwk,
    public_key_from_jwk,
)

MAX_KID = 200
_AGENCY_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_EVIDENCE_CODE = re.compile(r"[a-z]{2}(?:-[a-z0-9]+)+")  # mappings/evidence.yaml codes


@dataclass(frozen=True, slots=True)
class KeySpec:
    """A registered public key as stored: its JWK, and the chain it was validated from."""

    kid: str
    jwk: dict[str, Any]
    certificate: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    revoked_at: datetime | None = None
    sandbox: bool = False

    def verification_key(self, owner: str) -> VerificationKey:
        public = public_key_from_jwk(self.jwk)
        return VerificationKey(
            kid=self.kid,
            owner=owner,
            public_key=public,
            alg=alg_for_public_key(public),
            not_before=self.not_before,
            not_after=self.not_after,
            revoked_at=self.revoked_at,
            sandbox=self.sandbox,
        )


@dataclass(frozen=True, slots=True)
class Registration:
    agency: Agency
    keys: tuple[KeySpec, ...] = ()
    sandbox: bool = False
    problems: tuple[FieldProblem, ...] = field(default=(), compare=False)


def _when(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if when.tzinfo is None:
        raise ValueError("key validity times need a time zone")
    return when


def _key_spec(
    entry: Mapping[str, Any],
    anchors: Any,
    agency: tuple[str, str],
    now: datetime,
    sandbox: bool,
) -> KeySpec:
    """One key entry: ``{"jwk": {...}}`` or ``{"certificate": PEM chain}``, plus validity."""
    agency_id, jurisdiction = agency
    not_before, not_after = _when(entry.get("not_before")), _when(entry.get("not_after"))
    certificate = entry.get("certificate")
    if certificate:
        if anchors is None:
            raise ValueError("certificates need configured trust anchors")
        validated = anchors.validate_chain(
            jurisdiction, [str(certificate).encode()], now, agency_id=agency_id
        )
        kid = str(entry.get("kid") or f"x509-{validated.fingerprint[:16]}")
        jwk = public_jwk(validated.public_key, kid=kid)
        not_before = max(filter(None, (not_before, validated.not_before)))
        not_after = min(filter(None, (not_after, validated.not_after)))
    else:
        jwk = dict(entry["jwk"])
        kid = str(entry.get("kid") or jwk.get("kid") or "")
        public_key_from_jwk(jwk)  # refuses private, symmetric and disallowed keys
    if not kid or len(kid) > MAX_KID or not kid.isprintable():
        raise ValueError(f"every key needs a printable kid of at most {MAX_KID} characters")
    jwk["kid"] = kid
    return KeySpec(
        kid,
        jwk,
        str(certificate) if certificate else None,
        not_before,
        not_after,
        _when(entry.get("revoked_at")),
        sandbox,
    )


def registration(
    spec: Mapping[str, Any],
    *,
    anchors: Any = None,
    now: datetime,
    sandbox: bool = False,
    egress: EgressPolicy | None = None,
) -> Registration:
    """Parse and check one agency registration; ValidationFailedError lists every problem.

    The endpoint is judged by ``egress``, by default the strict policy of the mode."""
    problems: list[FieldProblem] = []
    agency_id = str(spec.get("agency_id") or spec.get("id") or "")
    if not agency_id or len(agency_id) > 64 or not set(agency_id) <= _AGENCY_ID_CHARS:
        problems.append(problem("/agency_id", "wrong_type"))
    try:
        jurisdiction = jurisdictions.registered().parse_code(str(spec.get("jurisdiction", "")))
    except ValueError:
        problems.append(problem("/jurisdiction", "wrong_type"))
        jurisdiction = ""
    names = spec.get("names") or {}
    if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
        problems.append(problem("/names", "wrong_type"))
        names = {}
    matters = spec.get("matters", [])
    if not isinstance(matters, list) or not all(isinstance(m, str) for m in matters):
        problems.append(problem("/matters", "wrong_type"))
        matters = []
    endpoint = spec.get("endpoint")
    if endpoint is not None and not str(endpoint).startswith(("https://", "http://")):
        problems.append(problem("/endpoint", "wrong_type"))
    elif endpoint is not None:
        policy = egress or EgressPolicy(sandbox=sandbox)
        if policy.url_refusal(str(endpoint)) is not None:
            problems.append(problem("/endpoint", "endpoint_refused"))
    receives = spec.get("receives") or ""
    if receives and receives not in jurisdictions.registered().receivable():
        problems.append(problem("/receives", "unknown_code"))
        receives = ""
    evidence = spec.get("issues_evidence") or []
    if not isinstance(evidence, list) or not all(
        isinstance(e, str) and _EVIDENCE_CODE.fullmatch(e) for e in evidence
    ):
        problems.append(problem("/issues_evidence", "wrong_type"))
        evidence = []
    entries = spec.get("keys") or []
    if not isinstance(entries, list):
        problems.append(problem("/keys", "wrong_type"))
        entries = []
    keys = []
    for i, entry in enumerate(entries):
        try:
            keys.append(_key_spec(entry, anchors, (agency_id, jurisdiction), now, sandbox))
        except CertificateError:
            problems.append(problem(f"/keys/{i}", "untrusted_certificate"))
        except (KeyError, TypeError, ValueError, AttributeError, KeyMisuseError, GatewayError):
            problems.append(problem(f"/keys/{i}", "invalid_key"))
    if len({k.kid for k in keys}) != len(keys):
        problems.append(problem("/keys", "invalid_key"))
    agency = Agency(
        agency_id,
        jurisdiction,
        dict(names),
        endpoint,
        tuple(matters),
        receives,
        tuple(dict.fromkeys(evidence)),
    )
    return Registration(agency, tuple(keys), sandbox, tuple(problems))


def load_registry_file(
    path: Path, *, anchors: Any, now: datetime, egress: EgressPolicy | None = None
) -> list[Registration]:
    """The production registry (YAML); ConfigurationError lists every problem at once."""
    try:
        spec = yaml.load(path.read_text("utf-8"), Loader=yaml.CSafeLoader) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read the agency registry {path}: {exc}") from None
    out, problems = [], []
    for entry in spec.get("agencies", []):
        try:
            reg = registration(entry, anchors=anchors, now=now, egress=egress)
        except Exception as exc:  # a certificate problem is reported per agency
            problems.append(f"{entry.get('id', '?')}: {exc}")
            continue
        if reg.problems:
            listed = ", ".join(f"{p.pointer} {p.code}" for p in reg.problems)
            problems.append(f"{reg.agency.id or '?'}: {listed}")
        out.append(reg)
    if problems:
        raise ConfigurationError("agency registry: " + "; ".join(problems))
    return out
