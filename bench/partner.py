"""``python -m bench.partner --gateway URL``: the drills' counting partner, in its own process.

It starts :class:`bench.drills.partner.CountingPartner` (verifies the gateway's signature,
de-duplicates, answers a signed acknowledgement), registers it with a sandbox gateway as the
lead agency of the bench's matter, prints ``ready <agency id>`` and serves until SIGTERM or
SIGINT; then it prints one JSON line: the messages it took in, repeats and refusals.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys

import aiohttp

from bench.drills.partner import CountingPartner


async def serve(gateway_url: str, agency_id: str) -> dict[str, int]:
    partner = CountingPartner(agency_id)
    await partner.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with aiohttp.ClientSession() as session:
            await partner.trust(session, gateway_url)
            await partner.register(session, gateway_url)
        print(f"ready {agency_id}", flush=True)
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await partner.stop()
    received = partner.received()
    return {
        "messages": len(received.application),
        "redeliveries": received.redeliveries,
        "refused": received.refused,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.partner", description=__doc__)
    parser.add_argument("--gateway", required=True, help="the sandbox gateway's base URL")
    parser.add_argument("--agency", default="gd-bench-partner")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(serve(args.gateway, args.agency))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
