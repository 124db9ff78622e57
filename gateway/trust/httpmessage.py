"""The neutral view of an HTTP request or response that signing and verification work on.

The web edge and the outbound client build an :class:`HttpMessage` from whatever their
framework hands them. Field lines are normalised on construction as RFC 9421 §2.1 asks:
names are lowercased, obsolete line folding becomes one space, each value is trimmed of
spaces and tabs, and the values of one field are combined, in order, with ``", "``. How many
field lines each field came in is kept (:meth:`HttpMessage.field_lines`), so that a bound on
them (:mod:`gateway.trust.field_bounds`) can be checked on the combined value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

Headers = Iterable[tuple[str, str]] | Mapping[str, str]

_OBS_FOLD = re.compile(r"[ \t]*\r?\n[ \t]+")


def _combine(headers: Headers) -> dict[str, list[str]]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    combined: dict[str, list[str]] = {}
    for name, value in pairs:
        if "\n" in value:  # obs-fold needs a line break: skip the regex otherwise
            value = _OBS_FOLD.sub(" ", value)
        combined.setdefault(name.lower(), []).append(value.strip(" \t"))
    return combined


def _as_pairs(headers: Headers) -> tuple[tuple[str, str], ...]:
    return tuple(headers.items() if isinstance(headers, Mapping) else headers)


@dataclass(frozen=True)
class HttpMessage:
    """A request (``method`` and ``target_uri``) or a response (``status``) and its fields."""

    method: str | None
    target_uri: str | None
    status: int | None
    headers: tuple[tuple[str, str], ...] = ()
    lines: tuple[tuple[str, int], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        combined = _combine(self.headers)
        headers = tuple((name, ", ".join(values)) for name, values in combined.items())
        object.__setattr__(self, "headers", headers)
        object.__setattr__(
            self, "lines", tuple((name, len(values)) for name, values in combined.items())
        )

    @classmethod
    def request(cls, method: str, target_uri: str, headers: Headers = ()) -> HttpMessage:
        return cls(method, target_uri, None, _as_pairs(headers))

    @classmethod
    def response(cls, status: int, headers: Headers = ()) -> HttpMessage:
        return cls(None, None, status, _as_pairs(headers))

    @property
    def is_response(self) -> bool:
        return self.status is not None

    @cached_property
    def _fields(self) -> dict[str, str]:
        return dict(self.headers)  # names are unique once normalised

    def header(self, name: str) -> str | None:
        """The combined value of field ``name`` (any case), or None when absent."""
        return self._fields.get(name.lower())

    def field_lines(self, name: str) -> int:
        """How many field lines field ``name`` (any case) came in; 0 when absent."""
        return dict(self.lines).get(name.lower(), 0)

    def with_headers(self, extra: Mapping[str, str]) -> HttpMessage:
        """A copy with the ``extra`` fields set, replacing any field of the same name."""
        replaced = {name.lower() for name in extra}
        kept = [(name, value) for name, value in self.headers if name not in replaced]
        return HttpMessage(self.method, self.target_uri, self.status, (*kept, *extra.items()))
