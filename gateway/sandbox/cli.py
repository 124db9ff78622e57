"""Sandbox commands that talk to a running sandbox: register, fault, route."""

from __future__ import annotations

import argparse


def register(sandbox_commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``register``, ``fault`` and ``route`` under ``sandbox``."""
