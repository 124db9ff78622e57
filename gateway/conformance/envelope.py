"""The forwarded message the kit sends: an envelope like the relay's, around a canonical case.

The shape is the one :func:`gateway.services.milestones.forwards` writes and the codecs
encode (:func:`gateway.mapping.canonical.encode_envelope`): message and application ids,
matter and its version, the receiving agency's role and stage, how the case came in, its
deadline, the translation record (source digest, mapping version, canonical digest) and the
consent id, with the canonical application inside. It is valid against
``adapters/guangdong/schemas/guangdong-message.schema.json``.

:func:`message_in_format` writes the same case in a partner's own declared format (the
``native-delivery`` probe): the HK or Macau XML message, or the JSON message.

Every run uses fresh ids, so a partner's de-duplication of earlier runs never interferes.
``submitted_by`` names the kit, so a partner's operators can tell its traffic from cases.
"""

from __future__ import annotations

import hashlib
import json
from base64 import b64encode
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.domain import ids
from gateway.domain.legal_basis import LegalBasis
from gateway.domain.values import IdentityDocument
from gateway.mapping.canonical import CANONICAL_VERSION, encode_envelope
from gateway.services.milestones import canonical_digest
from gateway.services.ports import DocumentCodec
from gateway.trust.digest import content_digest

# Sample matter #2 (individual business registration, Hengqin) of mappings/matters/.
MATTER = "11440400MB2C00081P4440120002000"
MATTER_VERSION = 1
SUBMITTED_BY = "gba-conformance"


def _material_digest(data: bytes) -> str:
    return "sha-256=:" + b64encode(hashlib.sha256(data).digest()).decode() + ":"


# The legal basis the kit's submitting agency declares (GBA-Legal-Basis), as every agency's
# submission must: the data it sends is synthetic, the declaration is what the gateway checks.
KIT_LEGAL_BASIS = LegalBasis(
    law="《中华人民共和国个人信息保护法》",
    article="第十三条第一款第三项",
    text="Conformance kit: synthetic data, sent as an agency's statutory duty would be",
)


def canonical_application() -> dict[str, Any]:
    """A synthetic canonical application for :data:`MATTER` (no real person's data)."""
    hkid = IdentityDocument.parse("HKID", "A123456(3)")
    return {
        "matter": MATTER,
        "applicant": {
            "names": {
                "original": "何測試",
                "zh-Hans": "何测试",
                "zh-Hant": "何測試",
                "latin": "HO Chak Si",
                "family_name_latin": "HO",
                "given_names_latin": "Chak Si",
            },
            "birth_date": "1990-01-01",
            "documents": [{"type": hkid.type.value, "number": hkid.number, "issuer": "HK"}],
            "email": "conformance@example.hk",
            "address": {
                "text": "Flat B, 3/F, 1 Test Street, Wan Chai, Hong Kong",
                "district": "Wan Chai",
                "jurisdiction": "HK",
            },
        },
        "particulars": {
            "business_name": "測試茶餐廳",
            "business_address": {"text": "广东省珠海市横琴粤澳深度合作区示例大道 88 号 1 层"},
            "business_scope": "餐飲服務",
            "capital": {"amount": "50000.00", "currency": "CNY"},
            "employees": "3",
        },
        "materials": [
            {
                "code": "APPLICATION_FORM",
                "digest": _material_digest(b"conformance application form"),
                "media_type": "application/pdf",
                "filename": "application_form.pdf",
            }
        ],
        "commitments": [{"material": "PREMISES_PROOF"}],
    }


def native_application() -> dict[str, Any]:
    """:func:`canonical_application` less what only the canonical form holds (an identity
    document's issuer, an address's jurisdiction), so that every format carries it whole."""
    document = canonical_application()
    for entry in document["applicant"]["documents"]:
        entry.pop("issuer", None)
    document["applicant"]["address"].pop("jurisdiction", None)
    return document


def _envelope(now: datetime, message_id: str, document: dict[str, Any]) -> dict[str, Any]:
    submitted = json.dumps(document, ensure_ascii=False).encode()
    return {
        "message_id": message_id,
        "application_id": ids.new_application_id(),
        "matter": MATTER,
        "matter_version": MATTER_VERSION,
        "role": "reviewer",
        "stage": "review",
        "submitted_by": SUBMITTED_BY,
        "channel": "online",
        "received_at": now.astimezone(UTC).isoformat(),
        "deadline": (now + timedelta(days=7)).date().isoformat(),
        "translation": {
            "source_format": "canonical",
            "source_digest": content_digest(submitted),
            "mapping_version": CANONICAL_VERSION,
            "canonical_digest": canonical_digest(document),
        },
        "consent_id": ids.new_consent_id(),
    }


def forwarded_message(now: datetime, message_id: str | None = None) -> tuple[str, bytes]:
    """A fresh forwarded message (its id and its body), as the relay would send it."""
    message_id = message_id or ids.new_message_id()
    document = canonical_application()
    return message_id, encode_envelope(document, _envelope(now, message_id, document))


def message_in_format(codec: DocumentCodec, now: datetime) -> tuple[str, bytes, str]:
    """A fresh forwarded message in ``codec``'s format, as the relay sends it to an agency
    that receives that format (an HK or Macau XML message, or the JSON one): its id, body and
    media type."""
    message_id = ids.new_message_id()
    document = native_application()
    body, media_type = codec.encode(document, _envelope(now, message_id, document))
    return message_id, body, media_type
