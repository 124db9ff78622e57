"""Plug-ins: what a build may add to the gateway without the gateway importing it.

The sandbox (``gateway.sandbox``) and the conformance kit (``gateway.conformance``) are
plug-ins. No production module imports them (an import contract in ``pyproject.toml`` says
so) and the production image leaves them out. Each declares one entry point in the group
:data:`GROUP` (``[project.entry-points."gba_gateway.extensions"]``), naming a :class:`Plugin`:

- ``register_commands`` adds its commands to ``gba-gateway`` (``sandbox ...``,
  ``conformance ...``); a known plug-in that is absent leaves a command that says so;
- ``extension`` gives :func:`~gateway.bootstrap.create_app` an :class:`Extension` for the
  settings, or None. Production mode loads no plug-in into the application;
  sandbox mode requires the ``sandbox`` plug-in's extension.

A plug-in whose entry point is declared but whose package was left out of the build (the
production image installs the same ``pyproject.toml`` without the packages) counts as absent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Protocol

from gateway.domain.errors import ConfigurationError

if TYPE_CHECKING:
    from aiohttp import web

    from gateway.domain.matters import Matter
    from gateway.services.ports import Clock, MatterCatalog
    from gateway.settings import Settings
    from gateway.store.unit_of_work import SqlUnitOfWorkFactory
    from gateway.trust.certificates import TrustAnchors
    from gateway.trust.keystore import KeyRing

GROUP = "gba_gateway.extensions"
# The plug-ins this project ships, and how to name each when it is not installed.
KNOWN = {"sandbox": "the sandbox", "conformance": "the conformance kit"}


@dataclass(frozen=True, slots=True)
class Wiring:
    """What the gateway hands an extension when it installs it into the application."""

    settings: Settings
    ring: KeyRing
    uow: SqlUnitOfWorkFactory
    clock: Clock
    anchors: TrustAnchors | None


class Extension(Protocol):
    """What an extension adds to one application, at three points of ``create_app``."""

    name: str

    def trust_anchors(self, settings: Settings) -> TrustAnchors | None:
        """Anchors to use instead of ``trust_anchors_dir``'s (None: the configured ones)."""

    def catalog(self, catalog: MatterCatalog) -> MatterCatalog:
        """The matter catalog the use cases see (the given one, or a view over it)."""

    def install(self, app: web.Application, wiring: Wiring) -> None:
        """Routes, cleanup contexts, middlewares and app keys, before the gateway's own."""


@dataclass(frozen=True, slots=True)
class Plugin:
    """One optional package, as its entry point declares it."""

    name: str
    register_commands: Callable[[Any], None] | None = None
    extension: Callable[[Settings], Extension | None] | None = None
    # Agencies the plug-in registers (``mappings check --sandbox-agencies``).
    agency_ids: tuple[str, ...] = ()
    # A sample application for a matter: (matter, format, persona id or None) -> canonical.
    sample_application: Callable[[Matter, str, str | None], dict[str, Any]] | None = None


def _load(entry: EntryPoint) -> Plugin | None:
    try:
        plugin = entry.load()
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (entry.module == missing or entry.module.startswith(missing + ".")):
            return None  # declared in the metadata, left out of this build
        raise
    if not isinstance(plugin, Plugin):
        raise ConfigurationError(f"entry point {entry.name} in {GROUP} is not a Plugin")
    return plugin


def plugins() -> dict[str, Plugin]:
    """The plug-ins installed in this build, by name."""
    found = {}
    for entry in entry_points(group=GROUP):
        plugin = _load(entry)
        if plugin is not None:
            found[entry.name] = plugin
    return found


def not_installed(name: str) -> str:
    return f"{KNOWN.get(name, name)} is not installed in this build"


def plugin(name: str) -> Plugin:
    """One plug-in, or a ConfigurationError saying that this build does not have it."""
    found = plugins().get(name)
    if found is None:
        raise ConfigurationError(not_installed(name))
    return found


def app_extensions(settings: Settings) -> tuple[Extension, ...]:
    """The extensions ``create_app`` installs when it is given none: none in production
    mode (no plug-in is even imported), the sandbox's in sandbox mode."""
    if not settings.sandbox:
        return ()
    factory = plugins().get("sandbox", Plugin("sandbox")).extension
    extension = factory(settings) if factory is not None else None
    if extension is None:
        raise ConfigurationError("sandbox mode: " + not_installed("sandbox"))
    return (extension,)
