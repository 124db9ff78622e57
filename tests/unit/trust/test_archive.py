"""Archive bundles: a round trip, and every changed byte, key or member is refused."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from gateway.trust.archive import (
    APPLICATION,
    ARCHIVE_TYP,
    AUDIT_CHECKPOINT,
    AUDIT_ENTRIES,
    SUBMISSION,
    TIMELINE,
    ArchiveInvalidError,
    CaseRecord,
    SignedBody,
    build_bundle,
    stamp,
    verify_bundle,
)
from gateway.trust.audit import GENESIS, seal, sign_checkpoint
from gateway.trust.digest import content_digest
from gateway.trust.keys import HTTP, PURPOSE_MEMBER, SEAL, SigningKey, generate_private_key
from gateway.trust.receipts import JwsReceiptIssuer

APP = "app_01JARCHIVETEST"
OTHER = "app_01JOTHERCASE00"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SUBMITTED = b"<application><matter>44000000000000001</matter></application>"
DECISION = b'{"decision":"approved","reasons":[]}'
FORWARD = b'{"message_id":"msg_1","application_id":"' + APP.encode() + b'"}'
ACK = b'{"received":true}'
ISSUER = "http://127.0.0.1:8080"


def seal_key(kid: str = "seal-1", alg: str = "ecdsa-p256-sha256") -> SigningKey:
    return SigningKey(kid, generate_private_key(alg), alg, purpose=SEAL)


KEY = seal_key()
JWKS = {"keys": [{**KEY.jwk(), PURPOSE_MEMBER: SEAL}]}


def token(claims: dict[str, Any], typ: str = "gba-receipt+jwt", key: SigningKey = KEY) -> str:
    alg = "ES256" if key.alg == "ecdsa-p256-sha256" else "EdDSA"
    return jwt.encode(claims, key.private_key, algorithm=alg, headers={"kid": key.kid, "typ": typ})


def receipt(sub: str = APP) -> str:
    return JwsReceiptIssuer(KEY).issue(
        {"iss": ISSUER, "sub": sub, "iat": int(T0.timestamp()), "jti": "rcp_1", "status": "x"}
    )


def notice(sub: str = APP, key: SigningKey = KEY) -> str:
    claims = {"iss": ISSUER, "sub": sub, "iat": int(T0.timestamp()), "jti": "ntc_1"}
    return token(claims, "gba-receipt+jwt", key)


def case(
    *,
    approved_voucher: str | None = None,
    edit: dict[int, dict[str, Any]] | None = None,
    checkpoint_at: int | None = None,
    checkpoint_head: str | None = None,
) -> CaseRecord:
    """A small chain with other cases' entries interleaved; the case's entries are 2..11."""
    digest, decided = content_digest(SUBMITTED), content_digest(DECISION)
    voucher = approved_voucher or notice()
    rows: list[tuple[str, str, str, dict[str, Any]]] = [
        ("application.received", "hk-ird", OTHER, {"content_digest": "sha-256=:AAAA:"}),
        (
            "message.accepted",
            "hk-ird",
            "hk-key",
            {"target": f"{ISSUER}/v1/applications", "content_digest": digest},
        ),
        ("application.received", "hk-ird", APP, {"content_digest": digest, "matter": "M"}),
        ("message.accepted", "mo-dsaj", "mo-key", {"target": f"{ISSUER}/v1/applications/{OTHER}"}),
        ("application.accepted", "gateway", APP, {"deadline": "2026-03-20"}),
        (
            "message.sent",
            "gateway",
            APP,
            {"message_id": "msg_1", "content_digest": content_digest(FORWARD)},
        ),
        (
            "message.acknowledged",
            "gd-hq-csb",
            APP,
            {"message_id": "msg_1", "content_digest": content_digest(ACK)},
        ),
        (
            "message.accepted",
            "gd-hq-csb",
            "gd-key",
            {"target": f"{ISSUER}/v1/applications/{APP}/decisions", "content_digest": decided},
        ),
        ("decision.recorded", "gd-hq-csb", APP, {"decision": "approved"}),
        (
            "message.accepted",
            "gd-hq-csb",
            "gd-key",
            {"target": f"{ISSUER}/v1/applications/{OTHER}"},
        ),
        ("application.approved", "gateway", APP, {"voucher": voucher}),
        ("application.received", "mo-dsaj", OTHER, {"content_digest": "sha-256=:BBBB:"}),
    ]
    records, prev = [], GENESIS
    for seq, (kind, actor, subject, data) in enumerate(rows, 1):
        record = seal(seq, T0 + timedelta(seconds=seq), kind, actor, subject, data, prev)
        if edit and seq in edit:  # the database row was changed after it was sealed
            forged = seal(seq, record.at, kind, actor, subject, {**data, **edit[seq]}, prev)
            record = replace(record, entry=forged.entry)
        records.append(record)
        prev = record.hash
    segment = records[1:]
    last = records[(checkpoint_at or len(records)) - 1]
    checkpoint = sign_checkpoint(KEY, last.seq, checkpoint_head or last.hash, T0)
    events = [r for r in segment if r.subject == APP and not r.kind.startswith("message.")]
    timeline = [
        {"seq": i, "type": r.kind, "at": stamp(r.at), "actor": r.actor, "data": dict(r.data)}
        for i, r in enumerate(events, 1)
    ]
    return CaseRecord(
        application={
            "id": APP,
            "status": "approved",
            "content_digest": digest,
            "document": {"materials": [{"code": "ID_CARD", "digest": "sha-256=:CCCC:"}]},
        },
        timeline=timeline,
        responses=[
            {
                "agency_id": "hk-ird",
                "status": 202,
                "body": {"application_id": APP, "receipt": receipt()},
            }
        ],
        submission=SignedBody("application/xml", digest, SUBMITTED),
        messages=[
            SignedBody("application/xml", digest, SUBMITTED, audit_seq=2),
            SignedBody("application/json", decided, DECISION, audit_seq=8),
        ],
        deliveries=[
            SignedBody(
                "application/json",
                content_digest(FORWARD),
                FORWARD,
                audit_seq=6,
                kind="forward",
                message_id="msg_1",
                details={"target": "x"},
            ),
            SignedBody(
                "application/json",
                content_digest(ACK),
                ACK,
                audit_seq=7,
                kind="acknowledgement",
                message_id="msg_1",
                details={"status": 200},
            ),
        ],
        audit_entries=[r.entry for r in segment],
        checkpoint=checkpoint,
    )


def bundle(record: CaseRecord | None = None) -> bytes:
    return build_bundle(record or case(), KEY, issuer=ISSUER, now=T0)


def refused(data: bytes, jwks: dict[str, Any] = JWKS) -> str:
    with pytest.raises(ArchiveInvalidError) as caught:
        verify_bundle(data, jwks)
    return caught.value.reason


def rewrite(data: bytes, change: Any) -> bytes:
    document = json.loads(data)
    change(document)
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode()


def test_a_bundle_verifies_offline_and_says_what_it_holds() -> None:
    checked = verify_bundle(bundle(), JWKS)

    assert checked.application_id == APP
    assert checked.status == "approved"
    assert (checked.vouchers, checked.messages, checked.deliveries) == (2, 2, 2)
    assert (checked.audit_first, checked.checkpoint.seq) == (2, 12)
    document = json.loads(bundle())
    assert base64.b64decode(document["members"][SUBMISSION]) == SUBMITTED
    header = jwt.get_unverified_header(document["manifest"])
    assert header == {"alg": "ES256", "kid": "seal-1", "typ": ARCHIVE_TYP}


def test_an_eddsa_seal_key_signs_bundles_too() -> None:
    key = seal_key("seal-ed", "ed25519")
    jwks = {"keys": [*JWKS["keys"], {**key.jwk(), PURPOSE_MEMBER: SEAL}]}
    assert verify_bundle(build_bundle(case(), key, issuer=ISSUER, now=T0), jwks).status


def _regions(data: bytes) -> list[tuple[int, int]]:
    """The byte ranges of the manifest's three segments and of every member's value."""
    document = json.loads(data)
    found = []
    header, payload, signature = document["manifest"].split(".")
    for text in [header, payload, signature, *document["members"].values()]:
        start = data.index(text.encode())
        found.append((start, start + len(text)))
    return found


def _positions(data: bytes) -> list[int]:
    picks = set(range(0, len(data), 53)) | {len(data) - 1, len(data) - 2}
    for start, end in _regions(data):
        span = end - start
        picks |= {start, end - 1, end - 2, start + span // 2, start + span // 3}
        picks |= set(range(start, end, max(span // 12, 1)))
    return sorted(p for p in picks if 0 <= p < len(data))


@pytest.mark.parametrize("flip", [0x01, 0x20, 0x80])
def test_any_changed_byte_anywhere_is_refused(flip: int) -> None:
    data = bundle()
    positions = _positions(data)
    assert len(positions) > 300  # across every member, the manifest and its signature
    for position in positions:
        changed = bytearray(data)
        changed[position] ^= flip
        with pytest.raises(ArchiveInvalidError):
            verify_bundle(bytes(changed), JWKS)


def test_changes_that_decode_to_the_same_bytes_are_refused() -> None:
    data = bundle()
    document = json.loads(data)
    signature = document["manifest"].split(".")[2]
    # The last base64url character of a 64-byte signature carries 4 unused bits.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    alias = signature[:-1] + alphabet[alphabet.index(signature[-1]) ^ 0x01]
    assert base64.urlsafe_b64decode(alias + "==") == base64.urlsafe_b64decode(signature + "==")
    assert refused(data.replace(signature.encode(), alias.encode())) == "jws-encoding"
    member = document["members"][AUDIT_CHECKPOINT]
    body = member.rstrip("=")
    standard = alphabet[:62] + "+/"
    padded = body[:-1] + standard[standard.index(body[-1]) ^ 0x01] + member[len(body) :]
    assert len(member) != len(body)  # it has padding, so its last character has unused bits
    assert base64.b64decode(padded) == base64.b64decode(member)
    assert refused(data.replace(member.encode(), padded.encode())) == "member-encoding"
    assert refused(data.replace(b'"format"', b'"\\u0066ormat"')) == "not-canonical"
    assert refused(data.replace(b'  "format"', b'\t"format"')) == "not-canonical"


def test_a_removed_or_added_member_is_refused() -> None:
    for name in (TIMELINE, SUBMISSION, "vouchers/1.jws", "messages/8", AUDIT_CHECKPOINT):
        data = rewrite(bundle(), lambda d, n=name: d["members"].pop(n))
        assert refused(data) == "member-missing", name
    extra = rewrite(bundle(), lambda d: d["members"].update({"extra": "AA=="}))
    assert refused(extra) == "member-extra"


def test_a_member_swapped_for_another_is_refused() -> None:
    def swap(document: dict[str, Any]) -> None:
        members = document["members"]
        members["messages/2"], members["messages/8"] = members["messages/8"], members["messages/2"]

    assert refused(rewrite(bundle(), swap)) == "member-digest"


def test_a_wrong_key_set_is_refused() -> None:
    data = bundle()
    impostor = seal_key("seal-1")
    assert refused(data, {"keys": [{**impostor.jwk(), PURPOSE_MEMBER: SEAL}]}) == "jws-signature"
    assert refused(data, {"keys": []}) == "unknown-kid"
    assert refused(data, {"keys": [{**KEY.jwk(), PURPOSE_MEMBER: HTTP}]}) == "jws-key"
    assert refused(data, {"keys": [{**KEY.jwk(), "alg": "EdDSA"}]}) == "jws-alg"
    assert refused(data, {"keys": JWKS["keys"] * 2}) == "unknown-kid"
    assert refused(data, {"nothing": True}) == "jwks-malformed"


def test_a_manifest_resigned_by_another_key_or_typ_is_refused() -> None:
    other = seal_key("seal-2")
    jwks = {"keys": [*JWKS["keys"], {**other.jwk(), PURPOSE_MEMBER: SEAL}]}
    data = bundle()
    claims = jwt.decode(json.loads(data)["manifest"], options={"verify_signature": False})
    claims["sub"] = OTHER

    def resign(document: dict[str, Any], typ: str = ARCHIVE_TYP) -> None:
        document["manifest"] = token(claims, typ, other)

    assert refused(rewrite(data, resign), jwks) == "application-id"
    receipt_typed = rewrite(data, lambda d: resign(d, "gba-receipt+jwt"))
    assert refused(receipt_typed, jwks) == "jws-typ"


def test_a_checkpoint_that_does_not_cover_the_segment_is_refused() -> None:
    assert refused(bundle(case(checkpoint_at=11))) == "checkpoint-coverage"
    assert refused(bundle(case(checkpoint_head="f" * 64))) == "checkpoint-head"
    forged = replace(
        case(), checkpoint=token({"seq": 12, "head": "0" * 64, "iat": 1}, "x", seal_key())
    )
    assert refused(bundle(forged)) == "checkpoint-signature"


def test_an_audit_entry_changed_in_the_database_is_found() -> None:
    assert refused(bundle(case(edit={5: {"deadline": "2027-01-01"}}))) == "audit-link"
    # The last entry has no successor: the signed head catches it.
    assert refused(bundle(case(edit={12: {"content_digest": "x"}}))) == "checkpoint-head"


def test_a_timeline_that_differs_from_the_chain_is_refused() -> None:
    record = case()
    edited = [dict(e) for e in record.timeline]
    edited[1] = {**edited[1], "data": {"deadline": "2030-01-01"}}
    assert refused(bundle(replace(record, timeline=edited))) == "timeline"
    kept = [record.timeline[0], *record.timeline[2:]]
    renumbered = [dict(e, seq=i) for i, e in enumerate(kept, 1)]
    assert verify_bundle(bundle(replace(record, timeline=renumbered)), JWKS)  # a subsequence
    assert refused(bundle(replace(record, timeline=kept))) == "timeline"  # a gap in seq


def test_bodies_must_match_the_digests_the_chain_records() -> None:
    record = case()
    body = replace(record.submission, body=SUBMITTED + b" ")  # type: ignore[arg-type]
    assert refused(bundle(replace(record, submission=body))) == "submission-digest"
    messages = [record.messages[0], replace(record.messages[1], body=b"{}")]
    assert refused(bundle(replace(record, messages=messages))) == "message"
    unbound = [replace(record.deliveries[0], audit_seq=8), record.deliveries[1]]
    assert refused(bundle(replace(record, deliveries=unbound))) == "message"
    other_app = replace(record, application={**record.application, "id": OTHER})
    assert refused(bundle(other_app)) == "application-id"


def test_vouchers_must_verify_and_be_about_the_case() -> None:
    assert refused(bundle(case(approved_voucher=notice(sub=OTHER)))) == "application-id"
    foreign = notice(key=seal_key("partner-key"))
    untyped = token({"iss": ISSUER, "sub": APP, "iat": int(T0.timestamp()), "jti": "n"}, "JWT")
    assert refused(bundle(case(approved_voucher=untyped))) == "jws-typ"  # vouchers are receipts
    assert refused(bundle(case(approved_voucher=foreign))) == "unknown-kid"
    record = case()
    responses = [{"agency_id": "hk-ird", "status": 202, "body": {"application_id": OTHER}}]
    assert refused(bundle(replace(record, responses=responses))) == "application-id"


def test_the_manifest_lists_every_voucher_with_where_it_was_found() -> None:
    claims = jwt.decode(json.loads(bundle())["manifest"], options={"verify_signature": False})
    assert [v["source"] for v in claims["vouchers"]] == [
        "/timeline/3/data/voucher",
        "/responses/0/body/receipt",
    ]
    assert claims["audit"]["case_seqs"] == [2, 3, 5, 6, 7, 8, 9, 11]
    assert set(claims["members"]) >= {APPLICATION, AUDIT_ENTRIES, "deliveries/msg_1/forward"}


def test_a_bundle_that_leaves_out_a_voucher_is_refused() -> None:
    """Even signed by the gateway: every JWS of the timeline and answers must be in it."""
    data = bundle()
    claims = jwt.decode(json.loads(data)["manifest"], options={"verify_signature": False})
    claims["vouchers"] = claims["vouchers"][1:]
    del claims["members"]["vouchers/1.jws"]

    def leave_out(document: dict[str, Any]) -> None:
        del document["members"]["vouchers/1.jws"]
        document["manifest"] = token(claims, ARCHIVE_TYP)

    assert refused(rewrite(data, leave_out)) == "vouchers"
