"""Hard bounds on the structured fields the trust layer parses, checked before parsing.

``Signature-Input``, ``Signature`` and ``Content-Digest`` are RFC 8941 dictionaries. The
gateway's profile writes one short member in each (a ``Signature-Input`` of about 200 bytes,
a ``Signature`` of at most about 700 for an RSA-4096 key), but an unauthenticated caller, or
a partner answering a delivery, may send anything the HTTP parser lets through: about 1 MB.
``http_sfv``, the fallback behind :mod:`gateway.trust.sfv`'s fast path, is quadratic in its
input (about 140 ms for 64 KiB of ``a=1,`` members, seconds for 800 KB), and everything it
does runs on the event loop. So before anything parses one of these fields,
:func:`check_field` refuses it when it is

* longer than :attr:`FieldBounds.max_bytes` (4096) characters,
* sent in more than :attr:`FieldBounds.max_lines` (4) field lines, or
* a dictionary of more than :attr:`FieldBounds.max_members` (8) members.

The checks are linear: a length, a count kept when the message was built
(:meth:`~gateway.trust.httpmessage.HttpMessage.field_lines`), and one pass over at most
``max_bytes`` characters that counts the commas outside sf-strings. The worst case left to
``http_sfv`` is then 4 KiB, about 1 ms (measured: docs/security/limits.md). Requests and
partner responses are checked in the same place, :func:`gateway.trust.httpsig.verify` and
:func:`gateway.trust.httpsig.signature_keyid`, and digests in
:func:`gateway.trust.digest.verify_content_digest`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.domain.errors import GatewayError, SignatureInvalidError

__all__ = ["SIGNATURE_FIELDS", "FieldBounds", "check_field", "count_members"]


@dataclass(frozen=True, slots=True)
class FieldBounds:
    """The most a structured field may hold before it is parsed."""

    max_bytes: int = 4096
    max_lines: int = 4
    max_members: int = 8


SIGNATURE_FIELDS = FieldBounds()


def count_members(value: str) -> int:
    """The members of a dictionary written as ``value``: commas outside sf-strings, plus one.

    One pass; an sf-string's ``\\"`` and ``\\\\`` escapes are honoured. An unterminated
    string ends the count (the parser refuses the field anyway).
    """
    count, pos, end = 1, 0, len(value)
    while pos < end:
        quote = value.find('"', pos)
        if quote < 0:
            return count + value.count(",", pos)
        count += value.count(",", pos, quote)
        pos = quote + 1
        while True:  # to the closing quote: one preceded by an even run of backslashes
            close = value.find('"', pos)
            if close < 0:
                return count
            run = close
            while run > pos and value[run - 1] == "\\":
                run -= 1
            pos = close + 1
            if (close - run) % 2 == 0:
                break
    return count


def check_field(
    name: str,
    value: str,
    *,
    lines: int = 1,
    bounds: FieldBounds = SIGNATURE_FIELDS,
    error: type[GatewayError] = SignatureInvalidError,
) -> None:
    """Refuse field ``name`` with ``error`` unless ``value`` (its ``lines`` field lines
    combined) is within ``bounds``. The detail names the field and the bound, never the value.
    """
    if len(value) > bounds.max_bytes:
        raise error(f"{name} is longer than {bounds.max_bytes} bytes")
    if lines > bounds.max_lines:
        raise error(f"{name} is sent in more than {bounds.max_lines} field lines")
    if count_members(value) > bounds.max_members:
        raise error(f"{name} has more than {bounds.max_members} members")
