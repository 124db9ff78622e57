"""``python -m bench.drills crash|partner-outage|db-restart|all``: run drills, print verdicts.

Each drill prints its progress every few seconds, then a verdict block, and writes it to
``bench/results/drill-<name>.json``. The exit status is 0 when every drill run passed, 1
otherwise. A failed drill keeps its working folder (gateway log, database) and says where.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.drills import crash, db_restart, partner_outage
from bench.drills.verdict import Verdict

DRILLS: dict[str, Callable[[Path], Awaitable[Verdict]]] = {
    "crash": crash.run,
    "partner-outage": partner_outage.run,
    "db-restart": db_restart.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drills", description=__doc__)
    parser.add_argument("drill", choices=[*DRILLS, "all"])
    args = parser.parse_args(argv)
    names = list(DRILLS) if args.drill == "all" else [args.drill]
    verdicts = []
    for name in names:
        workdir = Path(tempfile.mkdtemp(prefix=f"gba-drill-{name}-"))
        print(f"drill {name}: working in {workdir}", flush=True)
        started = time.monotonic()
        try:
            verdict = asyncio.run(DRILLS[name](workdir))
        except Exception as exc:  # a drill that cannot finish is a failed drill, said plainly
            verdict = Verdict(name, seconds=time.monotonic() - started)
            verdict.check("the drill ran to its end", False, f"{type(exc).__name__}: {exc}")
        path = verdict.write()
        print(verdict.render(), flush=True)
        print(f"  written to {path}", flush=True)
        if verdict.passed:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"  kept {workdir} (gateway.log, database) for inspection", flush=True)
        verdicts.append(verdict)
    if len(verdicts) > 1:
        print(" ".join(f"{v.drill}: {'PASS' if v.passed else 'FAIL'}" for v in verdicts))
    return 0 if all(v.passed for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
