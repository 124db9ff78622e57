"""Tamper-evident audit log: a SHA-256 hash chain with signed checkpoints (pure logic).

Threat model: the attacker can write to the database (edit, delete, insert, renumber and
re-hash rows) but does not hold the gateway's seal key. Each entry is canonical JSON
(sorted keys, compact, UTF-8, ``ensure_ascii=False``) of ``seq``, ``at`` (ISO 8601 UTC with
microseconds and a ``Z``), ``kind``, ``actor``, ``subject``, ``data`` and ``prev`` (the hash of
the entry before; :data:`GENESIS` for the first); its hash is the SHA-256 hex of those bytes.
Because ``seq`` and ``prev`` are inside the hashed bytes, a row cannot move or be renumbered
without breaking its own hash or the link from its successor.

Guarantees: :func:`verify_chain` detects any edit, deletion, insertion or reordering that
leaves the chain locally inconsistent, and reports the first one. Hashes are not signatures:
an attacker who rewrites *every* row from some point on, recomputing all hashes, produces a
consistent chain. A checkpoint (the seal key's compact JWS over ``seq`` and the head hash)
pins the chain up to its ``seq``: rewriting, truncating or removing any earlier row is then
reported. Rows after the last checkpoint are only as trustworthy as the database; publish
checkpoints often. ``data`` carries digests, ids and codes, never personal data.

Classification. Rows are read in ``seq`` order. A row is accepted when its ``seq`` column is
the next number, SHA-256 of its entry equals its stored hash, and its entry binds that same
``seq`` and the hash of the accepted row before (checked on the bytes, without parsing).
At the first row that is not accepted (``k`` = the next expected seq, *prev* = the last
accepted row, *next* = the row after the failing one, read as look-ahead), the rules are
tried in order:

1. the ``seq`` column repeats *prev*'s -> ``inserted`` at k-1 (a row shares an existing seq);
   it goes backwards -> ``reordered``; it jumps past k -> ``deleted`` at k;
2. the entry embeds seq k-1 and links to the row before *prev* (so *prev* sits where this
   row belongs) and *next*, if any, continues this row -> ``inserted`` at k-1 (a forged row
   was spliced in and the later seq columns renumbered);
3. *next* embeds seq k and links to *prev* (it is *prev*'s true successor): if this row in
   turn embeds k+1 and links to *next* -> ``reordered`` at k (two rows swapped, by their seq
   columns or their contents); otherwise -> ``inserted`` at k (this row is extra);
4. the stored hash differs from SHA-256 of the entry -> ``modified`` at k (edited in place);
5. the entry embeds a seq above k and *next*, if any, continues this row -> ``deleted`` at k
   (rows removed and the later seq columns renumbered);
6. the entry embeds seq k, links to another well-formed hash than *prev*'s, and *next*, if
   any, continues this row -> ``modified`` at k-1: *prev* was edited and re-hashed; its own
   seq and link still check, but this intact row still names *prev*'s original hash;
7. anything else (unparseable or not canonical, a re-hashed row that neither its predecessor
   nor its successor agrees with, a replayed entry) -> ``modified`` at k.

The last row has no successor to testify for it: a re-hashed edit of its own seq or link
reads as rule 5 or 6, and an edit that leaves both intact is found by a checkpoint only.

Checkpoints (already verified with :func:`verify_checkpoint`) are compared as rows are
accepted: a head that differs is ``checkpoint`` at its seq; a chain that ends before the
last checkpoint's seq is ``truncated`` at the first missing seq. ``count`` and ``head`` of
the report tell how far the check got (entries accepted, hash of the last accepted one).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

from gateway.domain.errors import SignatureInvalidError
from gateway.trust.jws import JwsPolicy, JwsRefused, jws_alg, sign, verify
from gateway.trust.keys import SEAL, KeyMisuseError, SigningKey

GENESIS = "0" * 64
CHECKPOINT_TYP = "gba-audit-checkpoint+jwt"
# The seal key's checkpoints: exactly seq, head and iat, verified at any later time.
CHECKPOINT_POLICY = JwsPolicy(
    name="audit checkpoint",
    typs=frozenset({CHECKPOINT_TYP}),
    algs=frozenset({"ES256", "EdDSA"}),
    purpose=SEAL,
    required_claims=("seq", "head", "iat"),
    leeway=60,
    max_token=8 * 1024,
)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PREV = b',"prev":"'  # cannot occur unescaped inside "subject", the only key after "seq"
_TAIL = _PREV + b'%b","seq":%d,"subject":"'


@dataclass(frozen=True)
class AuditRecord:
    """One sealed entry; ``entry`` is the exact bytes hashed, ``data`` is read back from them."""

    seq: int
    at: datetime
    kind: str
    actor: str
    subject: str
    data: Mapping[str, Any]
    prev_hash: str
    entry: bytes
    hash: str


class Row(Protocol):
    """What a store returns for each entry, in ``seq`` order (``entry`` as ``bytes``)."""

    @property
    def seq(self) -> int: ...
    @property
    def entry(self) -> bytes: ...
    @property
    def hash(self) -> str: ...


@dataclass(frozen=True, slots=True)
class StoredEntry:
    seq: int
    entry: bytes
    hash: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A verified checkpoint: the chain's hash after entry ``seq``, signed with ``kid``."""

    seq: int
    head: str
    at: datetime
    kid: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    ok: bool
    count: int
    head: str
    problem: str | None = None
    seq: int | None = None
    detail: str = ""


def seal(
    seq: int,
    at: datetime,
    kind: str,
    actor: str,
    subject: str,
    data: Mapping[str, Any],
    prev_hash: str,
) -> AuditRecord:
    """The record ``seq`` following the entry whose hash is ``prev_hash`` (GENESIS first)."""
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ValueError("seq must be a positive integer")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be timezone-aware")
    if not all(isinstance(v, str) for v in (kind, actor, subject)):
        raise TypeError("kind, actor and subject must be strings")
    if not _HEX64.fullmatch(prev_hash):
        raise ValueError("prev_hash must be 64 lowercase hex digits")
    at = at.astimezone(UTC)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = {"seq": seq, "at": stamp, "kind": kind, "actor": actor, "subject": subject}
    text = json.dumps(
        {**fields, "data": data, "prev": prev_hash},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    entry = text.encode("utf-8")
    stored = MappingProxyType(json.loads(entry)["data"])
    digest = hashlib.sha256(entry).hexdigest()
    return AuditRecord(seq, at, kind, actor, subject, stored, prev_hash, entry, digest)


def _fields(entry: bytes) -> tuple[int, str] | None:
    """The embedded (seq, prev) of an entry, or None when it is not an audit entry."""
    try:
        value = json.loads(entry)
    except (ValueError, TypeError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    seq, prev = value.get("seq"), value.get("prev")
    if isinstance(seq, bool) or not isinstance(seq, int) or not isinstance(prev, str):
        return None
    return seq, prev


def _diagnose(
    row: Row, expected: int, head: str, before: str | None, rows: Iterator[Row]
) -> tuple[str, int, str]:
    """Classify the first row not accepted (rules 1-7 of the module docstring)."""
    last = expected - 1
    if row.seq == last and last > 0:
        return "inserted", last, "two rows carry the same seq"
    if row.seq < 1:
        return "modified", expected, "the seq column is not positive"
    if row.seq < expected:
        return "reordered", row.seq, f"seq goes back to {row.seq} after {last}"
    if row.seq > expected:
        return "deleted", expected, f"seq jumps from {last} to {row.seq}"
    digest = hashlib.sha256(row.entry).hexdigest()
    own = _fields(row.entry)
    nxt = next(rows, None)
    after = _fields(nxt.entry) if nxt is not None else None
    if own == (last, before) and (nxt is None or after == (last + 1, digest)):
        return "inserted", last, f"entry {last} is followed by a second entry {last}"
    if nxt is not None and after == (expected, head):
        if own == (expected + 1, hashlib.sha256(nxt.entry).hexdigest()):
            return "reordered", expected, f"entries {expected} and {expected + 1} are swapped"
        return "inserted", expected, f"an extra row precedes entry {expected}"
    if digest != row.hash:
        return "modified", expected, "the stored hash does not match the entry"
    if own is None:
        return "modified", expected, "the entry is not an audit entry"
    continued = nxt is None or after == (own[0] + 1, digest)
    if own[0] > expected and continued:
        return "deleted", expected, f"entry {own[0]} follows entry {last}"
    if own[0] == expected and own[1] != head and _HEX64.fullmatch(own[1]) and continued and last:
        return "modified", last, f"entry {expected} does not link to entry {last}"
    return "modified", expected, "the entry does not bind its seq and predecessor"


def verify_chain(records: Iterable[Row], checkpoints: Sequence[Checkpoint] = ()) -> ChainReport:
    """Stream ``records`` (in seq order) and report the first problem, or ``ok``."""
    pins = sorted(checkpoints, key=lambda c: c.seq)
    if pins and pins[0].seq < 1:
        raise ValueError("checkpoint seq must be positive")
    pin_index, pin_seq = 0, pins[0].seq if pins else 0
    rows = iter(records)
    sha256, seq, head, before = hashlib.sha256, 0, GENESIS, None
    tail = _TAIL % (GENESIS.encode(), 1)  # the bytes the next entry must end its body with
    for row in rows:
        entry, expected = row.entry, seq + 1
        digest = sha256(entry).hexdigest()
        if not (
            row.seq == expected
            and digest == row.hash
            and entry.startswith(tail, entry.rfind(_PREV))
        ):
            problem, where, detail = _diagnose(row, expected, head, before, rows)
            return ChainReport(False, seq, head, problem, where, detail)
        seq, head, before = expected, digest, head
        tail = _TAIL % (digest.encode(), expected + 1)
        while seq == pin_seq:
            if pins[pin_index].head != head:
                detail = f"the chain's hash at {seq} differs from the signed checkpoint"
                return ChainReport(False, seq, head, "checkpoint", seq, detail)
            pin_index += 1
            pin_seq = pins[pin_index].seq if pin_index < len(pins) else 0
    if pins and pins[-1].seq > seq:
        detail = f"the chain ends at {seq}, before the checkpoint at {pins[-1].seq}"
        return ChainReport(False, seq, head, "truncated", seq + 1, detail)
    return ChainReport(True, seq, head)


def sign_checkpoint(key: SigningKey, seq: int, head: str, at: datetime) -> str:
    """A compact JWS pinning the chain's hash ``head`` after entry ``seq``."""
    if jws_alg(key) is None:
        raise KeyMisuseError(f"a checkpoint key must be ES256 or EdDSA, not {key.alg}")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ValueError("seq must be a positive integer")
    if not _HEX64.fullmatch(head):
        raise ValueError("head must be 64 lowercase hex digits")
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    claims = {"seq": seq, "head": head, "iat": int(at.timestamp())}
    return sign(key, claims, typ=CHECKPOINT_TYP)


def verify_checkpoint(
    token: str, jwks: Mapping[str, Any], *, now: datetime | None = None
) -> Checkpoint:
    """The checkpoint a token signs, checked against ``jwks``; SignatureInvalidError if not."""
    try:
        verified = verify(token, jwks, CHECKPOINT_POLICY, now=now or datetime.now(UTC))
    except JwsRefused as refused:
        reason = refused.reason
    else:
        return _checkpoint(verified.header["kid"], verified.claims)
    raise SignatureInvalidError(f"the checkpoint does not verify ({reason})")


def _checkpoint(kid: str, claims: Mapping[str, Any]) -> Checkpoint:
    seq, head, iat = claims.get("seq"), claims.get("head"), claims.get("iat")
    if (
        set(claims) != {"seq", "head", "iat"}
        or isinstance(seq, bool)
        or not isinstance(seq, int)
        or seq < 1
        or not isinstance(head, str)
        or not _HEX64.fullmatch(head)
        or not isinstance(iat, int)
    ):
        raise SignatureInvalidError("the checkpoint claims are not acceptable")
    return Checkpoint(seq, head, datetime.fromtimestamp(iat, UTC), kid)
