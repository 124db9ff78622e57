"""The type of an upload is told by its content, fed in chunks of any size: the four
accepted types, and what merely looks like one of them (a name, a magic number, a cut)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.materials import JPEG, OFD, PDF, PNG, ContentSniffer, sniff, zip_names
from tests.materials_support import jpeg, ofd, pdf, png, zip_of


@pytest.mark.parametrize(
    ("data", "expected"),
    [(pdf(), PDF), (png(), PNG), (jpeg(), JPEG), (ofd(), OFD), (pdf(500_000), PDF)],
)
def test_each_accepted_type_is_recognised(data: bytes, expected: str) -> None:
    assert sniff(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, world",
        b"%PDF-1.7\n no end marker",  # truncated PDF
        png()[:-12],  # PNG without its IEND
        jpeg()[:-2],  # JPEG without its end of image
        zip_of("word/document.xml"),  # a ZIP, but not an OFD
        zip_of("Doc_0/OFD.xml"),  # OFD.xml not at the root
        ofd()[:-5],  # a cut ZIP: no end record
        b"PK\x03\x04" + b"\x00" * 100 + b"OFD.xml",  # the name, but no ZIP structure
        b"GIF89a" + b"\x00" * 100,
        b"MZ\x90\x00" + b"\x00" * 100,
    ],
)
def test_anything_else_is_nothing(data: bytes) -> None:
    assert sniff(data) is None


@given(st.sampled_from([pdf(200_000), png(), jpeg(100_000), ofd()]), st.integers(1, 70_000))
def test_chunk_boundaries_do_not_matter(data: bytes, size: int) -> None:
    sniffer = ContentSniffer()
    for start in range(0, len(data), size):
        sniffer.feed(data[start : start + size])
    assert sniffer.size == len(data)
    assert sniffer.media_type() == sniff(data) is not None


def test_zip_names_come_from_the_central_directory() -> None:
    data = zip_of("OFD.xml", "Doc_0/Document.xml", "Doc_0/Pages/Page_0/Content.xml")
    assert zip_names(data, len(data)) == [
        "OFD.xml",
        "Doc_0/Document.xml",
        "Doc_0/Pages/Page_0/Content.xml",
    ]
    assert zip_names(data[-30:], len(data)) == []  # the directory is not within the tail
