"""Application request statistics: offered and served load, drops, response times and
their decomposition, per guest and per guest entry (its replicas pooled).

Only requests that arrived after the warm-up (``record.warmup``) count: the offered
and served rates are per second of the measured period (the run after the warm-up), the
latency percentiles are over the requests that arrived in it and finished, each with the
number of requests behind it (a p99 of 35 requests is the second largest).

Examples
--------
>>> import numpy as np
>>> lat = Latencies.of(np.arange(1, 1001) * 1e-3)
>>> lat.n, lat.p50_ms, round(lat.p999_ms, 3)
(1000, 0.5005, 0.999)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from model.app.requests import PARTS
from model.record import RunRecord

#: The percentiles of :class:`Latencies` (name -> percent).
PERCENTILES = {"p50_ms": 50.0, "p95_ms": 95.0, "p99_ms": 99.0, "p999_ms": 99.9}


@dataclass
class Latencies:
    """Response times of ``n`` requests, milliseconds (None-valued when ``n`` is 0)."""

    n: int
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    p999_ms: float | None

    @classmethod
    def of(cls, ms: np.ndarray) -> Latencies:
        if not len(ms):
            return cls(0, None, None, None, None, None)
        p = np.percentile(ms, list(PERCENTILES.values()))
        return cls(len(ms), float(ms.mean()), *(float(x) for x in p))


@dataclass
class AppSummary:
    """The requests of one guest (or a guest entry's replicas, pooled).

    ``offered`` requests arrived at its NIC after the warm-up; ``dropped`` found the
    accept queue full; ``served`` finished; ``in_flight`` had neither happened when the
    run ended. The rates are per second of the measured period and per guest (for
    several replicas, their mean). ``parts_ms`` is the mean decomposition of the served
    requests' latency (:data:`model.app.requests.PARTS`); its parts add up to
    ``latency.mean_ms``.
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
    c = app.requests
    sel = np.isin(c["guest"], doms) & (c["arrival"] >= t0)
    served = int(sel.sum())
    lat = (c["end"][sel] - c["arrival"][sel]) / freq * 1e3
    parts = {p: float(c[p][sel].mean() / freq * 1e3) if served else 0.0 for p in PARTS}
    return AppSummary(
        guests=len(doms), offered=offered, served=served, dropped=dropped,
        in_flight=offered - served - dropped,
        offered_per_s=offered / measured / len(doms),
        served_per_s=served / measured / len(doms),
        drop_rate=dropped / offered if offered else 0.0,
        latency=Latencies.of(lat), parts_ms=parts)
