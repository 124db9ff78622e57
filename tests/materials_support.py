"""Small files of each accepted type (and impostors) for the materials tests."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib


def pdf(size: int = 2048) -> bytes:
    head, tail = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", b"\ntrailer\n<<>>\n%%EOF\n"
    return head + b"0" * max(0, size - len(head) - len(tail)) + tail


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png() -> bytes:
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + _png_chunk(b"IEND", b"")
    )


def jpeg(size: int = 1024) -> bytes:
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x11" * size + b"\xff\xd9"


def zip_of(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, b"<ofd:OFD xmlns:ofd='http://www.ofdspec.org/2016'/>")
    return buffer.getvalue()


def ofd() -> bytes:
    return zip_of("OFD.xml", "Doc_0/Document.xml")
