"""A partner agency as the use cases see it (its keys stay in the trust layer)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Agency:
    id: str
    jurisdiction: str
    names: Mapping[str, str]
    endpoint: str | None = None
    matters: tuple[str, ...] = ()  # deny by default; "*" for every matter

    def may_handle(self, matter: str) -> bool:
        return "*" in self.matters or matter in self.matters
