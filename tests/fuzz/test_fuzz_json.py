"""Canonical JSON (gateway/mapping/canonical.py) and the JSON read at the identity edge.

``loads_strict`` reads every JSON body the gateway accepts: any bytes give a value or a
``MalformedBodyError`` (RFC 8259 in UTF-8; no duplicate names, NaN or Infinity), and every
JSON value round-trips through it. The canonical codec checks any JSON object against the
canonical schema and reports problems at JSON pointers, without ever raising for a
well-formed object. JSON nested deeper than the interpreter's recursion limit used to escape
as a ``RecursionError`` (a 500) here, in the OIDC token parser and at the upstream identity
providers' answers: the example tests at the end keep it refused.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.domain.errors import LoginFailedError, MalformedBodyError, NotReadyError
from gateway.egress.policy import EgressPolicy
from gateway.identity.discovery import ProviderConfig, Upstreams
from gateway.identity.jose import JoseError, unverified
from gateway.identity.relying_party import RelyingParty
from gateway.mapping.canonical import CanonicalCodec, loads_strict
from gateway.settings import REPO_ROOT
from tests.fuzz.conftest import examples

SCHEMAS = REPO_ROOT / "mappings" / "schemas"
DEEP_ARRAYS = b"[" * 100_000
DEEP_OBJECTS = b'{"a":' * 50_000

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
# Bytes that are JSON often enough to get past the first character.
JSONISH = b'{}[]",:0123456789.eE+- truefalsnNaIiy\\u\x00\xff\xc3\xa9'
json_bytes = st.binary(max_size=64) | st.lists(st.sampled_from(JSONISH), max_size=64).map(bytes)


@settings(max_examples=examples(300))
@given(body=json_bytes | json_values.map(lambda v: json.dumps(v).encode()))
@example(body=b'{"a": 1, "a": 2}')
@example(body=b"[NaN]")
@example(body=b"-Infinity")
@example(body=b"\xef\xbb\xbf{}")  # a byte-order mark is not JSON
@example(body=DEEP_ARRAYS)
@example(body=DEEP_OBJECTS)
def test_any_bytes_are_json_or_a_malformed_body(body: bytes) -> None:
    try:
        value = loads_strict(body)
    except MalformedBodyError:  # 400, the one refusal
        return
    assert json.loads(body) == value  # what any JSON reader reads, when it is accepted


@settings(max_examples=examples(300))
@given(value=json_values)
def test_every_json_value_round_trips(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1)):
        assert loads_strict(text.encode()) == value


@settings(max_examples=examples(200))
@given(name=st.text(max_size=8), first=json_values, second=json_values)
def test_a_duplicate_member_name_is_refused_at_any_depth(
    name: str, first: Any, second: Any
) -> None:
    member = f"{json.dumps(name)}: {json.dumps(first)}, {json.dumps(name)}: {json.dumps(second)}"
    for body in (f"{{{member}}}", f'[1, {{"x": {{{member}}}}}]'):
        with pytest.raises(MalformedBodyError, match="duplicate"):
            loads_strict(body.encode())


# --- the canonical codec ---------------------------------------------------------------------

CODEC = CanonicalCodec(SCHEMAS)
GOLDEN = json.loads(
    (REPO_ROOT / "tests/fixtures/documents/hk-individual-business.canonical.json").read_text()
)


@st.composite
def canonical_like(draw: st.DrawFn) -> dict[str, Any]:
    """The golden canonical application with a few members replaced by any JSON."""
    document = json.loads(json.dumps(GOLDEN))
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        node: Any = document
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            key = draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
            if not isinstance(node[key], dict | list):
                break
            node = node[key]
        if isinstance(node, dict):
            node[draw(st.sampled_from([*node, "x"]))] = draw(json_values)
        elif isinstance(node, list) and node:
            node[draw(st.integers(0, len(node) - 1))] = draw(json_values)
    return document


@settings(max_examples=examples(200))
@given(document=canonical_like() | st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_any_json_object_decodes_with_its_problems_at_json_pointers(
    document: dict[str, Any],
) -> None:
    decoded = CODEC.decode(json.dumps(document).encode())
    assert decoded.document == document
    for found in decoded.problems:
        assert found.pointer is not None
        assert found.pointer == "" or found.pointer.startswith("/")
        assert found.code
    assert decoded.problems == tuple(sorted(set(decoded.problems), key=_order))


def _order(found: Any) -> tuple[str, str]:
    return (found.pointer or "", found.code)


def test_the_golden_document_has_no_schema_problem() -> None:
    assert CODEC.decode(json.dumps(GOLDEN).encode()).problems == ()


@settings(max_examples=examples(100))
@given(value=json_values.filter(lambda v: not isinstance(v, dict)))
def test_a_canonical_application_that_is_not_an_object_is_malformed(value: Any) -> None:
    with pytest.raises(MalformedBodyError, match="JSON object"):
        CODEC.decode(json.dumps(value).encode())


# --- regressions: JSON nested deeper than the recursion limit -----------------------------


@pytest.mark.parametrize("body", [DEEP_ARRAYS, DEEP_OBJECTS], ids=["arrays", "objects"])
def test_json_nested_too_deeply_is_a_malformed_body(body: bytes) -> None:
    with pytest.raises(MalformedBodyError, match="nested too deeply"):
        loads_strict(body)
    with pytest.raises(MalformedBodyError, match="nested too deeply"):
        CODEC.decode(body)


def test_a_token_whose_segments_are_nested_too_deeply_is_refused() -> None:
    segment = base64.urlsafe_b64encode(b"[" * 9_000).rstrip(b"=").decode()  # within 16 KiB
    with pytest.raises(JoseError, match="header is too large"):
        unverified(f"{segment}.e30.c2ln")  # a header this large is not even decoded
    with pytest.raises(JoseError, match="not a JSON object"):
        unverified(f"e30.{segment}.c2ln")


async def _deep_json_server(aiohttp_server: Any) -> Any:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=DEEP_ARRAYS, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return await aiohttp_server(app)


async def test_identity_provider_metadata_nested_too_deeply_is_not_ready(
    aiohttp_server: Any,
) -> None:
    server = await _deep_json_server(aiohttp_server)
    config = ProviderConfig(
        name="hk",
        discovery_url=str(server.make_url("/.well-known/openid-configuration")),
        client_id="gateway",
        id_token_algs=("ES256",),
    )
    with pytest.raises(NotReadyError):
        await Upstreams((config,), egress=EgressPolicy(sandbox=True), timeout=5).metadata("hk")


async def test_an_identity_provider_answer_nested_too_deeply_refuses_the_login(
    aiohttp_server: Any,
) -> None:
    server = await _deep_json_server(aiohttp_server)
    party = RelyingParty(
        Upstreams((), egress=EgressPolicy(sandbox=True), timeout=5),
        {},
        None,  # type: ignore[arg-type]  # the store is not reached
        lambda: None,  # type: ignore[arg-type, return-value]
        base_url="http://127.0.0.1",
        sandbox=True,
        timeout=5,
        now=lambda: datetime.now(UTC),
    )
    with pytest.raises(LoginFailedError, match="not JSON"):
        await party._post(str(server.make_url("/token")), {}, "token")


# --- known, owned elsewhere: gateway/services/validation.py (docs/fuzzing.md) -------------


@pytest.mark.parametrize(
    ("pointer", "value", "expected"),
    [
        (("applicant", "documents", 0, "type"), ["HKID"], "/applicant/documents/0/type"),
        (("materials", 0, "code"), ["APPLICATION_FORM"], "/materials/0/code"),
        (("commitments", 0, "material"), {"code": "PREMISES_PROOF"}, "missing PREMISES_PROOF"),
    ],
)
def test_a_canonical_application_with_a_list_where_a_code_goes_is_a_problem_not_a_crash(
    pointer: tuple[Any, ...], value: Any, expected: str
) -> None:
    from gateway.mapping.catalog import Catalog  # the use case's own inputs
    from gateway.services.validation import assess

    matter = Catalog.load(REPO_ROOT / "mappings" / "matters").get(
        GOLDEN["matter"], datetime(2026, 3, 3, tzinfo=UTC).date()
    )
    document = json.loads(json.dumps(GOLDEN))
    node = document
    for part in pointer[:-1]:
        node = node[part]
    node[pointer[-1]] = value
    assessment = assess(document, matter)
    found = {p.pointer for p in assessment.problems} | {f"missing {m}" for m in assessment.missing}
    assert expected in found
