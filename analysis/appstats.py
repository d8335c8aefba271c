"""Application request statistics: offered and served load, drops, response times and
their decomposition, per guest and per guest entry (its replicas pooled).

The statistics cover the measured period (the run after ``record.warmup``): the offered
rate counts the requests that arrived in it, the served rate those answered in it (an
overloaded server's throughput, whenever their arrival). The response times are those of
the requests that arrived in it, each percentile with the number of requests behind it (a
p99 of 35 requests is the second largest); a request still unanswered when the run ended
counts with the time it had waited by then, a lower bound of its response time (leaving
it out would make an overloaded run look fast: the slowest requests are the unanswered
ones). The decomposition is over the answered requests.

Examples
--------
>>> import numpy as np
>>> lat = Latencies.of(np.arange(1, 1001) * 1e-3)
>>> lat.n, lat.unfinished, lat.p50_ms, round(lat.p999_ms, 3)
(1000, 0, 0.5005, 0.999)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from model.app.requests import PARTS
from model.errors import PvsimError
from model.record import RunRecord

#: The percentiles of :class:`Latencies` (name -> percent).
PERCENTILES = {"p50_ms": 50.0, "p95_ms": 95.0, "p99_ms": 99.0, "p999_ms": 99.9}


@dataclass
class Latencies:
    """Response times of ``n`` requests, milliseconds (None-valued when ``n`` is 0), of
    which ``unfinished`` were unanswered when the run ended (counted at their age)."""

    n: int
    unfinished: int
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    p999_ms: float | None

    @classmethod
    def of(cls, ms: np.ndarray, unfinished: int = 0) -> Latencies:
        if not len(ms):
            return cls(0, 0, None, None, None, None, None)
        p = np.percentile(ms, list(PERCENTILES.values()))
        return cls(len(ms), unfinished, float(ms.mean()), *(float(x) for x in p))


@dataclass
class AppSummary:
    """The requests of one guest (or a guest entry's replicas, pooled).

    ``offered`` requests arrived at its NIC after the warm-up; ``dropped`` of them found
    the accept queue full; ``in_flight`` of them were unanswered when the run ended;
    ``served`` requests were answered after the warm-up (some may have arrived in it).
    The rates are per second of the measured period and per guest (for several replicas,
    their mean). ``parts_ms`` is the mean decomposition of the served
    requests' latency (:data:`model.app.requests.PARTS`); its parts add up to the
    answered requests' mean response time (``latency.mean_ms`` when none was left
    unanswered).
    """

    guests: int
    offered: int
    served: int
    dropped: int
    in_flight: int
    offered_per_s: float
    served_per_s: float
    drop_rate: float
    latency: Latencies
    parts_ms: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        d = dict(vars(self))
        d["latency"] = dict(vars(self.latency))
        return d

    @classmethod
    def from_dict(cls, d: dict) -> AppSummary:
        return cls(**{**d, "latency": Latencies(**d["latency"])})


def app_summary(rec: RunRecord, doms: list[int], warmup_s: float) -> AppSummary | None:
    """The requests of domains ``doms`` after ``warmup_s`` seconds (None if none of
    them serves requests)."""
    app = rec.app
    if app is None:
        return None
    doms = [d for d in doms if d in app.arrivals]
    if not doms:
        return None
    freq = rec.freq_hz
    t0 = int(round(warmup_s * freq))
    measured = max(rec.elapsed - t0, 1) / freq
    offered = sum(int((app.arrivals[d] >= t0).sum()) for d in doms)
    dropped = sum(int((app.drops[d] >= t0).sum()) for d in doms)
    if t0 != app.start:
        raise PvsimError(f"the run's request statistics start at cycle {app.start}, not at "
                         f"the warm-up of {warmup_s} s asked for (cycle {t0})")
    c = app.brief
    mine = np.isin(c["guest"], doms)
    served = int((mine & (c["end"] >= t0)).sum())
    sel = mine & (c["arrival"] >= t0)
    waiting = np.concatenate([app.unfinished[d] for d in doms])
    waiting = waiting[waiting >= t0]
    lat = np.concatenate(((c["end"][sel] - c["arrival"][sel]),
                          rec.elapsed - waiting)) / freq * 1e3
    answered = int(sel.sum())
    sums = sum((app.part_sums[d] for d in doms if d in app.part_sums),
               np.zeros(len(PARTS), np.int64))
    # the mean of each part as numpy takes it (exact: the sums are integers below 2**53)
    parts = {p: float(np.float64(sums[i]) / answered / freq * 1e3) if answered else 0.0
             for i, p in enumerate(PARTS)}
    return AppSummary(
        guests=len(doms), offered=offered, served=served, dropped=dropped,
        in_flight=len(waiting),
        offered_per_s=offered / measured / len(doms),
        served_per_s=served / measured / len(doms),
        drop_rate=dropped / offered if offered else 0.0,
        latency=Latencies.of(lat, len(waiting)), parts_ms=parts)
