"""RFC 9421 covered components and their values, without any web framework.

:class:`Component` names one covered component (``"@method"``, ``"content-digest"``,
``"@target-uri";req`` ...) and :func:`component_value` derives its value (§2.1, §2.2).
Supported: the derived components ``@method``, ``@target-uri``, ``@authority``,
``@scheme``, ``@request-target``, ``@path``, ``@query``, ``@query-param`` and ``@status``,
and HTTP fields with the ``sf`` (known dictionary and list fields only) and ``key``
parameters; ``req`` on any of them. ``bs``, ``tr`` and any other parameter are refused,
and so is a query parameter that occurs more than once (parameter pollution).

Every problem is a :class:`ComponentError` whose message names the component only, never
a value: values are message content and may be personal data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import parse_qsl, urlsplit

from http_sfv import Dictionary, Item, List, Token

from gateway.trust.httpmessage import HttpMessage
from gateway.trust.sfv import serialize_item_parts

__all__ = [
    "DERIVED_COMPONENTS",
    "Component",
    "ComponentError",
    "HttpMessage",
    "component_value",
    "components",
]

ParamValue = str | bool

DERIVED_COMPONENTS: frozenset[str] = frozenset(
    {
        "@method",
        "@target-uri",
        "@authority",
        "@scheme",
        "@request-target",
        "@path",
        "@query",
        "@query-param",
        "@status",
    }
)
_FLAG_PARAMS = frozenset({"req", "sf"})
_STRING_PARAMS = frozenset({"key", "name"})
_DICTIONARY_FIELDS = frozenset(
    {
        "accept-signature",
        "content-digest",
        "priority",
        "repr-digest",
        "signature",
        "signature-input",
        "want-content-digest",
        "want-repr-digest",
    }
)
_LIST_FIELDS = frozenset({"cache-status", "proxy-status"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")
_FORM_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-._")
# Valid components parsed from plain-str items, by (name, params): every signature names the
# same few, so verification reuses them instead of re-checking. Bounded: when full, it
# starts afresh.
_INTERNED: dict[tuple[str, tuple[tuple[str, ParamValue], ...]], Component] = {}
_INTERN_LIMIT = 512


class ComponentError(ValueError):
    """A component cannot be parsed, is not supported, or is absent from the message."""


def _short(text: str) -> str:
    return text if len(text) <= 64 else text[:61] + "..."


@dataclass(frozen=True)
class Component:
    """One covered component: its name and its parameters, in the order they are written."""

    name: str
    params: tuple[tuple[str, ParamValue], ...] = field(default=())

    def __post_init__(self) -> None:
        _check_component(self)

    @classmethod
    def of(
        cls,
        name: str,
        *,
        req: bool = False,
        sf: bool = False,
        key: str | None = None,
        query_name: str | None = None,
    ) -> Component:
        params: list[tuple[str, ParamValue]] = []
        if query_name is not None:
            params.append(("name", query_name))
        if key is not None:
            params.append(("key", key))
        if sf:
            params.append(("sf", True))
        if req:
            params.append(("req", True))
        return cls(name, tuple(params))

    @classmethod
    def parse(cls, text: str) -> Component:
        """From ``'"@method";req'`` (a serialized item) or a bare name such as ``date``."""
        if not text.startswith('"'):
            return cls(text)
        item = Item()
        try:
            item.parse(text.encode("ascii"))
        except ValueError as exc:
            raise ComponentError(f"malformed component identifier {_short(text)!r}") from exc
        return cls.from_item(item)

    @classmethod
    def from_item(cls, item: Item) -> Component:
        value = item.value
        if not isinstance(value, str) or isinstance(value, Token):
            raise ComponentError("a component identifier must be a string")
        params = tuple(item.params.items())
        # Only exact str names, keys and values (or True) are interned, so that no equal but
        # differently typed item (a DisplayString name, a 1 for True) can share an entry.
        if cls is not Component or type(value) is not str:
            return cls(value, params)
        for param_name, param_value in params:
            if type(param_name) is not str or not (param_value is True or type(param_value) is str):
                return cls(value, params)
        key = (value, params)
        component = _INTERNED.get(key)
        if component is None:
            component = cls(value, params)  # raises ComponentError when invalid
            if len(_INTERNED) >= _INTERN_LIMIT:
                _INTERNED.clear()
            _INTERNED[key] = component
        return component

    def to_item(self) -> Item:
        item = Item(self.name)
        item.params.update(self.params)
        return item

    @cached_property
    def identifier(self) -> str:
        """The serialized identifier, as it starts a signature base line (``str(to_item())``)."""
        return serialize_item_parts(self.name, self.params)

    @cached_property
    def identity(self) -> tuple[str, frozenset[tuple[str, ParamValue]]]:
        """Equal for the same component whatever the order of its parameters."""
        return self.name, frozenset(self.params)

    def param(self, name: str) -> ParamValue | None:
        for param_name, value in self.params:
            if param_name == name:
                return value
        return None

    @cached_property
    def req(self) -> bool:
        return self.param("req") is True


def components(*specs: str | Component) -> tuple[Component, ...]:
    """``components("@method", '"@target-uri";req')``: a tuple of parsed components."""
    return tuple(spec if isinstance(spec, Component) else Component.parse(spec) for spec in specs)


def _check_component(component: Component) -> None:
    name = component.name
    if not isinstance(name, str) or isinstance(name, Token) or not name:
        raise ComponentError("a component name must be a non-empty string")
    shown = _short(name)
    derived = name.startswith("@")
    if derived and name not in DERIVED_COMPONENTS:
        raise ComponentError(f"unsupported derived component {shown!r}")
    if not derived and not _FIELD_NAME.fullmatch(name):
        raise ComponentError(f"invalid field name {shown!r} (lowercase token expected)")
    seen: set[str] = set()
    for param, value in component.params:
        if param in seen:
            raise ComponentError(f"repeated parameter {param!r} on component {shown!r}")
        seen.add(param)
        if param in _FLAG_PARAMS:
            if value is not True:
                raise ComponentError(f"parameter {param!r} must be a true flag")
        elif param in _STRING_PARAMS:
            if not isinstance(value, str) or isinstance(value, Token):
                raise ComponentError(f"parameter {param!r} must be a string")
        else:
            raise ComponentError(f"unsupported parameter {_short(param)!r} on {shown!r}")
        if param in {"sf", "key"} and derived:
            raise ComponentError(f"parameter {param!r} is for fields, not {shown!r}")
        if param == "name" and name != "@query-param":
            raise ComponentError(f"parameter 'name' is only for '@query-param', not {shown!r}")
    if name == "@query-param" and "name" not in seen:
        raise ComponentError("'@query-param' needs a 'name' parameter")


def component_value(
    component: Component, message: HttpMessage, request: HttpMessage | None = None
) -> str:
    """The value of ``component`` in ``message`` (or in ``request`` when it has ``req``)."""
    source = message
    if component.req:
        if not message.is_response:
            raise ComponentError(f"{component.identifier} is only valid in a response")
        if request is None:
            raise ComponentError(f"{component.identifier} needs the request the response answers")
        source = request
    if component.name.startswith("@"):
        value = _derived_value(component, source)
    else:
        value = _field_value(component, source)
    if not value.isascii() or "\r" in value or "\n" in value:
        raise ComponentError(f"{component.identifier} has a value that cannot be signed")
    return value


def _derived_value(component: Component, message: HttpMessage) -> str:
    name = component.name
    if name == "@status":
        if message.status is None:
            raise ComponentError("'@status' is only available in a response")
        return f"{message.status:03d}"
    if name == "@method":
        if message.method is None:
            raise ComponentError("'@method' is only available in a request")
        return message.method
    uri = message.target_uri
    if uri is None:
        raise ComponentError(f"{name!r} is only available in a request")
    if not uri.isascii():
        raise ComponentError("the target URI must be ASCII (percent-encoded)")
    try:
        parts = urlsplit(uri)
    except ValueError:  # an unbalanced "[" or "]" in the authority ("Invalid IPv6 URL")
        raise ComponentError("the target URI cannot be parsed") from None
    if not parts.scheme or not parts.netloc:
        raise ComponentError("the target URI must be absolute")
    before_fragment = uri.split("#", 1)[0]
    has_query = "?" in before_fragment
    query = before_fragment.split("?", 1)[1] if has_query else ""
    path = parts.path or "/"
    if name == "@target-uri":
        return before_fragment
    if name == "@scheme":
        return parts.scheme.lower()
    if name == "@authority":
        return _authority(parts.netloc, parts.scheme.lower())
    if name == "@path":
        return path
    if name == "@query":
        return "?" + query
    if name == "@request-target":
        return path + ("?" + query if has_query else "")
    return _query_param(str(component.param("name")), query)


def _authority(netloc: str, scheme: str) -> str:
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        end = hostport.find("]") + 1
        host, rest = hostport[:end], hostport[end:]
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = hostport.partition(":")
    if not host:
        raise ComponentError("the target URI has no host")
    host = host.lower()
    if not port or port == _DEFAULT_PORTS.get(scheme):
        return host
    return f"{host}:{port}"


def _form_encode(text: str) -> str:
    return "".join(chr(b) if b in _FORM_SAFE else f"%{b:02X}" for b in text.encode("utf-8"))


def _query_param(encoded_name: str, query: str) -> str:
    values = [
        value
        for name, value in parse_qsl(query, keep_blank_values=True)
        if _form_encode(name) == encoded_name
    ]
    if not values:
        raise ComponentError("a covered query parameter is absent")
    if len(values) > 1:
        raise ComponentError("a covered query parameter occurs more than once")
    return _form_encode(values[0])


def _field_value(component: Component, message: HttpMessage) -> str:
    value = message.header(component.name)
    if value is None:
        raise ComponentError(f"covered field {_short(component.name)!r} is absent")
    if not component.params:
        return value
    shown = repr(_short(component.name))
    key = component.param("key")
    if key is not None:
        dictionary = _parse_structured(Dictionary(), value, shown)
        if str(key) not in dictionary:
            raise ComponentError(f"covered field {shown} has no such dictionary member")
        return str(dictionary[str(key)])
    if component.param("sf") is True:
        if component.name in _DICTIONARY_FIELDS:
            return str(_parse_structured(Dictionary(), value, shown))
        if component.name in _LIST_FIELDS:
            return str(_parse_structured(List(), value, shown))
        raise ComponentError(f"'sf' is not supported for field {shown}")
    return value


def _parse_structured(container: Dictionary | List, value: str, shown: str) -> Dictionary | List:
    try:
        container.parse(value.encode("ascii"))
    except ValueError as exc:  # UnicodeEncodeError is a ValueError too
        raise ComponentError(f"covered field {shown} is not a valid structured field") from exc
    return container
