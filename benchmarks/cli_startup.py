"""How fast the ``pvsim`` command answers what needs no simulation (one JSON line).

Each case runs in a fresh Python process, as the ``pvsim`` entry point does (``from
analysis.cli import main``), ``--repeat`` times; the figure is the median wall time in
seconds: ``version`` (``pvsim --version``), ``help`` (``pvsim --help``), ``run_help``
(``pvsim run --help``), ``bad_argument`` (``pvsim run --seed x s.yaml``, refused with
status 2), and ``python`` (``python -c pass``, the floor). Issue 15's target: under 0.5 s.

Measured on the 2-core development machine shared with other work (load average about
3.4), 9 repeats each, medians in seconds, before and after alternately, twice:
before (the CLI importing rich, the engine and pydantic's scenario model at start-up):
version 1.45 / 1.24, help 1.57 / 1.09, run_help 1.55 / 1.21, bad_argument 1.76 / 1.31,
python 0.038 / 0.050; after (each command importing what it needs when it runs): version
0.076 / 0.095, help 0.074 / 0.103, run_help 0.082 / 0.120, bad_argument 0.076 / 0.120,
python 0.021 / 0.031. On the quieter machine earlier, /usr/bin/time gave 0.65-0.75 s for
each of the four before.

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
