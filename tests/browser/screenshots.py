"""Copy the screenshots docs/portal.md shows from a browser-test run into docs/portal/.

``make screenshots`` runs ``tests/browser/test_portal_languages.py`` with
``GBA_BROWSER_ARTIFACTS`` pointing at a folder, then this script picks the curated steps
(:data:`SHOTS`) from it and writes them to ``docs/portal/`` as ``<lang>-<step>.png``, each
shrunk by Debian's ``pngquant`` (256 colours, quality 70-95) when it is installed, else copied
as Chromium wrote it. It refuses to finish with a shot missing or the set above
:data:`LIMIT` bytes, so the docs never silently lose a picture or grow the repository.

    python -m tests.browser.screenshots <artifacts folder> [docs/portal]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

# (language, the step's file name in the test's artifacts without "portal-all-<lang>-")
SHOTS = [
    ("zh-Hant", "01-start"),
    ("zh-Hant", "02-gateway-chooser"),
    ("zh-Hant", "03-idp-persona"),
    ("zh-Hant", "05-search"),
    ("zh-Hant", "06-matter"),
    ("zh-Hant", "08-form-refused"),
    ("zh-Hant", "09-consent"),
    ("zh-Hant", "10-receipt"),
    ("zh-Hant", "11-progress-owed"),
    ("zh-Hant", "15-progress-supplied"),
    ("pt", "07-form"),
    ("pt", "09-consent"),
    ("pt", "16-gateway-progress"),
    ("zh-Hans", "08-form-refused"),
    ("zh-Hans", "14-withdrawn"),
    ("zh-Hans", "17-consents"),
    ("zh-Hans", "18-delegations"),
]
LIMIT = 2_000_000  # bytes, the whole set


def curate(artifacts: Path, target: Path) -> list[Path]:
    missing = [
        f"portal-all-{lang}-{step}.png"
        for lang, step in SHOTS
        if not (artifacts / f"portal-all-{lang}-{step}.png").is_file()
    ]
    if missing:
        raise SystemExit(f"not in {artifacts}: {', '.join(missing)} (run the browser test)")
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*.png"):
        old.unlink()
    pngquant = shutil.which("pngquant")
    written = []
    for lang, step in SHOTS:
        source, out = artifacts / f"portal-all-{lang}-{step}.png", target / f"{lang}-{step}.png"
        if pngquant:
            command = [pngquant, "--quality=70-95", "--speed=1", "--strip", "--force"]
            command += ["--output", str(out), str(source)]
            subprocess.run(command, check=True)  # noqa: S603 - Debian's pngquant, fixed arguments
        else:
            shutil.copyfile(source, out)
        written.append(out)
    total = sum(p.stat().st_size for p in written)
    if total > LIMIT:
        raise SystemExit(f"{total} bytes in {target}: more than {LIMIT} (pngquant installed?)")
    print(f"{len(written)} screenshots, {total // 1024} KiB, in {target}")  # noqa: T201
    return written


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    curate(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) == 3 else "docs/portal"))
