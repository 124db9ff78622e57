"""``gba-gateway conformance run``: the kit's command line (filled in by its module)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``conformance`` to the top-level commands; its handler is set with set_defaults."""
