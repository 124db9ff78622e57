"""Reading the reviewed YAML files under ``mappings/``: one place, one set of failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml_mapping(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The file's top-level mapping, or None and the reason it cannot be used."""
    try:
        spec = yaml.load(path.read_text("utf-8"), Loader=yaml.CSafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return None, f"cannot be read: {type(exc).__name__}: {exc}"
    if not isinstance(spec, dict):
        return None, "is not a mapping"
    return spec, None
