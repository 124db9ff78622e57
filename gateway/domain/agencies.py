"""A partner agency as the use cases see it (its keys stay in the trust layer)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# What an agency may receive: its jurisdiction's own format, another registered
# jurisdiction's (by code: gateway.jurisdictions.Jurisdictions.receivable), or canonical JSON.
CANONICAL_FORMAT = "canonical"


@dataclass(frozen=True, slots=True)
class Agency:
    """``receives`` names the format forwards reach it in: a codec key (``HK``, ``MO``,
    ``GD``, ``canonical``); left empty, its jurisdiction's own format."""

    id: str
    jurisdiction: str
    names: Mapping[str, str]
    endpoint: str | None = None
    matters: tuple[str, ...] = ()  # deny by default; "*" for every matter
    receives: str = ""
    issues_evidence: tuple[str, ...] = ()  # evidence types it issues (mappings/evidence.yaml)

    def __post_init__(self) -> None:
        if not self.receives:
            object.__setattr__(self, "receives", self.jurisdiction)

    def may_handle(self, matter: str) -> bool:
        return "*" in self.matters or matter in self.matters

    def issues(self, evidence_type: str) -> bool:
        return evidence_type in self.issues_evidence
