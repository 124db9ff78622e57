"""Typed application keys: every resource the web edge shares, named once."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from gateway.mapping.matter_schema import MatterSchemas
from gateway.mapping.published import PublishedSchema
from gateway.services.handlers import Dependencies
from gateway.services.relay import Relay
from gateway.settings import Settings
from gateway.store.unit_of_work import SqlUnitOfWorkFactory
from gateway.trust.keystore import KeyRing
from gateway.web.metrics import Metrics
from gateway.web.rate_limits import RateLimits

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", SqlUnitOfWorkFactory)  # for the edges that administer the registry
DEPENDENCIES = web.AppKey("dependencies", Dependencies)
KEYRING = web.AppKey("keyring", KeyRing)
RELAY = web.AppKey("relay", Relay)
METRICS = web.AppKey("metrics", Metrics)
RATE_LIMITS = web.AppKey("rate_limits", RateLimits)
READINESS = web.AppKey("readiness", dict[str, bool])
SCHEMAS = web.AppKey("schemas", Mapping[str, PublishedSchema])  # GET /v1/schemas
MATTER_SCHEMAS = web.AppKey("matter_schemas", MatterSchemas)  # GET /v1/matters/{code}/schema
REQUEST_ID = web.RequestKey("request_id", str)
AGENCY_ID = web.RequestKey("agency_id", str)
# The key id of the request's signature once it verified (and its digest held): only the
# answer to such a request is signed (gateway.web.middlewares.sign_partner_responses).
VERIFIED_KEYID = web.RequestKey("verified_keyid", str)
