"""RFC 9530 Content-Digest: the published examples and the refusals."""

from __future__ import annotations

import pytest

from gateway.domain.errors import DigestMismatchError, MissingHeaderError
from gateway.trust.digest import content_digest, verify_content_digest

HELLO = b'{"hello": "world"}'
HELLO_LF = HELLO + b"\n"

# RFC 9421 Appendix B.2 (test-request content, no trailing newline) and RFC 9530 §2 /
# Appendix B (the same JSON followed by a line feed).
HELLO_SHA256 = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
HELLO_SHA512 = (
    "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX"
    "+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
)
HELLO_LF_SHA256 = "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:"
HELLO_LF_SHA512 = (
    "sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTo"
    "hq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/WkppmM44T3qg==:"
)
EMPTY_SHA256 = "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"


@pytest.mark.parametrize(
    ("body", "algorithm", "expected"),
    [
        (HELLO, "sha-256", HELLO_SHA256),
        (HELLO, "sha-512", HELLO_SHA512),
        (HELLO_LF, "sha-256", HELLO_LF_SHA256),
        (HELLO_LF, "sha-512", HELLO_LF_SHA512),
        (b"", "sha-256", EMPTY_SHA256),
    ],
)
def test_content_digest_matches_the_published_values(
    body: bytes, algorithm: str, expected: str
) -> None:
    assert content_digest(body, algorithm) == expected


def test_sha256_is_the_default() -> None:
    assert content_digest(HELLO) == HELLO_SHA256


def test_unknown_algorithm_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="unsupported digest algorithm"):
        content_digest(HELLO, "md5")


@pytest.mark.parametrize(
    ("header", "body"),
    [
        (HELLO_SHA256, HELLO),
        (HELLO_SHA512, HELLO),
        (HELLO_LF_SHA256, HELLO_LF),
        (f"{HELLO_LF_SHA256}, {HELLO_LF_SHA512}", HELLO_LF),
        (f"md5=:Sd/dVLAcvNLSq16eXua5uQ==:, {HELLO_SHA256}", HELLO),  # unknown ones ignored
        (f"{HELLO_SHA512}, sha=:07CavjDP4u3/TungoUHJO/Wzr4c=:", HELLO),
        (EMPTY_SHA256, b""),
    ],
)
def test_matching_digests_verify(header: str, body: bytes) -> None:
    verify_content_digest(header, body)


def test_a_trailing_newline_is_part_of_the_content() -> None:
    with pytest.raises(DigestMismatchError):
        verify_content_digest(HELLO_SHA256, HELLO_LF)
    with pytest.raises(DigestMismatchError):
        verify_content_digest(HELLO_LF_SHA512, HELLO)


def test_missing_header_is_a_missing_header() -> None:
    with pytest.raises(MissingHeaderError):
        verify_content_digest(None, HELLO)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "sha-256",  # a bare key is boolean true, not a byte sequence
        "sha-256=:not base64!:",
        "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
        "SHA-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:,",
        "sha-256=(:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:)",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, é",
    ],
)
def test_malformed_headers_are_mismatches(header: str) -> None:
    with pytest.raises(DigestMismatchError):
        verify_content_digest(header, HELLO)


def test_only_unknown_algorithms_is_a_mismatch() -> None:
    with pytest.raises(DigestMismatchError, match="neither sha-256 nor sha-512"):
        verify_content_digest(
            "md5=:Sd/dVLAcvNLSq16eXua5uQ==:, sha=:07CavjDP4u3/TungoUHJO/Wzr4c=:", HELLO
        )


def test_every_known_digest_present_must_match() -> None:
    wrong_sha512 = content_digest(b"something else", "sha-512")
    with pytest.raises(DigestMismatchError, match="sha-512"):
        verify_content_digest(f"{HELLO_SHA256}, {wrong_sha512}", HELLO)


def test_tampered_body_is_a_mismatch() -> None:
    with pytest.raises(DigestMismatchError):
        verify_content_digest(HELLO_SHA256, b'{"hello": "World"}')


def test_detail_never_contains_the_body_or_the_header() -> None:
    body = b'{"name": "CHAN Tai Man", "hkid": "A123456(7)"}'
    header = content_digest(b"other")
    with pytest.raises(DigestMismatchError) as caught:
        verify_content_digest(header, body)
    detail = caught.value.detail
    assert "CHAN" not in detail
    assert "A123456" not in detail
    assert header.split("=", 1)[1] not in detail
