"""Guangdong unified identity (广东省统一身份认证平台): its claims -> the canonical identity.

A mainland resident holds a resident identity card; a Hong Kong or Macao resident logs in with
the residence permit (810000/820000) and the Mainland travel permit, and — since the
Guangdong-Hong Kong online identity mutual recognition of 2023 — may have bound the home
login (iAM Smart, One Account) to the account: ``bound_ids`` names those home documents, which
is how the gateway links an HKID to a residence permit (identity_security.md §1.5–1.6).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.domain.identity import CanonicalIdentity, Organisation
from gateway.domain.matters import Assurance
from gateway.domain.values import IdentityDocument
from gateway.mapping.identity import ClaimReader, IdentityProfile, person_names

ACR_VALUES = {
    "gd:loa:1": Assurance.LOW,  # username and password
    "gd:loa:2": Assurance.SUBSTANTIAL,  # real-name verified
    "gd:loa:3": Assurance.HIGH,  # face recognition or CA certificate
}
CERT_TYPES = {"ID_CARD": "CN_RIC", "HK_MO_RESIDENCE_PERMIT": "RESIDENCE_PERMIT"}
BOUND_TYPES = {"HKID", "MO_BIR"}


def _bound(r: ClaimReader) -> tuple[IdentityDocument, ...]:
    value = r.claims.get("bound_ids")
    if value is None:
        return ()
    if not isinstance(value, list):
        r.problems.append("claim bound_ids is not a list")
        return ()
    out = []
    for i, item in enumerate(value):
        kind = item.get("id_type") if isinstance(item, Mapping) else None
        if not isinstance(kind, str) or kind not in BOUND_TYPES:  # a list is unhashable
            r.problems.append(f"claim bound_ids[{i}] has an unknown id_type")
            continue
        doc = r.document(kind, r.text(item.get("id_no"), f"bound_ids[{i}].id_no"), "bound_ids")
        if doc is not None:
            out.append(doc)
    return tuple(out)


def _read(r: ClaimReader, issuer: str, assurance: Assurance, acr: str) -> CanonicalIdentity | None:
    subject = r.claim("sub")
    cert_type = r.claim("cert_type")
    doc_type = CERT_TYPES.get(cert_type or "")
    if cert_type and doc_type is None:
        r.problems.append("claim cert_type is not a known certificate type")
    main = r.document(doc_type, r.claim("cert_no"), "cert_no") if doc_type else None
    hrp = r.document("HRP", r.claim("hrp_no", required=False), "hrp_no")
    name = r.claim("name")
    born = r.birth_date(r.claim("birthdate"), "birthdate")
    bound = _bound(r)
    organisation = None
    if r.claims.get("org") is not None:
        uscc = r.document("USCC", r.member("org", "uscc"), "org.uscc")
        org_name = r.member("org", "name")
        organisation = Organisation(org_name, uscc) if uscc and org_name else None
    if subject is None or main is None or name is None or born is None or r.problems:
        return None
    return CanonicalIdentity(
        provider="guangdong",
        issuer=issuer,
        subject=subject,
        jurisdiction="GD",
        names=person_names(name, simplified_original=True),
        birth_date=born,
        documents=tuple(d for d in (main, hrp) if d is not None),
        assurance=assurance,
        acr=acr,
        organisation=organisation,
        bound_documents=bound,
    )


PROFILE = IdentityProfile(
    provider="guangdong", jurisdiction="GD", acr_values=ACR_VALUES, read=_read
)
