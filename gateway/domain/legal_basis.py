"""The legal basis an agency declares for sending an applicant's personal information.

A resident's case travels on the resident's consent. An agency's submission has no consent
of the applicant behind it: the agency sends the data under its own legal basis (PIPL art.
13, e.g. a statutory duty), and must say which (GBA personal-information rules; issue 17,
item 3). The basis names at least the law or instrument and the article; it is recorded on
the case, signed into the receipt, shown to the applicant, and every forward of the case is
checked against it (or against a consent in force) up to the last send.

It is carried, in every format, by the signed request header ``GBA-Legal-Basis``, an RFC
9651 dictionary whose members are strings, or display strings for text beyond ASCII::

    GBA-Legal-Basis: law=%"%e3%80%8a...", article="13(1)(3)", text=%"..."

and, in canonical JSON only, by the document's ``legal_basis`` member of the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.domain.documents import problem
from gateway.domain.errors import FieldProblem

HEADER = "GBA-Legal-Basis"
HEADER_POINTER = "/headers/gba-legal-basis"
MEMBER = "legal_basis"  # the canonical document's member
MEMBER_POINTER = "/legal_basis"
# each member's longest text: the law's title, its article (or paragraph, item), a sentence
LIMITS = {"law": 200, "article": 100, "text": 500}
REQUIRED = ("law", "article")
# why a forward of a case is withheld when it has neither a consent nor a declared basis
NO_LEGAL_BASIS = "no_legal_basis"


@dataclass(frozen=True, slots=True)
class LegalBasis:
    """The law (or instrument) and article an agency sends the applicant's data under."""

    law: str
    article: str
    text: str | None = None

    @classmethod
    def of(cls, members: object, pointer: str) -> LegalBasis:
        """The basis from its members (the header's or the document's); LegalBasisProblems
        listing every problem found, under ``pointer``."""
        if not isinstance(members, Mapping):
            raise LegalBasisProblems([problem(pointer, "wrong_type")])
        problems: list[FieldProblem] = []
        values: dict[str, str] = {}
        for name, value in members.items():
            limit = LIMITS.get(str(name))
            if limit is None:
                problems.append(problem(f"{pointer}/{name}", "unexpected_field"))
            elif not isinstance(value, str) or not value.strip() or len(value.strip()) > limit:
                problems.append(problem(f"{pointer}/{name}", "wrong_type"))
            else:
                values[str(name)] = " ".join(value.split())  # one line, as it is shown
        problems += [
            problem(f"{pointer}/{name}", "required") for name in REQUIRED if name not in members
        ]
        if problems:
            raise LegalBasisProblems(problems)
        return cls(values["law"], values["article"], values.get("text"))

    @classmethod
    def from_record(cls, record: Mapping[str, object] | None) -> LegalBasis | None:
        """The basis a case keeps (None: the case has none)."""
        if not record:
            return None
        text = record.get("text")
        return cls(str(record["law"]), str(record["article"]), str(text) if text else None)

    def record(self) -> dict[str, str]:
        """What the case keeps, the timeline shows and the receipt signs."""
        return {
            "law": self.law,
            "article": self.article,
            **({"text": self.text} if self.text else {}),
        }

    def header(self) -> str:
        """The ``GBA-Legal-Basis`` value that declares this basis (what a partner sends)."""
        return ", ".join(f"{name}={_text(value)}" for name, value in self.record().items())


def _text(value: str) -> str:
    """An RFC 9651 string when it is printable ASCII, else a display string."""
    if all(" " <= c <= "~" for c in value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    escaped = "".join(
        chr(b) if 0x20 <= b <= 0x7E and b not in (0x25, 0x22) else f"%{b:02x}"
        for b in value.encode()
    )
    return f'%"{escaped}"'


class LegalBasisProblems(ValueError):
    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the legal basis")
        self.problems = tuple(problems)


def declared(
    header: LegalBasis | None, document: Mapping[str, object]
) -> tuple[LegalBasis | None, list[FieldProblem]]:
    """The basis a submission declares, by its header or its document's member (canonical
    JSON); both may be given only if they say the same."""
    member = document.get(MEMBER)
    if member is None:
        return header, []
    try:
        in_document = LegalBasis.of(member, MEMBER_POINTER)
    except LegalBasisProblems as refused:
        return None, list(refused.problems)
    if header is not None and header != in_document:
        return None, [problem(MEMBER_POINTER, "legal_basis_twice")]
    return in_document, []


def missing() -> FieldProblem:
    """An agency's submission that declares no legal basis."""
    return problem(HEADER_POINTER, "legal_basis_required")
