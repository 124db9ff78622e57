"""The production gateway without its plug-ins: what the image, which leaves them out, runs.

Each test runs the real command in a subprocess whose import system refuses
``gateway.sandbox``, ``gateway.conformance`` and ``gateway.portal`` (a meta-path blocker, as
if the packages were not in the build, while their entry points stay declared, as in the
image). ``serve`` starts,
answers and stops; the plug-ins' commands say that they are not installed; and nothing tried
to import a plug-in but the command line's entry-point discovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import textwrap
from pathlib import Path

import aiohttp

from gateway.settings import REPO_ROOT
from gateway.trust import keystore
from tests.conftest import free_port
from tests.unit.web.test_settings_and_startup import ROUTED, _ca, _registry

BLOCKED = ("gateway.sandbox", "gateway.conformance", "gateway.portal")
# Prepended to the command: refuse the plug-ins, and say on stderr who asked for them.
BLOCKER = textwrap.dedent(
    f"""
    import sys, traceback
    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in {BLOCKED!r}):
                stack = traceback.extract_stack()
                how = "entry-point" if any(
                    f.name == "load" and "importlib" in f.filename for f in stack
                ) else "import"
                sys.stderr.write(f"blocked import {{name}} by {{how}}\\n")
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None
    sys.meta_path.insert(0, Blocker())
    from gateway.cli import main
    """
)


def _command(argv: list[str]) -> list[str]:
    return [sys.executable, "-c", BLOCKER + f"sys.exit(main({argv!r}))"]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and command
        _command(argv), capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=False
    )


def _production_config(tmp_path: Path) -> Path:
    keystore.generate(tmp_path / "keys", sandbox=False)
    config = tmp_path / "gateway.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [gateway]
            keys_dir = "{tmp_path / "keys"}"
            trust_anchors_dir = "{_ca(tmp_path / "certs")}"
            agencies_file = "{_registry(tmp_path, *ROUTED)}"
            database_url = "sqlite:///{tmp_path / "gateway.db"}"
            """
        )
    )
    return config


async def test_serve_starts_answers_and_stops_without_the_plugins(tmp_path: Path) -> None:
    port = free_port()
    argv = ["serve", "--config", str(_production_config(tmp_path)), "--port", str(port)]
    process = await asyncio.create_subprocess_exec(
        *_command(argv),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "GBA_LOG_FORMAT": "json"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        health = None
        async with aiohttp.ClientSession() as session:
            for _ in range(300):  # generous: the machine is shared
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{url}/healthz") as answer:
                        health = answer.status
                        break
                if process.returncode is not None:
                    break
                await asyncio.sleep(0.1)
            assert health == 200
            async with session.get(f"{url}/sandbox/v1/personas") as answer:
                assert answer.status == 404
            async with session.get(f"{url}/sandbox/console") as answer:
                assert answer.status == 404
    finally:
        if process.returncode is None:
            process.terminate()
        out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, err.decode()
    assert "production mode" in out.decode()
    assert "/sandbox/" not in out.decode()  # the banner names no sandbox route
    # Only the command line's discovery asked for the plug-ins (and took "not installed").
    asked = [line for line in err.decode().splitlines() if line.startswith("blocked import")]
    assert {line.split()[2] for line in asked} <= {
        "gateway.sandbox",
        "gateway.conformance",
    }
    assert asked
    assert all(line.endswith("by entry-point") for line in asked), asked


def test_the_plugin_commands_say_they_are_not_installed() -> None:
    for argv, what in (
        (["sandbox"], "the sandbox"),
        (["sandbox", "fault", "gd-hq-csb", "--down"], "the sandbox"),
        (["conformance", "run", "--target", "http://127.0.0.1:1/inbox"], "the conformance kit"),
        (["mappings", "sample", "11440400MB2C00081P4440120002000"], "the sandbox"),
        (["mappings", "check", "--sandbox-agencies"], "the sandbox"),
    ):
        done = _run(argv)
        assert done.returncode == 2, (argv, done.stderr)
        assert f"{what} is not installed in this build" in done.stderr, (argv, done.stderr)
    helped = _run(["--help"])
    assert helped.returncode == 0
    assert "(the sandbox is not installed in this build)" in helped.stdout
    assert _run(["mappings", "check"]).returncode == 0  # the production commands still work


def test_sandbox_mode_without_the_sandbox_refuses_to_start(tmp_path: Path) -> None:
    script = BLOCKER + textwrap.dedent(
        f"""
        from gateway.bootstrap import create_app
        from gateway.domain.errors import ConfigurationError
        from gateway.settings import load_settings
        settings = load_settings(environ={{}}, mode="sandbox", sandbox_dir={str(tmp_path)!r})
        try:
            create_app(settings)
        except ConfigurationError as exc:
            print(exc.detail)
        """
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and command
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert "sandbox mode: the sandbox is not installed in this build" in done.stdout, done.stderr
    assert not (tmp_path / "gateway.db").exists()  # refused before anything was created


def test_a_production_app_does_not_even_load_the_installed_plugins(tmp_path: Path) -> None:
    """Installed (as here), the plug-ins are still not imported by a production app."""
    config = _production_config(tmp_path)
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from gateway.bootstrap import create_app
        from gateway.settings import load_settings
        create_app(load_settings(Path({str(config)!r}), environ={{}}))
        print(sorted(m for m in sys.modules if m.startswith({BLOCKED!r})))
        """
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and command
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
