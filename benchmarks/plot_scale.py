"""Cost of drawing a run's graphs at 64-128 guests: ``save_all`` wall time and peak RSS.

For each results directory (or, with ``--guests``, for a short run of
``web-consolidation.yaml`` on a 16-pCPU host with that many web guests, made first), a
fresh process loads the directory, draws every graph with
:func:`analysis.plots.save_all` into a temporary directory, and prints one JSON line:
the wall time of ``save_all``, the time per graph (drawing and saving), the process's
RSS after loading and its peak (``ru_maxrss``) at the end. Issue 13's target: the
64-guest run's graphs in under 10 s and 0.5 GB.

Measured on this 2-core machine, shared with other work (50 ms simulated, 10 ms
warm-up), before and after the graphs were made to scale (the contention heatmap of a
fixed size, grouped by guest entry; the per-guest graphs pooled by entry past 16
guests; the topology capped). ``rss_loaded_mb``, Python with pvsim, matplotlib and the
loaded run, is 240-260 MB of the peak:

====== ======================= =======================
guests before: wall, peak RSS  after: wall, peak RSS
====== ======================= =======================
8      2.96 s, 327 MB          2.72 s, 286 MB
16     5.15 s, 432 MB          3.47 s, 294 MB
64     34.3 s, 2560 MB         2.24 s, 297 MB
128    112.2 s, 8404 MB        2.52 s, 303 MB
====== ======================= =======================

Before, the contention heatmap alone took 26.2 s at 64 guests and 97.0 s at 128; after,
0.82 s and 1.06 s. Measured again before at 64 guests: 30.2 s, 2560 MB (23.5 s the
heatmap). A 64-guest run of four guest entries (40 + 20 + 1 + 3 guests, sharing an SSD
and a NIC): 22.2 s, 2181 MB before; 2.26 s, 287 MB after. (16 guests take longer than
64 after: up to 16 the graphs still draw one mark per guest.)

Usage: python benchmarks/plot_scale.py --guests 64,128
       python benchmarks/plot_scale.py DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(directory: str) -> dict:
    """Load ``directory`` and time every graph of it; in this process."""
    import matplotlib

    matplotlib.use("Agg")
    from analysis.plots import save, save_all
    from analysis.results import Results

    r = Results.load(directory)
    loaded = _rss_mb()
    done: list[tuple[str, float]] = []
    plain = save.save_figure

    def timed(fig, path, dpi=120):  # save_all draws then saves each graph in turn
        out = plain(fig, path, dpi=dpi)
        done.append((Path(path).stem, time.perf_counter()))
        return out

    save.save_figure = timed
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        save_all(r, out)
        wall = time.perf_counter() - t0
    ends = [t0] + [t for _, t in done]
    per = {name: round(b - a, 2)
           for (name, _), a, b in zip(done, ends[:-1], ends[1:], strict=True)}
    return {"benchmark": "plot_scale", "directory": directory, "guests": len(r.guest_names),
            "save_all_s": round(wall, 2), "graph_s": per, "rss_loaded_mb": round(loaded),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def make_run(guests: int, out: Path, duration: str) -> Path:
    """A short web-consolidation run with ``guests`` web guests on 16 pCPUs, saved
    without its graphs (``pvsim run`` would draw them too)."""
    d = out / f"web-{guests}"
    sets = ["host.pcpus=16", "driver_domain.vcpus=4", f"guests.web.count={guests}",
            "host.memory_mb=65536", f"duration={duration}", "record.warmup=10ms"]
    code = ("import sys; from model.scenario import load_scenario; "
            "from analysis.run import simulate; "
            "simulate(load_scenario(sys.argv[1], sys.argv[3:])).save(sys.argv[2], force=True)")
    subprocess.run([sys.executable, "-c", code, str(ROOT / "scenarios" / "web-consolidation.yaml"),
                    str(d), *sets], check=True, stdout=subprocess.DEVNULL)
    return d


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="*", help="results directories to draw")
    ap.add_argument("--guests", help="make runs with these guest counts (comma-separated)")
    ap.add_argument("--duration", default="50ms")
    ap.add_argument("--runs-in", default=None, help="where to keep the runs (default: temp)")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # the child: measure one directory
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)), flush=True)
        return
    dirs = list(args.dirs)
    if args.guests:
        base = Path(args.runs_in or tempfile.mkdtemp(prefix="plot_scale-"))
        base.mkdir(parents=True, exist_ok=True)
        dirs += [str(make_run(int(n), base, args.duration)) for n in args.guests.split(",")]
    for d in dirs:  # a fresh process each: its own peak RSS
        subprocess.run([sys.executable, __file__, "--one", d], check=True)


if __name__ == "__main__":
    main()
