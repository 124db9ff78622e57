"""How the kit judges answers: each judge reads what was exchanged and returns a verdict.

A :class:`Verdict` is ``pass``, ``fail`` with the reason (expected versus got), or ``skip``
when there is nothing of its kind to judge (the checks on refusals, when nothing was refused:
the refusal checks themselves fail then). The checks that use these judges are listed in
:mod:`gateway.conformance.checks`.

Signatures and digests are checked with the gateway's own code
(:func:`~gateway.trust.profile.verify_response`,
:func:`~gateway.trust.digest.verify_content_digest`), as its partner client does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import jsonschema

from gateway.conformance.probes import Answer, Exchange
from gateway.domain.errors import AuthenticationError, GatewayError
from gateway.mapping.canonical import loads_strict
from gateway.trust.digest import verify_content_digest
from gateway.trust.keys import VerificationKey
from gateway.trust.profile import verify_response

Outcome = Literal["pass", "fail", "skip"]
PROBLEM_JSON = "application/problem+json"
ACKS = ("first-delivery", "redelivery")  # the two deliveries a partner must acknowledge
XML_TYPES = ("application/xml", "text/xml")


class AckFormat(Protocol):
    """The acknowledgement of the partner's own XML format (its field map's ``ack`` message)."""

    def decode(self, body: bytes) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str

    @classmethod
    def passed(cls, reason: str) -> Verdict:
        return cls("pass", reason)

    @classmethod
    def failed(cls, reason: str) -> Verdict:
        return cls("fail", reason)

    @classmethod
    def skipped(cls, reason: str) -> Verdict:
        return cls("skip", reason)


@dataclass(frozen=True)
class Evidence:
    """Everything sent and received so far, and how to check the partner's signatures."""

    sent: Mapping[str, Sequence[Exchange]]
    resolve_key: Callable[[str], VerificationKey]
    clock: Callable[[], datetime]
    ack_schema: jsonschema.protocols.Validator
    # an HK or Macau partner may acknowledge in its own XML (Ack, Confirmacao): read as JSON
    ack_format: AckFormat | None = None

    def one(self, probe: str) -> Exchange:
        return self.sent[probe][0]

    def answered(self, probes: Iterable[str], statuses: range) -> list[tuple[str, Exchange]]:
        return [
            (name, ex)
            for name in probes
            for ex in self.sent.get(name, ())
            if ex.answer is not None and ex.answer.status in statuses
        ]


Judge = Callable[[Evidence], Verdict]


SUCCESS, CLIENT_ERROR, ERROR = range(200, 300), range(400, 500), range(400, 600)


def _text(body: bytes, limit: int = 120) -> str:
    text = body.decode("utf-8", "replace")
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json(answer: Answer) -> Any:
    try:
        return loads_strict(answer.body)
    except GatewayError:
        return None


def describe(answer: Answer) -> str:
    """An answer in a few words: status, type, and what it says (status, problem, text)."""
    data = _json(answer)
    said = ""
    if isinstance(data, dict) and isinstance(data.get("status"), str):
        said = f', status "{data["status"]}"'
    elif isinstance(data, dict) and isinstance(data.get("title"), str):
        said = f", {_problem_said(data)}"
    elif answer.body and data is None:
        said = f", {_text(answer.body, 80)!r}"
    return f"{answer.status} ({answer.media_type or 'no Content-Type'}{said})"


def _problem_said(problem: dict[str, Any]) -> str:
    """A problem's type (its last path segment) and detail, or its title."""
    kind = problem.get("type")
    slug = kind.rstrip("/").rsplit("/", 1)[-1] if isinstance(kind, str) and kind else ""
    detail = problem.get("detail")
    said = detail if isinstance(detail, str) and detail else problem["title"]
    said = f'"{_text(said.encode(), 80)}"'
    return f"{slug}: {said}" if slug and slug != "about:blank" else said


def _no_answer(exchange: Exchange) -> Verdict:
    return Verdict.failed(f"no answer to {exchange.sent.note or 'the request'}: {exchange.error}")


def accepts_valid_message(ev: Evidence) -> Verdict:
    exchange = ev.one("first-delivery")
    if exchange.answer is None:
        return _no_answer(exchange)
    if exchange.answer.status in SUCCESS:
        return Verdict.passed(f"accepted: {describe(exchange.answer)}")
    return Verdict.failed(f"expected 2xx, got {describe(exchange.answer)}")


def _acks(ev: Evidence) -> list[Exchange] | Verdict:
    acks = [ex for _, ex in ev.answered(ACKS, SUCCESS)]
    if not acks:
        first = ev.one("first-delivery")
        got = describe(first.answer) if first.answer else first.error
        return Verdict.failed(f"no acknowledgement to check: the first delivery got {got}")
    return acks


def signature_problem(exchange: Exchange, ev: Evidence) -> str | None:
    """Why the answer's signature does not verify for this request, or None when it does."""
    assert exchange.answer is not None
    try:
        verify_response(
            exchange.answer.message,
            exchange.answer.body,
            request=exchange.sent.request,
            resolve_key=ev.resolve_key,
            now=ev.clock(),
        )
    except AuthenticationError as exc:
        return f"{exc.slug}: {exc.detail}"
    except GatewayError:
        return None  # the signature verified; the digest is ack-digest's business
    return None


def ack_signed(ev: Evidence) -> Verdict:
    acks = _acks(ev)
    if isinstance(acks, Verdict):
        return acks
    problems = [f"{ex.sent.note}: {p}" for ex in acks if (p := signature_problem(ex, ev))]
    if problems:
        return Verdict.failed("; ".join(problems))
    return Verdict.passed(f"{len(acks)} acknowledgement(s) verified with the partner's key")


def ack_digest(ev: Evidence) -> Verdict:
    acks = _acks(ev)
    if isinstance(acks, Verdict):
        return acks
    problems = []
    for ex in acks:
        assert ex.answer is not None
        try:
            verify_content_digest(ex.answer.header("content-digest"), ex.answer.body)
        except GatewayError as exc:
            problems.append(f"{ex.sent.note}: {exc.detail}")
    if problems:
        return Verdict.failed("; ".join(problems))
    return Verdict.passed("Content-Digest matches the bytes of every acknowledgement")


def _ack_data(answer: Answer, ev: Evidence) -> tuple[Any, str | None]:
    """The acknowledgement as its JSON data: a JSON body, or the ack of the partner's own XML
    format (only its status and signature count to the relay); else None and why not."""
    if answer.media_type in XML_TYPES and ev.ack_format is not None:
        try:
            return ev.ack_format.decode(answer.body), None
        except GatewayError as exc:
            where = ", ".join(sorted({p.xpath or p.pointer or "/" for p in exc.errors}))
            return None, f"the XML acknowledgement is refused: {exc.detail} ({where})"
    if answer.media_type != "application/json":
        accepted = "application/json" + (" or application/xml" if ev.ack_format else "")
        return None, f"Content-Type is {answer.media_type or 'missing'}, not {accepted}"
    data = _json(answer)
    if data is None:
        return None, f"the body is not JSON: {_text(answer.body, 60)!r}"
    return data, None


def _ack_problems(ex: Exchange, ev: Evidence) -> list[str]:
    assert ex.answer is not None
    data, refused = _ack_data(ex.answer, ev)
    if refused is not None:
        return [refused]
    found = [
        f"{'/' + '/'.join(map(str, e.absolute_path)) if e.absolute_path else 'body'}: {e.message}"
        for e in ev.ack_schema.iter_errors(data)
    ]
    if isinstance(data, dict) and data.get("message_id") != ex.sent.message_id:
        found.append(f"message_id is {data.get('message_id')!r}, not {ex.sent.message_id!r}")
    return found


def ack_schema(ev: Evidence) -> Verdict:
    acks = _acks(ev)
    if isinstance(acks, Verdict):
        return acks
    problems = [f"{ex.sent.note}: {p}" for ex in acks for p in _ack_problems(ex, ev)]
    if problems:
        return Verdict.failed("; ".join(problems))
    return Verdict.passed("every acknowledgement is valid against partner-ack.schema.json")


def accepts_own_format(ev: Evidence) -> Verdict:
    """The forward in the partner's declared format is acknowledged like any: 2xx, signed by
    the partner's key and bound to our request, a valid ack with status "received"."""
    exchange = ev.one("native-delivery")
    if exchange.answer is None:
        return _no_answer(exchange)
    what = exchange.sent.note
    if exchange.answer.status not in SUCCESS:
        return Verdict.failed(f"{what}: expected 2xx, got {describe(exchange.answer)}")
    problems = [p for p in (signature_problem(exchange, ev),) if p]
    problems += _ack_problems(exchange, ev)
    if not problems and _ack_status(exchange, ev) != "received":
        problems.append(f'status is {_ack_status(exchange, ev)!r}, not "received"')
    if problems:
        return Verdict.failed(f"{what}: " + "; ".join(problems))
    return Verdict.passed(f"{what} was acknowledged, signed: {describe(exchange.answer)}")


def _ack_status(exchange: Exchange, ev: Evidence) -> object:
    data = _ack_data(exchange.answer, ev)[0] if exchange.answer else None
    return data.get("status") if isinstance(data, dict) else None


def dedup_redelivery(ev: Evidence) -> Verdict:
    first, again = ev.one("first-delivery"), ev.one("redelivery")
    for exchange in (first, again):
        if exchange.answer is None:
            return _no_answer(exchange)
        if exchange.answer.status not in SUCCESS:
            return Verdict.failed(
                f"expected 2xx to {exchange.sent.note}, got {describe(exchange.answer)}"
            )
    if _ack_status(first, ev) != "received":
        return Verdict.failed(
            f'the first delivery was answered {_ack_status(first, ev)!r}, expected "received"'
        )
    if _ack_status(again, ev) != "duplicate":
        return Verdict.failed(
            f'expected status "duplicate" for the redelivery, got {_ack_status(again, ev)!r}:'
            " the message was processed twice"
        )
    return Verdict.passed(f"redelivery answered {describe(again.answer)}")  # type: ignore[arg-type]


def refused(probe: str, statuses: range, expected: str) -> Judge:
    """A judge for a refusal probe: its answer's status must be in ``statuses``."""

    def judge(ev: Evidence) -> Verdict:
        exchange = ev.one(probe)
        if exchange.answer is None:
            return _no_answer(exchange)
        if exchange.answer.status in statuses:
            return Verdict.passed(f"refused: {describe(exchange.answer)}")
        return Verdict.failed(f"expected {expected}, got {describe(exchange.answer)}")

    return judge


def _problem_json(answer: Answer | None) -> str | None:
    assert answer is not None
    if answer.media_type != PROBLEM_JSON:
        return f"Content-Type {answer.media_type or 'missing'}"
    data = _json(answer)
    if not isinstance(data, dict):
        return "the body is not a JSON object"
    missing = [m for m in ("type", "title") if not isinstance(data.get(m), str)]
    if missing:
        return f"no {' or '.join(missing)} (string)"
    if data.get("status") != answer.status:
        return f"status member {data.get('status')!r} is not the HTTP status {answer.status}"
    return None


def errors_are_problem_json(probes: tuple[str, ...]) -> Judge:
    def judge(ev: Evidence) -> Verdict:
        refusals = ev.answered(probes, ERROR)
        if not refusals:
            return Verdict.skipped("nothing was refused, so there is no error to examine")
        problems = [f"{name}: {p}" for name, ex in refusals if (p := _problem_json(ex.answer))]
        if problems:
            return Verdict.failed("not RFC 9457 problem+json: " + "; ".join(problems))
        return Verdict.passed(f"{len(refusals)} refusal(s), every one problem+json")

    return judge


def refusals_signed(probes: tuple[str, ...]) -> Judge:
    def judge(ev: Evidence) -> Verdict:
        refusals = ev.answered(probes, ERROR)
        if not refusals:
            return Verdict.skipped("nothing was refused, so there is no refusal to verify")
        problems = [f"{name}: {p}" for name, ex in refusals if (p := _refusal_signature(ex, ev))]
        if problems:
            return Verdict.failed("; ".join(problems))
        return Verdict.passed(f"{len(refusals)} refusal(s), every one signed and bound to ours")

    return judge


def _refusal_signature(exchange: Exchange, ev: Evidence) -> str | None:
    problem = signature_problem(exchange, ev)
    if problem is not None:
        return problem
    assert exchange.answer is not None
    try:
        verify_content_digest(exchange.answer.header("content-digest"), exchange.answer.body)
    except GatewayError as exc:
        return exc.detail
    return None


def refusals_keep_nothing(ev: Evidence) -> Verdict:
    redelivered = ev.sent.get("redeliver-refused", ())
    if not redelivered:
        return Verdict.skipped("no message with an id was refused: nothing to redeliver")
    problems = []
    for exchange in redelivered:
        if exchange.answer is None:
            problems.append(f"{exchange.sent.note}: no answer ({exchange.error})")
        elif exchange.answer.status not in SUCCESS:
            problems.append(f"{exchange.sent.note}: expected 2xx, got {describe(exchange.answer)}")
        elif _ack_status(exchange, ev) != "received":
            problems.append(
                f"{exchange.sent.note} was kept: redelivered properly, it was answered "
                f'{_ack_status(exchange, ev)!r}, expected "received"'
            )
    if problems:
        return Verdict.failed("; ".join(problems))
    return Verdict.passed(f"{len(redelivered)} refused message(s) delivered properly: received")


def answers_evidence_request(ev: Evidence) -> Verdict:
    """An evidence issuer answers a signed evidence request in its signed acknowledgement:
    2xx, signed by its key and bound to our request, the digest right, and the body either
    an ``evidence_document`` for this request and type (with a ``document`` object and
    ``issued_at``) or an ``evidence_refusal`` for this request with a reason code."""
    sent = ev.sent.get("evidence-request", ())
    if not sent:
        return Verdict.skipped("the partner declares no evidence type it issues")
    exchange = sent[0]
    if exchange.answer is None:
        return _no_answer(exchange)
    what, answer = exchange.sent.note, exchange.answer
    if answer.status not in SUCCESS:
        return Verdict.failed(f"{what}: expected 2xx, got {describe(answer)}")
    problems = [p for p in (signature_problem(exchange, ev),) if p]
    try:
        verify_content_digest(answer.header("content-digest"), answer.body)
    except GatewayError as exc:
        problems.append(str(exc.detail))
    try:
        data = loads_strict(answer.body)
    except GatewayError:
        data = None
    request = loads_strict(exchange.sent.body)
    if not isinstance(data, dict) or data.get("request_id") != request["request_id"]:
        problems.append("the answer is not JSON naming our request_id")
    elif data.get("type") == "evidence_document":
        if data.get("evidence_type") != request["evidence_type"]:
            problems.append("the document is of another evidence type")
        if not isinstance(data.get("document"), dict):
            problems.append("the document is not an object")
        if not isinstance(data.get("issued_at"), str):
            problems.append("issued_at is missing")
    elif data.get("type") == "evidence_refusal":
        if not isinstance(data.get("reason"), str) or not data["reason"]:
            problems.append("a refusal carries a reason code")
    else:
        problems.append('type is neither "evidence_document" nor "evidence_refusal"')
    if problems:
        return Verdict.failed(f"{what}: " + "; ".join(problems))
    kind = data["type"] if isinstance(data, dict) else "?"
    return Verdict.passed(f"{what} was answered, signed: {kind}")
