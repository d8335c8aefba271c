"""The 64-guest web host at each fidelity level against the floor (issue 13, item 5): one
JSON line.

The host: ``scenarios/web-consolidation.yaml`` with 64 pv web guests on 16 pCPUs, a
driver domain of 4 vCPUs and the memory they need (``host.memory_mb=32768``), requests
not recorded (``record.requests=false``): each guest offered 500 requests per second,
open loop (Poisson), 8 workers, a backlog of 128, 20% of the 16 KiB files read from the
SSD, each response one 16 KiB packet (segmentation offload). It runs for ``--seconds``
simulated (1 s by default, 0.1 s with ``--quick``) at each level of :data:`LEVELS`, and
the floor model (``benchmarks/floor_model.py``, a minimal hand-written request-level
SimPy model of the same host, I/O structure and costs taken from pvsim) for the same host
and duration. Each of these runs is its own fresh subprocess, so ``ru_maxrss`` is that
run's peak; an engine's subprocess first warms numba on a 2 ms run of the scenario, then
times ``host.run`` alone.

Times are **process CPU time** (``time.process_time`` around ``host.run`` or
``env.run``), not wall time: the machine (2 cores) is shared with other work, which
stretches wall time but not the CPU time a run uses. Wall times are reported as well.

Keys, for each ``level`` of :data:`LEVELS`:

Each model runs :data:`REPEATS` times on the 64-guest host, taking turns, and the run with
the least CPU time is the one reported (on this shared machine one run of a child varies
by 10-30%).

- ``slowdown_<level>``: engine CPU time / simulated time.
- ``<level>_over_floor``: engine CPU time / the floor's CPU time (same host, duration).
- ``events_per_io``: SimPy events scheduled (the engine's ``RunStats.events``, which the
  floor counts with the same ``Environment``) per completed I/O request (packets
  received, SSD reads, packets sent: ``RunRecord.io.completed``), per level and floor.
- ``peak_rss_mb``: each run's peak resident memory, per level and floor.
- ``exponent_<level>``: the least-squares slope of log(engine CPU time) against
  log(guests) over 8, 16, 32 and 64 guests, each run for ``scaling_sim_s`` (0.1 s, or
  ``--seconds`` if shorter) three times, each in its own subprocess, the least CPU time
  kept; ``exponent_floor`` the floor's.

Both levels are measured: the fast level's runs get ``--set fidelity=fast``
(:func:`level_overrides`); its calibrations (:mod:`model.fast.calibrate`, measured on the
exact engine once per guest entry, then read from the cache) are made before the timed
run, as the exact level's numba warm-up is.

Measured on 745ebfe (this 2-core machine, shared with other sessions), 1 s simulated,
the scaling points at 0.1 s (``python benchmarks/host_scale.py``, 80 s in all)::

    run    CPU s  slowdown  over floor  events   I/O     events/I/O  served  peak RSS
    exact  22.87  22.9x     7.49        1010508  71007   14.23       32276   200 MB
    floor   3.06   3.1x     1           1375535  70671   19.46       32122   115 MB

    scaling, CPU s at 8 / 16 / 32 / 64 guests (0.1 s, least of 3):
    exact  0.276 / 0.534 / 0.985 / 2.256   exponent 1.00
    floor  0.030 / 0.061 / 0.133 / 0.291   exponent 1.09

Measured again at 0619cc3, after the exact level's segment and clock changes (a segment
nothing can interrupt ends without a SimPy event; no numpy temporaries per segment; the
credit burn in integers): exact 18.58 CPU s per simulated second (slowdown 18.6x),
``exact_over_floor`` 6.07, 9.64 events per I/O (14.2 before), peak RSS 202 MB, exponent
0.995 (8 / 16 / 32 / 64 guests: 0.237 / 0.462 / 0.900 / 1.891 CPU s); the floor 3.06.

Measured at d7be9b5 on a slower machine (the floor 4.40 CPU s per simulated second against
3.06): exact 26.8 CPU s (slowdown 26.8x), ``exact_over_floor`` 6.09, 9.64 events per I/O,
peak RSS 204 MB, exponent 1.07 (floor 1.18): the ratio to the floor is what carries from
machine to machine.

An earlier full run (scaling points run once) gave exact 23.39 CPU s, floor 3.50 CPU s
(``exact_over_floor`` 6.69) and exponents 1.07 and 1.16; the exact level alone once took
21.5 CPU s: on this shared machine the figures vary by 10-15% from run to run. So
``exact_over_floor`` is about 7 (6.7-7.5; the target is 2; the issue's 7.6 was measured
closed loop and without segmentation offload in either model). pvsim schedules fewer SimPy
events per I/O than the floor (14.2 against 19.5) but spends 23 us of CPU per event
against the floor's 2.2-2.5 us. Peak RSS of the exact level at 64 guests: 200 MB after
1 s simulated, 210 MB after 3 s (``--child exact --seconds 3``): under 1 GB. What grew
then was the application request log, kept whether or not requests were recorded (19
int64 per request); since 3bf680a a run without records keeps 3 integers per application
request and 2 per I/O request: 201.8 MB after 1 s, 221.5 MB after 10 s. For scale, the
floor without segmentation offload (``floor_model.py 64 --seconds 0.2 --set
host.devices.nic0.tso=false``, twelve packets per response) costs 16.3 CPU s per
simulated second.

Measured with both levels at 8c36bcd (``python benchmarks/host_scale.py``, 1 s simulated,
80 s in all; the fast level's calibrations measured in its child first)::

    run    CPU s  slowdown  over floor  events   I/O     events/I/O  served  peak RSS
    exact  20.90  20.9x     5.98        684439   71008   9.64        32276   200 MB
    fast    3.67   3.7x     1.05        284093   71007   4.00        32276   181 MB
    floor   3.50   3.5x     1           1375535  70671   19.46       32122   116 MB

    scaling, CPU s at 8 / 16 / 32 / 64 guests (0.1 s, least of 3):
    exact  0.267 / 0.533 / 1.060 / 2.208   exponent 1.01
    fast   0.041 / 0.081 / 0.161 / 0.365   exponent 1.05
    floor  0.037 / 0.074 / 0.161 / 0.345   exponent 1.08

Again at bee7487, after the review's fixes (exact hand-over of pCPUs, tails cut exactly,
the driver domain's tails caught up): exact 20.92, fast 4.07, floor 3.51 CPU s
(``fast_over_floor`` 1.16; runs of the fast child alone vary 3.7-4.1 s on this machine),
peak RSS 199 / 179 / 116 MB, exponents 1.02 / 1.05 / 1.09.

The fast level serves the same requests as the exact level (32,276) with 2.4x fewer
events per I/O request, 5.7x faster; it is 5% slower than the floor, which spells out
4.9x more events but spends 2.5 us of CPU on each against the fast level's 13 us (its
bursts' accounting, the shared devices and request logs, the time series). Neither
reaches real time on this machine: that would need about 2 us of Python per event at the
fast level's event count (``slowdown_fast`` 3.7 against the target of 1). Its peak RSS
includes the calibration runs of the exact engine.

Measured at 3ce1592 (a slower machine: the floor 4.33 CPU s against 3.50; each model's
least of 3 runs), after ``Environment.call_later`` (no Timeout per event), intervals
written to the time series once each, and the floor on SimPy's own environment (it had
run on pvsim's, so pvsim's engine changes sped it up too)::

    run    CPU s  slowdown  over floor  events   events/I/O  served  peak RSS
    exact  26.45  26.4x     6.11        684439   9.64        32276   202 MB
    fast    4.58   4.6x     1.06        284096   4.00        32276   123 MB
    floor   4.33   4.3x     1           1375535  19.46       32122   116 MB

    scaling, CPU s at 8 / 16 / 32 / 64 guests (0.1 s, least of 3):
    exact  0.338 / 0.661 / 1.333 / 2.748   exponent 1.01
    fast   0.052 / 0.102 / 0.208 / 0.460   exponent 1.05
    floor  0.046 / 0.098 / 0.204 / 0.431   exponent 1.07

In one process, taking turns (min of 5 runs of 0.3 s each), the fast level's CPU time
against the floor's was 1.04 before those changes and 0.90-1.05 after (the machine's
noise is of that order): the fast level is about as fast as the floor, not faster.

Usage::

    python benchmarks/host_scale.py [--seconds 1.0] [--quick]
    python benchmarks/host_scale.py --child exact --guests 64 --seconds 3   # one run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # floor_model, when run as a script or a child

from floor_model import SCENARIO, host_scenario, run_floor  # noqa: E402

#: The fidelity levels measured.
LEVELS = ["exact", "fast"]
GUESTS, PCPUS, DOM0_VCPUS = 64, 16, 4
#: The host's memory, MB (each guest takes 256 MB).
MEMORY_MB = 32768
#: The guest counts of the scaling exponent, and their simulated seconds.
SCALING_GUESTS = (8, 16, 32, 64)
SCALING_SECONDS = 0.1
#: Runs of each scaling point, the least CPU time kept (short runs vary on a shared machine).
SCALING_REPEATS = 3
#: Runs of each model on the 64-guest host, the least CPU time kept (likewise).
REPEATS = 3
SEED = 1


def level_overrides(level: str) -> list[str]:
    """The scenario overrides that select ``level`` (none for ``exact``, the default).

    Examples
    --------
    >>> level_overrides("exact"), level_overrides("fast")
    ([], ['fidelity=fast'])
    """
    return [] if level == "exact" else [f"fidelity={level}"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def engine_run(level: str, guests: int, seconds: float) -> dict:
    """Run the web host at ``level`` in this process: warm numba on a 2 ms run, then time
    ``host.run`` alone. Returns its CPU and wall time, events, I/O, served requests and
    peak RSS (taken just after the run, before its record is made)."""
    from model.record import record_run
    from model.scenario import build_host, load_scenario

    overrides = [
        "record.requests=false",
        "record.warmup=null",
        f"host.memory_mb={MEMORY_MB}",
        f"duration={seconds}s",
        f"seed={SEED}",
        *level_overrides(level),
    ]
    s = host_scenario(guests, PCPUS, DOM0_VCPUS, overrides)
    from model.fidelity import FAST

    if level == FAST:  # its calibrations (measured once, then cached) are not timed
        from model.fast import build_fast

        host = build_fast(s)
        t0, w0 = time.process_time(), time.perf_counter()
        host.run(s.duration)
        cpu_s, wall_s = time.process_time() - t0, time.perf_counter() - w0
        rss = _rss_mb()
        rec = host.record()
        events = host.env.scheduled
    else:
        warm = build_host(load_scenario(str(SCENARIO), ["duration=2ms", "record.warmup=1ms"]))
        warm.run(seconds=0.002)
        del warm
        host = build_host(s)
        t0, w0 = time.process_time(), time.perf_counter()
        stats = host.run(seconds=s.duration)
        cpu_s, wall_s = time.process_time() - t0, time.perf_counter() - w0
        rss = _rss_mb()
        rec = record_run(host, stats)
        events = stats.events
    io = int(rec.io.completed)
    return {
        "model": level,
        "guests": guests,
        "sim_s": seconds,
        "cpu_s": round(cpu_s, 3),
        "wall_s": round(wall_s, 3),
        "events": int(events),
        "io": io,
        "served": int(rec.app.servers["served"].sum()),
        "dropped": int(rec.app.servers["dropped"].sum()),
        "events_per_io": round(events / max(io, 1), 3),
        "peak_rss_mb": round(rss, 1),
    }


def floor_run(guests: int, seconds: float) -> dict:
    """The floor model of the same host in this process (with its peak RSS)."""
    r = run_floor(guests, seconds, PCPUS, DOM0_VCPUS, SEED)
    keep = (
        "model",
        "guests",
        "sim_s",
        "cpu_s",
        "wall_s",
        "events",
        "io",
        "served",
        "dropped",
        "events_per_io",
    )
    return {**{k: r[k] for k in keep}, "peak_rss_mb": round(_rss_mb(), 1)}


def _child(name: str, guests: int, seconds: float) -> dict:
    """One run in a fresh subprocess (its own peak RSS), as its JSON line."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        name,
        "--guests",
        str(guests),
        "--seconds",
        repr(seconds),
    ]
    out = subprocess.run(
        cmd, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def exponent(guests: Sequence[int], times: Sequence[float]) -> float:
    """The least-squares slope of log(time) against log(guests).

    Examples
    --------
    >>> round(exponent([8, 16, 32], [1.0, 2.0, 4.0]), 6)
    1.0
    """
    x = [math.log(g) for g in guests]
    y = [math.log(t) for t in times]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    return sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / sum(
        (a - mx) ** 2 for a in x
    )


def measure(seconds: float, scaling_seconds: float) -> dict:
    """Every run of the benchmark (each in its own subprocess) and the figures: of the
    :data:`REPEATS` runs of each model, the one with the least CPU time (the machine is
    shared), the models taking turns."""
    runs: dict[str, dict] = {}
    for _ in range(REPEATS):
        for name in [*LEVELS, "floor"]:
            r = _child(name, GUESTS, seconds)
            if name not in runs or r["cpu_s"] < runs[name]["cpu_s"]:
                runs[name] = r
    floor = runs["floor"]
    out: dict = {
        "benchmark": "host_scale",
        "guests": GUESTS,
        "pcpus": PCPUS,
        "dom0_vcpus": DOM0_VCPUS,
        "sim_s": seconds,
        "scaling_sim_s": scaling_seconds,
        "time": "process CPU s",
    }
    for level in LEVELS:
        r = runs[level]
        out[f"slowdown_{level}"] = round(r["cpu_s"] / seconds, 3)
        out[f"{level}_over_floor"] = round(r["cpu_s"] / floor["cpu_s"], 3)
    out["events_per_io"] = {n: r["events_per_io"] for n, r in runs.items()}
    out["peak_rss_mb"] = {n: r["peak_rss_mb"] for n, r in runs.items()}
    scaling = {}
    for name in [*LEVELS, "floor"]:
        cpu = [
            min(_child(name, g, scaling_seconds)["cpu_s"] for _ in range(SCALING_REPEATS))
            for g in SCALING_GUESTS
        ]
        scaling[name] = dict(zip(map(str, SCALING_GUESTS), cpu, strict=True))
        out[f"exponent_{name}"] = round(exponent(SCALING_GUESTS, cpu), 3)
    out["cpu_s"] = {n: r["cpu_s"] for n, r in runs.items()}
    out["wall_s"] = {n: r["wall_s"] for n, r in runs.items()}
    out["events"] = {n: r["events"] for n, r in runs.items()}
    out["io"] = {n: r["io"] for n, r in runs.items()}
    out["served"] = {n: r["served"] for n, r in runs.items()}
    out["scaling_cpu_s"] = scaling
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="simulated seconds (1.0)")
    ap.add_argument("--quick", action="store_true", help="0.1 simulated seconds")
    ap.add_argument("--child", help="one run in this process: a level or 'floor'")
    ap.add_argument("--guests", type=int, default=GUESTS, help="with --child")
    a = ap.parse_args(argv)
    seconds = 0.1 if a.quick else a.seconds
    if a.child is not None:
        r = (
            floor_run(a.guests, seconds)
            if a.child == "floor"
            else engine_run(a.child, a.guests, seconds)
        )
        print(json.dumps(r))
        return
    print(json.dumps(measure(seconds, min(SCALING_SECONDS, seconds))))


if __name__ == "__main__":
    main()
