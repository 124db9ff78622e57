"""The one hardened XML parser factory. Every XML byte the gateway reads goes through here.

No DTD is loaded, no entity is resolved, no network is touched, XInclude is never run, and a
document that declares a DOCTYPE at all is refused before libxml2 sees it. libxml2's own
limits (depth 256, 10 MB text nodes without ``huge_tree``) bound the rest; the web edge
bounds the body size.
"""

from __future__ import annotations

import re
import threading

from lxml import etree

from gateway.domain.documents import MESSAGES
from gateway.domain.errors import FieldProblem, MalformedBodyError

_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_local = threading.local()


def _parser() -> etree.XMLParser:
    # lxml parsers are not thread-safe: one per thread (parsing may be offloaded).
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            encoding="utf-8",
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            collect_ids=False,
            remove_pis=True,
        )
        _local.parser = parser
    return parser


def parse_xml(data: bytes) -> etree._Element:
    """Parse untrusted XML into its root element, or raise :class:`MalformedBodyError`."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBodyError("XML must be encoded in UTF-8") from None
    if _DOCTYPE.search(data):
        raise MalformedBodyError("XML with a DOCTYPE or entity declaration is refused")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise MalformedBodyError(f"XML is not well-formed (line {exc.lineno})") from None
    if root is None:
        raise MalformedBodyError("XML document is empty")
    return root


def schema_problems(schema: etree.XMLSchema | None, root: etree._Element) -> list[FieldProblem]:
    """Every violation of ``schema`` by ``root``, each a ``schema`` problem at its XPath."""
    if schema is None or schema.validate(root):
        return []
    return [
        FieldProblem("schema", MESSAGES["schema"], xpath=entry.path or "/")
        for entry in schema.error_log
    ]
