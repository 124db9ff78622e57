"""Content-Digest checked against a body that streams: every declared digest must match,
whether hashed chunk by chunk here or computed by the blob store and handed over."""

from __future__ import annotations

import hashlib

import pytest

from gateway.domain.errors import DigestMismatchError, MissingHeaderError
from gateway.trust.digest import StreamedDigest, content_digest

BODY = b"%PDF-1.7\n" + b"0" * 100_000 + b"\n%%EOF\n"


def _streamed(header: str) -> StreamedDigest:
    digest = StreamedDigest(header)
    for start in range(0, len(BODY), 7000):
        digest.update(BODY[start : start + 7000])
    return digest


def test_matching_digests_pass_chunk_by_chunk_and_handed_over() -> None:
    _streamed(content_digest(BODY)).check()
    both = f"{content_digest(BODY)}, {content_digest(BODY, 'sha-512')}"
    handed = StreamedDigest(both)
    handed.computed_elsewhere("sha-256")
    for start in range(0, len(BODY), 7000):
        handed.update(BODY[start : start + 7000])
    handed.check({"sha-256": hashlib.sha256(BODY).digest()})


def test_a_digest_of_other_bytes_is_refused() -> None:
    with pytest.raises(DigestMismatchError):
        _streamed(content_digest(BODY + b"x")).check()
    mixed = f"{content_digest(BODY)}, {content_digest(b'other', 'sha-512')}"
    with pytest.raises(DigestMismatchError, match="sha-512"):
        _streamed(mixed).check()
    handed = StreamedDigest(content_digest(BODY))
    handed.computed_elsewhere("sha-256")
    with pytest.raises(DigestMismatchError):
        handed.check({"sha-256": hashlib.sha256(b"other").digest()})
    with pytest.raises(DigestMismatchError):
        handed.check()  # named as computed elsewhere, but never handed over


@pytest.mark.parametrize("header", ["md5=:AAAA:", "sha-256=abc", "not a dictionary ((("])
def test_a_header_without_a_usable_digest_is_refused(header: str) -> None:
    with pytest.raises(DigestMismatchError):
        StreamedDigest(header)


def test_no_header_is_missing() -> None:
    with pytest.raises(MissingHeaderError):
        StreamedDigest(None)
