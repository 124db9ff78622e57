"""Archive bundles (Art. 23): one signed file per closed case, verifiable offline.

Pure logic: no database, no network. The format (``docs/archive.md`` explains it for
auditors):

- **The file** is one JSON document, ``{"format": "gba-archive/1", "manifest": JWS,
  "members": {name: standard base64 of the member's bytes}}``, written in exactly one
  form (sorted keys, two-space indent, ASCII only, one final newline). The verifier
  re-serialises what it parsed and refuses a file that differs by one byte, so whitespace,
  escapes, padding bits and member order are all pinned too.
- **The manifest** is a compact JWS signed with the gateway's seal key, header exactly
  ``{"alg", "kid", "typ": "gba-archive+jwt"}``. Its claims name every member with its
  SHA-256 and size, and say what each member is: the application, its materials, the
  timeline, the exact submitted body, the stored answers, each signed message and
  delivery, each voucher (receipts and notices: every JWS found in the timeline and the
  stored answers), the bytes of each file bound to the case (``files/<sha-256 hex>``, once
  per content) and the audit proof. Every uploaded material the application names must have
  its file in the bundle, and each file's bytes must have the digest the signed record
  (the application's materials, the manifest's ``files``) gives it.
- **The audit proof** is a contiguous run of the audit chain (ADR 0007): the exact bytes
  of every entry from the case's first entry to a signed checkpoint, one per line. Entries
  of other cases in between are included whole: the link from an entry to the next lives
  in the next entry's bytes (``prev``), so an entry given only as its hash would let the
  entry before it change unnoticed. Entries carry digests, ids and codes, never personal
  data. The verifier hashes every line, checks that each names the one before and carries
  the next ``seq``, and that the last hash is the head the checkpoint signs.

The manifest is verified by :func:`gateway.trust.jws.verify` under :data:`MANIFEST_POLICY`
(header exactly ``alg``/``kid``/``typ``, ``typ`` exact, the key found by exact ``kid``, its
``alg`` the header's, ``use: "sig"``, seal purpose only), each voucher under the receipts'
:data:`~gateway.trust.receipts.RECEIPT_POLICY`. Every refusal is an
:class:`ArchiveInvalidError` whose ``reason`` is a short code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, NoReturn
from urllib.parse import urlsplit

from gateway.domain.errors import SignatureInvalidError
from gateway.trust.audit import CHECKPOINT_TYP, Checkpoint, verify_checkpoint
from gateway.trust.digest import content_digest
from gateway.trust.jws import JwsPolicy, JwsRefused, jws_alg, sign, verify
from gateway.trust.keys import SEAL, KeyMisuseError, SigningKey
from gateway.trust.receipts import RECEIPT_POLICY

FORMAT = "gba-archive/1"
ARCHIVE_TYP = "gba-archive+jwt"
MAX_BUNDLE_BYTES = 512 * 1024 * 1024

APPLICATION = "application.json"
MATERIALS = "materials.json"
TIMELINE = "timeline.json"
RESPONSES = "responses.json"
SUBMISSION = "submission"
AUDIT_ENTRIES = "audit/entries.jsonl"
AUDIT_CHECKPOINT = "audit/checkpoint.jws"

MANIFEST_POLICY = JwsPolicy(
    name="archive manifest",
    typs=frozenset({ARCHIVE_TYP}),
    algs=frozenset({"ES256", "EdDSA"}),
    purpose=SEAL,
    required_claims=("sub", "iat"),
    leeway=60,
    max_token=4 * 1024 * 1024,
)
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{40,}")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ENTRY_KEYS = frozenset({"seq", "at", "kind", "actor", "subject", "data", "prev"})


class ArchiveInvalidError(ValueError):
    """The bundle does not verify; ``reason`` is a short code, ``detail`` says where.

    Offline and operator-facing only (``gba-gateway archive verify``): never an HTTP problem.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _refuse(reason: str, detail: str) -> NoReturn:
    raise ArchiveInvalidError(reason, detail)


# ---------------------------------------------------------------------------
# What goes in
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedBody:
    """Signed bytes kept whole, bound to the audit entry that records them (``audit_seq``).

    ``kind`` is ``request`` (a signed request the gateway accepted: ``message.accepted``),
    ``forward`` (a signed forward it delivered: ``message.sent``) or ``acknowledgement`` (the
    partner's signed answer: ``message.acknowledged``). ``body`` is None when it was not kept;
    ``details`` (target, headers, status ...) are copied into the manifest as they are.
    """

    media_type: str
    content_digest: str | None
    body: bytes | None
    audit_seq: int | None = None
    kind: str = "request"
    message_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MaterialFile:
    """The bytes of a file bound to the case, once per content (``digest``, RFC 9530)."""

    digest: str
    media_type: str
    body: bytes
    material_ids: tuple[str, ...]  # the case's materials with these bytes


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """Everything the gateway holds about one case, as read from the store."""

    application: Mapping[str, Any]  # JSON view of the row, with "id", "status", "document"
    timeline: Sequence[Mapping[str, Any]]  # {"seq", "type", "at" (stamp), "actor", "data"}
    responses: Sequence[Mapping[str, Any]]  # stored idempotent answers about the case
    submission: SignedBody | None  # the exact submitted body, when it was kept
    messages: Sequence[SignedBody]  # bodies of the case's accepted signed requests
    deliveries: Sequence[SignedBody]  # outgoing forwards and partner acknowledgements
    audit_entries: Sequence[bytes]  # exact entry bytes, contiguous, ending at the checkpoint
    checkpoint: str  # the compact JWS whose seq is the last entry's
    files: Sequence[MaterialFile] = ()  # the bytes of the materials bound to the case


@dataclass(frozen=True, slots=True)
class VerifiedArchive:
    application_id: str
    status: str
    members: int
    vouchers: int
    messages: int
    deliveries: int
    audit_first: int
    checkpoint: Checkpoint
    issued_at: datetime
    files: int = 0


def stamp(at: datetime) -> str:
    """A time as the audit chain writes it: UTC, microseconds, ``Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def names_application(target: object, application_id: str) -> bool:
    """True when a request target's path has the segments ``applications/<id>``."""
    if not isinstance(target, str):
        return False
    parts = urlsplit(target).path.split("/")
    return any(a == "applications" and b == application_id for a, b in pairwise(parts))


def is_case_entry(
    entry: Mapping[str, Any], application_id: str, submission_digest: str | None
) -> bool:
    """An audit entry about the case: its events, and the signed requests naming it
    (by target path, or the submission by its content digest)."""
    if entry.get("subject") == application_id:
        return True
    data = entry.get("data")
    if entry.get("kind") != "message.accepted" or not isinstance(data, Mapping):
        return False
    if names_application(data.get("target"), application_id):
        return True
    return submission_digest is not None and data.get("content_digest") == submission_digest


def find_tokens(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every compact-JWS string inside ``value``, as ``(json pointer, token)``."""
    if isinstance(value, Mapping):
        for key in sorted(value):
            yield from find_tokens(value[key], f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from find_tokens(item, f"{path}/{index}")
    elif isinstance(value, str) and _COMPACT_JWS.fullmatch(value):
        try:
            header = _strict_json(_b64url(value.split(".")[0]))
        except ArchiveInvalidError:
            return
        if isinstance(header, dict) and "alg" in header:
            yield path, value


def _vouchers(timeline: Any, responses: Any) -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for source, token in [
        *find_tokens(timeline, "/timeline"),
        *find_tokens(responses, "/responses"),
    ]:
        found.setdefault(token, source)
    return [(source, token) for token, source in found.items()]


# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------


def _json_bytes(value: Any) -> bytes:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def _serialise(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode()


def build_bundle(case: CaseRecord, key: SigningKey, *, issuer: str, now: datetime) -> bytes:
    """The bundle file for ``case``, its manifest signed with the seal ``key``."""
    if key.purpose != SEAL or jws_alg(key) is None:
        raise KeyMisuseError("an archive is signed with an ES256 or EdDSA seal key")
    app_id = str(case.application["id"])
    members: dict[str, tuple[bytes, str]] = {
        APPLICATION: (_json_bytes(case.application), "application/json"),
        MATERIALS: (_json_bytes(_materials(case.application)), "application/json"),
        TIMELINE: (_json_bytes(list(case.timeline)), "application/json"),
        RESPONSES: (_json_bytes(list(case.responses)), "application/json"),
        AUDIT_ENTRIES: (b"\n".join(case.audit_entries), "application/jsonl"),
        AUDIT_CHECKPOINT: (case.checkpoint.encode("ascii"), "application/jose"),
    }
    submission = None
    if case.submission is not None:
        members[SUBMISSION] = (case.submission.body, case.submission.media_type)
        submission = {"member": SUBMISSION, "content_digest": case.submission.content_digest}
    messages = []
    for body in case.messages:
        name = f"messages/{body.audit_seq}"
        if body.body is not None:
            members[name] = (body.body, body.media_type)
        messages.append(_signed_item(body, name if body.body is not None else None))
    deliveries = []
    for body in case.deliveries:
        name = f"deliveries/{body.message_id}/{body.kind}"
        if body.body is not None:
            members[name] = (body.body, body.media_type)
        deliveries.append(_signed_item(body, name if body.body is not None else None))
    files = []
    for file in case.files:
        name = file_member(file.digest)
        members[name] = (file.body, file.media_type)
        files.append(
            {
                "member": name,
                "digest": file.digest,
                "media_type": file.media_type,
                "material_ids": list(file.material_ids),
            }
        )
    vouchers = []
    for index, (source, token) in enumerate(_vouchers(case.timeline, case.responses), 1):
        name = f"vouchers/{index}.jws"
        members[name] = (token.encode("ascii"), "application/jose")
        vouchers.append({"member": name, "source": source})
    entries = [_entry(line) for line in case.audit_entries]
    digest = case.submission.content_digest if case.submission else _received_digest(case.timeline)
    claims = {
        "iss": issuer,
        "sub": app_id,
        "iat": int(now.timestamp()),
        "jti": "arc_" + secrets.token_hex(12),
        "format": FORMAT,
        "status": case.application.get("status"),
        "members": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "type": media}
            for name, (data, media) in sorted(members.items())
        },
        "submission": submission,
        "messages": messages,
        "deliveries": deliveries,
        "vouchers": vouchers,
        "files": files,
        "audit": {
            "first_seq": entries[0]["seq"] if entries else None,
            "case_seqs": [e["seq"] for e in entries if is_case_entry(e, app_id, digest)],
        },
    }
    manifest = sign(key, claims, typ=ARCHIVE_TYP)
    encoded = {name: base64.b64encode(data).decode("ascii") for name, (data, _) in members.items()}
    return _serialise({"format": FORMAT, "manifest": manifest, "members": encoded})


def file_member(digest: str) -> str:
    """A file's member name: ``files/`` and the hex of its SHA-256."""
    if not digest.startswith("sha-256=:"):
        raise ValueError("files are named by their SHA-256")
    return "files/" + base64.b64decode(digest[9:-1]).hex()


def _signed_item(body: SignedBody, member: str | None) -> dict[str, Any]:
    return {
        **body.details,
        "member": member,
        "kind": body.kind,
        "message_id": body.message_id,
        "media_type": body.media_type,
        "content_digest": body.content_digest,
        "audit_seq": body.audit_seq,
    }


def _materials(application: Mapping[str, Any]) -> list[Any]:
    document = application.get("document")
    materials = document.get("materials", []) if isinstance(document, Mapping) else []
    return list(materials) if isinstance(materials, list) else []


def _received_digest(timeline: Sequence[Mapping[str, Any]]) -> str | None:
    for event in timeline:
        data = event.get("data")
        if event.get("type") == "application.received" and isinstance(data, Mapping):
            digest = data.get("content_digest")
            return digest if isinstance(digest, str) else None
    return None


def _entry(line: bytes) -> dict[str, Any]:
    value = _strict_json(line)
    if not isinstance(value, dict):
        _refuse("audit-entry", "an audit entry is not a JSON object")
    return value


# ---------------------------------------------------------------------------
# Strict parsing
# ---------------------------------------------------------------------------


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for name, value in pairs:
        if name in members:
            _refuse("duplicate-member", f"a JSON object repeats {name!r}")
        members[name] = value
    return members


def _no_constant(name: str) -> NoReturn:
    _refuse("malformed-json", f"{name} is not JSON")


def _strict_json(data: bytes) -> Any:
    """UTF-8 JSON without duplicate member names, NaN or Infinity."""
    try:
        return json.loads(
            data.decode("utf-8"), object_pairs_hook=_unique, parse_constant=_no_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        _refuse("malformed-json", "not strict UTF-8 JSON")


def _b64url(segment: str) -> bytes:
    """Canonical unpadded base64url only: other spellings of the same bytes are refused."""
    if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
        _refuse("jws-encoding", "a JWS segment is not base64url")
    data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != segment:
        _refuse("jws-encoding", "a JWS segment is not canonical base64url")
    return data


def _b64(text: object, name: str) -> bytes:
    """Canonical padded standard base64 (the bundle re-serialises; this is belt and braces)."""
    if not isinstance(text, str):
        _refuse("member-encoding", f"member {name} is not a base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        _refuse("member-encoding", f"member {name} is not base64")
    if base64.b64encode(data).decode("ascii") != text:
        _refuse("member-encoding", f"member {name} is not canonical base64")
    return data


# ---------------------------------------------------------------------------
# Signatures
# ---------------------------------------------------------------------------


# The verifier's reason -> the archive's: what a bundle's reader needs to tell apart.
_JWS_REASONS = {
    "jwks-malformed": "jwks-malformed",
    "unknown-kid": "unknown-kid",
    "duplicate-kid": "unknown-kid",
    "typ": "jws-typ",
    "alg": "jws-alg",
    "key-alg": "jws-alg",
    "alg-mismatch": "jws-alg",
    "signature": "jws-signature",
    "ecdsa-range": "jws-signature",
    "header-parameters": "jws-header",
    "header-type": "jws-header",
    "not-base64url": "jws-encoding",
    "non-canonical-base64url": "jws-encoding",
    "claims-not-object": "jws-claims",
}


def verify_jws(
    token: object, jwks: Mapping[str, Any], policy: JwsPolicy, what: str
) -> dict[str, Any]:
    """The claims of ``token`` verified against ``jwks`` under ``policy``; else refused."""
    try:
        return verify(token, jwks, policy, now=datetime.now(UTC)).claims
    except JwsRefused as refused:
        reason, message = refused.reason, refused.message
    code = _JWS_REASONS.get(reason, "jws-key" if reason.startswith("key-") else "jws-malformed")
    _refuse(code, f"the {what} does not verify: {message}")


# ---------------------------------------------------------------------------
# Verifying
# ---------------------------------------------------------------------------


def verify_bundle(data: bytes, jwks: Mapping[str, Any]) -> VerifiedArchive:
    """Check every byte of a bundle against ``jwks``; ArchiveInvalidError if anything is off."""
    if len(data) > MAX_BUNDLE_BYTES:
        _refuse("too-large", "the file is larger than any bundle the gateway writes")
    document = _strict_json(data)
    if not isinstance(document, dict) or set(document) != {"format", "manifest", "members"}:
        _refuse("bundle-shape", "the file is not an archive bundle")
    if document["format"] != FORMAT:
        _refuse("format", f"the bundle format is not {FORMAT}")
    if not isinstance(document["members"], dict) or _serialise(document) != data:
        _refuse("not-canonical", "the file is not in the one form the gateway writes")
    claims = verify_jws(document["manifest"], jwks, MANIFEST_POLICY, "manifest")
    app_id = claims.get("sub")
    if claims.get("format") != FORMAT or not isinstance(app_id, str) or not app_id:
        _refuse("manifest-claims", "the manifest does not name a format and an application")
    members = _members(document["members"], claims.get("members"))
    application = _json_member(members, APPLICATION, dict)
    if application.get("id") != app_id:
        _refuse("application-id", "application.json is about another application")
    if application.get("status") != claims.get("status"):
        _refuse("status", "application.json and the manifest disagree on the status")
    if _json_member(members, MATERIALS, list) != _materials(application):
        _refuse("materials", "materials.json differs from the application's materials")
    timeline = _json_member(members, TIMELINE, list)
    responses = _json_member(members, RESPONSES, list)
    _check_responses(responses, app_id)
    submission_digest = _check_submission(members, claims, application, timeline)
    checkpoint = _checkpoint(members[AUDIT_CHECKPOINT], jwks)
    entries = _check_segment(members[AUDIT_ENTRIES], checkpoint, claims.get("audit"))
    case = [e for e in entries if is_case_entry(e, app_id, submission_digest)]
    if [e["seq"] for e in case] != claims["audit"].get("case_seqs") or not case:
        _refuse("audit-case", "the manifest's case entries differ from the audit segment's")
    _check_timeline(timeline, [e for e in case if e["subject"] == app_id])
    by_seq = {e["seq"]: e for e in case}
    messages = _check_signed(members, claims.get("messages"), by_seq, ["request"])
    deliveries = _check_signed(
        members, claims.get("deliveries"), by_seq, ["forward", "acknowledgement"]
    )
    vouchers = _check_vouchers(members, claims.get("vouchers"), timeline, responses, jwks, app_id)
    files = _check_files(members, claims.get("files", []), _materials(application))
    return VerifiedArchive(
        application_id=app_id,
        status=str(application.get("status")),
        members=len(members),
        vouchers=vouchers,
        messages=messages,
        deliveries=deliveries,
        audit_first=entries[0]["seq"],
        checkpoint=checkpoint,
        issued_at=datetime.fromtimestamp(_int(claims.get("iat"), "manifest iat"), UTC),
        files=files,
    )


def _check_files(members: Mapping[str, bytes], listed: object, materials: list[Any]) -> int:
    """Each file's bytes have the digest the manifest gives, under the name that digest makes;
    every upload the application names (an item with a ``material_id``) has its file."""
    if not isinstance(listed, list):
        _refuse("manifest-claims", "the manifest does not list the files")
    held = set()
    for spec in listed:
        item, body = _member(members, spec, "file")
        digest = item.get("digest")
        try:
            name = file_member(digest) if isinstance(digest, str) else ""
        except (ValueError, binascii.Error):
            name = ""
        if not name or item["member"] != name or not _digest_of(body, str(digest)):
            _refuse("material-file", f"the file {item['member']} does not have its digest")
        held.add(digest)
    for index, material in enumerate(materials):
        named = isinstance(material, dict) and "material_id" in material
        if named and material.get("digest") not in held:
            _refuse("material-file", f"the file of material {index} is not in the bundle")
    return len(listed)


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _refuse("manifest-claims", f"{what} is not an integer")
    return value


def _members(encoded: dict[str, Any], listed: object) -> dict[str, bytes]:
    if not isinstance(listed, dict):
        _refuse("manifest-claims", "the manifest does not list the members")
    for name in sorted(set(listed) - set(encoded)):
        _refuse("member-missing", f"member {name} is listed in the manifest but not in the file")
    for name in sorted(set(encoded) - set(listed)):
        _refuse("member-extra", f"member {name} is in the file but not in the manifest")
    members = {}
    for name in sorted(encoded):
        data, spec = _b64(encoded[name], name), listed[name]
        if not isinstance(spec, dict) or spec.get("size") != len(data):
            _refuse("member-digest", f"member {name} does not have the size the manifest signs")
        if spec.get("sha256") != hashlib.sha256(data).hexdigest():
            _refuse("member-digest", f"member {name} does not have the digest the manifest signs")
        members[name] = data
    for name in (APPLICATION, MATERIALS, TIMELINE, RESPONSES, AUDIT_ENTRIES, AUDIT_CHECKPOINT):
        if name not in members:
            _refuse("member-missing", f"the bundle has no {name}")
    return members


def _json_member(members: Mapping[str, bytes], name: str, kind: type) -> Any:
    value = _strict_json(members[name])
    if not isinstance(value, kind):
        _refuse("member-shape", f"{name} is not a JSON {kind.__name__}")
    return value


def _member(members: Mapping[str, bytes], item: object, what: str) -> tuple[dict[str, Any], bytes]:
    if not isinstance(item, dict) or not isinstance(item.get("member"), str):
        _refuse("manifest-claims", f"a {what} entry of the manifest names no member")
    if item["member"] not in members:
        _refuse("member-missing", f"the {what} member {item['member']} is not in the bundle")
    return item, members[item["member"]]


def _digest_of(body: bytes, digest: object) -> bool:
    if not isinstance(digest, str) or "=" not in digest:
        return False
    try:
        return content_digest(body, digest.split("=", 1)[0]) == digest
    except ValueError:
        return False


def _check_responses(responses: list[Any], app_id: str) -> None:
    for response in responses:
        body = response.get("body") if isinstance(response, dict) else None
        if not isinstance(body, dict) or body.get("application_id", app_id) != app_id:
            _refuse("application-id", "a stored answer is about another application")


def _check_submission(
    members: Mapping[str, bytes],
    claims: Mapping[str, Any],
    application: Mapping[str, Any],
    timeline: Sequence[Any],
) -> str | None:
    """The submission's content digest, bound to the application, its receipt event and body."""
    received = _received_digest([e for e in timeline if isinstance(e, dict)])
    if application.get("content_digest") != received:
        _refuse("submission-digest", "the application and its received event disagree")
    spec = claims.get("submission")
    if spec is None:
        return received
    item, body = _member(members, spec, "submission")
    if item.get("content_digest") != received or not _digest_of(body, received):
        _refuse("submission-digest", "the submitted body does not have the received digest")
    return received


def _checkpoint(token: bytes, jwks: Mapping[str, Any]) -> Checkpoint:
    try:
        return verify_checkpoint(token.decode("ascii"), jwks)
    except (UnicodeDecodeError, SignatureInvalidError):
        _refuse("checkpoint-signature", f"the {CHECKPOINT_TYP} does not verify")


def _check_segment(blob: bytes, checkpoint: Checkpoint, audit: object) -> list[dict[str, Any]]:
    """Recompute the chain over the segment; it must end at the checkpoint's seq and head."""
    first = audit.get("first_seq") if isinstance(audit, dict) else None
    if isinstance(first, bool) or not isinstance(first, int) or first < 1 or not blob:
        _refuse("audit-segment", "the manifest gives no audit segment")
    entries, head = [], ""
    for index, line in enumerate(blob.split(b"\n")):
        entry, seq = _entry(line), first + index
        if set(entry) != _ENTRY_KEYS or entry["seq"] != seq or type(entry["seq"]) is not int:
            _refuse("audit-seq", f"line {index + 1} of the audit segment is not entry {seq}")
        if not isinstance(entry["prev"], str) or not _HEX64.fullmatch(entry["prev"]):
            _refuse("audit-link", f"entry {seq} has no previous hash")
        if head and entry["prev"] != head:
            _refuse("audit-link", f"entry {seq} does not link to entry {seq - 1}")
        head = hashlib.sha256(line).hexdigest()
        entries.append(entry)
    if entries[-1]["seq"] != checkpoint.seq:
        _refuse(
            "checkpoint-coverage",
            f"the segment ends at {entries[-1]['seq']}, the checkpoint at {checkpoint.seq}",
        )
    if head != checkpoint.head:
        _refuse("checkpoint-head", f"the chain's hash at {checkpoint.seq} is not the signed one")
    return entries


def _check_timeline(timeline: list[Any], chained: list[dict[str, Any]]) -> None:
    """Every timeline event, in order, is an audit entry of the case in the segment."""
    if [e.get("seq") if isinstance(e, dict) else None for e in timeline] != list(
        range(1, len(timeline) + 1)
    ):
        _refuse("timeline", "the timeline is not numbered 1, 2, 3 ...")
    pending = iter(chained)
    for event in timeline:
        wanted = (event.get("type"), event.get("actor"), event.get("at"), event.get("data"))
        if not any((e["kind"], e["actor"], e["at"], e["data"]) == wanted for e in pending):
            _refuse("timeline", f"timeline event {event['seq']} is not on the audit chain")


_AUDIT_KIND = {
    "request": "message.accepted",
    "forward": "message.sent",
    "acknowledgement": "message.acknowledged",
}


def _check_signed(
    members: Mapping[str, bytes],
    listed: object,
    by_seq: Mapping[int, dict[str, Any]],
    kinds: Sequence[str],
) -> int:
    """Each signed body has its digest, and that digest is on the case's audit entry."""
    if not isinstance(listed, list):
        _refuse("manifest-claims", "the manifest does not list the signed messages")
    for item in listed:
        if not isinstance(item, dict) or item.get("kind") not in kinds:
            _refuse("manifest-claims", "a signed message of the manifest has no known kind")
        where = f"the {item['kind']} at audit seq {item.get('audit_seq')}"
        seq, digest = item.get("audit_seq"), item.get("content_digest")
        entry = by_seq.get(seq) if isinstance(seq, int) else None
        if (
            entry is None
            or entry["kind"] != _AUDIT_KIND[item["kind"]]
            or not isinstance(entry["data"], dict)
            or entry["data"].get("content_digest") != digest
            or entry["data"].get("message_id", item.get("message_id")) != item.get("message_id")
        ):
            _refuse("message", f"{where} is not recorded on the case's audit chain")
        if item.get("member") is not None:
            _, body = _member(members, item, "message")
            if not _digest_of(body, digest):
                _refuse("message", f"{where} is not the body its audit entry records")
    return len(listed)


def _check_vouchers(
    members: Mapping[str, bytes],
    listed: object,
    timeline: list[Any],
    responses: list[Any],
    jwks: Mapping[str, Any],
    app_id: str,
) -> int:
    """Every JWS in the timeline and the stored answers is a member, and each verifies."""
    if not isinstance(listed, list):
        _refuse("manifest-claims", "the manifest does not list the vouchers")
    given = []
    for spec in listed:
        item, token = _member(members, spec, "voucher")
        given.append((item.get("source"), token.decode("ascii", "replace")))
    if given != _vouchers(timeline, responses):
        _refuse("vouchers", "the vouchers differ from the JWS in the timeline and answers")
    for source, token in given:
        claims = verify_jws(token, jwks, RECEIPT_POLICY, f"voucher at {source}")
        if claims.get("sub") != app_id:
            _refuse("application-id", f"the voucher at {source} is about another application")
    return len(given)
