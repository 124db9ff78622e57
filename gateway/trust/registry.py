"""The partner-agency registry: who an agency is, which keys are its own, what it may do.

``keyid`` in a signature is an exact-match lookup here and nothing more: no path, no query,
no fetch. A key belongs to exactly one agency; its algorithm comes from the key itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from gateway.domain.agencies import Agency
from gateway.domain.errors import ConfigurationError, NotFoundError, UnknownKeyError
from gateway.domain.values import Jurisdiction
from gateway.trust.keys import (
    KeyMisuseError,
    VerificationKey,
    alg_for_public_key,
    public_key_from_jwk,
)

_MAX_KID = 200


class AgencyRegistry:
    """In-memory registry; implements the AgencyDirectory port and the key resolver."""

    def __init__(self) -> None:
        self._agencies: dict[str, Agency] = {}
        self._keys: dict[str, VerificationKey] = {}

    def add(self, agency: Agency, keys: Iterable[VerificationKey]) -> None:
        Jurisdiction.parse(agency.jurisdiction)
        keys = list(keys)
        for key in keys:
            if key.owner != agency.id:
                raise ConfigurationError(f"key {key.kid} is not owned by {agency.id}")
            holder = self._keys.get(key.kid)
            if holder is not None and holder.owner != agency.id:
                raise ConfigurationError(
                    f"key id {key.kid} is already registered to another agency"
                )
        self._agencies[agency.id] = agency
        for key in keys:
            self._keys[key.kid] = key

    def agency(self, agency_id: str) -> Agency:
        try:
            return self._agencies[agency_id]
        except KeyError:
            raise NotFoundError("no such agency") from None

    def agencies(self) -> list[Agency]:
        return list(self._agencies.values())

    def resolve_key(self, kid: str) -> VerificationKey:
        key = self._keys.get(kid) if len(kid) <= _MAX_KID else None
        if key is None:
            raise UnknownKeyError("the key id is not registered")
        return key

    def keys_of(self, agency_id: str) -> list[VerificationKey]:
        return [k for k in self._keys.values() if k.owner == agency_id]


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if when.tzinfo is None:
        raise ValueError("key validity times need a time zone")
    return when


def verification_key(
    owner: str, spec: Mapping[str, Any], *, sandbox: bool = False
) -> VerificationKey:
    """A registered key from its registry entry: ``{"kid", "jwk", "not_before", "not_after"}``."""
    jwk = dict(spec["jwk"])
    kid = str(spec.get("kid") or jwk.get("kid") or "")
    if not kid or len(kid) > _MAX_KID:
        raise ConfigurationError(f"{owner}: every key needs a kid of at most {_MAX_KID} characters")
    try:
        public = public_key_from_jwk(jwk)
        alg = alg_for_public_key(public)
        return VerificationKey(
            kid=kid,
            owner=owner,
            public_key=public,
            alg=alg,
            not_before=_when(spec.get("not_before")),
            not_after=_when(spec.get("not_after")),
            revoked_at=_when(spec.get("revoked_at")),
            sandbox=sandbox,
        )
    except (KeyMisuseError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"{owner}: key {kid}: {exc}") from None


def load_registry(path: Path) -> AgencyRegistry:
    """Load the production registry file (YAML); every problem is reported at once."""
    try:
        spec = yaml.load(path.read_text("utf-8"), Loader=yaml.CSafeLoader) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read the agency registry {path}: {exc}") from None
    registry = AgencyRegistry()
    problems = []
    for entry in spec.get("agencies", []):
        try:
            agency = Agency(
                id=str(entry["id"]),
                jurisdiction=str(entry["jurisdiction"]),
                names=dict(entry.get("names", {})),
                endpoint=entry.get("endpoint"),
                matters=tuple(entry.get("matters", ())),
            )
            registry.add(agency, [verification_key(agency.id, k) for k in entry.get("keys", [])])
        except (KeyError, ValueError, ConfigurationError) as exc:
            problems.append(f"{entry.get('id', '?')}: {exc}")
    if problems:
        raise ConfigurationError("agency registry: " + "; ".join(problems))
    return registry
