"""E-certificates (Art. 22): attached to an approval, fetched by the resident under consent,
checked by anyone, revoked by the issuer.

- ``certificate`` in a decision (:func:`attached_certificate`): verified here, against the
  deciding agency's own registered keys, before the use case's unit of work opens;
- ``GET /v1/me/certificates[/{id}]`` (resident token): the list, and the certificate itself
  only under an ``e_certificate`` consent in force (else 403, audited, nothing delivered);
- ``GET /v1/certificates/{id}/status`` (public): valid or revoked, when, and the issuer;
- ``POST /v1/certificates/{id}/revocation`` (the issuing agency, signed): revoke; anyone
  else gets 404;
- ``GET /v1/agencies/{id}/jwks.json`` (public): the keys an agency signs certificates with,
  for ``gba-gateway certificates verify --jwks``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.domain.certificates import AttachedCertificate
from gateway.domain.commands import Caller
from gateway.domain.documents import problem
from gateway.domain.errors import (
    FieldProblem,
    NotFoundError,
    UnknownKeyError,
    ValidationFailedError,
)
from gateway.services import certificates
from gateway.services.certificate_revocation import RevokeCertificate, revoke_certificate
from gateway.trust.e_certificates import (
    CertificateRefused,
    agency_jwks,
    decode_document,
    key_id,
    verify_document,
    verify_token,
)
from gateway.web.auth import signed_write
from gateway.web.bearer import authenticate_resident
from gateway.web.keys import DEPENDENCIES, SETTINGS, STORE
from gateway.web.openapi import operation
from gateway.web.problems import json_object, json_response

routes = web.RouteTableDef()

JWS_MEDIA_TYPE = "application/jwt"
_STATUS = {
    "type": "object",
    "required": ["certificate_id", "status", "issuer"],
    "additionalProperties": False,
    "properties": {
        "certificate_id": {"type": "string"},
        "status": {"enum": ["valid", "revoked"]},
        "revoked_at": {"type": "string", "format": "date-time"},
        "issuer": {"type": "string", "description": "the issuing agency's id"},
    },
}
CERTIFICATE_SCHEMA = {
    "type": "object",
    "description": "An e-certificate: a JWS signed by the approving agency's registered key "
    "(typ gba-certificate+jwt), or a signed document (base64) with its detached JWS "
    "(RFC 7515 appendix F, typ gba-certificate-signature+jws, cty = media_type)",
    "properties": {
        "jws": {"type": "string"},
        "document": {"type": "string", "contentEncoding": "base64"},
        "media_type": {"type": "string"},
        "signature": {"type": "string"},
    },
}
_MINE = {
    "type": "object",
    "properties": {
        **_STATUS["properties"],  # type: ignore[dict-item]
        "application_id": {"type": "string"},
        "matter": {"type": "string"},
        "issued_at": {"type": "string", "format": "date-time"},
        "form": {"enum": ["jws", "document"]},
        "media_type": {"type": "string"},
        "digest": {"type": "string", "description": "SHA-256 (hex) of what was signed"},
        "kid": {"type": "string"},
        "consent_in_force": {"type": "boolean"},
        "certificate": {"type": "string", "description": "the JWS (jws form)"},
        "document": {"type": "string", "description": "base64 (document form)"},
        "signature": {"type": "string", "description": "detached JWS (document form)"},
    },
}
_BEARER: dict[int, str | tuple[str, dict[str, Any]]] = {
    401: "Access token missing, invalid or expired",
}


async def attached_certificate(
    request: web.Request, caller: Caller, raw: object, decision: object
) -> tuple[AttachedCertificate | None, list[FieldProblem]]:
    """The decision's e-certificate once its signature verified against one of the deciding
    agency's own registered keys; else the problems (at ``/certificate/...``)."""
    if raw is None:
        return None, []
    if not isinstance(raw, dict):
        return None, [problem("/certificate", "wrong_type")]
    if decision != "approved":
        return None, [problem("/certificate", "certificate_not_on_approval")]
    if "jws" in raw:
        return await _jws_form(request, caller, raw.get("jws"))
    return await _document_form(request, caller, raw)


async def _jws_form(
    request: web.Request, caller: Caller, token: object
) -> tuple[AttachedCertificate | None, list[FieldProblem]]:
    pointer = "/certificate/jws"
    if not isinstance(token, str) or not token:
        return None, [problem(pointer, "wrong_type")]
    try:
        jwks = await _own_keys(request, caller, key_id(token))
        verified = verify_token(token, jwks, now=request.app[DEPENDENCIES].clock.now())
    except CertificateRefused:
        return None, [problem(pointer, "certificate_signature")]
    if verified.issuer != caller.agency_id:  # iss names the agency whose key signed it
        return None, [problem(pointer, "certificate_signature")]
    attached = AttachedCertificate(
        "jws",
        caller.agency_id,
        verified.kid,
        token.encode("ascii"),
        JWS_MEDIA_TYPE,
        None,
        verified.claims,
    )
    return attached, []


async def _document_form(
    request: web.Request, caller: Caller, raw: dict[str, Any]
) -> tuple[AttachedCertificate | None, list[FieldProblem]]:
    problems = []
    document = b""
    try:
        document = decode_document(raw.get("document"))
    except ValueError:
        problems.append(problem("/certificate/document", "invalid_value"))
    media_type = raw.get("media_type")
    if not isinstance(media_type, str) or "/" not in media_type or len(media_type) > 200:
        problems.append(problem("/certificate/media_type", "invalid_value"))
    signature = raw.get("signature")
    if not isinstance(signature, str) or not signature:
        problems.append(problem("/certificate/signature", "required"))
    if problems:
        return None, problems
    assert isinstance(signature, str)
    assert isinstance(media_type, str)
    try:
        jwks = await _own_keys(request, caller, key_id(signature))
        verified = verify_document(
            document,
            signature,
            jwks,
            now=request.app[DEPENDENCIES].clock.now(),
            media_type=media_type,
        )
    except CertificateRefused:
        return None, [problem("/certificate/signature", "certificate_signature")]
    attached = AttachedCertificate(
        "document", caller.agency_id, verified.kid, document, media_type, signature
    )
    return attached, []


async def _own_keys(request: web.Request, caller: Caller, kid: str) -> dict[str, Any]:
    """The JWKS of the one key ``kid`` when it is the caller's own, valid now (sandbox keys
    in sandbox mode only); CertificateRefused otherwise, whoever registered it."""
    try:
        key, agency = await request.app[STORE].signer(kid)
    except UnknownKeyError:
        raise CertificateRefused("unknown-kid", "the key is not registered") from None
    now = request.app[DEPENDENCIES].clock.now()
    if agency is None or agency.id != caller.agency_id or not key.valid_at(now):
        raise CertificateRefused("not-own-key", "the key is not the agency's own, valid now")
    if key.sandbox and not request.app[SETTINGS].sandbox:
        raise CertificateRefused("sandbox-key", "sandbox keys are refused outside sandbox")
    return agency_jwks([key])


@routes.get("/v1/me/certificates")
@operation(
    summary="The resident's e-certificates (without their content) and whether a consent "
    "lets them be fetched (Art. 22)",
    tag="applicant",
    responses={200: ("Certificates", {"type": "object"}), **_BEARER},
)
async def my_certificates(request: web.Request) -> web.Response:
    grant = await authenticate_resident(request)
    return json_response(
        await certificates.my_certificates(
            request.app[DEPENDENCIES], grant.person_id, grant.login_id
        )
    )


@routes.get("/v1/me/certificates/{certificate_id}")
@operation(
    summary="One of the resident's e-certificates, only under an e_certificate consent in "
    "force; the delivery is recorded",
    tag="applicant",
    responses={
        200: ("The certificate, to verify offline", _MINE),
        **_BEARER,
        403: "No e_certificate consent in force (audited; nothing delivered)",
        404: "Not one of the resident's certificates",
    },
)
async def my_certificate(request: web.Request) -> web.Response:
    grant = await authenticate_resident(request)
    found = await certificates.my_certificate(
        request.app[DEPENDENCIES],
        grant.person_id,
        request.match_info["certificate_id"],
        grant.login_id,
    )
    return json_response(found, headers={"Cache-Control": "no-store"})


@routes.get("/v1/certificates/{certificate_id}/status")
@operation(
    summary="Whether an e-certificate is valid or revoked (public; no personal data)",
    tag="certificates",
    responses={200: ("Its status and issuer", _STATUS), 404: "No such certificate"},
)
async def certificate_status(request: web.Request) -> web.Response:
    status = await certificates.certificate_status(
        request.app[DEPENDENCIES], request.match_info["certificate_id"]
    )
    return json_response(status, headers={"Cache-Control": "public, max-age=60"})


@routes.post("/v1/certificates/{certificate_id}/revocation")
@operation(
    summary="Revoke an e-certificate (the issuing agency only)",
    tag="certificates",
    request={
        "application/json": {
            "type": "object",
            "required": ["reason"],
            "properties": {"reason": {"type": "string", "maxLength": 500}},
        }
    },
    responses={
        200: ("Revoked", _STATUS),
        401: "Signature refused",
        404: "No such certificate issued by this agency",
        409: "Revoked already",
        422: "Invalid body",
    },
    signed=True,
)
async def revoke(request: web.Request) -> web.Response:
    async with signed_write(request) as signed:
        data = json_object(signed.body, signed.media_type, "the revocation")
        reason = data.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationFailedError(
                "reason is a non-empty text", errors=[problem("/reason", "required")]
            )
        assert signed.idempotency_key is not None
        stored = await revoke_certificate(
            RevokeCertificate(
                signed.caller,
                request.match_info["certificate_id"],
                reason.strip(),
                signed.idempotency_key,
                signed.content_digest,
            ),
            request.app[DEPENDENCIES],
            signed.acceptance,
        )
    return json_response(stored.body, status=stored.status)


@routes.get("/v1/agencies/{agency_id}/jwks.json")
@operation(
    summary="The public keys an agency signs e-certificates with (to verify them offline)",
    tag="certificates",
    responses={200: ("JWK set", {"type": "object"}), 404: "No such agency"},
)
async def agency_keys(request: web.Request) -> web.Response:
    agency_id = request.match_info["agency_id"]
    sandbox = request.app[SETTINGS].sandbox
    async with request.app[STORE]() as uow:
        agency = await uow.agencies.get(agency_id)
        specs = await uow.agencies.keys(agency_id) if agency is not None else []
    if agency is None:
        raise NotFoundError("no such agency")
    keys = [s.verification_key(agency_id) for _, s in specs if sandbox or not s.sandbox]
    jwks = {"issuer": agency_id, **agency_jwks(keys)}
    return json_response(jwks, headers={"Cache-Control": "public, max-age=300"})
