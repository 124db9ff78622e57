"""RFC 9421 HTTP Message Signatures: the gateway's signing and verification profile.

Framework-free: the web edge and the outbound client turn their messages into an
:class:`HttpMessage`, call :func:`sign` or :func:`verify`, and act on the result.

The profile (DESIGN.md):

* One signature per message, under the label the policy names (``sig1``); signatures
  under any other label are ignored, so a second signature cannot stand in for the first.
* ``created`` (integer) and ``keyid`` (string) are required, ``nonce`` is required by
  default, ``tag`` must be the gateway's application tag (``gba-gateway``), and ``created``
  must lie within ``now ± max_skew``; an ``expires`` in the past refuses the signature.
  Only the registered parameters (``created``, ``expires``, ``nonce``, ``alg``, ``keyid``,
  ``tag``) are accepted, and each string parameter is at most ``max_param_chars`` (200)
  characters: the nonce store and the key registry hold no longer ones.
* The key comes only from the caller's resolver, by ``keyid``, and must be valid now. Its
  algorithm is the key's own; an ``alg`` parameter may only repeat it. ``hmac-sha256`` is
  refused outright: there are no shared secrets.
* A request with a body covers ``"@method" "@target-uri" "content-digest" "content-type"``,
  one without a body ``"@method" "@target-uri"``, and ``idempotency-key`` whenever that
  header is present (:meth:`VerifyPolicy.for_request`). A response covers ``"@status"``,
  ``"content-digest"``, ``"content-type"`` and the request's ``"@method";req``,
  ``"@target-uri";req`` and signature ``"signature";req;key="sig1"``
  (:meth:`VerifyPolicy.for_response`, RFC 9421 §2.4): it answers that one signed request.
* Covering ``content-digest`` binds the header, not the body: the caller also checks the
  digest against the bytes with :func:`gateway.trust.digest.verify_content_digest`.
* Nonce replay is the caller's business (a durable store); :func:`verify` returns the nonce.

Before either signature field is parsed, it is held to the bounds of
:mod:`gateway.trust.field_bounds` (size, field lines, members), on requests and responses
alike: an oversized field is refused as ``signature-invalid`` without being parsed.

Errors are the ones of :mod:`gateway.domain.errors`; their details name components, labels
and key ids only, never a header value. Structured fields are read and written through
:mod:`gateway.trust.sfv`, a canonical fast path that gives exactly ``http_sfv``'s results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from http_sfv import Dictionary, InnerList, Item, Token

from gateway.domain.errors import (
    SignatureInvalidError,
    SignatureMissingError,
    UnknownKeyError,
)
from gateway.trust.field_bounds import check_field
from gateway.trust.httpmessage import HttpMessage
from gateway.trust.httpsig_components import (
    Component,
    ComponentError,
    component_value,
    components,
)
from gateway.trust.keys import HTTP_SIG_ALGS, SigningKey, VerificationKey, verify_bytes
from gateway.trust.sfv import (
    parse_dictionary_texts,
    serialize,
    serialize_inner_list_parts,
    serialize_item_parts,
    serialize_key,
)

__all__ = [
    "APPLICATION_TAG",
    "MAX_PARAM_CHARS",
    "Component",
    "HttpMessage",
    "SignatureParams",
    "VerifiedSignature",
    "VerifyPolicy",
    "components",
    "sign",
    "signature_base",
    "signature_keyid",
    "verify",
]

APPLICATION_TAG = "gba-gateway"
_PARAM_ORDER = ("created", "expires", "keyid", "nonce", "alg", "tag")
_PARAM_NAMES = frozenset(_PARAM_ORDER)
_REFUSED_ALGS = frozenset({"hmac-sha256"})
_STRING_PARAMS = ("keyid", "nonce", "alg", "tag")
MAX_PARAM_CHARS = 200  # the nonce and key id columns of the store are as long


@dataclass(frozen=True)
class SignatureParams:
    """What a signature covers and its metadata, serialized in the order of ``_PARAM_ORDER``."""

    components: tuple[Component, ...]
    created: int
    keyid: str
    nonce: str | None = None
    expires: int | None = None
    alg: str | None = None
    tag: str | None = None

    def __post_init__(self) -> None:
        if not all(isinstance(c, Component) for c in self.components):
            raise TypeError("components must be Component objects (see components())")
        _check_unique(self.components)
        for name in ("created", "expires"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 0):
                raise ValueError(f"{name} must be a non-negative integer")

    def inner_list(self) -> InnerList:
        """The ``@signature-params`` value: covered components plus parameters."""
        inner = InnerList([c.to_item() for c in self.components])
        for name in _PARAM_ORDER:
            value = getattr(self, name)
            if value is not None:
                inner.params[name] = value
        return inner


@dataclass(frozen=True)
class VerifyPolicy:
    """What :func:`verify` demands of a signature."""

    required_components: tuple[Component, ...] = components("@method", "@target-uri")
    also_cover_if_present: tuple[str, ...] = ()
    label: str = "sig1"
    tag: str | None = APPLICATION_TAG
    max_skew: int = 300
    max_age: int | None = None
    require_nonce: bool = True
    max_param_chars: int = MAX_PARAM_CHARS

    @classmethod
    def for_request(cls, *, has_body: bool, label: str = "sig1") -> VerifyPolicy:
        """The DESIGN.md profile for an inbound request."""
        required = ["@method", "@target-uri"]
        if has_body:
            required += ["content-digest", "content-type"]
        return cls(
            required_components=components(*required),
            also_cover_if_present=("idempotency-key", "gba-channel", "gba-legal-basis"),
            label=label,
        )

    @classmethod
    def for_response(cls, *, label: str = "sig1", request_label: str = "sig1") -> VerifyPolicy:
        """The DESIGN.md profile for a signed answer to a signed request."""
        return cls(
            required_components=components(
                "@status",
                "content-digest",
                "content-type",
                '"@method";req',
                '"@target-uri";req',
                Component("signature", (("req", True), ("key", request_label))),
            ),
            label=label,
        )


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature that verified, and what it says."""

    label: str
    keyid: str
    key: VerificationKey
    created: int
    expires: int | None
    nonce: str | None
    alg: str | None
    tag: str | None
    components: tuple[Component, ...]
    signature: bytes


def _check_unique(covered: tuple[Component, ...]) -> None:
    identities = [c.identity for c in covered]
    if len(set(identities)) != len(identities):
        raise ComponentError("a component is covered more than once")


# Lists of covered components already met, by their names when every item is a plain
# string without parameters: verifiers meet the same few lists on every request. Only
# lists that passed every check are kept; when full (say, flooded with made-up lists
# before any signature is checked) it starts afresh, so it only ever costs a rebuild.
_COVERED: dict[tuple[str, ...], tuple[Component, ...]] = {}
_COVERED_LIMIT = 256


def _covered(items: list[Item]) -> tuple[Component, ...]:
    """The components an inner list's items name, all valid and none twice, or raise."""
    names = []
    for item in items:
        if type(item.value) is not str or item.params:
            covered = tuple([Component.from_item(item) for item in items])
            _check_unique(covered)
            return covered
        names.append(item.value)
    key = tuple(names)
    covered = _COVERED.get(key)
    if covered is None:
        covered = tuple([Component.from_item(item) for item in items])
        _check_unique(covered)
        if len(_COVERED) >= _COVERED_LIMIT:
            _COVERED.clear()
        _COVERED[key] = covered
    return covered


def signature_base(
    covered: tuple[Component, ...],
    signature_params: InnerList,
    message: HttpMessage,
    request: HttpMessage | None = None,
) -> str:
    """The RFC 9421 §2.5 signature base (no trailing newline)."""
    return _signature_base(covered, serialize(signature_params), message, request)


def _signature_base(
    covered: tuple[Component, ...],
    params_text: str,
    message: HttpMessage,
    request: HttpMessage | None,
) -> str:
    lines = [f"{c.identifier}: {component_value(c, message, request)}" for c in covered]
    lines.append(f'"@signature-params": {params_text}')
    return "\n".join(lines)


def _params_text(params: SignatureParams) -> str:
    """``str(params.inner_list())``, without building the list."""
    pairs = [(name, getattr(params, name)) for name in _PARAM_ORDER]
    return serialize_inner_list_parts(
        [c.identifier for c in params.components],
        [(name, value) for name, value in pairs if value is not None],
    )


def sign(
    message: HttpMessage,
    key: SigningKey,
    params: SignatureParams,
    *,
    label: str = "sig1",
    request: HttpMessage | None = None,
) -> dict[str, str]:
    """The ``Signature-Input`` and ``Signature`` header values signing ``message``."""
    if params.keyid != key.kid:
        raise ValueError("keyid does not name the signing key")
    if params.alg is not None and params.alg != key.alg:
        raise ValueError("alg does not match the signing key")
    params_text = _params_text(params)
    base = _signature_base(params.components, params_text, message, request)
    signature = key.sign(base.encode("ascii"))
    member = serialize_key(label)  # as str() of a one-member Dictionary would write it
    return {
        "Signature-Input": f"{member}={params_text}",
        "Signature": f"{member}={serialize_item_parts(signature)}",
    }


def _parse_dictionary(value: str, field_name: str) -> tuple[Dictionary, dict[str, str]]:
    try:
        return parse_dictionary_texts(value)
    except ValueError as exc:  # includes UnicodeEncodeError
        raise SignatureInvalidError(f"{field_name} is not a valid structured dictionary") from exc


def _is_str(value: object) -> bool:
    return isinstance(value, str) and not isinstance(value, Token)


def _select(message: HttpMessage, label: str) -> tuple[InnerList, bytes, str]:
    """The signature ``label``: its parameters, its bytes and ``str()`` of the parameters."""
    raw_input = message.header("signature-input")
    raw_signature = message.header("signature")
    if raw_input is None or raw_signature is None:
        raise SignatureMissingError("Signature and Signature-Input headers are required")
    check_field("Signature-Input", raw_input, lines=message.field_lines("signature-input"))
    check_field("Signature", raw_signature, lines=message.field_lines("signature"))
    inputs, input_texts = _parse_dictionary(raw_input, "Signature-Input")
    signatures, _ = _parse_dictionary(raw_signature, "Signature")
    inner = inputs.data.get(label)  # the members; a Dictionary is a UserDict
    item = signatures.data.get(label)
    if inner is None or item is None:
        raise SignatureMissingError(f"no signature labelled {label!r}")
    if not isinstance(inner, InnerList):
        raise SignatureInvalidError(f"Signature-Input {label!r} is not an inner list")
    if not isinstance(item, Item) or not isinstance(item.value, bytes):
        raise SignatureInvalidError(f"Signature {label!r} is not a byte sequence")
    text = input_texts.get(label)
    return inner, item.value, serialize(inner) if text is None else text


def signature_keyid(message: HttpMessage, label: str = "sig1") -> str:
    """The ``keyid`` of the signature ``label`` (to look the key up before verifying)."""
    inner, _, _ = _select(message, label)
    keyid = inner.params.get("keyid")
    if not isinstance(keyid, str) or not keyid:
        raise SignatureInvalidError("the signature has no keyid")
    return keyid


def _check_params(inner: InnerList, policy: VerifyPolicy, now: int) -> None:
    params = inner.params
    if not params.keys() <= _PARAM_NAMES:
        raise SignatureInvalidError("the signature has unsupported parameters")
    created = params.get("created")
    if type(created) is not int:
        raise SignatureInvalidError("the created parameter is required (integer)")
    if not _is_str(params.get("keyid")):
        raise SignatureInvalidError("the keyid parameter is required (string)")
    for name in ("nonce", "alg", "tag"):
        if name in params and not _is_str(params[name]):
            raise SignatureInvalidError(f"the {name} parameter must be a string")
    for name in _STRING_PARAMS:
        if len(params.get(name, "")) > policy.max_param_chars:
            raise SignatureInvalidError(
                f"the {name} parameter is longer than {policy.max_param_chars} characters"
            )
    if policy.tag is not None and params.get("tag") != policy.tag:
        raise SignatureInvalidError("the signature does not carry the expected tag")
    if policy.require_nonce and "nonce" not in params:
        raise SignatureInvalidError("the nonce parameter is required")
    if params.get("alg") in _REFUSED_ALGS:
        raise SignatureInvalidError("shared-secret algorithms are refused")
    if created > now + policy.max_skew:
        raise SignatureInvalidError("signature created in the future")
    if created < now - policy.max_skew:
        raise SignatureInvalidError("signature created too long ago")
    if policy.max_age is not None and now - created > policy.max_age:
        raise SignatureInvalidError("signature older than the maximum age")
    if "expires" in params:
        expires = params["expires"]
        if type(expires) is not int:
            raise SignatureInvalidError("the expires parameter must be an integer")
        if now >= expires:
            raise SignatureInvalidError("signature expired")


@lru_cache(maxsize=64)
def _field_component(name: str) -> Component:
    return Component(name.lower())


def _check_coverage(
    covered: tuple[Component, ...], policy: VerifyPolicy, message: HttpMessage
) -> None:
    identities = {c.identity for c in covered}
    for required in policy.required_components:
        if required.identity not in identities:
            raise SignatureInvalidError(
                f"the signature does not cover the required component {required.identifier}"
            )
    for name in policy.also_cover_if_present:
        field_component = _field_component(name)
        if message.header(name) is not None and field_component.identity not in identities:
            raise SignatureInvalidError(
                f"the signature does not cover the present field {field_component.identifier}"
            )


def verify(
    message: HttpMessage,
    *,
    resolve_key: Callable[[str], VerificationKey],
    policy: VerifyPolicy,
    now: datetime,
    request: HttpMessage | None = None,
) -> VerifiedSignature:
    """Verify the signature labelled ``policy.label`` on ``message``, or raise.

    ``resolve_key`` raises :class:`UnknownKeyError` for a key id it does not know; a key it
    returns that is not valid at ``now`` (not yet valid, expired, revoked) is refused with
    the same error. ``request`` is the request a response answers (``req`` components).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now_ts = int(now.timestamp())
    inner, signature, params_text = _select(message, policy.label)
    _check_params(inner, policy, now_ts)
    try:
        covered = _covered(inner.data)
    except ComponentError as exc:
        raise SignatureInvalidError(str(exc)) from exc
    _check_coverage(covered, policy, message)

    params = inner.params
    keyid = str(params["keyid"])
    key = resolve_key(keyid)
    if not key.valid_at(now):
        raise UnknownKeyError(f"key {keyid!r} is not valid now")
    if key.alg not in HTTP_SIG_ALGS:
        raise SignatureInvalidError(f"key {keyid!r} has no allowed signature algorithm")
    alg = params.get("alg")
    if alg is not None and alg != key.alg:
        raise SignatureInvalidError("the alg parameter does not match the key")

    try:
        base = _signature_base(covered, params_text, message, request)
    except ComponentError as exc:
        raise SignatureInvalidError(str(exc)) from exc
    if not verify_bytes(key.alg, key.public_key, base.encode("ascii"), signature):
        raise SignatureInvalidError("the signature does not verify")
    expires = params.get("expires")
    nonce = params.get("nonce")
    tag = params.get("tag")
    return VerifiedSignature(
        label=policy.label,
        keyid=keyid,
        key=key,
        created=int(params["created"]),
        expires=expires if isinstance(expires, int) else None,
        nonce=str(nonce) if nonce is not None else None,
        alg=str(alg) if alg is not None else None,
        tag=str(tag) if tag is not None else None,
        components=covered,
        signature=signature,
    )
