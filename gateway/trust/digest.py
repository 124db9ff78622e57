"""RFC 9530 ``Content-Digest``: the digest of the bytes of a message's content.

The gateway writes ``sha-256`` (or ``sha-512``) and accepts a header carrying either or
both; other algorithms in the header are ignored, but at least one of the two must be
there and every one of them that is there must match. The header is a structured
dictionary (RFC 8941) whose members are byte sequences, e.g.
``sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:``.

The digest is over the content as sent (after any content coding), so callers pass the
raw body bytes. Error details never contain the body or the header value.
"""

from __future__ import annotations

import hashlib
import hmac

from http_sfv import Item

from gateway.domain.errors import DigestMismatchError, MissingHeaderError
from gateway.trust.field_bounds import check_field
from gateway.trust.sfv import parse_dictionary, serialize_item_parts

# RFC 9530 algorithm name -> hashlib name. Only these two are accepted or written.
DIGEST_ALGORITHMS: dict[str, str] = {"sha-256": "sha256", "sha-512": "sha512"}
_HASHES = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}  # faster than hashlib.new


def _digest(algorithm: str, body: bytes) -> bytes:
    hash_function = _HASHES.get(algorithm)
    if hash_function is None:
        return hashlib.new(DIGEST_ALGORITHMS[algorithm], body).digest()
    return hash_function(body).digest()


def content_digest(body: bytes, algorithm: str = "sha-256") -> str:
    """The ``Content-Digest`` header value of ``body`` with one algorithm."""
    try:
        digest = _digest(algorithm, body)
    except KeyError:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}") from None
    return f"{algorithm}={serialize_item_parts(digest)}"  # the algorithm names are sf-keys


def verify_content_digest(header: str | None, body: bytes, *, lines: int = 1) -> None:
    """Check a ``Content-Digest`` header (sent in ``lines`` field lines) against ``body``.

    :raises MissingHeaderError: no header.
    :raises DigestMismatchError: the header is beyond the bounds of
        :mod:`gateway.trust.field_bounds`, cannot be parsed, names neither ``sha-256`` nor
        ``sha-512``, or a digest it carries does not match the body.
    """
    if header is None:
        raise MissingHeaderError("Content-Digest is required")
    if header.isascii() and hmac.compare_digest(header, content_digest(body)):
        return  # exactly what we write ourselves: parsing it could only agree
    check_field("Content-Digest", header, lines=lines, error=DigestMismatchError)
    try:
        parsed = parse_dictionary(header)
    except ValueError as exc:  # includes UnicodeEncodeError
        raise DigestMismatchError("Content-Digest is not a valid structured dictionary") from exc
    members = parsed.data  # a Dictionary is a UserDict
    known = [name for name in DIGEST_ALGORITHMS if name in members]
    if not known:
        raise DigestMismatchError("Content-Digest carries neither sha-256 nor sha-512")
    for name in known:
        member = members[name]
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise DigestMismatchError(f"Content-Digest {name} is not a byte sequence")
        expected = _digest(name, body)
        if not hmac.compare_digest(expected, member.value):
            raise DigestMismatchError(f"Content-Digest {name} does not match the body")


class StreamedDigest:
    """A ``Content-Digest`` header checked against a body that streams: each declared
    ``sha-256``/``sha-512`` is computed chunk by chunk (:meth:`update`) and compared at the
    end (:meth:`check`), with the rules of :func:`verify_content_digest`. A digest the
    caller computes anyway (the blob store's SHA-256) is given to :meth:`check` instead,
    after :meth:`computed_elsewhere` said so before the first chunk: it is not computed
    twice."""

    def __init__(self, header: str | None, *, lines: int = 1) -> None:
        if header is None:
            raise MissingHeaderError("Content-Digest is required")
        check_field("Content-Digest", header, lines=lines, error=DigestMismatchError)
        try:
            parsed = parse_dictionary(header)
        except ValueError as exc:
            raise DigestMismatchError(
                "Content-Digest is not a valid structured dictionary"
            ) from exc
        members = parsed.data
        self.expected: dict[str, bytes] = {}
        for name in DIGEST_ALGORITHMS:
            if name not in members:
                continue
            member = members[name]
            if not isinstance(member, Item) or not isinstance(member.value, bytes):
                raise DigestMismatchError(f"Content-Digest {name} is not a byte sequence")
            self.expected[name] = member.value
        if not self.expected:
            raise DigestMismatchError("Content-Digest carries neither sha-256 nor sha-512")
        self._hashers = {name: _HASHES[name]() for name in self.expected}

    def computed_elsewhere(self, name: str) -> None:
        """``name`` (``sha-256`` ...) will be given to :meth:`check`: not hashed here."""
        self._hashers.pop(name, None)

    def update(self, chunk: bytes) -> None:
        for hasher in self._hashers.values():
            hasher.update(chunk)

    def check(self, computed: dict[str, bytes] | None = None) -> None:
        """DigestMismatchError unless every declared digest matches what streamed
        (``computed``: the digests :meth:`computed_elsewhere` named, by algorithm)."""
        computed = computed or {}
        for name, expected in self.expected.items():
            hasher = self._hashers.get(name)
            actual = hasher.digest() if hasher is not None else computed.get(name)
            if actual is None or not hmac.compare_digest(actual, expected):
                raise DigestMismatchError(f"Content-Digest {name} does not match the body")
