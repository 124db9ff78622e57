"""The sandbox web console: agencies and their fault switches, cases, messages, notifications
and the audit chain, server-rendered (sandbox mode only; these paths are 404 elsewhere)."""

from gateway.sandbox.console.routes import install_console

__all__ = ["install_console"]
