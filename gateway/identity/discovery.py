"""Upstream identity providers: their configuration, and their discovery metadata, cached.

Each provider is configured by name (``hk``, ``macau``, ``guangdong``: a registered
jurisdiction's identity provider, gateway/jurisdictions.py) with its discovery URL,
the gateway's client id there, the ID-token algorithms it may use (an allow-list; never
``none`` or HMAC), the scopes to ask and whether to push the request (PAR). The metadata and
key set are fetched at start; a provider that cannot be fetched is retried and reported by
``/readyz`` but does not stop the gateway from starting. Providers rotate their keys, so
:meth:`Upstreams.run` refetches every provider's metadata and key set on a schedule
(``idp_metadata_refresh_seconds``; a failure is logged and the last good metadata kept), and
an ID token naming a ``kid`` the cached key set lacks makes the relying party ask
:meth:`Upstreams.refetch_keys` for that provider's key set once: at most once per
``idp_jwks_refetch_seconds`` per provider, concurrent logins sharing the one fetch. The
requests go through :func:`gateway.egress.client.client_session` (the egress policy:
production calls https and public addresses only) and never follow a redirect: a provider
answering 3xx for its metadata or key set is not ready, and says so.

Outside sandbox mode a sandbox identity provider is never trusted: one configured (its URL
under ``/sandbox/idp/``) stops the start, metadata that marks itself ``gba_sandbox`` is
refused, and the relying party refuses an ID token whose issuer is one
(:func:`is_sandbox_issuer`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog
import yaml

from gateway import jurisdictions
from gateway.domain.errors import ConfigurationError, NotReadyError
from gateway.egress.client import client_session
from gateway.egress.policy import EgressPolicy
from gateway.identity.jose import ASYMMETRIC_ALGS

SANDBOX_CLIENT_ID = "gba-gateway"
SANDBOX_IDP_PATH = "/sandbox/idp/"  # where the sandbox mounts its identity providers
SANDBOX_MARK = "gba_sandbox"  # in a sandbox provider's discovery document
log = structlog.get_logger("gateway.identity")


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    discovery_url: str
    client_id: str
    id_token_algs: tuple[str, ...]
    scopes: tuple[str, ...] = ("openid",)
    use_par: bool | None = None  # None: push when the provider has a PAR endpoint


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks: dict[str, Any]
    par_endpoint: str | None = None
    jwks_uri: str = ""


def sandbox_providers(base_url: str) -> tuple[ProviderConfig, ...]:
    """The sandbox identity provider of each registered jurisdiction that has one, mounted
    under ``/sandbox/idp/{name}``."""
    return tuple(
        ProviderConfig(
            name=j.provider,
            discovery_url=f"{base_url}/sandbox/idp/{j.provider}/.well-known/openid-configuration",
            client_id=SANDBOX_CLIENT_ID,
            id_token_algs=(j.sandbox_idp.signing_alg,),
            scopes=("openid", "profile"),
        )
        for j in jurisdictions.registered()
        if j.sandbox_idp is not None and j.identity is not None
    )


def is_sandbox_issuer(url: str) -> bool:
    """An issuer or discovery URL of the gateway's sandbox identity providers."""
    return SANDBOX_IDP_PATH in urlsplit(url).path.lower() + "/"


def load_providers(path: Path, *, sandbox: bool = False) -> tuple[ProviderConfig, ...]:
    """``identity_providers_file``: a YAML list under ``providers:``; every problem at once.
    Outside ``sandbox`` mode a sandbox identity provider is refused."""
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None
    entries = data.get("providers") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigurationError(f"{path}: expected a list under 'providers'")
    problems: list[str] = []
    out = []
    for n, entry in enumerate(entries):
        where = f"{path}: providers[{n}]"
        if not isinstance(entry, dict):
            problems.append(f"{where} is not a mapping")
            continue
        name, url, client_id = entry.get("name"), entry.get("discovery_url"), entry.get("client_id")
        algs = entry.get("id_token_algs")
        if name not in (known := jurisdictions.registered().providers):
            problems.append(f"{where}: name must be one of {', '.join(known)}")
        if not isinstance(url, str) or not url.startswith("https://"):
            problems.append(f"{where}: discovery_url must be an https URL")
        elif not sandbox and is_sandbox_issuer(url):
            problems.append(f"{where}: a sandbox identity provider is refused in production")
        if not isinstance(client_id, str) or not client_id:
            problems.append(f"{where}: client_id is required")
        if not isinstance(algs, list) or not algs or set(algs) - ASYMMETRIC_ALGS:
            problems.append(f"{where}: id_token_algs must list some of ES256, PS256, RS256, EdDSA")
        scopes = entry.get("scopes", ["openid"])
        if not isinstance(scopes, list) or "openid" not in scopes:
            problems.append(f"{where}: scopes must be a list including openid")
        use_par = entry.get("use_par")
        if use_par is not None and not isinstance(use_par, bool):
            problems.append(f"{where}: use_par must be true or false")
        if not problems:
            out.append(
                ProviderConfig(name, url, client_id, tuple(algs), tuple(scopes), use_par)  # type: ignore[arg-type]
            )
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        problems.append(f"{path}: a provider is configured twice")
    if problems:
        raise ConfigurationError("; ".join(problems))
    return tuple(out)


def _metadata(config: ProviderConfig, document: Mapping[str, Any]) -> tuple[str, Any]:
    issuer = document.get("issuer")
    expected = config.discovery_url.removesuffix("/.well-known/openid-configuration")
    if issuer != expected:
        raise ValueError("the issuer does not match the discovery URL")
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(name), str):
            raise ValueError(f"the metadata has no {name}")
    return issuer, document


class Upstreams:
    """The configured providers and, once fetched, their metadata and key sets."""

    def __init__(
        self,
        configs: tuple[ProviderConfig, ...],
        *,
        egress: EgressPolicy,
        timeout: float,
        readiness: Callable[[str, bool], None] = lambda _name, _ok: None,
        sandbox: bool = False,
        refresh_seconds: float = 3600.0,
        refetch_seconds: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.configs = {c.name: c for c in configs}
        self._sandbox = sandbox  # False: a provider marking itself gba_sandbox is refused
        self.egress = egress
        self._metadata: dict[str, ProviderMetadata] = {}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._readiness = readiness
        self._lock = asyncio.Lock()
        self._refresh_seconds = refresh_seconds
        self._refetch_seconds = refetch_seconds
        self._monotonic = monotonic
        # one lock per provider: a refetch or refresh in flight is shared, never repeated
        self._refetching = {name: asyncio.Lock() for name in self.configs}
        self._refetched_at: dict[str, float] = {}

    def config(self, name: str) -> ProviderConfig | None:
        return self.configs.get(name)

    async def metadata(self, name: str, *, report: bool = True) -> ProviderMetadata:
        """The provider's metadata, fetched now if it is not cached yet."""
        cached = self._metadata.get(name)
        if cached is not None:
            return cached
        config = self.configs[name]
        async with self._lock:
            if name not in self._metadata:
                try:
                    self._metadata[name] = await self._fetch(config)
                except Redirected as exc:
                    if report:
                        self._readiness(name, False)
                    log.warning("idp.unavailable", provider=name, reason=str(exc))
                    raise NotReadyError(f"the identity provider {name} {exc}") from None
                except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
                    if report:
                        self._readiness(name, False)
                    log.warning(
                        "idp.unavailable", provider=name, reason=type(exc).__name__, error=str(exc)
                    )
                    raise NotReadyError(f"the identity provider {name} is not reachable") from None
                self._readiness(name, True)
        return self._metadata[name]

    async def _fetch(self, config: ProviderConfig) -> ProviderMetadata:
        async with client_session(self.egress, timeout=self._timeout, limit=4) as session:
            document = await _get_json(session, config.discovery_url)
            issuer, document = _metadata(config, document)
            if not self._sandbox and (document.get(SANDBOX_MARK) or is_sandbox_issuer(issuer)):
                raise ValueError("a sandbox identity provider is refused in production")
            jwks = await _get_json(session, document["jwks_uri"])
        if not isinstance(jwks.get("keys"), list):
            raise ValueError("the key set has no keys")
        par = document.get("pushed_authorization_request_endpoint")
        use_par = config.use_par if config.use_par is not None else par is not None
        if use_par and not isinstance(par, str):
            raise ValueError("use_par is set but the provider has no PAR endpoint")
        return ProviderMetadata(
            issuer=issuer,
            authorization_endpoint=document["authorization_endpoint"],
            token_endpoint=document["token_endpoint"],
            jwks=jwks,
            par_endpoint=par if use_par else None,
            jwks_uri=document["jwks_uri"],
        )

    async def refetch_keys(self, name: str, stale: ProviderMetadata) -> ProviderMetadata:
        """The provider's metadata with a key set fetched after ``stale`` was read.

        Called when an ID token names a ``kid`` that ``stale`` lacks. If another caller has
        already replaced ``stale``, that newer metadata is answered without a fetch; a refetch
        in flight is awaited, not repeated; and a provider's key set is refetched at most once
        per ``refetch_seconds`` (a flood of made-up kids costs one fetch per interval). A
        failed refetch is logged and the cached metadata kept. The key set fetched replaces
        the cached one whole: a key the provider removed is no longer accepted.
        """
        async with self._refetching[name]:
            current = self._metadata.get(name, stale)
            if current is not stale:
                return current
            last = self._refetched_at.get(name)
            if last is not None and self._monotonic() - last < self._refetch_seconds:
                log.info("idp.jwks_refetch_limited", provider=name)
                return current
            try:
                async with client_session(self.egress, timeout=self._timeout, limit=1) as session:
                    jwks = await _get_json(session, current.jwks_uri)
                if not isinstance(jwks.get("keys"), list):
                    raise ValueError("the key set has no keys")
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                # counted too: a broken provider is not hammered either
                self._refetched_at[name] = self._monotonic()
                log.warning("idp.jwks_refetch_failed", provider=name, error=str(exc))
                return current
            self._refetched_at[name] = self._monotonic()
            refetched = dataclasses.replace(current, jwks=jwks)
            self._metadata[name] = refetched
            log.info("idp.jwks_refetched", provider=name, kids=_kids(jwks))
            return refetched

    async def refresh(self, name: str) -> bool:
        """Fetch the provider's metadata and key set again; on failure keep the last good
        ones (logged). A provider never fetched yet is fetched as at start."""
        if name not in self._metadata:
            try:
                await self.metadata(name)
            except NotReadyError:
                return False
            return True
        async with self._refetching[name]:
            try:
                fresh = await self._fetch(self.configs[name])
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
                log.warning("idp.refresh_failed", provider=name, error=str(exc))
                return False
            self._metadata[name] = fresh
        log.info("idp.refreshed", provider=name, kids=_kids(fresh.jwks))
        return True

    async def run(self) -> None:
        """At start, :meth:`warm`; then refresh every provider each ``refresh_seconds``,
        until cancelled (the cancellation closes any fetch in flight)."""
        await self.warm()
        while True:
            await asyncio.sleep(self._refresh_seconds)
            for name in self.configs:
                await self.refresh(name)

    async def warm(self, attempts: int = 6) -> None:
        """Fetch every provider at start, retrying with backoff; failures are only reported."""
        for name in self.configs:
            delay = 0.1
            for attempt in range(attempts):
                try:
                    await self.metadata(name, report=attempt >= 2)
                    break
                except NotReadyError:
                    if attempt + 1 < attempts:
                        await asyncio.sleep(delay)
                        delay = min(delay * 3, 30.0)


def _kids(jwks: Mapping[str, Any]) -> list[str]:
    return [str(k.get("kid")) for k in jwks.get("keys", []) if isinstance(k, dict)][:20]


class Redirected(ValueError):
    """The provider answered a redirect for its metadata or key set: not followed."""


async def _get_json(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(url, allow_redirects=False) as response:
        if 300 <= response.status < 400:
            raise Redirected(f"answered a redirect (HTTP {response.status}), which is not followed")
        if response.status != 200:
            raise ValueError(f"{url} answered {response.status}")
        body = await response.content.read(256 * 1024 + 1)
    if len(body) > 256 * 1024:
        raise ValueError("the metadata is too large")
    try:
        data = json.loads(body)
    except RecursionError:  # json's C scanner recurses once per nested array or object
        raise ValueError("the metadata is nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError("the metadata is not a JSON object")
    return data
