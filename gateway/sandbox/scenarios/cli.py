"""``gba-gateway sandbox scenario list|run NAME``: the scenarios' command line."""

from __future__ import annotations

import argparse


def register(sandbox_commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``scenario`` under ``sandbox``; its handler is set with set_defaults."""
