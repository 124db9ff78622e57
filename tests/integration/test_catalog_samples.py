"""Every matter of the catalog: its sample application is accepted by the running sandbox."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gateway import jurisdictions
from gateway.cli import main
from gateway.mapping.catalog import Catalog
from gateway.operations import mappings_sample
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import channel_headers, default_persona
from gateway.settings import REPO_ROOT
from gateway.web.keys import DEPENDENCIES
from tests.conftest import RunningGateway
from tests.support import send

CODES = sorted(p.stem for p in (REPO_ROOT / "mappings" / "matters").glob("*.yaml"))


async def test_the_sample_of_every_matter_is_accepted(gateway: RunningGateway) -> None:
    """Every matter of the catalog, on one gateway (one start per database, not per matter)."""
    answers = {}
    for code in CODES:
        body = mappings_sample(gateway.settings, code, "canonical", "chan-tai-man")
        matter = gateway.app[DEPENDENCIES].catalog.get(code, date.today())  # type: ignore[index]
        answer = await send(
            gateway.settings,
            "POST",
            "/v1/applications",
            body=body,
            content_type="application/json",
            headers=channel_headers(matter, persona("chan-tai-man")),  # a channel it lists
        )
        # complete: accepted at once, or (agency acceptance) received for the lead to examine
        expected = "accepted" if matter.acceptance == "automatic" else "received"
        answers[code] = (answer.status, answer.json().get("status"), answer.json().get("matter"))
        assert answers[code] == (202, expected, code), (code, answer.body)
    assert len(answers) == len(CODES) == 10


def test_mappings_check_passes_on_the_shipped_data_and_fails_on_a_broken_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["mappings", "check", "--sandbox-agencies"]) == 0
    assert "all sound" in capsys.readouterr().out

    import shutil

    broken = tmp_path / "mappings"
    shutil.copytree(REPO_ROOT / "mappings", broken)
    matter = broken / "matters" / "11440400MB2C00081P4440120002000.yaml"
    matter.write_text(
        matter.read_text("utf-8").replace("promised: {value: 0,", "promised: {value: 9,"), "utf-8"
    )
    # a copy of the HK folder replaces the installed one (jurisdiction_folders)
    hk = tmp_path / "hk"
    shutil.copytree(REPO_ROOT / "adapters" / "hk", hk, ignore=shutil.ignore_patterns("__pycache__"))
    fields = hk / "fields" / "hk.yaml"
    fields.write_text(
        fields.read_text("utf-8").replace("transform: date_dmy", "transform: date_mdy"), "utf-8"
    )
    monkeypatch.setenv("GBA_MAPPINGS_DIR", str(broken))
    monkeypatch.setenv("GBA_JURISDICTION_FOLDERS", str(hk))
    try:
        assert main(["mappings", "check"]) == 1
    finally:
        jurisdictions.reset()
    out = capsys.readouterr().out
    assert "11440400MB2C00081P4440120002000" in out
    assert "promised" in out
    assert "hk/fields/hk.yaml" in out
    assert "mappings: 2 problem(s)" in out


def test_mappings_sample_and_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mappings", "sample", CODES[0], "--format", "guangdong"]) == 0
    assert json.loads(capsys.readouterr().out)["matter"] == CODES[0]
    assert main(["mappings", "sample", CODES[0], "--persona", "nobody"]) == 2
    assert "no persona" in capsys.readouterr().err
    assert main(["mappings", "report"]) == 0
    report = capsys.readouterr().out
    assert "HK" in report
    assert "MO" in report


@pytest.mark.parametrize(("fmt", "agency"), [("hk", "hk-ird"), ("macau", "mo-dsf")])
async def test_native_samples_of_every_matter_are_accepted_from_their_jurisdiction(
    gateway: RunningGateway, fmt: str, agency: str
) -> None:
    """The native XML of each of the ten matters, signed by an agency of that jurisdiction."""
    for code in CODES:
        body = mappings_sample(gateway.settings, code, fmt, None)
        matter = gateway.app[DEPENDENCIES].catalog.get(code, date.today())  # type: ignore[index]
        answer = await send(
            gateway.settings,
            "POST",
            "/v1/applications",
            body=body,
            content_type="application/xml",
            agency=agency,
            headers=channel_headers(matter, persona(default_persona(fmt))),
        )
        assert answer.status == 202, (code, answer.body)
        expected = "accepted" if matter.acceptance == "automatic" else "received"
        assert answer.json()["status"] == expected, code
        assert answer.json()["matter"] == code


@pytest.mark.parametrize("fmt", ["canonical", "hk", "macau", "guangdong"])
def test_mappings_sample_prints_every_matter_in_every_format(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.settings import load_settings

    settings = load_settings(environ={}, mode="sandbox")
    codecs = {"hk": "HK", "macau": "MO"}
    for code in CODES:
        assert main(["mappings", "sample", code, "--format", fmt]) == 0, code
        out = capsys.readouterr().out.encode()
        if fmt in codecs:
            codec = _codecs(settings)[codecs[fmt]]
            decoded = codec.decode(out)
            assert decoded.problems == ()
            assert decoded.document["matter"] == code
            matter = Catalog.load(REPO_ROOT / "mappings" / "matters").get(code, date.today())
            assert set(decoded.document["particulars"]) == {p.name for p in matter.particulars}
        else:
            assert json.loads(out)["matter"] == code


def _codecs(settings: Any) -> dict[str, Any]:
    from gateway.bootstrap import codecs

    return codecs(settings)


def test_a_native_sample_that_would_drop_a_member_of_a_particular_is_refused(
    tmp_path: Path,
) -> None:
    """A format that has no place for a member (here the address's area code) refuses to
    print the sample instead of leaving the member out."""
    import shutil

    from gateway.domain.errors import ValidationFailedError
    from gateway.settings import load_settings

    hk = tmp_path / "hk"  # a copy of the HK folder replaces the installed one
    shutil.copytree(REPO_ROOT / "adapters" / "hk", hk, ignore=shutil.ignore_patterns("__pycache__"))
    fields = hk / "fields" / "hk.yaml"
    text = fields.read_text("utf-8")
    assert text.count('        - {to: area_code, from: "@areaCode"}\n') == 1
    fields.write_text(text.replace('        - {to: area_code, from: "@areaCode"}\n', ""), "utf-8")
    settings = load_settings(environ={"GBA_JURISDICTION_FOLDERS": str(hk)}, mode="sandbox")
    residence = "11440100MB2C0002124440700001000"  # residence_address: an address particular

    try:
        with pytest.raises(ValidationFailedError) as refused:
            mappings_sample(settings, residence, "hk", None)
    finally:
        jurisdictions.reset()

    assert [(e.code, e.pointer) for e in refused.value.errors] == [
        ("not_in_format", "/particulars/residence_address/area_code")
    ]


@pytest.mark.parametrize("fmt", ["hk", "macau"])
def test_mappings_schema_prints_the_generated_xsd_that_validates_the_samples(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from lxml import etree

    assert main(["mappings", "schema", fmt]) == 0
    printed = capsys.readouterr().out.encode()
    schema = etree.XMLSchema(etree.fromstring(printed))

    for code in CODES:
        assert main(["mappings", "sample", code, "--format", fmt]) == 0
        sample = etree.fromstring(capsys.readouterr().out.encode())
        assert schema.validate(sample), (code, schema.error_log)


@pytest.mark.parametrize("fmt", ["hk", "macau"])
def test_a_mainland_persona_sample_carries_the_mainland_identity_card(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """zhang-wei holds only a Mainland identity card: both XML formats carry it (``CNID``),
    so a Guangdong applicant's case can reach Hong Kong and Macau handlers."""
    from lxml import etree

    assert main(["mappings", "sample", CODES[0], "--format", fmt, "--persona", "zhang-wei"]) == 0
    sample = etree.fromstring(capsys.readouterr().out.encode())
    types = {e.get("type") or e.get("tipo") for e in sample.iter() if "Document" in str(e.tag)}
    assert "CNID" in types
