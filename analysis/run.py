"""Run a scenario: simulate it and summarize the run.

Examples
--------
>>> from model.scenario import parse_scenario
>>> s = parse_scenario("name: t\\nduration: 10ms\\nguests: [{name: a, workload: {profile: spin}}]")
>>> r = simulate(s)
>>> r.summary["guests"]["a"]["mode"], r.summary["sim_time_s"]
('pv', 0.01)
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Callable, Mapping

import numpy as np

from model import __version__
from model.build import build_host, guest_names
from model.categories import NAMES
from model.errors import PvsimError
from model.host import Host, RunStats
from model.scenario import Scenario, parse_scenario

from .results import Results
from .tables import (
    SCHEDULE_COLUMNS,
    cpu_table,
    empty,
    guest_table,
    request_table,
    schedule_table,
    timeseries_table,
)


def scenario_hash(s: Scenario) -> str:
    """A stable hash of the resolved scenario (every default filled in)."""
    text = json.dumps(s.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _pcts(x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {}
    p = np.percentile(x, [50, 95, 99])
    return {"mean_ms": float(x.mean()), "p50_ms": float(p[0]), "p95_ms": float(p[1]),
            "p99_ms": float(p[2])}


def simulate(s: Scenario | Mapping, seed: int | None = None,
             progress: Callable[[float], None] | None = None) -> Results:
    """Run scenario ``s`` for its duration and return its :class:`Results`.

    Parameters
    ----------
    s : Scenario
    seed : int, optional
        Overrides the scenario's seed.
    progress : callable, optional
        Called with the fraction of simulated time done (for a progress bar).
    """
    if isinstance(s, Mapping):
        s = parse_scenario(s, "simulate(...)")
    elif not isinstance(s, Scenario):
        raise PvsimError(f"simulate() takes a Scenario (load_scenario(path) reads a file, "
                         f"parse_scenario(text) YAML text) or a mapping, not "
                         f"{type(s).__name__}")
    if seed is not None:  # the resolved scenario records the seed the run used (validated)
        s = s.model_copy(update={"seed": seed})
    host = build_host(s)
    host.hypervisor.segments = array("q")
    stats = host.run(seconds=s.duration, progress=progress)
    guests = guest_table(host, s)
    requests = request_table(host, guests)
    return Results(
        scenario=s, summary=summarize(s, host, stats), requests=requests,
        cpu=cpu_table(host), timeseries=timeseries_table(host, s.record.interval),
        schedule=schedule_table(host) if s.record.trace else empty(SCHEDULE_COLUMNS),
        guests=guests)


def _hypervisor(host: Host, guests: dict) -> dict:
    """Host-wide transition counts (every guest's, summed) and scheduler activity."""
    out: dict[str, dict[str, int] | int] = {}
    for g in guests.values():
        for kind, counts in g["transitions"].items():
            agg = out.setdefault(kind, {})
            for label, n in counts.items():
                agg[label] = agg.get(label, 0) + n
    out = {k: dict(sorted(v.items(), key=lambda kv: -kv[1])) for k, v in out.items()}
    hv = host.hypervisor
    out["context_switches"] = sum(p.switches for p in hv.pcpus)
    out["timers_fired"] = hv.timers_fired
    return out


def summarize(s: Scenario, host: Host, stats: RunStats) -> dict:
    """The headline figures of a finished run (``summary.json``)."""
    freq = host.hw.freq_hz
    io = host.io
    cols = io.log.columns() if io is not None and io.log.keep else None
    guests = {}
    for name, i in guest_names(s):
        g = s.guests[i]
        cycles = stats.domain_cycles(name)
        behalf = stats.driver_domain_cycles(name)
        if behalf:
            cycles["driver_domain"] = behalf
        entry = {"spec": g.name, "mode": g.mode, "cpu_s": {k: v / freq for k, v in cycles.items()
                                                           if v and k != "idle"},
                 "transitions": stats.transitions(name),
                 "instructions": stats.counters(name)["instructions"],
                 "finished_s": stats.finished_s(name),
                 "devices": {dev: att.path for (who, dev), att in io.attachments.items()
                             if who == name} if io is not None else {}}
        if io is not None:
            dom = next(d.dom for d in host.domains if d.name == name)
            n, nbytes = (sum(v[k] for (who, _), v in io.log.totals.items() if who == dom)
                         for k in (0, 1))
            entry["io"] = {"requests": n, "bytes": nbytes,
                           "throughput_mbps": nbytes * 8 / s.duration / 1e6}
            if io.log.keep:
                mine = cols["guest"] == dom
                entry["io"] |= _pcts((cols["completed"][mine] - cols["issued"][mine])
                                     / freq * 1e3)
        guests[name] = entry
    devices = {}
    if io is not None:
        for name, dev in io.devices.items():
            t, q = dev.queue_series()
            span = np.diff(np.append(t, host.env.now))
            devices[name] = {
                "kind": dev.kind, "channels": dev.channels, "utilization": dev.utilization(),
                "completed": dev.completed,
                "mean_queue": float((q * span).sum() / max(host.env.now, 1)),
                "contention_s": {host.domains[g - 1].name: {host.domains[h - 1].name: w
                                                            for h, w in row.items()}
                                 for g, row in dev.contention().items()}}
    dd = io.driver_domain if io is not None else None
    eng = stats.engine()
    ledger = stats.ledger.by_category()
    return {
        "pvsim_version": __version__, "scenario": s.name, "scenario_hash": scenario_hash(s),
        "seed": s.seed, "hardware": s.hardware,
        "sim_time_s": stats.elapsed / freq,
        "engine": {"wall_s": eng["wall_s"], "events": eng["events"],
                   "instructions": eng["instructions"],
                   "instructions_per_s": eng["instructions_per_s"],
                   "events_per_s": eng["events_per_s"]},
        "host": {"pcpus": s.host.pcpus, "busy_fraction": stats.busy_fraction(),
                 "driver_domain_s": 0.0 if dd is None else float(
                     sum(stats.ledger.vcpu(v.uid).sum() for v in dd.vcpus)) / freq,
                 "driver_domain": None if dd is None else dd.name,
                 "driver_domain_pinning": s.driver_domain.pinning if dd is not None else None,
                 "cpu_s": {NAMES[i]: float(ledger[i]) / freq for i in range(len(NAMES))}},
        "guests": guests, "devices": devices, "hypervisor": _hypervisor(host, guests),
        "io": None if io is None else {"issued": io.issued, "completed": io.log.completed,
                                       "in_flight": io.in_flight(),
                                       "in_flight_by_stage": io.in_flight_by_stage()},
        "invariants": _invariants(stats),
    }


def _invariants(stats: RunStats) -> dict:
    """What the run checked at its end (cycle and request conservation raise if broken),
    and every vCPU blocked with nothing that will ever wake it."""
    freq = stats.hw.freq_hz
    return {"checked": ["cycle conservation", "request conservation", "liveness"],
            "stalled": [{"vcpu": s.vcpu, "blocked_since_s": s.blocked_since / freq,
                         "why": s.why} for s in stats.stalled],
            "vcpus_at_end": {s.vcpu: f"{s.state.value}: {s.why}" for s in stats.liveness}}


