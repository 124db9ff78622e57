"""The public surface of the packages is what their __init__ declares, nothing more."""

from __future__ import annotations

import gateway


def test_the_top_level_package_exports_only_its_version() -> None:
    assert gateway.__all__ == ["__version__"]
    assert isinstance(gateway.__version__, str)
