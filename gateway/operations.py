"""Operator commands on the database: ``gba-gateway agencies ...`` and ``audit verify``.

Each command opens the configured database (the same settings as ``serve``; ``--sandbox``
for the sandbox's SQLite file), does one transaction and prints what it did. A revocation
takes effect for every gateway process at the next request: keys are read per request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway import extensions, jurisdictions
from gateway.bootstrap import database_url, load_keyring, trust_anchors
from gateway.domain.documents import problem
from gateway.domain.errors import ConfigurationError, NotFoundError, ValidationFailedError
from gateway.settings import Settings
from gateway.store.audit import verify_stored_chain
from gateway.store.database import create_engine, create_schema
from gateway.store.unit_of_work import SqlUnitOfWorkFactory
from gateway.trust.registry import registration

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class KeySource:
    jwk_file: Path | None = None
    certificate_file: Path | None = None
    kid: str | None = None
    not_before: str | None = None
    not_after: str | None = None

    def entry(self) -> dict[str, Any]:
        if (self.jwk_file is None) == (self.certificate_file is None):
            raise ConfigurationError("give exactly one of --jwk FILE or --certificate FILE")
        entry: dict[str, Any] = {
            "kid": self.kid,
            "not_before": self.not_before,
            "not_after": self.not_after,
        }
        try:
            if self.jwk_file is not None:
                entry["jwk"] = json.loads(self.jwk_file.read_text("utf-8"))
            else:
                assert self.certificate_file is not None
                entry["certificate"] = self.certificate_file.read_text("ascii")
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read the key: {exc}") from None
        return entry


async def _store(settings: Settings) -> SqlUnitOfWorkFactory:
    engine = create_engine(database_url(settings), schema=settings.database_schema or None)
    await create_schema(engine)
    return SqlUnitOfWorkFactory(engine)


def _registered(settings: Settings, spec: dict[str, Any], now: datetime) -> Any:
    reg = registration(
        spec,
        anchors=trust_anchors(settings),
        now=now,
        sandbox=settings.sandbox,
        egress=settings.egress,
    )
    if reg.problems:
        listed = ", ".join(f"{p.pointer or '/'} {p.code}" for p in reg.problems)
        raise ConfigurationError(f"the registration is not valid: {listed}")
    return reg


async def agencies_add(settings: Settings, spec: dict[str, Any], key: KeySource, say: Say) -> None:
    now = datetime.now(UTC)
    reg = _registered(settings, {**spec, "keys": [key.entry()]}, now)
    store = await _store(settings)
    try:
        async with store() as uow:
            await uow.agencies.register(reg, now)
            await uow.commit()
    finally:
        await store.engine.dispose()
    say(f"registered {reg.agency.id} ({reg.agency.jurisdiction}) with key {reg.keys[0].kid}")


async def agencies_list(settings: Settings, say: Say) -> None:
    store = await _store(settings)
    try:
        async with store() as uow:
            agencies = await uow.agencies.all()
            keys = await uow.agencies.keys()
    finally:
        await store.engine.dispose()
    now = datetime.now(UTC)
    for agency, sandbox in agencies:
        mark = " [sandbox]" if sandbox else ""
        say(f"{agency.id}  {agency.jurisdiction}  {agency.names.get('en', '')}{mark}")
        say(f"    receives: {agency.receives}")
        say(f"    matters: {', '.join(agency.matters) or '(none: deny by default)'}")
        if agency.issues_evidence:
            say(f"    issues evidence: {', '.join(agency.issues_evidence)}")
        for owner, spec in keys:
            if owner != agency.id:
                continue
            key = spec.verification_key(owner)
            state = (
                "revoked" if spec.revoked_at else "valid" if key.valid_at(now) else "not valid now"
            )
            until = spec.not_after.isoformat() if spec.not_after else "open-ended"
            say(f"    key {spec.kid}  {key.alg}  {state}  until {until}")


async def agencies_revoke(settings: Settings, kid: str, say: Say) -> None:
    now = datetime.now(UTC)
    store = await _store(settings)
    try:
        async with store() as uow:
            if not await uow.agencies.revoke(kid, now):
                raise NotFoundError(f"no key {kid!r} is registered")
            await uow.commit()
    finally:
        await store.engine.dispose()
    say(f"revoked {kid} as of {now.isoformat(timespec='seconds')}")


async def agencies_rotate(
    settings: Settings, agency_id: str, key: KeySource, overlap: timedelta, say: Say
) -> None:
    """Add a new key; the agency's other keys stay valid for ``overlap``, then end."""
    now = datetime.now(UTC)
    store = await _store(settings)
    try:
        async with store() as uow:
            agency = await uow.agencies.get(agency_id)
            if agency is None:
                raise NotFoundError(f"no agency {agency_id!r} is registered")
            spec = {
                "agency_id": agency.id,
                "jurisdiction": agency.jurisdiction,
                "names": dict(agency.names),
                "endpoint": agency.endpoint,
                "matters": list(agency.matters),
                "receives": agency.receives,
                "issues_evidence": list(agency.issues_evidence),
                "keys": [key.entry()],
            }
            reg = _registered(settings, spec, now)
            new_key = reg.keys[0]
            await uow.agencies.add_key(agency.id, new_key, now)
            retired = await uow.agencies.retire_others(agency.id, new_key.kid, now + overlap)
            await uow.commit()
    finally:
        await store.engine.dispose()
    say(
        f"added {new_key.kid} to {agency_id}; {retired} older key(s) end at "
        f"{(now + overlap).isoformat(timespec='seconds')}"
    )


async def audit_verify(
    settings: Settings, jwks_file: Path | None, say: Say, checkpoints_file: Path | None = None
) -> bool:
    """Verify the stored audit chain against its signed checkpoints; True when intact.

    ``checkpoints_file`` holds checkpoints kept elsewhere (as served by
    ``/v1/audit/checkpoints``); they are checked too.
    """
    archived: list[str] = []
    if checkpoints_file is not None:
        served = json.loads(await asyncio.to_thread(checkpoints_file.read_text, "utf-8"))
        archived = [item["token"] for item in served.get("items", [])]
    if jwks_file is not None:
        jwks = json.loads(await asyncio.to_thread(jwks_file.read_text, "utf-8"))
    else:
        jwks = load_keyring(settings).jwks()
    store = await _store(settings)
    try:
        report = await verify_stored_chain(store, jwks, archived)
    finally:
        await store.engine.dispose()
    if report.ok:
        say(f"audit chain intact: {report.count} entries, head {report.head[:16]}…")
        return True
    say(
        f"audit chain BROKEN at seq {report.seq}: {report.problem} ({report.detail}); "
        f"{report.count} entries checked"
    )
    return False


def formats(settings: Settings) -> tuple[str, ...]:
    """``canonical`` and each registered jurisdiction's native format (hk, macau, ...)."""
    return ("canonical", *jurisdictions.for_settings(settings).formats)


def mappings_check(settings: Settings, *, sandbox_agencies: bool, say: Say) -> bool:
    """Load and check every matter, field mapping and schema; True when all are sound.
    With ``sandbox_agencies``, every route must name an agency of the sandbox plug-in."""
    from gateway.mapping.check import check_mappings

    known = list(extensions.plugin("sandbox").agency_ids) if sandbox_agencies else None
    problems = check_mappings(
        settings.mappings_dir,
        known_agencies=known,
        jurisdictions=jurisdictions.for_settings(settings),
    )
    for line in problems:
        say(line)
    say(f"mappings: {len(problems)} problem(s)" if problems else "mappings: all sound")
    return not problems


def _codec(settings: Settings, name: str) -> Any:
    from gateway.bootstrap import codecs

    if name not in formats(settings):
        raise ConfigurationError(f"unknown format {name!r}; known: {', '.join(formats(settings))}")
    registered = jurisdictions.for_settings(settings).format_codes()
    return codecs(settings)[registered.get(name, "canonical")]


def render(settings: Settings, document: dict[str, Any], fmt: str) -> bytes:
    """A canonical document in ``fmt``: canonical JSON, or a jurisdiction's own format (HK
    and Macau XML; Guangdong's is the canonical JSON)."""
    codec = _codec(settings, fmt)
    if not hasattr(codec, "to_native"):  # a JSON format: the canonical document itself
        return json.dumps(document, ensure_ascii=False, indent=2).encode() + b"\n"
    native = codec.to_native(document)
    carried = codec.decode(native).document.get("particulars", {})
    lost = _lost(document.get("particulars", {}), carried, "/particulars")
    if lost:  # never hand out a document that silently dropped what the matter needs
        raise ValidationFailedError(
            f"the {fmt} format cannot carry {len(lost)} particular value(s) of this matter; "
            "use --format canonical or guangdong",
            errors=[problem(pointer, "not_in_format") for pointer in lost],
        )
    return native


def _lost(sent: Any, carried: Any, pointer: str) -> list[str]:
    """Pointers of the values in ``sent`` that ``carried`` lacks: a particular, or a member of
    one (an address's district, a money's currency), that the format did not write."""
    if isinstance(sent, dict):
        if not isinstance(carried, dict):
            return [pointer]
        return [
            lost
            for key, value in sent.items()
            for lost in _lost(value, carried.get(key, _ABSENT), f"{pointer}/{key}")
        ]
    if sent is None or (isinstance(sent, str) and not sent.strip()):
        return []  # blank is absent, in the canonical model as in the formats
    return [pointer] if carried is _ABSENT or carried is None else []


_ABSENT: Any = object()


def mappings_schema(settings: Settings, fmt: str) -> bytes:
    """The XSD of a native XML format as its codec generated it (what ``GET /v1/schemas``
    serves and the gateway validates with)."""
    document = getattr(_codec(settings, fmt), "schema_document", None)
    if document is None:
        raise NotFoundError(f"the {fmt} format has no XSD")
    return bytes(document)


def mappings_translate(settings: Settings, source: str, target: str, data: bytes) -> bytes:
    """Translate a document from one format to another through the canonical model."""
    decoded = _codec(settings, source).decode(data)
    if decoded.problems:
        raise ValidationFailedError(
            f"{len(decoded.problems)} problem(s) found", errors=decoded.problems
        )
    return render(settings, decoded.document, target)


def mappings_sample(settings: Settings, code: str, fmt: str, persona_id: str | None) -> bytes:
    """A sample application for a matter that the running sandbox accepts (the sandbox
    plug-in builds it from a persona)."""
    from gateway.domain.values import local_date
    from gateway.mapping.catalog import Catalog

    sample = extensions.plugin("sandbox").sample_application
    if sample is None:
        raise ConfigurationError("the sandbox plug-in gives no sample applications")
    matter = Catalog.load(settings.mappings_dir / "matters").get(
        code, local_date(datetime.now(UTC))
    )
    return render(settings, sample(matter, fmt, persona_id), fmt)


def _masked(number: str) -> str:
    """Enough of an identity number to find it, not enough to read it off a screen."""
    return number[:2] + "*" * max(len(number) - 4, 1) + number[-2:]


async def identity_conflicts(settings: Settings, say: Say) -> None:
    """Identity links a login asserted but the gateway would not merge: for review."""
    store = await _store(settings)
    try:
        async with store() as uow:
            conflicts = await uow.identities.conflicts()
    finally:
        await store.engine.dispose()
    if not conflicts:
        say("no identity conflicts to review")
    for link in conflicts:
        say(
            f"{link.at.isoformat()}  {link.person_id}  {link.document.type.value} "
            f"{_masked(link.document.number)}  from {link.source} ({link.assurance.value}): "
            f"{link.note}"
        )
