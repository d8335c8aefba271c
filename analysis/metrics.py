"""Headline metrics of a run: the flat figures sweeps tabulate and SLOs are written on.

Their names, units and meanings are catalogued in :mod:`analysis.metric_catalog`. Names
are dotted: ``host.busy_fraction``, ``host.stalled_vcpus`` (vCPUs blocked at the
end with nothing to wake them: a sound run has none), ``guest.<name>.p99_ms``, and for each guest
entry of the scenario (its replicas pooled) ``group.<name>.p99_ms``,
``group.<name>.mbit_s_per_guest``, ``group.<name>.cpu_ms_per_guest``, and per device
``device.<name>.utilization``. The ``p50_ms``/``p99_ms`` metrics are per I/O request (a
packet, a disk read). For a guest entry that serves requests (its application requests,
after the warm-up): ``group.<name>.request_p50_ms``, ``request_p95_ms``,
``request_p99_ms``, ``request_p999_ms``, ``request_mean_ms`` (response times),
``drop_rate`` (the fraction of offered requests dropped), ``offered_per_s`` and
``served_per_s`` (per guest), and the same per replica under ``guest.<name>.``. A latency
metric is absent when no request completed.

Examples
--------
>>> from model.scenario import parse_scenario
>>> from analysis.run import simulate
>>> r = simulate(parse_scenario("name: m\\nduration: 10ms\\nguests: [{name: a, count: 2, "
...                             "workload: {profile: spin}}]"))
>>> m = headline(r)
>>> m["host.busy_fraction"], round(m["group.a.cpu_ms_per_guest"], 3)  # 2 pCPUs, 2 hogs
(1.0, 10.0)
"""

from __future__ import annotations

import numpy as np

from model.scenario import Scenario, guest_names

from .metric_catalog import METRICS, STALLED, MetricKind
from .results import Results

__all__ = ["APP_METRICS", "STALLED", "headline", "metric_names"]


def metric_names(s: Scenario) -> list[str]:
    """Every headline metric a run of ``s`` can have (latencies only if requests
    complete), known before running it: the kinds of :data:`METRICS` that apply to its
    guests, guest entries and devices (host first, then the replicas' and the entries'
    CPU and I/O metrics, their request metrics, the devices')."""
    names = [k.named() for k in METRICS if k.scope == "host"]
    replicas = guest_names(s)
    entries = [(g.name, i) for i, g in enumerate(s.guests)]
    for phase in (("always", "devices"), ("serves",)):
        for scope, members in (("guest", replicas), ("group", entries)):
            names += [k.named(name) for name, i in members for k in METRICS
                      if k.scope == scope and k.when in phase and _applies(k, s, i)]
    return names + [k.named(d) for d in s.host.devices for k in METRICS if k.scope == "device"]


def _applies(k: MetricKind, s: Scenario, i: int) -> bool:
    """Whether metric kind ``k`` exists for guest entry ``i`` of ``s`` (and its replicas)."""
    return {"always": True, "devices": bool(s.guests[i].devices),
            "serves": _serves(s, i)}[k.when]


#: The metrics of a request-serving guest (or guest entry), after ``guest.NAME.``.
APP_METRICS = tuple(k.name for k in METRICS if k.scope == "guest" and k.when == "serves")


def _serves(s: Scenario, i: int) -> bool:
    """Whether guest entry ``i`` of ``s`` serves requests (its workload has arrivals)."""
    return hasattr(s.guests[i].workload.params, "arrivals")


def _app_metrics(out: dict[str, float], prefix: str, a) -> None:
    out[f"{prefix}.drop_rate"] = a.drop_rate
    out[f"{prefix}.offered_per_s"] = a.offered_per_s
    out[f"{prefix}.served_per_s"] = a.served_per_s
    lat = a.latency
    if lat.n:
        out[f"{prefix}.request_mean_ms"] = lat.mean_ms
        for k in ("p50_ms", "p95_ms", "p99_ms", "p999_ms"):
            out[f"{prefix}.request_{k}"] = getattr(lat, k)


def headline(r: Results) -> dict[str, float]:
    """The run's headline metrics (see the module docstring), from its typed summary and
    request table."""
    s = r.typed_summary
    out: dict[str, float] = {
        "host.busy_fraction": s.host.busy_fraction,
        STALLED: float(len(s.invariants.stalled)),
    }
    for name, g in s.guests.items():
        out[f"guest.{name}.cpu_ms"] = 1e3 * sum(g.cpu_s.values())
        if g.io is not None and g.io.latency is not None:
            out[f"guest.{name}.p50_ms"] = g.io.latency.p50_ms
            out[f"guest.{name}.p99_ms"] = g.io.latency.p99_ms
    rq = r.requests
    for spec in r.scenario.guests:
        members = [g for g in s.guests.values() if g.spec == spec.name]
        out[f"group.{spec.name}.cpu_ms_per_guest"] = 1e3 * float(
            np.mean([sum(g.cpu_s.values()) for g in members])
        )
        io = [g.io for g in members if g.io is not None]
        if io:
            out[f"group.{spec.name}.mbit_s_per_guest"] = float(
                np.mean([x.throughput_mbps for x in io])
            )
            after = rq["issued_s"] >= s.warmup_s  # left out: the warm-up's
            lat = rq.loc[(rq["group"] == spec.name) & after, "latency_ms"].to_numpy()
            if len(lat):
                p50, p99 = np.percentile(lat, [50, 99])
                out[f"group.{spec.name}.p50_ms"] = float(p50)
                out[f"group.{spec.name}.p99_ms"] = float(p99)
    for name, g in s.guests.items():
        if g.app is not None:
            _app_metrics(out, f"guest.{name}", g.app)
    if s.app is not None:
        for name, a in s.app.groups.items():
            _app_metrics(out, f"group.{name}", a)
    for name, d in s.devices.items():
        out[f"device.{name}.utilization"] = d.utilization
        out[f"device.{name}.mean_queue"] = d.mean_queue
    return out
