"""Jurisdictions: everything specific to Hong Kong, Macau, Guangdong (or a fourth), found in
one place.

Each jurisdiction is one folder (``adapters/hk``, ``adapters/macau``, ``adapters/guangdong``)
whose package exports one :class:`JurisdictionAdapter` named ``ADAPTER``: its code, the name
of its native format, its identity provider and profile, its codec, the folder holding its
field map and schemas, and the data the sandbox plug-in needs to imitate it. The gateway
finds jurisdictions through one registration point:

- the entry-point group :data:`GROUP` (``[project.entry-points."gba_gateway.jurisdictions"]``
  in ``pyproject.toml``), one entry naming each package's ``ADAPTER``; and
- for a jurisdiction that is not packaged, the setting ``jurisdiction_folders``: folders each
  holding such a package (an ``__init__.py`` exporting ``ADAPTER``), which
  :func:`configure` adds for the process.

Jurisdictions are code, as installed packages are: the registry is process-wide and read once
(:func:`registered`, until :func:`configure` changes the folders). This module imports the
standard library and the domain only, so every layer above the domain may ask it; it never
imports an adapter by name.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from gateway.domain.agencies import CANONICAL_FORMAT
from gateway.domain.errors import ConfigurationError

GROUP = "gba_gateway.jurisdictions"


class IdentityReading(Protocol):
    """What the identity federation needs of a profile (:class:`gateway.mapping.identity.
    IdentityProfile`): the provider it reads and the jurisdiction it vouches for."""

    provider: str
    jurisdiction: str

    def identity(self, claims: Mapping[str, Any], *, issuer: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class SandboxIdentityProvider:
    """How the sandbox imitates the jurisdiction's identity provider: plain data and two
    functions of a sandbox persona (``gateway.sandbox.personas.Persona``, read by attribute:
    adapters never import the sandbox)."""

    title: str  # shown on the persona picker
    signing_alg: str
    subject_type: str  # "public" or "pairwise"
    acr: tuple[str, str, str]  # for assurance low, substantial, high
    amr: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    scopes: tuple[str, ...]
    claims: tuple[str, ...]
    locales: tuple[str, ...]
    subject: Callable[[Any, str], str]  # (persona, client id) -> sub
    profile: Callable[[Any], dict[str, Any]]  # persona -> the profile claims
    par: bool = False  # offers pushed authorization requests


@dataclass(frozen=True, slots=True)
class JurisdictionAdapter:
    """One jurisdiction, as its folder declares it."""

    code: str  # HK, MO, GD: ISO 3166 where one exists
    format: str  # the native format's name: --format, mappings' ``format:``, trust folders
    provider: str  # the identity provider's name: /auth/{provider}/login
    folder: Path  # where its field maps (fields/) and schemas (schemas/) live
    # (its folder, mappings_dir, ...) -> its DocumentCodec; called by load_codec
    codec: Callable[..., Any]
    identity: IdentityReading | None = None
    names: Mapping[str, str] = field(default_factory=dict)  # by language tag
    calling_code: str = ""  # the telephone country code (852)
    trunk_prefix: str = ""  # dialled before a national number, left out after the code (0)
    # Its working days: year -> a ``holidays`` calendar (is_working_day), for time limits.
    working_days: Callable[[int], Any] | None = None
    sandbox_idp: SandboxIdentityProvider | None = None
    # The sandbox persona a sample in this format is for when none is named.
    sample_persona: str | None = None
    order: int = 100  # where it is listed among the others (entry points come unordered)

    def load_codec(self, mappings_dir: Path, *more: Any) -> Any:
        """Its codec, reading its own files from ``folder`` (the jurisdiction-neutral ones,
        such as the canonical JSON Schema, from ``mappings_dir``)."""
        return self.codec(self.folder, mappings_dir, *more)

    @property
    def fields_dir(self) -> Path:
        return self.folder / "fields"

    @property
    def schemas_dir(self) -> Path:
        return self.folder / "schemas"


@dataclass(frozen=True)
class Jurisdictions:
    """Every registered jurisdiction, in their ``order``, looked up by code, format or
    identity provider."""

    adapters: tuple[JurisdictionAdapter, ...]

    def __post_init__(self) -> None:
        problems = []
        for attr in ("code", "format", "provider"):
            seen: set[str] = set()
            for adapter in self.adapters:
                value = getattr(adapter, attr)
                if value in seen:
                    problems.append(f"two jurisdictions have the {attr} {value!r}")
                seen.add(value)
        if problems:
            raise ConfigurationError("; ".join(problems))

    def __iter__(self) -> Iterator[JurisdictionAdapter]:
        return iter(self.adapters)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(a.code for a in self.adapters)

    @property
    def formats(self) -> tuple[str, ...]:
        return tuple(a.format for a in self.adapters)

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(a.provider for a in self.adapters if a.identity is not None)

    def by_code(self, code: str) -> JurisdictionAdapter:
        """The jurisdiction with this code (any case); KeyError if none."""
        for adapter in self.adapters:
            if adapter.code == code.upper():
                return adapter
        raise KeyError(code)

    def by_format(self, name: str) -> JurisdictionAdapter:
        for adapter in self.adapters:
            if adapter.format == name.lower():
                return adapter
        raise KeyError(name)

    def by_provider(self, name: str) -> JurisdictionAdapter:
        for adapter in self.adapters:
            if adapter.provider == name:
                return adapter
        raise KeyError(name)

    def format_codes(self) -> dict[str, str]:
        """Format name -> jurisdiction code (``{"hk": "HK", ...}``)."""
        return {a.format: a.code for a in self.adapters}

    def parse_code(self, text: str) -> str:
        """A registered jurisdiction code, or ValueError naming the text."""
        try:
            return self.by_code(text).code
        except KeyError:
            raise ValueError(f"unknown jurisdiction {text!r}") from None

    def receivable(self) -> tuple[str, ...]:
        """What an agency may declare it receives: a jurisdiction's code (its format's
        message) or ``canonical``."""
        return (*self.codes, CANONICAL_FORMAT)

    def identity_profiles(self) -> dict[str, IdentityReading]:
        return {a.provider: a.identity for a in self.adapters if a.identity is not None}


_folders: tuple[Path, ...] = ()
_registered: Jurisdictions | None = None


def configure(folders: Iterable[Path | str]) -> None:
    """Add the settings' ``jurisdiction_folders`` for this process (idempotent)."""
    global _folders, _registered
    extra = tuple(Path(f).resolve() for f in folders if Path(f).resolve() not in _folders)
    if extra:
        _folders, _registered = (*_folders, *extra), None


def reset() -> None:
    """Forget the configured folders (tests); the entry points stay."""
    global _folders, _registered
    _folders, _registered = (), None


def registered() -> Jurisdictions:
    """The jurisdictions of the entry-point group (by their ``order``), then those of the
    configured folders. A folder declaring the code of an installed jurisdiction replaces it
    (a reviewed copy of ``adapters/hk``, say, to try a changed field map)."""
    global _registered
    if _registered is None:
        entries = _entries()
        if not entries:  # metadata of a build from before the group existed
            raise ConfigurationError(
                f"no jurisdiction is installed (entry points {GROUP}): reinstall the package "
                "(make .venv/.installed, or pip install -e .)"
            )
        installed = [_checked(entry.load(), f"entry point {entry.name}") for entry in entries]
        installed.sort(key=lambda adapter: (adapter.order, adapter.format))
        found = {adapter.code: adapter for adapter in installed}
        for folder in _folders:  # a folder of an installed code takes its place
            adapter = _from_folder(folder)
            found[adapter.code] = adapter
        _registered = Jurisdictions(tuple(found.values()))
    return _registered


def for_settings(settings: Any) -> Jurisdictions:
    """The registry with the settings' ``jurisdiction_folders`` added (:func:`configure`)."""
    configure(settings.jurisdiction_folders)
    return registered()


def _entries() -> list[Any]:
    return list(entry_points(group=GROUP))


def _checked(adapter: object, where: str) -> JurisdictionAdapter:
    if not isinstance(adapter, JurisdictionAdapter):
        raise ConfigurationError(f"{where} in {GROUP} is not a JurisdictionAdapter")
    return adapter


def _from_folder(folder: Path) -> JurisdictionAdapter:
    """The ``ADAPTER`` of the package in ``folder``, imported under its folder name."""
    init = folder / "__init__.py"
    if not init.is_file():
        raise ConfigurationError(f"jurisdiction folder {folder} has no __init__.py")
    name = f"gba_jurisdiction_{folder.name}"
    module = sys.modules.get(name)
    if module is None or getattr(module, "__file__", None) != str(init):
        spec = importlib.util.spec_from_file_location(name, init)
        if spec is None or spec.loader is None:
            raise ConfigurationError(f"jurisdiction folder {folder} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return _checked(getattr(module, "ADAPTER", None), f"folder {folder}")


__all__ = [
    "GROUP",
    "IdentityReading",
    "JurisdictionAdapter",
    "Jurisdictions",
    "SandboxIdentityProvider",
    "configure",
    "for_settings",
    "registered",
    "reset",
]
