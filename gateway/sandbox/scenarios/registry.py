"""Every scenario, in the order ``run all`` runs them."""

from __future__ import annotations

from gateway.sandbox.scenarios.base import Scenario
from gateway.sandbox.scenarios.certificates import CERTIFICATE
from gateway.sandbox.scenarios.channels import COUNTER_SUBMISSION
from gateway.sandbox.scenarios.consent import CONSENT_WITHDRAWN
from gateway.sandbox.scenarios.corrections import AUTOMATIC_OVERTURNED, SUPPLEMENT_ROUNDS
from gateway.sandbox.scenarios.evidence import EVIDENCE
from gateway.sandbox.scenarios.materials import MATERIALS
from gateway.sandbox.scenarios.matters import EVERY_MATTER
from gateway.sandbox.scenarios.outage import PARTNER_OUTAGE
from gateway.sandbox.scenarios.owed import OWED_MATERIAL
from gateway.sandbox.scenarios.residents import AGENT_SUBMISSION, LOW_ASSURANCE
from gateway.sandbox.scenarios.review import JOINT_REJECTION, SUPPLEMENT
from gateway.sandbox.scenarios.told import AGENCY_CASE_SEEN, RESIDENT_TOLD

SCENARIOS: tuple[Scenario, ...] = (
    EVERY_MATTER,
    SUPPLEMENT,
    JOINT_REJECTION,
    MATERIALS,
    PARTNER_OUTAGE,
    AGENT_SUBMISSION,
    LOW_ASSURANCE,
    CERTIFICATE,
    SUPPLEMENT_ROUNDS,
    AUTOMATIC_OVERTURNED,
    RESIDENT_TOLD,
    AGENCY_CASE_SEEN,
    EVIDENCE,
    COUNTER_SUBMISSION,
    CONSENT_WITHDRAWN,
    OWED_MATERIAL,
)


def find(name: str) -> tuple[Scenario, ...]:
    """``all`` or one scenario by name; KeyError when there is none of that name."""
    if name == "all":
        return SCENARIOS
    for scenario in SCENARIOS:
        if scenario.name == name:
            return (scenario,)
    raise KeyError(name)
