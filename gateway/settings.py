"""One frozen Settings, built once from an optional TOML file and ``GBA_*`` environment.

Precedence: built-in defaults < TOML file < environment < command-line flags. Everything is
validated before anything starts; every problem is reported at once.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from gateway.domain.errors import ConfigurationError
from gateway.egress.policy import EgressPolicy

Mode = Literal["production", "sandbox"]
_HOST_NAME = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Settings:
    mode: Mode = "production"
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""  # defaults to http://host:port; behind a proxy, the external URL
    # Host names answered besides public_url's and loopback's (gateway/web/hosts.py)
    allowed_hosts: tuple[str, ...] = ()
    database_url: str = ""
    database_schema: str = ""  # PostgreSQL schema for the tables (default: search_path)
    keys_dir: Path | None = None  # the gateway's own private keys (files, never inline)
    trust_anchors_dir: Path | None = None  # per-jurisdiction CA certificates
    agencies_file: Path | None = None  # the partner-agency registry (YAML)
    identity_providers_file: Path | None = None  # upstream OIDC providers (YAML; docs/identity.md)
    clients_file: Path | None = None  # OIDC clients: portals, kiosks, counters (YAML)
    mappings_dir: Path = REPO_ROOT / "mappings"
    # jurisdictions beyond the installed ones (gateway/jurisdictions.py): folders, each a
    # package exporting ADAPTER. A list: TOML array, or comma-separated in GBA_*
    jurisdiction_folders: tuple[Path, ...] = ()
    sandbox_dir: Path = REPO_ROOT / ".sandbox"
    max_body_bytes: int = 1024 * 1024
    signature_max_skew: int = 300
    log_level: str = "info"
    log_format: Literal["json", "console"] = "json"
    relay_enabled: bool = True
    relay_concurrency: int = 512
    # deliveries in flight to one agency (within relay_concurrency), and its connections: half
    # the slots. A slot is held from the claim until the outcome is recorded, which under load
    # is about a second (Little's law: the rate a partner can take is its slots over that),
    # so one busy partner keeps up with the accept path and a slow one never holds them all
    relay_per_partner: int = 256
    partner_timeout: float = 10.0
    # upstream identity providers (docs/identity.md, "Key rotation"): their discovery metadata
    # and key sets are fetched again this often; an ID token naming an unknown kid refetches
    # that provider's key set at once, but at most once per idp_jwks_refetch_seconds
    idp_metadata_refresh_seconds: float = 3600.0
    idp_jwks_refetch_seconds: float = 60.0
    # how long an access token the gateway's OpenID Provider issues is valid (docs/identity.md);
    # a portal refreshes it with the refresh token, so a form outlives it
    access_token_seconds: int = 300
    # first and longest wait between deliveries to a partner that failed; unset: 1 s and
    # 300 s, or in sandbox mode 0.25 s and 5 s, so that a tester sees recovery at once
    relay_backoff_initial: float | None = None
    relay_backoff_max: float | None = None
    # attempts before a message is parked as a dead letter; unset: 12 (about 19 minutes of
    # backoff), or 60 in sandbox mode (a few minutes: a partner down for a while recovers)
    relay_max_attempts: int | None = None
    audit_checkpoint_seconds: float = 60.0
    # evidence by data sharing (docs/evidence.md): how long an issuer has to answer an
    # evidence request before the case goes on and the applicant is asked for the material
    evidence_answer_seconds: float = 86400.0
    workers: int = 1  # serving processes on this machine (serve --workers; PostgreSQL only)
    # outbound calls (gateway.egress.policy): CIDRs and host names production may call although
    # they are not public (loopback, private, link-local; cloud metadata never), and host
    # names production may call over plain http. Lists: TOML arrays, or comma-separated in GBA_*
    egress_allow: tuple[str, ...] = ()
    egress_allow_http: tuple[str, ...] = ()
    # What a client may send (docs/deploy.md, "Limits on what clients may send"); per process.
    http_max_line_size: int = 8190  # request line and each header line, bytes
    http_max_field_size: int = 8190  # one header field, bytes
    http_max_headers: int = 64  # header fields in one request
    header_timeout: float = 10.0  # a request header must arrive in full within this
    body_timeout: float = 30.0  # and its body within this
    keepalive_timeout: float = 75.0  # an idle connection is closed after this
    max_connections: int = 512  # open connections per process; beyond: 503 and close
    rate_limit_partner: float = 50.0  # requests/s per signing key on /v1 (0: no limit)
    rate_limit_partner_burst: int = 500
    rate_limit_address: float = 10.0  # requests/s per client address, unauthenticated routes
    rate_limit_address_burst: int = 300
    trusted_proxies: tuple[str, ...] = ()  # peers whose X-Forwarded-For is believed (CIDRs)
    # Materials (docs/materials.md). Where uploaded files' bytes go: "folder" (data_dir/blobs)
    # or "database" (chunk rows); unset: folder on SQLite, database on PostgreSQL
    blob_store: str = ""
    data_dir: Path | None = None  # the data folder; unset: the SQLite file's, or sandbox_dir
    max_material_bytes: int = 20 * 1024 * 1024  # one uploaded file
    max_application_material_bytes: int = 100 * 1024 * 1024  # every file one application names
    material_expiry_seconds: float = 24 * 3600.0  # an upload no application names is removed
    upload_timeout: float = 300.0  # a whole upload's body must arrive within this
    # An application's material given by its digest alone (no upload: nothing to fetch) is
    # accepted while partner systems move to uploads; false refuses it (material_not_uploaded)
    accept_digest_only_materials: bool = True
    # Residents told (Art. 22; docs/notifications.md). E-mail over SMTP: smtp_host unset means
    # no e-mail is sent (residents read theirs at /v1/me/notifications); in sandbox mode the
    # local SMTP sink is used instead. The password is read from a file, never inline.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_starttls: bool = True  # STARTTLS before anything is sent (off only for a local relay)
    smtp_username: str = ""
    smtp_password_file: Path | None = None
    smtp_sender: str = "GBA cross-border services <no-reply@gateway.invalid>"
    smtp_timeout: float = 10.0
    # SMS through an HTTP SMS gateway (gateway/egress/sms.py), under the egress policy; unset:
    # no SMS. The bearer token, if the gateway needs one, is read from a file.
    sms_gateway_url: str = ""
    sms_gateway_token_file: Path | None = None
    # The sandbox's SMTP sink (aiosmtpd) listens on 127.0.0.1 at this port; 0: a free port
    sandbox_smtp_port: int = 0

    @property
    def sandbox(self) -> bool:
        return self.mode == "sandbox"

    @property
    def relay_backoff(self) -> tuple[float, float]:
        """The first and the longest wait between attempts to deliver to a failing partner."""
        initial, longest = (0.25, 5.0) if self.sandbox else (1.0, 300.0)
        return (self.relay_backoff_initial or initial, self.relay_backoff_max or longest)

    @property
    def relay_attempts(self) -> int:
        return self.relay_max_attempts or (60 if self.sandbox else 12)

    @property
    def egress(self) -> EgressPolicy:
        """Where outbound calls may go (validated when the settings are built)."""
        return EgressPolicy.parse(
            sandbox=self.sandbox, allow=self.egress_allow, allow_http=self.egress_allow_http
        )

    @property
    def blob_folder(self) -> Path:
        """Where the data-folder blob store keeps files: ``<data_dir>/blobs``; unset, next
        to the SQLite database file, else in ``sandbox_dir``."""
        if self.data_dir is not None:
            return self.data_dir / "blobs"
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix) and ":memory:" not in self.database_url:
            return Path(self.database_url.removeprefix(prefix).split("?", 1)[0]).parent / "blobs"
        return self.sandbox_dir / "blobs"

    def blob_store_kind(self, dialect: str) -> str:
        """``folder`` or ``database``: as set, else by the database's dialect."""
        return self.blob_store or ("database" if dialect == "postgresql" else "folder")

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (self.public_url or f"http://{host}:{self.port}").rstrip("/")

    def with_overrides(self, **changes: Any) -> Settings:
        return _validated(replace(self, **{k: v for k, v in changes.items() if v is not None}))


_PATHS = {
    "keys_dir",
    "trust_anchors_dir",
    "agencies_file",
    "identity_providers_file",
    "clients_file",
    "mappings_dir",
    "sandbox_dir",
    "data_dir",
    "smtp_password_file",
    "sms_gateway_token_file",
}
_INTS = {
    "port",
    "max_body_bytes",
    "signature_max_skew",
    "relay_concurrency",
    "relay_per_partner",
    "workers",
    "relay_max_attempts",
    "http_max_line_size",
    "http_max_field_size",
    "http_max_headers",
    "max_connections",
    "rate_limit_partner_burst",
    "rate_limit_address_burst",
    "max_material_bytes",
    "max_application_material_bytes",
    "smtp_port",
    "sandbox_smtp_port",
    "access_token_seconds",
}
_BOOLS = {"relay_enabled", "accept_digest_only_materials", "smtp_starttls"}
# Lists of paths: relative ones are read from the TOML file's folder (or the working one).
_PATH_LISTS = {"jurisdiction_folders"}
_LISTS = {"egress_allow", "egress_allow_http", "allowed_hosts", "trusted_proxies"}
_FLOATS = {
    "partner_timeout",
    "idp_metadata_refresh_seconds",
    "idp_jwks_refetch_seconds",
    "audit_checkpoint_seconds",
    "evidence_answer_seconds",
    "relay_backoff_initial",
    "relay_backoff_max",
    "header_timeout",
    "body_timeout",
    "keepalive_timeout",
    "rate_limit_partner",
    "rate_limit_address",
    "material_expiry_seconds",
    "upload_timeout",
    "smtp_timeout",
}


def _coerce(name: str, value: Any, base: Path) -> Any:
    try:
        if name in _PATHS:
            path = Path(str(value)).expanduser()
            return path if path.is_absolute() else (base / path)
        if name in _INTS:
            return int(value)
        if name in _FLOATS:
            return float(value)
        if name in _BOOLS:
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        if name in _LISTS or name in _PATH_LISTS:
            items = value.split(",") if isinstance(value, str) else value
            listed = tuple(str(item).strip() for item in items if str(item).strip())
            if name in _LISTS:
                return listed
            return tuple(_coerce("mappings_dir", item, base) for item in listed)
    except ValueError as exc:
        raise ConfigurationError(f"setting {name}: {exc}") from None
    return value


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Defaults, then the TOML file (table ``[gateway]`` or top level), then ``GBA_*``."""
    environ = os.environ if environ is None else environ
    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"cannot read {config_file}: {exc}") from None
        data = data.get("gateway", data)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(f"{config_file}: unknown settings {', '.join(unknown)}")
        values.update({k: _coerce(k, v, config_file.parent) for k, v in data.items()})
    for name in known:
        env = environ.get("GBA_" + name.upper())
        if env is not None:
            values[name] = _coerce(name, env, Path.cwd())
    values.update({k: v for k, v in overrides.items() if v is not None})
    return _validated(Settings(**values))


def _validated(settings: Settings) -> Settings:
    problems = []
    if settings.mode not in ("production", "sandbox"):
        problems.append(f"mode must be 'production' or 'sandbox', not {settings.mode!r}")
    if not 0 < settings.port < 65536:
        problems.append("port must be 1-65535")
    if settings.max_body_bytes < 1024:
        problems.append("max_body_bytes must be at least 1024")
    if settings.evidence_answer_seconds <= 0:
        problems.append("evidence_answer_seconds must be more than 0")
    if settings.relay_per_partner < 1:
        problems.append("relay_per_partner must be at least 1")
    if settings.relay_attempts < 1:
        problems.append("relay_max_attempts must be at least 1")
    initial, longest = settings.relay_backoff
    if not 0 < initial <= longest:
        problems.append("relay_backoff_initial must be above 0 and at most relay_backoff_max")
    if not 1 <= settings.idp_metadata_refresh_seconds <= 7 * 86400:
        problems.append("idp_metadata_refresh_seconds must be 1-604800 seconds")
    if not 1 <= settings.idp_jwks_refetch_seconds <= 86400:
        problems.append("idp_jwks_refetch_seconds must be 1-86400 seconds")
    if not 1 <= settings.access_token_seconds <= 3600:
        problems.append("access_token_seconds must be 1-3600 seconds")
    if settings.audit_checkpoint_seconds < 1:
        problems.append("audit_checkpoint_seconds must be at least 1")
    if not 1 <= settings.workers <= 64:
        problems.append("workers must be 1-64")
    if not 30 <= settings.signature_max_skew <= 3600:
        problems.append("signature_max_skew must be 30-3600 seconds")
    problems += _limit_problems(settings)
    problems += _material_problems(settings)
    problems += _channel_problems(settings)
    if settings.log_level.lower() not in ("debug", "info", "warning", "error"):
        problems.append("log_level must be debug, info, warning or error")
    if settings.log_format not in ("json", "console"):
        problems.append("log_format must be 'json' or 'console'")
    try:
        settings.egress  # noqa: B018  # parsed here so that a bad entry refuses to start
    except ValueError as exc:
        problems.append(str(exc))
    problems += [
        f"jurisdiction_folders: {folder} has no __init__.py"
        for folder in settings.jurisdiction_folders
        if not (Path(folder) / "__init__.py").is_file()
    ]
    if any(not _HOST_NAME.fullmatch(name) for name in settings.allowed_hosts):
        problems.append("allowed_hosts takes host names, name:port or [IPv6]:port only")
    if problems:
        raise ConfigurationError("; ".join(problems))
    return settings


def _material_problems(settings: Settings) -> list[str]:
    """What is wrong with the settings of uploaded materials."""
    problems = []
    if settings.blob_store not in ("", "folder", "database"):
        problems.append("blob_store must be 'folder' or 'database' (or unset)")
    if settings.max_material_bytes < 1024:
        problems.append("max_material_bytes must be at least 1024")
    if settings.max_application_material_bytes < settings.max_material_bytes:
        problems.append("max_application_material_bytes must be at least max_material_bytes")
    if settings.material_expiry_seconds < 60:
        problems.append("material_expiry_seconds must be at least 60")
    if not 0 < settings.upload_timeout <= 3600:
        problems.append("upload_timeout must be above 0 and at most 3600 seconds")
    return problems


def _limit_problems(settings: Settings) -> list[str]:
    """What is wrong with the limits on what clients may send."""
    problems = []
    for name in ("http_max_line_size", "http_max_field_size"):
        if not 4096 <= getattr(settings, name) <= 65536:
            problems.append(f"{name} must be 4096-65536 bytes")
    if not 16 <= settings.http_max_headers <= 1024:
        problems.append("http_max_headers must be 16-1024")
    for name in ("header_timeout", "body_timeout", "keepalive_timeout"):
        if not 0 < getattr(settings, name) <= 3600:
            problems.append(f"{name} must be above 0 and at most 3600 seconds")
    if settings.max_connections < 1:
        problems.append("max_connections must be at least 1")
    for name in ("rate_limit_partner", "rate_limit_address"):
        if getattr(settings, name) < 0:
            problems.append(f"{name} must be 0 (no limit) or more requests per second")
        if getattr(settings, name + "_burst") < 1:
            problems.append(f"{name}_burst must be at least 1")
    for proxy in settings.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            problems.append(f"trusted_proxies: {proxy!r} is not an address or network")
    return problems


def _channel_problems(settings: Settings) -> list[str]:
    """What is wrong with the residents' e-mail and SMS settings."""
    problems = []
    if not 0 < settings.smtp_port < 65536:
        problems.append("smtp_port must be 1-65535")
    if not 0 <= settings.sandbox_smtp_port < 65536:
        problems.append("sandbox_smtp_port must be 0 (a free port) or 1-65535")
    if not 0 < settings.smtp_timeout <= 300:
        problems.append("smtp_timeout must be above 0 and at most 300 seconds")
    if settings.smtp_host and "@" not in settings.smtp_sender:
        problems.append("smtp_sender must be an address (Name <user@domain> or user@domain)")
    if settings.sms_gateway_url and not settings.sms_gateway_url.startswith(
        ("https://", "http://")
    ):
        problems.append("sms_gateway_url must be an http(s) URL")
    return problems
