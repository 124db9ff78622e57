"""``python -m bench.bare --port P``: the write bench's bare baseline, in a process of its own.

A plain aiohttp handler that does the least a gateway could: it reads the same signed HK XML
body, parses it with lxml (hardened parser, as the gateway's) and answers 202 with a small
JSON body. No signature check, no storage. ``GET /readyz`` answers 200 once it listens.
"""

from __future__ import annotations

import argparse
import sys

from aiohttp import web
from lxml import etree

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


async def accept(request: web.Request) -> web.Response:
    root = etree.fromstring(await request.read(), PARSER)
    return web.json_response({"root": root.tag, "status": "accepted"}, status=202)


async def ready(_: web.Request) -> web.Response:
    return web.json_response({"status": "ready"})


def app() -> web.Application:
    application = web.Application()
    application.router.add_post("/v1/applications", accept)
    application.router.add_get("/readyz", ready)
    return application


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    web.run_app(app(), host="127.0.0.1", port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
