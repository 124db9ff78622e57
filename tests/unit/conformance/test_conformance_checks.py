"""The conformance kit against a tiny fake partner: a conforming one passes every check, and
each way of breaking the contract fails the check that names it, with expected versus got.
Also the kit's parts: keys, the partner's key set, the message it sends, the JUnit report."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from lxml import etree

from gateway.conformance.checks import CHECK_IDS, CHECKS
from gateway.conformance.credentials import (
    PartnerKeys,
    load_signing_key,
    sandbox_agency_url,
)
from gateway.conformance.envelope import forwarded_message
from gateway.conformance.judges import Verdict
from gateway.conformance.junit import junit_xml
from gateway.conformance.probes import PROBES
from gateway.conformance.runner import Report, Result, run_conformance
from gateway.domain.errors import ConfigurationError, GatewayError, UnknownKeyError
from gateway.mapping.canonical import loads_strict, schema_validator
from gateway.settings import REPO_ROOT
from gateway.trust import keystore
from gateway.trust.digest import content_digest
from gateway.trust.httpsig import HttpMessage, SignatureParams, components, sign
from gateway.trust.keys import SigningKey, generate_private_key, private_key_pem
from gateway.trust.profile import sign_response, verify_request
from tests.conftest import free_port

SCHEMAS = REPO_ROOT / "mappings" / "schemas"
INBOX = "/partner/inbox"


def _key(kid: str, alg: str = "ecdsa-p256-sha256") -> SigningKey:
    return SigningKey(kid=kid, private_key=generate_private_key(alg), alg=alg)


@dataclass
class FakePartner:
    """A partner inbox done right, unless told to break one rule."""

    gateway_key: SigningKey
    key: SigningKey = field(default_factory=lambda: _key("partner-1", "ed25519"))
    remember_nonces: bool = True
    deduplicate: bool = True
    ack_status: str | None = None  # answer this instead of received/duplicate
    auth_status: int = 401  # the status of signature refusals
    problem_json: bool = True
    sign_refusals: bool = True
    bind_signature: bool = True  # False: the profile before answers covered the request's
    seen: dict[str, Any] = field(default_factory=dict)
    nonces: set[str] = field(default_factory=set)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(INBOX, self.receive)
        return app

    def _resolve(self, kid: str) -> Any:
        if kid != self.gateway_key.kid:
            raise UnknownKeyError("unknown key")
        return self.gateway_key.public

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        incoming = HttpMessage.request(
            "POST", f"http://{request.host}{request.raw_path}", list(request.headers.items())
        )
        verified = None
        try:
            verified = verify_request(
                incoming, body, resolve_key=self._resolve, now=datetime.now(UTC)
            )
            if self.remember_nonces and verified.nonce in self.nonces:
                raise UnknownKeyError("replayed")
            self.nonces.add(verified.nonce or "")
            envelope = loads_strict(body)
            message_id = request.headers.get("Idempotency-Key")
            if not isinstance(envelope, dict) or envelope.get("message_id") != message_id:
                raise GatewayError("mismatch")
        except GatewayError as error:
            status = self.auth_status if error.status == 401 else 400
            problem = {"type": "about:blank", "title": error.title}
            return self._answer(incoming, status, problem, authentic=verified is not None)
        duplicate = self.deduplicate and message_id in self.seen
        self.seen[message_id] = envelope
        ack = {
            "message_id": message_id,
            "status": self.ack_status or ("duplicate" if duplicate else "received"),
            "received_at": datetime.now(UTC).isoformat(),
        }
        return self._answer(incoming, 200, ack)

    def _answer(
        self, request: HttpMessage, status: int, payload: dict[str, Any], authentic: bool = True
    ) -> web.Response:
        """Signed and bound to the request's signature, unless that did not verify."""
        refusal = status >= 400
        if refusal:
            payload = {**payload, "status": status}
        body = json.dumps(payload).encode()
        media = "application/problem+json" if refusal and self.problem_json else "application/json"
        if refusal and not (self.sign_refusals and authentic):
            return web.Response(status=status, body=body, content_type=media)
        if not self.bind_signature:
            return web.Response(
                status=status, body=body, headers=self._unbound(status, body, media, request)
            )
        headers = sign_response(
            status=status,
            body=body,
            content_type=media,
            request=request,
            key=self.key,
            now=datetime.now(UTC),
        )
        return web.Response(status=status, body=body, headers=headers)

    def _unbound(
        self, status: int, body: bytes, media: str, request: HttpMessage
    ) -> dict[str, str]:
        """Signed over everything but the request's signature: "@method";req and
        "@target-uri";req alone bind an answer to any request to that URL."""
        headers = {"Content-Type": media, "Content-Digest": content_digest(body)}
        params = SignatureParams(
            components=components(
                "@status", "content-digest", "content-type", '"@method";req', '"@target-uri";req'
            ),
            created=int(datetime.now(UTC).timestamp()),
            keyid=self.key.kid,
            nonce=secrets.token_urlsafe(12),
            tag="gba-gateway",
        )
        message = HttpMessage.response(status, headers)
        return {**headers, **sign(message, self.key, params, request=request)}


@pytest.fixture
def gateway_key() -> SigningKey:
    return _key("sandbox-gw-http-test")


async def _run(
    partner: FakePartner, aiohttp_server: Any, tmp_path: Path, lines: list[str] | None = None
) -> Report:
    server = await aiohttp_server(partner.app())
    jwks = tmp_path / "partner-jwks.json"
    jwks.write_text(json.dumps({"keys": [partner.key.jwk()]}))
    return await run_conformance(
        str(server.make_url(INBOX)),
        partner.gateway_key,
        schemas_dir=SCHEMAS,
        partner_jwks=str(jwks),
        request_timeout=5,
        say=(lines if lines is not None else []).append,
    )


def _reason(report: Report, check_id: str) -> str:
    return next(r.verdict.reason for r in report.results if r.check.id == check_id)


async def test_a_conforming_partner_passes_every_check(
    gateway_key: SigningKey, aiohttp_server: Any, tmp_path: Path
) -> None:
    lines: list[str] = []
    report = await _run(FakePartner(gateway_key), aiohttp_server, tmp_path, lines)
    assert report.ids("fail") == [], [r.verdict for r in report.results]
    issuer_only = "answers-evidence-request"  # this partner issues no evidence
    assert report.ids("pass") == [c for c in CHECK_IDS if c != issuer_only]
    assert report.ids("skip") == [issuer_only]
    assert report.exit_code == 0
    progress = [line for line in lines if line.startswith("[")]
    assert progress[0] == f"[ 1/{len(CHECKS)}] accepts-valid-message — {CHECKS[0].description}"
    assert len(progress) == len(CHECKS)
    assert lines[-1].startswith(f"{len(CHECKS)} checks: {len(CHECKS) - 1} passed, 0 failed")


async def test_a_partner_without_nonce_memory_fails_refuses_replay(
    gateway_key: SigningKey, aiohttp_server: Any, tmp_path: Path
) -> None:
    partner = FakePartner(gateway_key, remember_nonces=False)
    report = await _run(partner, aiohttp_server, tmp_path)
    assert report.ids("fail") == ["refuses-replay"]
    assert _reason(report, "refuses-replay") == (
        'expected 4xx, got 200 (application/json, status "duplicate")'
    )
    assert report.exit_code == 1


async def test_a_partner_that_processes_redeliveries_again_fails_dedup(
    gateway_key: SigningKey, aiohttp_server: Any, tmp_path: Path
) -> None:
    report = await _run(FakePartner(gateway_key, deduplicate=False), aiohttp_server, tmp_path)
    assert report.ids("fail") == ["dedup-redelivery"]
    assert "the message was processed twice" in _reason(report, "dedup-redelivery")


async def test_an_ack_with_a_status_outside_the_schema_fails_ack_schema(
    gateway_key: SigningKey, aiohttp_server: Any, tmp_path: Path
) -> None:
    partner = FakePartner(gateway_key, ack_status="ok")
    report = await _run(partner, aiohttp_server, tmp_path)
    assert set(report.ids("fail")) == {
        "accepts-own-format",
        "ack-schema",
        "dedup-redelivery",
        "refusals-keep-nothing",
    }
    assert "/status: 'ok' is not one of ['received', 'duplicate']" in _reason(report, "ack-schema")


async def test_signature_refusals_with_400_fail_the_checks_that_expect_401(
    gateway_key: SigningKey, aiohttp_server: Any, tmp_path: Path
) -> None:
    report = await _run(FakePartner(gateway_key, auth_status=400), aiohttp_server, tmp_path)
    expect_401 = {
        "refuses-bad-signature",
        "refuses-missing-signature",
        "refuses-unknown-key",
        "refuses-wrong-target",
    }
    assert set(report.ids("fail")) == expect_401
    assert _reason(report, "refuses-unknown-key").startswith(
        "expected 401, got 400 (application/problem+json"
    )


async def test_refusals_that_are_plain_json_and_unsigned_are_named(
    gateway_key: SigningKey, aiohttp_server: Any, tmp_path: Path
) -> None:
    partner = FakePartner(gateway_key, problem_json=False, sign_refusals=False)
    report = await _run(partner, aiohttp_server, tmp_path)
    assert report.ids("fail") == ["errors-are-problem-json", "refusals-signed"]
    problem = _reason(report, "errors-are-problem-json")
    assert "refuses-stale: Content-Type application/json" in problem
    assert "refuses-replay: Content-Type application/json" in problem
    unsigned = _reason(report, "refusals-signed")
    assert "refuses-malformed-body: signature-missing" in unsigned
    assert "refuses-tampered-body" not in unsigned  # a forged request binds no signature


async def test_answers_not_bound_to_the_request_signature_fail_ack_signed(
    gateway_key: SigningKey, aiohttp_server: Any, tmp_path: Path
) -> None:
    report = await _run(FakePartner(gateway_key, bind_signature=False), aiohttp_server, tmp_path)
    assert set(report.ids("fail")) == {"accepts-own-format", "ack-signed", "refusals-signed"}
    assert 'the required component "signature";req;key="sig1"' in _reason(report, "ack-signed")


async def test_answers_signed_by_a_key_outside_the_partner_jwks_fail_ack_signed(
    gateway_key: SigningKey, aiohttp_server: Any, tmp_path: Path
) -> None:
    partner = FakePartner(gateway_key)
    server = await aiohttp_server(partner.app())
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [_key("partner-1", "ed25519").jwk()]}))  # not its key
    report = await run_conformance(
        str(server.make_url(INBOX)), gateway_key, schemas_dir=SCHEMAS, partner_jwks=str(jwks)
    )
    assert set(report.ids("fail")) == {"accepts-own-format", "ack-signed", "refusals-signed"}
    assert "signature-invalid: the signature does not verify" in _reason(report, "ack-signed")


async def test_a_partner_that_does_not_answer_fails_with_the_reason(
    gateway_key: SigningKey, tmp_path: Path
) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [_key("p").jwk()]}))
    report = await run_conformance(
        f"http://127.0.0.1:{free_port()}/inbox",
        gateway_key,
        schemas_dir=SCHEMAS,
        partner_jwks=str(jwks),
    )
    assert report.ids("pass") == []
    assert _reason(report, "accepts-valid-message").startswith(
        "no answer to the first delivery: ClientConnectorError"
    )
    assert set(report.ids("skip")) == {
        "errors-are-problem-json",
        "refusals-signed",
        "refusals-keep-nothing",
        "answers-evidence-request",  # it issues no evidence
    }


def test_junit_has_one_testcase_per_check_and_the_failure_reasons() -> None:
    verdicts = {
        "refuses-replay": Verdict.failed("expected 4xx, got 200 \x00(application/json)"),
        "refusals-keep-nothing": Verdict.skipped("nothing was refused"),
    }
    results = tuple(
        Result(check, verdicts.get(check.id, Verdict.passed("ok")), 0.01) for check in CHECKS
    )
    report = Report("http://p/inbox", "kid-1", "jwks.json", datetime.now(UTC), results)
    root = etree.fromstring(junit_xml(report))
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("tests") == str(len(CHECKS))
    assert (suite.get("failures"), suite.get("skipped"), suite.get("errors")) == ("1", "1", "0")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases) == list(CHECK_IDS)
    failure = cases["refuses-replay"].find("failure")
    assert failure is not None
    assert failure.get("message") == "expected 4xx, got 200 \ufffd(application/json)"
    assert "expected: 4xx" in (failure.text or "")
    skipped = cases["refusals-keep-nothing"].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "nothing was refused"
    assert cases["ack-signed"].find("failure") is None
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["target"] == "http://p/inbox"


def test_check_ids_are_stable_kebab_case_and_name_known_probes() -> None:
    assert len(set(CHECK_IDS)) == len(CHECK_IDS) >= 17
    for check in CHECKS:
        assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)+", check.id)
        assert all(probe in PROBES for probe in check.probes)
        assert all((check.description, check.expects, check.rule))


def test_the_message_sent_is_a_valid_forwarded_message() -> None:
    validator = schema_validator(
        REPO_ROOT / "adapters" / "guangdong" / "schemas",
        "guangdong-message.schema.json",
        also=(SCHEMAS,),
    )
    first_id, first = forwarded_message(datetime.now(UTC))
    second_id, _ = forwarded_message(datetime.now(UTC))
    message = json.loads(first)
    assert [e.message for e in validator.iter_errors(message)] == []
    assert message["message_id"] == first_id != second_id
    assert message["translation"]["canonical_digest"].startswith("sha-256=:")


def test_the_signing_key_comes_from_a_file_or_the_newest_http_key_of_a_directory(
    tmp_path: Path,
) -> None:
    ring = keystore.generate(tmp_path / "gw", sandbox=True)
    newer = keystore.generate(tmp_path / "gw", sandbox=True).current("http")
    assert newer.kid != ring.current("http").kid
    from_dir = load_signing_key(tmp_path / "gw")
    assert (from_dir.kid, from_dir.alg) == (newer.kid, newer.alg)
    pem = tmp_path / "partner-trusted.pem"
    pem.write_bytes(private_key_pem(generate_private_key("ed25519")))
    assert load_signing_key(pem).kid == "partner-trusted"
    assert load_signing_key(pem, "chosen").kid == "chosen"
    with pytest.raises(ConfigurationError, match="cannot load the signing key"):
        load_signing_key(tmp_path / "missing.pem")
    with pytest.raises(ConfigurationError, match="cannot read the key manifest"):
        load_signing_key(tmp_path)


def test_partner_keys_from_a_jwks_or_an_agency_document() -> None:
    key, old = _key("a-1"), _key("a-0")
    agency = {
        "agency_id": "hk-ird",
        "keys": [
            {"kid": "a-1", "jwk": key.jwk(), "not_before": None, "revoked": False},
            {"kid": "a-0", "jwk": old.jwk(), "revoked": True},
        ],
    }
    keys = PartnerKeys.from_document(agency, "agency")
    assert list(keys.keys) == ["a-1"]
    assert keys("a-1").owner == "hk-ird"
    with pytest.raises(UnknownKeyError):
        keys("a-0")
    assert PartnerKeys.from_document({"keys": [key.jwk()]}, "jwks")("a-1").alg == key.alg
    with pytest.raises(ConfigurationError, match="not a JWKS"):
        PartnerKeys.from_document({"items": []}, "x")


def test_the_sandbox_default_for_partner_keys() -> None:
    assert sandbox_agency_url("http://127.0.0.1:8080/sandbox/partners/mo-dsf/messages") == (
        "http://127.0.0.1:8080/sandbox/v1/agencies/mo-dsf"
    )
    assert sandbox_agency_url("https://agency.example/inbox") is None
