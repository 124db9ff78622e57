"""The Greater Bay Area cross-border interoperability gateway.

Importing this package does nothing but name its version: the core lives in
:mod:`gateway.domain`, :mod:`gateway.services` and :mod:`gateway.mapping`; the wiring in
:mod:`gateway.bootstrap`; the command line in :mod:`gateway.cli`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gba-gateway")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
