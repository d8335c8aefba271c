"""Parallel efficiency of a sweep: ``--jobs 2`` versus ``--jobs 1`` in one run (one JSON line).

The same 8-run sweep (the quickstart scenario at 4 guest counts x 2 replications)
runs inline and then on a pool of 2 worker processes; ``efficiency`` =
T(1 job) / (2 x T(2 jobs)) (target >= 0.8 on a 2-core machine). The pool's start-up
(a fork server that preloads pvsim) is inside the 2-job time. Both tables must be
identical.

Usage: python benchmarks/sweep_scaling.py [--duration 150ms]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from analysis.sweep import factorial, parse_vary, sweep
from model.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", default="150ms")
    args = ap.parse_args()
    s = load_scenario(str(ROOT / "scenarios" / "quickstart.yaml"), [f"duration={args.duration}"])
    points = factorial([parse_vary("guests.web-pv.count=1,2,3,4")])
    sweep(s, points[:1], 1)  # warm the numba cache and imports for both timings
    t = time.perf_counter()
    one = sweep(s, points, replications=2, jobs=1)
    t1 = time.perf_counter() - t
    t = time.perf_counter()
    two = sweep(s, points, replications=2, jobs=2)
    t2 = time.perf_counter() - t
    print(json.dumps({"benchmark": "sweep_scaling", "runs": len(one.table),
                      "cores": os.cpu_count(), "wall_s_jobs1": round(t1, 2),
                      "wall_s_jobs2": round(t2, 2), "speedup": round(t1 / t2, 3),
                      "efficiency": round(t1 / (2 * t2), 3),
                      "identical_tables": bool(one.table.equals(two.table))}))


if __name__ == "__main__":
    main()
