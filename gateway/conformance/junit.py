"""A run as JUnit XML, the format every CI system reads: one ``<testcase>`` per check.

A failed check carries ``<failure message="reason">`` (the text adds what was expected and
the DESIGN.md rule); a check with nothing to judge carries ``<skipped message="reason">``.
The suite's properties name the target, the key id used and where the partner's keys came
from. Text that XML 1.0 cannot carry (control characters from a partner's answer) is
replaced, so the file is always well-formed.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

from gateway import __version__
from gateway.conformance.runner import Report

SUITE = "gba-partner-conformance"
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def junit_xml(report: Report) -> bytes:
    counts = {o: len(report.ids(o)) for o in ("pass", "fail", "skip")}
    totals = {
        "tests": str(len(report.results)),
        "failures": str(counts["fail"]),
        "errors": "0",
        "skipped": str(counts["skip"]),
        "time": f"{report.seconds:.3f}",
    }
    suites = ET.Element("testsuites", {"name": "gba-gateway conformance", **totals})
    suite = ET.SubElement(
        suites,
        "testsuite",
        {
            "name": SUITE,
            **totals,
            "timestamp": report.started.isoformat(timespec="seconds"),
            "hostname": socket.gethostname(),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("target", report.target),
        ("keyid", report.kid),
        ("partner_keys", report.partner_keys),
        ("kit_version", __version__),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": _clean(value)})
    for result in report.results:
        check, verdict = result.check, result.verdict
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": SUITE, "name": check.id, "time": f"{result.seconds:.3f}"},
        )
        if verdict.outcome == "fail":
            failure = ET.SubElement(
                case, "failure", {"message": _clean(verdict.reason), "type": "NonConformance"}
            )
            failure.text = _clean(
                f"{check.description}\nexpected: {check.expects}\nfound: {verdict.reason}\n"
                f"rule (DESIGN.md, Partner API v1): {check.rule}"
            )
        elif verdict.outcome == "skip":
            ET.SubElement(case, "skipped", {"message": _clean(verdict.reason)})
        ET.SubElement(case, "system-out").text = _clean(f"{check.description}: {verdict.reason}")
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(junit_xml(report))
