"""``python -m bench``: bounded, loopback-free micro-benchmarks of the accept path's steps.

Each figure comes with its ratio to a baseline measured in the same run, because this
machine is shared and noisy: absolute numbers vary, ratios much less.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree

import adapters.hk
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import hk_individual_business
from gateway.settings import REPO_ROOT
from gateway.trust.httpsig import HttpMessage
from gateway.trust.keys import SigningKey, generate_private_key
from gateway.trust.profile import sign_request, verify_request

RESULTS = Path(__file__).parent / "results"
BUDGET = 1.5  # seconds per measurement


def rate(fn: Callable[[], object], budget: float = BUDGET) -> float:
    """Operations per second of ``fn``, best of three rounds within the budget."""
    best = 0.0
    for _ in range(3):
        count, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < budget / 3:
            for _ in range(20):
                fn()
            count += 20
        best = max(best, count / elapsed)
    return best


def translation() -> dict[str, float]:
    document = hk_individual_business(persona("chan-tai-man"))
    codec = adapters.hk.codec(REPO_ROOT / "mappings")
    schema = etree.XMLSchema(etree.parse(str(REPO_ROOT / "mappings/schemas/hk-application.xsd")))
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

    def baseline() -> None:
        schema.assertValid(etree.fromstring(document, parser))

    base = rate(baseline)
    ours = rate(lambda: codec.decode(document))
    return {
        "translate_hk_to_canonical_per_s": ours,
        "baseline_parse_validate_per_s": base,
        "ratio": ours / base,
    }


def trust() -> dict[str, float]:
    key = SigningKey("bench", generate_private_key("ecdsa-p256-sha256"), "ecdsa-p256-sha256")
    body = hk_individual_business(persona("chan-tai-man"))
    url = "http://127.0.0.1:8080/v1/applications"
    headers = sign_request(
        method="POST",
        url=url,
        key=key,
        now=datetime.now(UTC),
        body=body,
        content_type="application/xml",
        idempotency_key="bench-key-1",
    )
    message = HttpMessage.request("POST", url, headers)
    now = datetime.now(UTC)
    public = key.private_key.public_key()
    signature = key.private_key.sign(body, ec.ECDSA(hashes.SHA256()))
    assert isinstance(public, ec.EllipticCurvePublicKey)

    def baseline() -> None:
        public.verify(signature, body, ec.ECDSA(hashes.SHA256()))

    base = rate(baseline)
    ours = rate(lambda: verify_request(message, body, resolve_key=lambda _: key.public, now=now))
    return {
        "verify_signed_request_per_s": ours,
        "baseline_one_p256_verify_per_s": base,
        "ratio": ours / base,
    }


def main() -> int:
    results = {
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for name, bench in (("translation", translation), ("trust", trust)):
        print(f"bench: {name} ...", flush=True)
        results[name] = bench()
        figures = results[name]
        print("  " + ", ".join(f"{k} {v:,.2f}" for k, v in figures.items()), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    table = ["| step | ours /s | baseline /s | ratio |", "|---|---:|---:|---:|"]
    for name in ("translation", "trust"):
        ours, base, ratio = results[name].values()
        table.append(f"| {name} | {ours:,.0f} | {base:,.0f} | {ratio:.2f} |")
    (RESULTS / "latest.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
