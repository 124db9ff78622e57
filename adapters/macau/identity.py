"""Macao One Account (澳門公共服務一戶通): its claims -> the canonical identity.

One Account holds the resident's BIR (identity card) number and names in Chinese and
Portuguese; a resident who also holds a Mainland travel permit or a residence permit may have
them on the account. ``acr`` grades how the account was opened and how the user logged in
(password, face recognition, eSignCloud; identity_security.md §1.4).
"""

from __future__ import annotations

from gateway.domain.identity import CanonicalIdentity
from gateway.domain.matters import Assurance
from gateway.mapping.identity import ClaimReader, IdentityProfile, person_names

ACR_VALUES = {
    "mo:loa:1": Assurance.LOW,
    "mo:loa:2": Assurance.SUBSTANTIAL,
    "mo:loa:3": Assurance.HIGH,
}


def _read(r: ClaimReader, issuer: str, assurance: Assurance, acr: str) -> CanonicalIdentity | None:
    subject = r.claim("sub")
    bir = r.document("MO_BIR", r.claim("bir_no"), "bir_no")
    hrp = r.document("HRP", r.claim("hrp_no", required=False), "hrp_no")
    permit = r.document("RESIDENCE_PERMIT", r.claim("rp_no", required=False), "rp_no")
    chinese = r.claim("name_zh", required=False)
    portuguese = r.claim("name_pt", required=False)
    if not chinese and not portuguese:
        r.problems.append("claims name_zh and name_pt are both missing")
    born = r.birth_date(r.claim("birthdate"), "birthdate")
    if subject is None or bir is None or born is None or r.problems:
        return None
    names = person_names(chinese or portuguese or "", simplified_original=False, latin=portuguese)
    documents = tuple(d for d in (bir, hrp, permit) if d is not None)
    return CanonicalIdentity(
        provider="macau",
        issuer=issuer,
        subject=subject,
        jurisdiction="MO",
        names=names,
        birth_date=born,
        documents=documents,
        assurance=assurance,
        acr=acr,
    )


PROFILE = IdentityProfile(provider="macau", jurisdiction="MO", acr_values=ACR_VALUES, read=_read)
