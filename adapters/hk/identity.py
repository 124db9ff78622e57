"""Hong Kong iAM Smart (智方便): its claims -> the canonical identity.

iAM Smart gives each online service its own tokenised account id (``sub``) and, with the
user's consent, the e-ME profile: ``idNo`` (HKID without and with its check digit), ``enName``,
``chName``, ``birthDate`` (YYYYMMDD). ``acr`` tells plain iAM Smart from iAM Smart+ (signing
grade) and from an account opened without the HKID check (identity_security.md §1.3).
"""

from __future__ import annotations

from gateway.domain.identity import CanonicalIdentity, Organisation
from gateway.domain.matters import Assurance
from gateway.mapping.identity import ClaimReader, IdentityProfile, person_names

ACR_VALUES = {
    "iamsmart:basic": Assurance.LOW,
    "iamsmart": Assurance.SUBSTANTIAL,
    "iamsmart+": Assurance.HIGH,
}


def _read(r: ClaimReader, issuer: str, assurance: Assurance, acr: str) -> CanonicalIdentity | None:
    subject = r.claim("sub")
    number, check = r.member("idNo", "Identification"), r.member("idNo", "CheckDigit")
    hkid = r.document("HKID", f"{number}({check})" if number and check else None, "idNo")
    chinese = r.member("chName", "ChineseName", required=False)
    english = r.member("enName", "UnstructuredName")
    born = r.birth_date(r.claim("birthDate"), "birthDate")
    organisation = None
    if r.claims.get("orgProfile") is not None:
        brn = r.document("HK_BRN", r.member("orgProfile", "brNo"), "orgProfile.brNo")
        name = r.member("orgProfile", "chName", required=False) or r.member("orgProfile", "enName")
        organisation = Organisation(name, brn) if brn and name else None
    if subject is None or hkid is None or english is None or born is None:
        return None
    family, _, given = english.partition(",")
    names = person_names(
        chinese or english,
        simplified_original=False,
        family_name_latin=family.strip() or None,
        given_names_latin=given.strip() or None,
    )
    return CanonicalIdentity(
        provider="hk",
        issuer=issuer,
        subject=subject,
        jurisdiction="HK",
        names=names,
        birth_date=born,
        documents=(hkid,),
        assurance=assurance,
        acr=acr,
        organisation=organisation,
    )


PROFILE = IdentityProfile(provider="hk", jurisdiction="HK", acr_values=ACR_VALUES, read=_read)
