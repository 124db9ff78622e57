"""The e-certificates sandbox agencies attach to their approvals (Art. 22), chosen by their
``e_certificate`` switch: ``jws`` (a signed JWS), ``document`` (a small signed PDF with its
detached signature), ``forged`` (a JWS under the agency's kid, signed by another key: the
gateway refuses the decision) or ``none``. The subject is the case (the sandbox agency does
not know the resident); the gateway binds the certificate to the applicant itself."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime
from typing import Any

from gateway.sandbox.agencies import SandboxAgency
from gateway.trust.e_certificates import sign_certificate, sign_document
from gateway.trust.keys import SigningKey, generate_private_key

PDF = "application/pdf"


def licence_pdf(agency: SandboxAgency, application_id: str) -> bytes:
    """A minimal PDF naming the case and the issuer (sandbox only: no personal data)."""
    text = f"GBA sandbox licence {application_id} issued by {agency.id}"
    return (
        b"%PDF-1.7\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n"
        b"2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\n"
        + f"% {text}\n".encode()
        + b"trailer <</Root 1 0 R>>\n%%EOF\n"
    )


def e_certificate(
    mode: str, agency: SandboxAgency, key: SigningKey, application_id: str, now: datetime
) -> dict[str, Any] | None:
    """The ``certificate`` member of an approval, or None for ``none``."""
    claims = {
        "iss": agency.id,
        "sub": f"application:{application_id}",
        "iat": int(now.timestamp()),
        "jti": secrets.token_hex(12),
        "kind": "licence",
        "application_id": application_id,
    }
    if mode == "jws":
        return {"jws": sign_certificate(key, claims)}
    if mode == "forged":
        wrong = SigningKey(key.kid, generate_private_key(key.alg), key.alg, sandbox=True)
        return {"jws": sign_certificate(wrong, claims)}
    if mode == "document":
        document = licence_pdf(agency, application_id)
        return {
            "document": base64.b64encode(document).decode("ascii"),
            "media_type": PDF,
            "signature": sign_document(key, document, PDF),
        }
    return None
