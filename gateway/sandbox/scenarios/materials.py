"""``materials``: files travel with a joint case, and only its handlers fetch them (issue 16).

The medical matter is examined by the Shenzhen Health Commission and reviewed by the HK
Medical Council. ``hk-ird`` uploads one PDF per material the matter requires (signed POST,
answered 201 with the RFC 9530 digest), submits the sample application naming them by
``material_id``; the receipt binds each (code, material id, digest). The lead's inbox gets
the case; the lead fetches each file at the ``href`` its case lists with a signed GET, and the
bytes have the digest; the sandbox agencies' own systems fetched them on receipt too; an
agency that does not handle the case gets 404, as for an id that does not exist.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from gateway.sandbox.personas import persona
from gateway.sandbox.samples import canonical_sample
from gateway.sandbox.scenarios.base import Scenario, expect
from gateway.sandbox.scenarios.context import Context, encoded, events

MEDICAL = "11440300MB2C00091K3440120007000"  # joint: Shenzhen lead, HK Medical Council
SUBMITTER = "hk-ird"
OUTSIDER = "mo-dsat"  # a registered agency that handles nothing of this case
PDF = "application/pdf"


def pdf_of(label: str) -> bytes:
    """A small, valid-looking PDF of its own content (so each file has its own digest)."""
    body = f"%PDF-1.7\n% {label}\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".encode()
    return body + b"\n" * (len(label) % 7)


def digest_of(data: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


async def materials(ctx: Context) -> None:
    matter = ctx.matter(MEDICAL)
    lead = matter.route.lead
    document = canonical_sample(matter, persona("chan-tai-man"))
    codes = [m["code"] for m in document["materials"]]
    expect(codes, f"materials to upload for {MEDICAL}", "the sample names none")
    files: dict[str, bytes] = {}
    client = await ctx.agency(SUBMITTER)

    async with ctx.step(f"{SUBMITTER} uploads {len(codes)} PDF(s), signed") as step:
        named = []
        for code in codes:
            data = pdf_of(f"{code} of {SUBMITTER}")
            status, answer, _ = await client.call("POST", "/v1/materials", data, PDF)
            expect(status == 201, "201 from POST /v1/materials", f"{status} {answer}")
            expect(
                answer.get("digest") == digest_of(data) and answer.get("size") == len(data),
                f"digest {digest_of(data)}, size {len(data)}",
                answer,
            )
            files[answer["material_id"]] = data
            named.append({"code": code, "material_id": answer["material_id"]})
        document["materials"] = named
        step.detail = ", ".join(files)

    async with ctx.step(f"{SUBMITTER} submits {MEDICAL} naming them") as step:
        body = encoded(document)
        answer = await ctx.signed(SUBMITTER, "POST", "/v1/applications", body)
        expect(answer.status == 202, "202 from POST /v1/applications", answer.describe())
        application_id = answer.body["application_id"]
        claims = await ctx.receipt(
            answer.body["receipt"],
            application_id=application_id,
            matter=MEDICAL,
            status=answer.body["status"],
            body=body,
        )
        wanted = [
            {"code": n["code"], "material_id": n["material_id"], "digest": digest_of(files[m])}
            for n, m in zip(named, files, strict=True)
        ]
        expect(claims.get("materials") == wanted, f"the receipt binds {wanted}", claims)
        step.detail = f"{application_id}: the receipt binds each file"

    async with ctx.step(f"{lead} receives the case, its files listed with an href") as step:
        view = await ctx.until(
            lambda: ctx.case(SUBMITTER, application_id),
            lambda v: bool(events(v, "message.delivered")),
            expected=f"the case delivered to {lead}",
            seen=lambda v: v["status"],
        )
        listed: list[dict[str, Any]] = events(view, "application.received")[0].get("materials", [])
        expect(
            [m.get("material_id") for m in listed] == list(files),
            f"the received event lists {list(files)}",
            listed,
        )
        step.detail = ", ".join(m["href"] for m in listed)

    lead_client = await ctx.agency(lead)
    async with ctx.step(f"{lead} fetches each file with a signed GET; the digests match"):
        for item in listed:
            path = item["href"].removeprefix(ctx.url)
            status, data, headers = await lead_client.raw("GET", path)
            expect(status == 200, f"200 from GET {path} as {lead}", status)
            digest = digest_of(data)
            expect(
                digest
                == item["digest"]
                == headers.get("Content-Digest")
                == digest_of(files[item["material_id"]]),
                f"the bytes of {item['material_id']} with digest {item['digest']}",
                f"{digest}, Content-Digest {headers.get('Content-Digest')}",
            )

    async with ctx.step(f"{lead}'s sandbox system fetched them on receipt, digests checked"):
        fetched = await ctx.until(
            lambda: ctx.get_ok(f"/sandbox/partners/{lead}/messages"),
            lambda box: {f["material_id"] for f in box.get("fetched", [])} >= set(files),
            expected=f"{lead} fetched {list(files)}",
            seen=lambda box: box.get("fetched"),
        )
        bad = [f for f in fetched["fetched"] if f["material_id"] in files and not f["digest_ok"]]
        expect(not bad, "every digest matched", bad)

    outsider = await ctx.agency(OUTSIDER)
    async with ctx.step(f"{OUTSIDER}, not a handler, gets 404 as for an unknown id"):
        path = listed[0]["href"].removeprefix(ctx.url)
        unknown = f"/v1/applications/{application_id}/materials/mat_00000000000000000000000000"
        status, _, _ = await outsider.raw("GET", path)
        none, _, _ = await outsider.raw("GET", unknown)
        expect((status, none) == (404, 404), "404 for both", (status, none))


MATERIALS = Scenario(
    "materials",
    "uploaded files travel with a joint case; its handlers fetch them signed, others get 404",
    materials,
)
