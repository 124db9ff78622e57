"""The body of an agency's call: JSON, or the XML message of the agency's own format.

The web edge only chooses by media type; the XML is decoded in the core
(:mod:`gateway.services.agency_messages`), from the field map's ``messages:`` section.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.services import agency_messages
from gateway.web.auth import SignedRequest
from gateway.web.keys import DEPENDENCIES
from gateway.web.problems import json_object


async def agency_body(
    request: web.Request, signed: SignedRequest, kind: str, what: str
) -> dict[str, Any]:
    """The JSON body of an agency's call: JSON, or the XML of its own format (decoded in the
    core, :mod:`gateway.services.agency_messages`), chosen by media type."""
    if signed.media_type == "application/json":
        return json_object(signed.body, signed.media_type, what)
    deps = request.app[DEPENDENCIES]
    return await agency_messages.read_native(
        deps, signed.caller, kind, signed.body, signed.media_type, what
    )


def native_request(schema: dict[str, Any], element: str) -> dict[str, dict[str, Any]]:
    """The OpenAPI request bodies of an agency's call: its JSON Schema, or the XML message of
    the agency's format (``element`` in the HK and Macau XSDs at /v1/schemas)."""
    return {
        "application/json": schema,
        "application/xml": {
            "type": "string",
            "description": f"the agency's own format: the {element} element of "
            "hk-application.xsd or macau-application.xsd (GET /v1/schemas), "
            "the same body as the JSON",
        },
    }
