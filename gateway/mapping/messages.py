"""An agency's own messages in its native XML format, besides the application.

A field mapping's ``messages:`` section declares, by kind, the other messages an agency of that
format may send: its examination of a case (``examination``), its decision (``decision``),
a supplement (``supplement``), the lead's re-check of an automatic decision (``recheck``) and
its acknowledgement of a forward (``ack``). Each kind names
its root element (a global element of the format's XSD) and its ``fields`` and ``lists``,
mapping to the JSON body the partner API takes for that call (JSON pointers, as for the
application). They are compiled with the application's machinery: the same
:class:`~gateway.mapping.fields.FieldRule` / :class:`~gateway.mapping.fields.ListRule`, the
same transforms, the same generated decoder (:class:`~gateway.mapping.decode.DecodePlan`) and
encoder (:class:`~gateway.mapping.encode.NativeEncoder`); ``particulars: true`` adds the
fields of the file's ``particulars:`` section (a supplement carries the particulars of every
matter). A list whose one field has no ``to`` is a list of values (reasons, material codes).

Decoding checks the root element and the XSD, then maps every field, and reports every
problem of both steps together; an empty list is left out, so the body is the one an agency
would have sent as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lxml import etree

from gateway.domain.documents import MESSAGES
from gateway.domain.errors import FieldProblem, ValidationFailedError
from gateway.mapping.decode import DecodePlan
from gateway.mapping.encode import NativeEncoder, Order
from gateway.mapping.xml import parse_xml, schema_problems

if TYPE_CHECKING:
    from gateway.mapping.fields import FieldRule, ListRule

KINDS = ("examination", "decision", "supplement", "recheck", "ack")
"""The message kinds a native format may declare (the ``messages:`` keys)."""


class AgencyMessage:
    """One kind of agency message in one native format: native XML <-> the JSON body."""

    def __init__(
        self,
        kind: str,
        root: str,
        schema: etree.XMLSchema | None,
        fields: tuple[FieldRule, ...],
        lists: tuple[ListRule, ...],
        namespaces: Mapping[str, str],
        order: Order | None,
    ) -> None:
        self.kind = kind
        self.root = root  # Clark name of the root element
        self._schema = schema
        self._plan = DecodePlan(fields, lists, namespaces)
        self._encoder = NativeEncoder(root, schema, fields, lists, namespaces, order)

    @property
    def element(self) -> str:
        """The root element's local name (``Decision``, ``Decisao``)."""
        return etree.QName(self.root).localname

    def decode(self, body: bytes) -> dict[str, Any]:
        """The JSON body of the message in ``body``.

        :raises MalformedBodyError: not well-formed XML (or refused by the hardened parser).
        :raises ValidationFailedError: another root element, or every schema and field
            problem found.
        """
        data, problems = self.translate(body)
        if problems:
            raise ValidationFailedError(f"{len(problems)} problem(s) found", errors=problems)
        return data

    def translate(self, body: bytes) -> tuple[dict[str, Any], list[FieldProblem]]:
        """The body as far as it maps, and the schema and field problems (a wrong root
        element raises)."""
        root = parse_xml(body)
        if root.tag != self.root:
            raise ValidationFailedError(
                f"the XML root element is not this format's {self.element}",
                errors=[FieldProblem("schema", MESSAGES["schema"], xpath="/")],
            )
        problems = schema_problems(self._schema, root)
        data = self._plan.run(root, problems)
        return {k: v for k, v in data.items() if v != []}, problems

    def encode(self, data: Mapping[str, Any]) -> bytes:
        """The message of JSON body ``data`` in this format (UTF-8, with declaration), valid
        against the XSD; else ValidationFailedError with every problem."""
        return self._encoder.encode(data)


__all__ = ["KINDS", "AgencyMessage"]
