"""Sandbox routing: a tester chooses which agency handles which matter.

In production a matter's route (lead and joint reviewers) is the catalog's, reviewed data in
``mappings/matters/``. In the sandbox, :class:`RoutedCatalog` stands in front of the catalog
and lets a tester send a matter's cases to their own registered agency instead — the
gateway then forwards signed traffic to that agency's endpoint like to any partner. Overrides
live in memory: a restarted sandbox routes by the catalog again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date

from gateway.domain.matters import Matter, Route
from gateway.services.ports import MatterCatalog


class RoutedCatalog:
    """A :class:`MatterCatalog` whose routes a sandbox tester may override per matter."""

    def __init__(self, catalog: MatterCatalog) -> None:
        self._catalog = catalog
        self._routes: dict[str, Route] = {}

    def set_route(self, code: str, route: Route) -> None:
        self._routes[code] = route

    def reset_route(self, code: str) -> bool:
        """Back to the catalog's route; False when the matter had none of its own."""
        return self._routes.pop(code, None) is not None

    def overridden(self, code: str) -> bool:
        return code in self._routes

    def catalog_route(self, code: str, on: date) -> Route:
        return self._catalog.get(code, on).route

    def _routed(self, matter: Matter) -> Matter:
        route = self._routes.get(str(matter.code))
        if route is None:
            return matter
        # the fields the matter declares for the agencies still handling it stay declared,
        # unless the route set in the sandbox declares their own
        kept = {a: f for a, f in matter.route.fields if a in route.handlers}
        kept.update(dict(route.fields))
        return dataclasses.replace(
            matter, route=dataclasses.replace(route, fields=tuple(kept.items()))
        )

    def get(self, code: str, on: date) -> Matter:
        return self._routed(self._catalog.get(code, on))

    def all(self, on: date) -> Sequence[Matter]:
        return [self._routed(m) for m in self._catalog.all(on)]

    def search(self, text: str, on: date) -> Sequence[Matter]:
        return [self._routed(m) for m in self._catalog.search(text, on)]
