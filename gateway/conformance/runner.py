"""Runs the checks against a partner's inbox, acting as the gateway would.

One ``ClientSession`` with a timeout on every request. Checks run in order; before each, the
probes it judges (and the probes those need first) are sent, one at a time, so the progress
line of a check appears as it runs. A probe is sent once per run and its answers are shared
by every check that judges it. The verdicts, with timings, make a :class:`Report`.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import jsonschema

from gateway.conformance.checks import CHECKS, Check
from gateway.conformance.credentials import PartnerKeys, partner_keys
from gateway.conformance.judges import Evidence, Verdict
from gateway.conformance.probes import PROBES, Answer, Exchange, KitContext, Outgoing
from gateway.domain.agencies import CANONICAL_FORMAT
from gateway.domain.errors import ConfigurationError, GatewayError
from gateway.mapping.canonical import loads_strict
from gateway.services.ports import DocumentCodec
from gateway.trust.keys import SigningKey, generate_private_key

ACK_SCHEMA = "partner-ack.schema.json"
MAX_ANSWER_BYTES = 256 * 1024
Say = Callable[[str], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Result:
    check: Check
    verdict: Verdict
    seconds: float


@dataclass(frozen=True)
class Report:
    target: str
    kid: str
    partner_keys: str
    started: datetime
    results: tuple[Result, ...]

    def ids(self, outcome: str) -> list[str]:
        return [r.check.id for r in self.results if r.verdict.outcome == outcome]

    @property
    def passed(self) -> bool:
        return not self.ids("fail")

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.results)


def ack_validator(schemas_dir: Path) -> jsonschema.protocols.Validator:
    try:
        schema = loads_strict((schemas_dir / ACK_SCHEMA).read_bytes())
        jsonschema.Draft202012Validator.check_schema(schema)
    except (OSError, GatewayError, jsonschema.SchemaError) as exc:
        raise ConfigurationError(f"cannot load {ACK_SCHEMA} from {schemas_dir}: {exc}") from None
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


class Kit:
    """One run: sends probes on demand and judges the checks in order."""

    def __init__(
        self,
        ctx: KitContext,
        session: aiohttp.ClientSession,
        keys: PartnerKeys,
        ack_schema: jsonschema.protocols.Validator,
    ) -> None:
        self._ctx = ctx
        self._session = session
        self._keys = keys
        self._sent: dict[str, list[Exchange]] = {}
        # the partner's own XML acknowledgement, when its format declares one
        ack_format = (getattr(ctx.codec, "messages", None) or {}).get("ack")
        self._evidence = Evidence(self._sent, keys, ctx.clock, ack_schema, ack_format)

    async def run(self, checks: Sequence[Check], say: Say) -> Report:
        started = self._ctx.clock()
        key = self._ctx.key
        say(f"gba-gateway conformance: {len(checks)} checks against {self._ctx.target}")
        say(f"  signing as {key.kid} ({key.alg}); partner keys from {self._keys.source}")
        results = []
        loop = asyncio.get_running_loop()
        for number, check in enumerate(checks, 1):
            say(f"[{number:>2}/{len(checks)}] {check.id} — {check.description}")
            begun = loop.time()
            for probe in check.probes:
                await self._ensure(probe)
            verdict = check.judge(self._evidence)
            results.append(Result(check, verdict, loop.time() - begun))
            say(f"        {verdict.outcome.upper():<4}  {verdict.reason}")
        report = Report(self._ctx.target, key.kid, self._keys.source, started, tuple(results))
        say(_summary(report))
        return report

    async def _ensure(self, name: str) -> None:
        if name in self._sent:
            return
        probe = PROBES[name]
        for before in probe.after:
            await self._ensure(before)
        outgoing = probe.build(self._ctx, self._sent)
        self._sent[name] = [await self._send(one) for one in outgoing]

    async def _send(self, outgoing: Outgoing) -> Exchange:
        loop = asyncio.get_running_loop()
        begun = loop.time()
        try:
            async with self._session.post(
                outgoing.url,
                data=outgoing.body,
                headers=dict(outgoing.headers),
                allow_redirects=False,
            ) as response:
                body = await _bounded(response)
                answer = Answer(response.status, tuple(response.headers.items()), body)
        except TimeoutError:
            timeout = self._session.timeout.total
            return Exchange(outgoing, None, f"no answer within {timeout} s", loop.time() - begun)
        except aiohttp.ClientError as exc:
            return Exchange(outgoing, None, f"{type(exc).__name__}: {exc}", loop.time() - begun)
        return Exchange(outgoing, answer, None, loop.time() - begun)


async def _bounded(response: aiohttp.ClientResponse) -> bytes:
    """The answer's body, cut at :data:`MAX_ANSWER_BYTES` (an ack is small)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        chunks.append(chunk[: MAX_ANSWER_BYTES - size])
        size += len(chunks[-1])
        if size >= MAX_ANSWER_BYTES:
            break
    return b"".join(chunks)


def _summary(report: Report) -> str:
    counts = {o: len(report.ids(o)) for o in ("pass", "fail", "skip")}
    line = (
        f"{len(report.results)} checks: {counts['pass']} passed, {counts['fail']} failed, "
        f"{counts['skip']} skipped ({report.seconds:.2f} s)"
    )
    if counts["fail"]:
        line += "\nfailed: " + ", ".join(report.ids("fail"))
    return line


async def run_conformance(
    target: str,
    key: SigningKey,
    *,
    schemas_dir: Path,
    partner_jwks: str | None = None,
    request_timeout: float = 10.0,
    say: Say = lambda line: None,
    checks: Sequence[Check] = CHECKS,
    clock: Callable[[], datetime] = utc_now,
    formats: Mapping[str, DocumentCodec] | None = None,
    receives: str | None = None,
    evidence_type: str | None = None,
    evidence_subject: Mapping[str, str] | None = None,
) -> Report:
    """Run ``checks`` against the inbox at ``target``, signing as ``key``.

    ``receives`` is the partner's declared format (default: the ``receives`` of its sandbox
    agency document, else ``canonical``); ``formats`` the codecs by format name, which write
    the ``native-delivery`` probe in that format. ``evidence_type`` (default: the first its
    agency document declares it issues) makes the kit send an evidence request with
    ``evidence_subject``; without one the evidence check is skipped.

    :raises ConfigurationError: the partner's keys or the ack schema cannot be loaded.
    """
    validator = ack_validator(schemas_dir)
    stranger = SigningKey(
        kid=f"gba-conformance-unknown-{secrets.token_hex(6)}",
        private_key=await asyncio.to_thread(generate_private_key, key.alg),
        alg=key.alg,
    )
    client_timeout = aiohttp.ClientTimeout(total=request_timeout, connect=min(request_timeout, 5.0))
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        keys = await partner_keys(partner_jwks, target, session)
        declared = receives or keys.receives or CANONICAL_FORMAT
        codec = (formats or {}).get(declared)
        if codec is None and formats is not None:
            raise ConfigurationError(f"no codec for the partner's format {declared!r}")
        kind = evidence_type or next(iter(keys.issues_evidence), None)
        context = KitContext(
            target, key, stranger, clock, declared, codec, kind, dict(evidence_subject or {})
        )
        kit = Kit(context, session, keys, validator)
        return await kit.run(checks, say)
