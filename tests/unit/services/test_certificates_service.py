"""E-certificate use cases through the fakes: issued with an approval only, fetched by the
subject only under an ``e_certificate`` consent (refusal audited, nothing delivered), the
public status without personal data, revoked by the issuer only."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from gateway.domain.certificates import AttachedCertificate
from gateway.domain.commands import Caller
from gateway.domain.errors import (
    ConsentRequiredError,
    IllegalTransitionError,
    NotFoundError,
)
from gateway.domain.identity import Consent
from gateway.mapping.catalog import Catalog
from gateway.services import certificates
from gateway.services.certificate_revocation import RevokeCertificate, revoke_certificate
from gateway.services.handlers import record_decision
from tests.unit.services.test_handlers import (
    GD,
    HK,
    ROOT,
    World,
    _accepted_and_delivered,
    _decide,
    _world,
)

PERSON = "per_TEST"
ATTACHED = AttachedCertificate("jws", "gd-hq-csb", "gd-hq-csb-key-1", b"h.p.s", "application/jwt")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(ROOT / "mappings" / "matters")


@pytest.fixture
def world(catalog: Catalog) -> World:
    return _world(catalog)


async def _issued(world: World, *, person: str | None = PERSON) -> str:
    application_id = await _accepted_and_delivered(world)
    if person is not None:  # as if the resident had applied through the gateway

        def own(state: object) -> None:
            state.applications[application_id].applicant_id = person  # type: ignore[attr-defined]

        async with world.uow() as uow:
            uow.write(own)  # type: ignore[attr-defined]
            await uow.commit()
    cmd = dataclasses.replace(_decide(application_id), certificate=ATTACHED)
    response = await record_decision(cmd, world.deps)
    assert response.body["status"] == "approved"
    return str(response.body["certificate"]["certificate_id"])


def _consent(world: World, purpose: str = "e_certificate", matter: str | None = None) -> Consent:
    return Consent(
        id="cns_1",
        person_id=PERSON,
        purpose=purpose,
        categories=("application",),
        destinations=(),
        granted_at=world.clock.now() - timedelta(days=1),
        matter=matter,
    )


async def _grant(world: World, consent: Consent) -> None:
    async with world.uow() as uow:
        await uow.identities.add_consent(consent)
        await uow.commit()


async def test_an_approval_keeps_its_certificate_and_records_it_on_the_timeline(
    world: World,
) -> None:
    certificate_id = await _issued(world)
    (kept,) = world.uow.state.certificates.values()
    assert (kept.id, kept.issuer, kept.kid, kept.subject) == (
        certificate_id,
        "gd-hq-csb",
        "gd-hq-csb-key-1",
        f"person:{PERSON}",
    )
    types = world.uow.event_types(kept.application_id)
    assert types.index("certificate.issued") > types.index("decision.recorded")
    issued = [a for a in world.uow.state.audit if a[0] == "certificate.issued"]
    assert issued
    assert all(PERSON not in str(entry) for entry in issued)


async def test_a_rejection_cannot_carry_a_certificate(world: World) -> None:
    application_id = await _accepted_and_delivered(world)
    cmd = dataclasses.replace(
        _decide(application_id, "rejected", reasons=("no",)), certificate=ATTACHED
    )
    with pytest.raises(IllegalTransitionError):
        await record_decision(cmd, world.deps)
    assert world.uow.state.certificates == {}
    assert world.uow.application(application_id).status.value == "under_review"


async def test_without_an_e_certificate_consent_nothing_is_delivered_and_it_is_audited(
    world: World,
) -> None:
    certificate_id = await _issued(world)
    await _grant(world, _consent(world, purpose="cross_border_application"))
    await _grant(world, dataclasses.replace(_consent(world), id="cns_2", matter="OTHER"))

    with pytest.raises(ConsentRequiredError):
        await certificates.my_certificate(world.deps, PERSON, certificate_id)

    kept = world.uow.state.certificates[certificate_id]
    assert kept.delivered_at is None
    assert "certificate.delivered" not in world.uow.event_types(kept.application_id)
    refused = [a for a in world.uow.state.audit if a[0] == "certificate.refused"]
    assert [(a[1], a[2]) for a in refused] == [(f"resident:{PERSON}", certificate_id)]
    listed = await certificates.my_certificates(world.deps, PERSON)
    assert [i["consent_in_force"] for i in listed["items"]] == [False]


async def test_under_consent_the_subject_gets_it_once_recorded(world: World) -> None:
    certificate_id = await _issued(world)
    await _grant(world, _consent(world))
    with pytest.raises(NotFoundError):  # someone else's
        await certificates.my_certificate(world.deps, "per_OTHER", certificate_id)

    first = await certificates.my_certificate(world.deps, PERSON, certificate_id)
    await certificates.my_certificate(world.deps, PERSON, certificate_id)

    assert first["certificate"] == "h.p.s"
    kept = world.uow.state.certificates[certificate_id]
    assert kept.delivered_at == world.clock.now()
    assert world.uow.event_types(kept.application_id).count("certificate.delivered") == 1


async def test_only_the_issuer_revokes_and_the_status_says_so_without_personal_data(
    world: World,
) -> None:
    certificate_id = await _issued(world)

    def revoke(caller: Caller, key: str) -> RevokeCertificate:
        return RevokeCertificate(caller, certificate_id, "issued in error", key, "sha-256=:x:")

    with pytest.raises(NotFoundError):
        await revoke_certificate(revoke(HK, "rev-key-1"), world.deps)
    status = await certificates.certificate_status(world.deps, certificate_id)
    assert status == {"certificate_id": certificate_id, "status": "valid", "issuer": "gd-hq-csb"}

    answer = await revoke_certificate(revoke(GD, "rev-key-2"), world.deps)
    replay = await revoke_certificate(revoke(GD, "rev-key-2"), world.deps)

    assert replay.body == answer.body
    status = await certificates.certificate_status(world.deps, certificate_id)
    assert set(status) == {"certificate_id", "status", "revoked_at", "issuer"}
    assert status["status"] == "revoked"
    kept = world.uow.state.certificates[certificate_id]
    assert world.uow.event_types(kept.application_id).count("certificate.revoked") == 1
    with pytest.raises(IllegalTransitionError):
        await revoke_certificate(revoke(GD, "rev-key-3"), world.deps)
    with pytest.raises(NotFoundError):
        await certificates.certificate_status(world.deps, "crt_NOPE")
