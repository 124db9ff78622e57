"""The channel a submission came through (Art. 17, 18): online, counter, kiosk or mobile.

Every channel takes the same path; what differs is what the channel records. A counter
names its service point and the officer who inspected the applicant's identity document in
person (the case is then filed at ``high`` assurance, without any online login); a kiosk
names its service point and device. The record is kept on the case, on its timeline and
signed into the receipt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.domain.documents import MESSAGES, problem
from gateway.domain.errors import FieldProblem, Localized
from gateway.domain.values import Channel, IdentityDocument

HEADER = "GBA-Channel"
_POINTER = "/headers/gba-channel"
_TEXT_MAX = 64


@dataclass(frozen=True, slots=True)
class ChannelCall:
    """What a partner call states about its channel (``GBA-Channel``; absent: online)."""

    channel: Channel = Channel.ONLINE
    service_point: str | None = None
    officer: str | None = None  # counter: who inspected the identity document in person
    device: str | None = None  # kiosk: the self-service terminal
    inspected: str | None = None  # counter: the type of the applicant's document inspected

    @classmethod
    def of(cls, channel: str, params: Mapping[str, object]) -> ChannelCall:
        """The call from the header's parts; ValueError listing every problem found."""
        problems: list[FieldProblem] = []
        try:
            kind = Channel(channel)
        except ValueError:
            raise ChannelProblems([problem(_POINTER, "unknown_channel")]) from None
        wanted = {
            Channel.COUNTER: ("point", "officer", "document"),
            Channel.KIOSK: ("point", "device"),
        }.get(kind, ())
        values: dict[str, str] = {}
        for name, value in params.items():
            if name not in wanted:
                problems.append(problem(f"{_POINTER}/{name}", "unexpected_field"))
            elif not isinstance(value, str) or not value.strip() or len(value) > _TEXT_MAX:
                problems.append(problem(f"{_POINTER}/{name}", "wrong_type"))
            else:
                values[name] = value.strip()
        problems += [
            problem(f"{_POINTER}/{name}", "required")
            for name in wanted
            if name not in values and name not in params
        ]
        if problems:
            raise ChannelProblems(problems)
        return cls(
            kind,
            service_point=values.get("point"),
            officer=values.get("officer"),
            device=values.get("device"),
            inspected=values.get("document"),
        )

    def record(self) -> dict[str, Any]:
        """What the case keeps and the receipt signs (only what the channel states)."""
        out: dict[str, Any] = {"channel": self.channel.value}
        for name in ("service_point", "officer", "device"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        return out


class ChannelProblems(ValueError):
    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in {HEADER}")
        self.problems = tuple(problems)


def refused_channel(channel: Channel, allowed: Sequence[Channel]) -> FieldProblem:
    """The matter is not offered on this channel: the problem names the allowed ones."""
    names = ", ".join(c.value for c in allowed)
    base = MESSAGES["channel_not_offered"]
    return FieldProblem(
        code="channel_not_offered",
        message=Localized(
            f"{base.zh_hant}：{names}",
            f"{base.zh_hans}：{names}",
            f"{base.en}: {names}",
            f"{base.pt}: {names}",
        ),
        pointer=_POINTER if channel is not Channel.ONLINE else "/channel",
    )


def inspected_document(
    call: ChannelCall, applicant: object
) -> tuple[tuple[str, str] | None, list[FieldProblem]]:
    """Counter: the (type, number) of the applicant's document the officer inspected."""
    if call.channel is not Channel.COUNTER:
        return None, []
    documents = applicant.get("documents") if isinstance(applicant, dict) else None
    for doc in documents if isinstance(documents, list) else []:
        if isinstance(doc, dict) and doc.get("type") == call.inspected and doc.get("number"):
            try:
                parsed = IdentityDocument.parse(str(doc["type"]), str(doc["number"]))
            except ValueError:
                break  # reported by the applicant's checks
            return (parsed.type.value, parsed.number), []
    return None, [problem(f"{_POINTER}/document", "inspected_document_not_in_application")]
