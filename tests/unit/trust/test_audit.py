"""The audit hash chain: each tampering is classified and placed; checkpoints pin the head."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain.errors import SignatureInvalidError
from gateway.trust.audit import (
    CHECKPOINT_TYP,
    GENESIS,
    AuditRecord,
    Checkpoint,
    StoredEntry,
    seal,
    sign_checkpoint,
    verify_chain,
    verify_checkpoint,
)
from gateway.trust.keys import KeyMisuseError, SigningKey, generate_private_key

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
N = 50
Rows = list[StoredEntry]


def build(n: int = N, data: Callable[[int], dict[str, Any]] | None = None) -> list[AuditRecord]:
    records, prev = [], GENESIS
    for seq in range(1, n + 1):
        payload = data(seq) if data else {"digest": f"sha-256:{seq:064x}", "code": "ok"}
        kind = "message.accepted" if seq % 2 else "application.received"
        record = seal(
            seq, T0 + timedelta(seconds=seq), kind, "gateway", f"app-{seq}", payload, prev
        )
        records.append(record)
        prev = record.hash
    return records


def stored(records: list[AuditRecord]) -> Rows:
    return [StoredEntry(r.seq, r.entry, r.hash) for r in records]


def canonical(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha(entry: bytes) -> str:
    return hashlib.sha256(entry).hexdigest()


def edit(entry: bytes, **fields: Any) -> bytes:
    """What an attacker with database access writes: a re-serialised, edited entry."""
    value = json.loads(entry)
    value["data"] = {**value["data"], "code": "forged"}
    value.update(fields)
    return canonical(value)


def by_seq(rows: Rows) -> Rows:
    """The store reads ``ORDER BY seq`` (stable for equal seqs, so the test picks the order)."""
    return sorted(rows, key=lambda r: r.seq)


def forged(seq: int, prev: str) -> StoredEntry:
    record = seal(seq, T0, "message.accepted", "attacker", "app-x", {"code": "ok"}, prev)
    return StoredEntry(record.seq, record.entry, record.hash)


# --- each tampering, each variant: (rows, k) -> tampered rows -----------------------------


def modify_hash_left(rows: Rows, k: int) -> Rows:
    rows[k - 1] = replace(rows[k - 1], entry=edit(rows[k - 1].entry))
    return rows


def modify_hash_recomputed(rows: Rows, k: int) -> Rows:
    entry = edit(rows[k - 1].entry)
    rows[k - 1] = replace(rows[k - 1], entry=entry, hash=sha(entry))
    return rows


def delete(rows: Rows, k: int) -> Rows:
    del rows[k - 1]
    return rows


def delete_renumbered(rows: Rows, k: int) -> Rows:
    del rows[k - 1]
    return [replace(r, seq=r.seq - 1) if r.seq > k else r for r in rows]


def delete_relinked(rows: Rows, k: int) -> Rows:
    """Delete a row and re-hash its successor to point past the hole."""
    prev = rows[k - 2].hash if k > 1 else GENESIS
    entry = edit(rows[k].entry, prev=prev)
    rows[k] = replace(rows[k], entry=entry, hash=sha(entry))
    del rows[k - 1]
    return rows


def insert_same_seq_before(rows: Rows, k: int) -> Rows:
    prev = rows[k - 2].hash if k > 1 else GENESIS
    return by_seq([*rows[: k - 1], forged(k, prev), *rows[k - 1 :]])


def insert_same_seq_after(rows: Rows, k: int) -> Rows:
    prev = rows[k - 2].hash if k > 1 else GENESIS
    return by_seq([*rows[:k], forged(k, prev), *rows[k:]])


def insert_same_seq_bad_hash(rows: Rows, k: int) -> Rows:
    prev = rows[k - 2].hash if k > 1 else GENESIS
    return by_seq([*rows[: k - 1], replace(forged(k, prev), hash="f" * 64), *rows[k - 1 :]])


def insert_renumbered(rows: Rows, k: int) -> Rows:
    prev = rows[k - 2].hash if k > 1 else GENESIS
    later = [replace(r, seq=r.seq + 1) for r in rows[k - 1 :]]
    return [*rows[: k - 1], forged(k, prev), *later]


def insert_renumbered_bad_hash(rows: Rows, k: int) -> Rows:
    rows = insert_renumbered(rows, k)
    rows[k - 1] = replace(rows[k - 1], hash=rows[k].hash)
    return rows


def swap_seq_columns(rows: Rows, k: int) -> Rows:
    rows[k - 1], rows[k] = replace(rows[k - 1], seq=k + 1), replace(rows[k], seq=k)
    return by_seq(rows)


def swap_contents(rows: Rows, k: int) -> Rows:
    a, b = rows[k - 1], rows[k]
    rows[k - 1], rows[k] = (
        replace(a, entry=b.entry, hash=b.hash),
        replace(b, entry=a.entry, hash=a.hash),
    )
    return rows


def swap_entries_hash_left(rows: Rows, k: int) -> Rows:
    a, b = rows[k - 1], rows[k]
    rows[k - 1], rows[k] = replace(a, entry=b.entry), replace(b, entry=a.entry)
    return rows


TAMPERINGS = [
    (modify_hash_left, "modified"),
    (modify_hash_recomputed, "modified"),
    (delete, "deleted"),
    (delete_renumbered, "deleted"),
    (delete_relinked, "deleted"),
    (insert_same_seq_before, "inserted"),
    (insert_same_seq_after, "inserted"),
    (insert_same_seq_bad_hash, "inserted"),
    (insert_renumbered, "inserted"),
    (insert_renumbered_bad_hash, "inserted"),
    (swap_seq_columns, "reordered"),
    (swap_contents, "reordered"),
    (swap_entries_hash_left, "reordered"),
]


@pytest.mark.parametrize("k", [1, 2, 25, N - 1])
@pytest.mark.parametrize(("tamper", "kind"), TAMPERINGS, ids=[t.__name__ for t, _ in TAMPERINGS])
def test_each_tampering_is_classified_at_its_seq(
    tamper: Callable[[Rows, int], Rows], kind: str, k: int
) -> None:
    report = verify_chain(tamper(stored(build()), k))
    assert (report.ok, report.problem, report.seq) == (False, kind, k), report.detail


def test_an_untouched_chain_verifies() -> None:
    records = build()
    report = verify_chain(iter(stored(records)))
    assert report.ok
    assert (report.count, report.head, report.problem, report.seq) == (
        N,
        records[-1].hash,
        None,
        None,
    )
    assert verify_chain(records).ok  # an AuditRecord is a row too
    assert verify_chain([]) == verify_chain(())
    assert verify_chain([]).head == GENESIS


def test_seal_canonical_entry() -> None:
    at = datetime(2025, 3, 1, 17, 30, 0, 5, tzinfo=UTC)
    local = at.astimezone(timezone(timedelta(hours=8)))  # Hong Kong time, same instant
    record = seal(1, local, "application.received", "粵", "app-1", {"b": 1, "a": "澳門"}, GENESIS)
    assert (
        record.entry
        == (
            '{"actor":"粵","at":"2025-03-01T17:30:00.000005Z","data":{"a":"澳門","b":1},'
            f'"kind":"application.received","prev":"{GENESIS}","seq":1,"subject":"app-1"}}'
        ).encode()
    )
    assert record.hash == sha(record.entry)
    assert record.at == at
    assert record.at.tzinfo is UTC
    assert dict(record.data) == {"a": "澳門", "b": 1}
    assert record.prev_hash == GENESIS
    with pytest.raises(TypeError):
        record.data["c"] = 2  # type: ignore[index]


@pytest.mark.parametrize(
    "args",
    [
        (0, T0, GENESIS),
        (True, T0, GENESIS),
        (1, T0.replace(tzinfo=None), GENESIS),
        (1, T0, "0" * 63),
        (1, T0, "A" * 64),
    ],
)
def test_seal_refuses_bad_arguments(args: tuple[Any, datetime, str]) -> None:
    seq, at, prev = args
    with pytest.raises(ValueError, match="must"):
        seal(seq, at, "k", "a", "s", {}, prev)


def test_seal_refuses_data_that_is_not_json() -> None:
    with pytest.raises(ValueError, match="JSON"):
        seal(1, T0, "k", "a", "s", {"x": float("nan")}, GENESIS)
    with pytest.raises(TypeError):
        seal(1, T0, "k", "a", "s", {"x": object()}, GENESIS)


def test_a_subject_that_imitates_the_tail_does_not_confuse_the_fast_path() -> None:
    subject = ',"prev":"' + GENESIS + '","seq":1,"subject":"'
    first = seal(1, T0, "k", "a", subject, {"a": 1, "prev": GENESIS, "seq": 1}, GENESIS)
    second = seal(2, T0, "k", "a", subject, {}, first.hash)
    assert verify_chain([first, second]).ok
    assert verify_chain([first, replace(second, seq=1)]).problem == "inserted"


# --- checkpoints -------------------------------------------------------------------------


@pytest.fixture(params=["ecdsa-p256-sha256", "ed25519"])
def key(request: pytest.FixtureRequest) -> SigningKey:
    alg = request.param
    return SigningKey(f"gw-seal-{alg}", generate_private_key(alg), alg, purpose="seal")


def jwks_of(*keys: SigningKey) -> dict[str, list[dict[str, str]]]:
    return {"keys": [k.jwk() for k in keys]}


def checkpoint(key: SigningKey, records: list[AuditRecord], seq: int) -> Checkpoint:
    token = sign_checkpoint(key, seq, records[seq - 1].hash, T0)
    return verify_checkpoint(token, jwks_of(key))


def test_a_checkpoint_round_trips(key: SigningKey) -> None:
    records = build(5)
    token = sign_checkpoint(key, 5, records[-1].hash, T0 + timedelta(microseconds=7))
    header = jwt.get_unverified_header(token)
    assert header == {
        "alg": "EdDSA" if key.alg == "ed25519" else "ES256",
        "kid": key.kid,
        "typ": CHECKPOINT_TYP,
    }
    assert verify_checkpoint(token, jwks_of(key)) == Checkpoint(5, records[-1].hash, T0, key.kid)


def rewrite_tail(rows: Rows, start: int) -> Rows:
    """Edit row ``start`` and recompute every later hash: locally consistent again."""
    prev = rows[start - 2].hash if start > 1 else GENESIS
    for i in range(start - 1, len(rows)):
        entry = edit(rows[i].entry, prev=prev)
        rows[i] = replace(rows[i], entry=entry, hash=sha(entry))
        prev = rows[i].hash
    return rows


def test_a_consistently_rewritten_tail_is_caught_only_by_a_checkpoint(key: SigningKey) -> None:
    records = build()
    pins = [checkpoint(key, records, 20), checkpoint(key, records, 40)]
    rows = rewrite_tail(stored(records), 30)
    unpinned = verify_chain(rows)
    assert unpinned.ok
    assert unpinned.count == N
    report = verify_chain(rows, pins)
    assert (report.ok, report.problem, report.seq, report.count) == (False, "checkpoint", 40, 40)
    assert verify_chain(stored(records), pins).ok


def test_truncation_before_the_last_checkpoint(key: SigningKey) -> None:
    records = build()
    pins = [checkpoint(key, records, N), checkpoint(key, records, 10)]
    report = verify_chain(stored(records)[:45], pins)
    assert (report.ok, report.problem, report.seq, report.count) == (False, "truncated", 46, 45)
    assert report.head == records[44].hash
    assert verify_chain(stored(records), pins).ok


def test_rows_after_the_last_checkpoint_are_not_pinned(key: SigningKey) -> None:
    records = build()
    assert verify_chain(stored(records)[:45], [checkpoint(key, records, 40)]).ok


def test_a_local_problem_before_a_checkpoint_is_reported_first(key: SigningKey) -> None:
    records = build()
    report = verify_chain(delete(stored(records), 7), [checkpoint(key, records, 40)])
    assert (report.problem, report.seq) == ("deleted", 7)
    with pytest.raises(ValueError, match="positive"):
        verify_chain([], [Checkpoint(0, GENESIS, T0, "k")])


def b64(value: dict[str, Any] | bytes) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_refused_checkpoints(key: SigningKey) -> None:
    head, claims = "a" * 64, {"seq": 3, "head": "a" * 64, "iat": int(T0.timestamp())}
    alg = "EdDSA" if key.alg == "ed25519" else "ES256"
    good = sign_checkpoint(key, 3, head, T0)
    other = SigningKey(key.kid, generate_private_key(key.alg), key.alg, purpose="seal")
    unknown = SigningKey("gw-seal-unknown", generate_private_key(key.alg), key.alg, purpose="seal")
    signing, payload, signature = good.split(".")
    hs256 = b64({"alg": "HS256", "kid": key.kid, "typ": CHECKPOINT_TYP})
    mac = hmac.new(json.dumps(key.jwk()).encode(), b"x", hashlib.sha256).digest()

    def signed(body: dict[str, Any] = claims, typ: str = CHECKPOINT_TYP, **extra: Any) -> str:
        headers = {"kid": key.kid, "typ": typ, **extra}
        return jwt.encode(body, key.private_key, algorithm=alg, headers=headers)

    refused = {
        "forged signature": sign_checkpoint(other, 3, head, T0),
        "edited claims": f"{signing}.{b64({**claims, 'seq': 4})}.{signature}",
        "alg none": f"{b64({'alg': 'none', 'kid': key.kid, 'typ': CHECKPOINT_TYP})}.{payload}.",
        "hmac with the public key": f"{hs256}.{payload}.{b64(mac)}",
        "wrong typ": signed(typ="JWT"),
        "receipt typ": signed(typ="gba-receipt+jwt"),
        "no typ": jwt.encode(claims, key.private_key, algorithm=alg, headers={"kid": key.kid}),
        "extra header": signed(jku="https://attacker.example/jwks"),
        "unknown kid": sign_checkpoint(unknown, 3, head, T0),
        "not a jws": "not.a.token",
        "too large": good + "A" * 10_000,
        "extra claim": signed({**claims, "sub": "x"}),
        "bad head": signed({**claims, "head": "xyz"}),
        "missing seq": signed({"head": head, "iat": claims["iat"]}),
    }
    assert verify_checkpoint(signed(), jwks_of(key)).seq == 3  # the untouched helper verifies
    assert accepted(refused, jwks_of(key)) == []
    assert verify_checkpoint(good, jwks_of(key)).seq == 3


def accepted(tokens: dict[str, str], jwks: dict[str, Any]) -> list[str]:
    names = []
    for name, token in tokens.items():
        try:
            verify_checkpoint(token, jwks)
        except SignatureInvalidError:
            continue
        names.append(name)
    return names


def test_the_key_set_decides_the_algorithm(key: SigningKey) -> None:
    token = sign_checkpoint(key, 1, GENESIS.replace("0", "1"), T0)
    jwk = key.jwk()
    bad_sets = [
        {"keys": []},
        {"keys": [{**jwk, "kid": key.kid.upper()}]},
        {"keys": [{**jwk, "alg": "ES256" if jwk["alg"] == "EdDSA" else "EdDSA"}]},
        {"keys": [{**jwk, "alg": "HS256"}]},
        {"keys": [{**jwk, "use": "enc"}]},
        {"keys": [jwk, jwk]},
        {"keys": ["not a jwk"]},
    ]
    for jwks in bad_sets:
        with pytest.raises(SignatureInvalidError):
            verify_checkpoint(token, jwks)
    assert verify_checkpoint(token, {"keys": [{"kid": "other"}, jwk]}).seq == 1


def test_sign_checkpoint_refuses_bad_input(key: SigningKey) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(KeyMisuseError):
        sign_checkpoint(SigningKey("gw-rsa", private, "rsa-pss-sha512"), 1, GENESIS, T0)
    for seq, head, at in [(0, GENESIS, T0), (1, "xyz", T0), (1, GENESIS, T0.replace(tzinfo=None))]:
        with pytest.raises(ValueError, match="must"):
            sign_checkpoint(key, seq, head, at)


# --- properties --------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(
    data=st.lists(
        st.dictionaries(st.text(max_size=6), json_values, max_size=4), min_size=1, max_size=20
    ),
    where=st.integers(min_value=0),
    field=st.sampled_from(["data", "kind", "actor", "subject", "at", "byte"]),
    recompute=st.booleans(),
    flip=st.integers(min_value=0),
)
def test_any_single_row_edit_is_never_ok(
    data: list[dict[str, Any]], where: int, field: str, recompute: bool, flip: int
) -> None:
    records = build(len(data), data=lambda seq: data[seq - 1])
    n, k = len(records), where % len(records) + 1
    pin = Checkpoint(n, records[-1].hash, T0, "gw-seal")  # as verify_checkpoint returns it
    rows = stored(records)
    entry = rows[k - 1].entry
    if field == "byte":
        i = flip % len(entry)
        edited = entry[:i] + bytes([entry[i] ^ 0x01]) + entry[i + 1 :]
    else:
        value = json.loads(entry)
        value[field] = {"__tampered__": [1, 2]} if field == "data" else value[field] + "~"
        edited = canonical(value)
    rows[k - 1] = replace(
        rows[k - 1], entry=edited, hash=sha(edited) if recompute else rows[k - 1].hash
    )
    report = verify_chain(rows, [pin])
    assert not report.ok
    if recompute and k == n:  # no successor testifies for the head: rules 5-7 or checkpoint
        assert report.seq in {n - 1, n}, report.detail
    else:
        assert (report.problem, report.seq) == ("modified", k), report.detail
        assert verify_chain(rows).problem == "modified"


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(min_value=3, max_value=30),
    where=st.integers(min_value=0),
    tampering=st.sampled_from(TAMPERINGS),
)
def test_random_tamperings_are_classified(
    n: int, where: int, tampering: tuple[Callable[[Rows, int], Rows], str]
) -> None:
    tamper, kind = tampering
    k = where % (n - 1) + 1
    report = verify_chain(tamper(stored(build(n)), k))
    assert (report.problem, report.seq) == (kind, k), report.detail
