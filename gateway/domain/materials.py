"""Stored materials: the files an application names, and how their type is told by content.

A :class:`StoredMaterial` is one upload (``POST /v1/materials`` or ``/v1/me/materials``): its
bytes live in the blob store under their SHA-256 (content-addressed), its record says who
uploaded it and, once an application names it, which application and material code it is
bound to. Not to be confused with :class:`gateway.domain.matters.Material`, a matter's
*required* material (a code and a rule).

The media type is decided by the bytes, never by the file name or the declared type alone:
:class:`ContentSniffer` is fed the upload chunk by chunk (it keeps the first bytes and the
last 64 KiB only) and names the type the content is, or None. OFD (GB/T 33190) is a ZIP
container with ``OFD.xml`` at its root: the ZIP's central directory, found from its end
record in the kept tail, must list it.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
OFD = "application/ofd"
# The global allow-list of uploads; a matter's material may narrow it (catalog media_types).
DEFAULT_MEDIA_TYPES: tuple[str, ...] = (PDF, JPEG, PNG, OFD)

_HEAD = 1024
_TAIL = 64 * 1024 + 22  # the largest ZIP end record (comment of 64 KiB) and more


@dataclass(frozen=True, slots=True)
class StoredMaterial:
    """One uploaded file. ``digest`` is RFC 9530 form (``sha-256=:<base64>:``); the blob
    store keys the bytes by the same SHA-256 (``blob_key``, lowercase hex)."""

    material_id: str
    digest: str
    blob_key: str
    size: int
    media_type: str
    owner: str  # the uploading agency id, or ``resident:<person id>``
    created_at: datetime
    expires_at: datetime  # removed then unless bound to an application
    filename: str | None = None  # display only; never used to decide anything
    application_id: str | None = None  # once an application names it
    code: str | None = None  # the matter's material code it is bound as
    # Evidence obtained by data sharing: issuer, issued_at, request_id, evidence_type.
    provenance: Mapping[str, Any] | None = field(default=None)

    @property
    def bound(self) -> bool:
        return self.application_id is not None

    def answer(self) -> dict[str, Any]:
        """The upload's 201 body."""
        return {
            "material_id": self.material_id,
            "digest": self.digest,
            "size": self.size,
            "media_type": self.media_type,
        }


def base_media_type(content_type: str | None) -> str:
    """``image/png; charset=x`` -> ``image/png`` (lowercase, parameters dropped)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


class ContentSniffer:
    """Tells the media type of a stream by its content, in bounded memory."""

    def __init__(self) -> None:
        self._head = bytearray()
        self._tail = bytearray()
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if len(self._head) < _HEAD:
            self._head += chunk[: _HEAD - len(self._head)]
        self._tail += chunk[-_TAIL:]
        if len(self._tail) > _TAIL:
            del self._tail[: len(self._tail) - _TAIL]

    def media_type(self) -> str | None:
        """The allow-listed type the content is, or None (anything else, or truncated)."""
        head, tail = bytes(self._head), bytes(self._tail)
        if head.startswith(b"%PDF-") and b"%%EOF" in tail[-1024:]:
            return PDF
        if head.startswith(b"\xff\xd8\xff") and tail.rstrip(b"\x00\r\n").endswith(b"\xff\xd9"):
            return JPEG
        if (
            head.startswith(b"\x89PNG\r\n\x1a\n")
            and head[12:16] == b"IHDR"
            and (tail.endswith(b"IEND\xaeB`\x82"))
        ):
            return PNG
        if head.startswith(b"PK\x03\x04") and "OFD.xml" in zip_names(tail, self.size):
            return OFD
        return None


def sniff(data: bytes) -> str | None:
    """The media type of ``data`` (whole), as :class:`ContentSniffer` tells it."""
    sniffer = ContentSniffer()
    sniffer.feed(data)
    return sniffer.media_type()


def zip_names(tail: bytes, total: int) -> list[str]:
    """The entry names of a ZIP archive from its last bytes (``tail``, of ``total``): the
    end-of-central-directory record, then the central directory, which must lie within the
    tail. An empty list when it is not a well-formed ZIP end."""
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or len(tail) - end < 22:
        return []
    (_, _, _, _, count, cd_size, cd_offset, comment) = struct.unpack(
        "<IHHHHIIH", tail[end : end + 22]
    )
    if end + 22 + comment != len(tail):
        return []
    start = len(tail) - (total - cd_offset)  # where the directory begins within the tail
    if start < 0 or cd_offset + cd_size > total or start + cd_size > end:
        return []
    names, pos = [], start
    for _ in range(count):
        if tail[pos : pos + 4] != b"PK\x01\x02" or pos + 46 > end:
            return []
        name_len, extra_len, comment_len = struct.unpack("<HHH", tail[pos + 28 : pos + 34])
        names.append(tail[pos + 46 : pos + 46 + name_len].decode("utf-8", "replace"))
        pos += 46 + name_len + extra_len + comment_len
    return names


@dataclass(frozen=True, slots=True)
class MaterialLimits:
    """The settings' limits on materials (``max_material_bytes`` ...)."""

    file_bytes: int = 20 * 1024 * 1024
    application_bytes: int = 100 * 1024 * 1024
    expiry_seconds: float = 24 * 3600.0
    media_types: tuple[str, ...] = DEFAULT_MEDIA_TYPES
    # An application's material given by its digest alone (never uploaded) is accepted
    # (nothing can be fetched for it); false refuses it (material_not_uploaded).
    digest_only: bool = True
