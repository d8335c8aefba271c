"""How fast the ``pvsim`` command answers what needs no simulation (one JSON line).

Each case runs in a fresh Python process, as the ``pvsim`` entry point does (``from
analysis.cli import main``), ``--repeat`` times; the figure is the median wall time in
seconds: ``version`` (``pvsim --version``), ``help`` (``pvsim --help``), ``run_help``
(``pvsim run --help``), ``bad_argument`` (``pvsim run --seed x s.yaml``, refused with
status 2), and ``python`` (``python -c pass``, the floor). Issue 15's target: under 0.5 s.

Measured on the 2-core development machine shared with other work, 9 repeats each,
medians in seconds, before (the CLI importing rich, the engine and pydantic's scenario
model at start-up) and after (each command importing what it needs when it runs),
alternately. At a load average of about 1 to 2.4, two pairs: before version 0.70 / 1.15,
help 0.68 / 1.20, run_help 0.71 / 1.12, bad_argument 0.72 / 1.22, python 0.023 / 0.039;
after version 0.072 / 0.075, help 0.073 / 0.077, run_help 0.072 / 0.074, bad_argument
0.072 / 0.073, python 0.021 / 0.024. At a load average of about 3.4: before 1.24-1.76,
after 0.074-0.120.

Usage: python benchmarks/cli_startup.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

#: case -> (pvsim's arguments, or None for the bare interpreter; expected exit status)
CASES: dict[str, tuple[list[str] | None, int]] = {
    "version": (["--version"], 0),
    "help": (["--help"], 0),
    "run_help": (["run", "--help"], 0),
    "bad_argument": (["run", "--seed", "x", "s.yaml"], 2),
    "python": (None, 0),
}

_ENTRY = "from analysis.cli import main; raise SystemExit(main())"


def once(args: list[str] | None, status: int) -> float:
    """Wall seconds of one fresh process running ``pvsim ARGS`` (or ``python -c pass``)."""
    cmd = [sys.executable, "-c", "pass"] if args is None else [sys.executable, "-c", _ENTRY,
                                                                *args]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    wall = time.perf_counter() - t
    if r.returncode != status or "Traceback" in r.stderr:
        raise SystemExit(f"{' '.join(cmd)}: exit status {r.returncode}, expected {status}:\n"
                         f"{r.stderr}")
    return wall


def measure(repeat: int) -> dict[str, float]:
    """The median wall time of each case over ``repeat`` runs (interleaved, so a burst of
    load on the machine touches every case alike)."""
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(repeat):
        for name, (args, status) in CASES.items():
            times[name].append(once(args, status))
    return {name: round(statistics.median(t), 4) for name, t in times.items()}


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9, help="runs per case (9)")
    a = ap.parse_args(argv)
    print(json.dumps(measure(a.repeat) | {"repeat": a.repeat}))


if __name__ == "__main__":
    main()
