"""The container files and the deployment guide, checked without a Docker engine.

``Dockerfile`` and ``compose.yaml`` cannot be built here; what can be checked is that they say
what docs/deploy.md says: a non-root image with no sandbox material or keys in it, a compose
file that parses, waits for a healthy PostgreSQL, mounts configuration read-only and holds
no secret, and commands the gateway's own parser accepts.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from gateway.cli import build_parser
from gateway.domain.errors import ConfigurationError
from gateway.settings import REPO_ROOT, load_settings
from gateway.workers import check_workers

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text("utf-8")
COMPOSE_TEXT = (REPO_ROOT / "compose.yaml").read_text("utf-8")
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
IGNORED = [
    line.strip()
    for line in (REPO_ROOT / ".dockerignore").read_text("utf-8").splitlines()
    if line.strip() and not line.startswith("#")
]
GUIDE = (REPO_ROOT / "docs" / "deploy.md").read_text("utf-8")


def instructions(name: str) -> list[str]:
    """The arguments of every ``name`` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [
        line.split(None, 1)[1]
        for line in joined.splitlines()
        if line.split(None, 1)[:1] == [name] and len(line.split(None, 1)) == 2
    ]


def exec_form(text: str) -> list[str]:
    return list(yaml.safe_load(text))  # a JSON array is YAML too


def test_the_image_runs_as_a_user_who_is_not_root() -> None:
    users = instructions("USER")
    assert users, "no USER instruction"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert int(user) >= 1000


def test_the_image_is_built_from_python_311_slim_and_serves_the_mounted_settings() -> None:
    assert instructions("FROM") == ["python:3.11-slim"]
    assert instructions("EXPOSE") == ["8080"]
    command = exec_form(instructions("ENTRYPOINT")[-1]) + exec_form(instructions("CMD")[-1])
    assert command[:4] == ["gba-gateway", "serve", "--config", "/etc/gba/gateway.toml"]
    args = build_parser().parse_args(command[1:])
    assert (args.command, args.host, args.port) == ("serve", "0.0.0.0", 8080)  # noqa: S104


def test_the_health_check_asks_healthz_with_the_standard_library() -> None:
    (check,) = instructions("HEALTHCHECK")
    command = exec_form(check.split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"]
    compile(command[2], "<healthcheck>", "exec")
    assert "urllib.request" in command[2]
    assert "http://127.0.0.1:8080/healthz" in command[2]


def test_the_image_holds_code_and_mappings_and_no_sandbox_material_or_keys() -> None:
    copied = [shlex.split(args)[:-1] for args in instructions("COPY")]
    sources = [source for sources in copied for source in sources]
    assert sorted(sources) == ["README.md", "adapters", "gateway", "mappings", "pyproject.toml"]
    for source in sources:
        assert (REPO_ROOT / source).exists()
        assert source not in IGNORED  # the build context keeps it
    mappings = next(c for c in instructions("COPY") if c.startswith("mappings "))
    assert f"GBA_MAPPINGS_DIR={mappings.split()[1]}" in DOCKERFILE
    for kept_out in (".sandbox", ".venv", ".git", "certs", "deploy", "tests"):
        assert kept_out in IGNORED
    for pattern in ("**/*.pem", "**/*.key", "**/*.db", "**/*.toml"):
        assert pattern in IGNORED
    assert "!pyproject.toml" in IGNORED
    assert "PRIVATE KEY" not in DOCKERFILE


def test_compose_runs_postgresql_15_with_a_volume_and_a_health_check() -> None:
    postgres = COMPOSE["services"]["postgres"]
    assert postgres["image"] == "postgres:15"
    volume, target = postgres["volumes"][0].split(":")[:2]
    assert volume in COMPOSE["volumes"]
    assert target == "/var/lib/postgresql/data"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_compose_starts_two_gateway_workers_once_the_database_is_healthy() -> None:
    gateway = COMPOSE["services"]["gateway"]
    assert gateway["depends_on"]["postgres"]["condition"] == "service_healthy"
    args = build_parser().parse_args([str(a) for a in gateway["command"]])
    assert (args.command, args.workers, args.port) == ("serve", 2, 8080)
    assert str(args.config) == "/etc/gba/gateway.toml"
    assert gateway["ports"] == ["8080:8080"]
    grace = gateway["stop_grace_period"]
    assert grace.endswith("s")
    assert int(grace[:-1]) >= 75  # the supervisor's grace for a clean stop


def test_compose_mounts_configuration_read_only_and_holds_no_secret() -> None:
    gateway = COMPOSE["services"]["gateway"]
    targets = {}
    for volume in gateway["volumes"]:
        source, target, mode = volume.split(":")
        assert mode == "ro", volume
        assert source.startswith("./deploy/")
        targets[target] = source
    assert set(targets) == {
        "/etc/gba/gateway.toml",
        "/etc/gba/keys",
        "/etc/gba/trust-anchors",
        "/etc/gba/agencies.yaml",
    }
    for service in COMPOSE["services"].values():
        for name, value in (service.get("environment") or {}).items():
            if "PASSWORD" in name or "SECRET" in name or "PASS" in name:
                assert str(value).startswith("/run/secrets/"), name  # a file, never a value
    assert "PRIVATE KEY" not in COMPOSE_TEXT
    assert not re.search(r"postgres(?:ql)?://[^/\s@:]+:[^/\s@]+@", COMPOSE_TEXT)
    for secret in COMPOSE["secrets"].values():
        assert secret["file"].startswith("./deploy/")


@pytest.mark.parametrize("block", re.findall(r"```toml\n(.*?)```", GUIDE, re.S))
def test_the_settings_in_the_deployment_guide_are_valid(tmp_path: Path, block: str) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(block, "utf-8")
    settings = load_settings(config, environ={})
    assert settings.public_url.startswith("https://")
    assert settings.database_url.startswith("postgresql://")
    assert make_url(settings.database_url).password is None  # it comes from PGPASSFILE


def test_more_than_one_worker_needs_postgresql_and_production_mode() -> None:
    postgres = "postgresql://gateway@db/gateway"
    check_workers(load_settings(environ={"GBA_WORKERS": "4"}, database_url=postgres))
    check_workers(load_settings(environ={}, mode="sandbox"))  # one worker: anything goes
    with pytest.raises(ConfigurationError, match="needs PostgreSQL: an SQLite file has one"):
        check_workers(load_settings(environ={}, workers=2, database_url="sqlite:///g.db"))
    with pytest.raises(ConfigurationError, match="sandbox mode runs one process"):
        check_workers(load_settings(environ={}, mode="sandbox", workers=2, database_url=postgres))
    for wrong in ("0", "65"):
        with pytest.raises(ConfigurationError, match="workers must be 1-64"):
            load_settings(environ={"GBA_WORKERS": wrong})


def _ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as Docker reads it: (excluded, pattern); the last matching rule wins."""
    rules = []
    for line in (REPO_ROOT / ".dockerignore").read_text("utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        rules.append((not keep, re.compile(regex + "(?:/.*)?")))
    return rules


def build_context_files() -> list[str]:
    """Every file of the work tree that the build context holds after .dockerignore."""
    rules, kept = _ignore_rules(), []
    for path in REPO_ROOT.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(REPO_ROOT).as_posix()
        excluded = False
        for excludes, pattern in rules:
            if pattern.fullmatch(relative):
                excluded = excludes
        if not excluded:
            kept.append(relative)
    return kept


def test_the_image_leaves_out_the_sandbox_and_the_conformance_kit() -> None:
    """What the Dockerfile copies, through .dockerignore: production code only. (The image
    then runs without them: tests/integration/test_production_without_plugins.py.)"""
    sources = [s for args in instructions("COPY") for s in shlex.split(args)[:-1]]
    copied = [
        f for f in build_context_files() if any(f == s or f.startswith(s + "/") for s in sources)
    ]
    assert "gateway/bootstrap.py" in copied
    assert "gateway/extensions.py" in copied
    assert "gateway/web/templates/base.html" in copied
    assert (REPO_ROOT / "gateway/sandbox/extension.py").is_file()  # in the tree, not the image
    plugins = [f for f in copied if f.startswith(("gateway/sandbox/", "gateway/conformance/"))]
    assert plugins == []
    assert not any(f.startswith((".sandbox/", "tests/", ".venv/")) for f in copied)
