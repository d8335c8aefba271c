"""Tidy tables of a finished run: requests, CPU, time series and the vCPU schedule.

Every table is a pandas DataFrame with one row per record. Times are seconds unless
a column's name says ``_ms``; guests are named as their domains (``web-0``).

The time series are exact, not sampled: busy time per interval comes from the run
segments and the requests' service intervals (overlap with each interval), and the
queue length is the time-weighted mean of the device queue's step function.

Examples
--------
>>> import numpy as np
>>> busy_until(np.array([0, 10]), np.array([5, 30]), np.array([0, 10, 20, 30])).tolist()
[0, 5, 15, 25]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from model.categories import NAMES
from model.iorequest import INTERVALS, STAGES

#: The latency stage columns of the requests table, in pipeline order.
STAGE_COLUMNS = tuple(f"{i}_ms" for i in INTERVALS)
HYPERVISOR_ENTITY = "(hypervisor)"

REQUEST_COLUMNS = ("id", "guest", "group", "mode", "device", "kind", "path", "size", "write",
                   "issued_s", "completed_s", "latency_ms", *STAGE_COLUMNS)
CPU_COLUMNS = ("guest", "vcpu", "pcpu", "category", "cycles", "seconds")
TIMESERIES_COLUMNS = ("time_s", "metric", "device", "guest", "value")
SCHEDULE_COLUMNS = ("pcpu", "guest", "vcpu", "start_s", "end_s")
GUEST_COLUMNS = ("guest", "group", "mode", "os", "vcpus", "driver_domain")


def busy_until(starts: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Total length of the intervals ``[starts, ends)`` lying before each of ``edges``.

    Intervals may overlap (they are summed). Differences of the result give the busy
    time inside each bin, in ``O((n + m) log n)``.
    """
    a, b = np.sort(starts), np.sort(ends)
    ca = np.concatenate(([0], np.cumsum(a)))
    cb = np.concatenate(([0], np.cumsum(b)))
    ia = np.searchsorted(a, edges, side="right")
    ib = np.searchsorted(b, edges, side="right")
    return (ia * edges - ca[ia]) - (ib * edges - cb[ib])


def segment_array(segments) -> np.ndarray:
    """The hypervisor's flat segment record as rows of (pcpu, vcpu uid, start, end)."""
    return np.frombuffer(segments, dtype=np.int64).reshape(-1, 4)


def bin_edges(elapsed: int, interval: int) -> np.ndarray:
    """Edges ``0, I, 2I, ...`` ending exactly at ``elapsed`` (the last bin may be short)."""
    edges = np.arange(0, elapsed, max(interval, 1), dtype=np.int64)
    return np.append(edges, elapsed)


_TEXT = {"guest", "group", "mode", "os", "device", "kind", "path", "metric", "category"}
_INT = {"id", "size", "vcpu", "pcpu", "cycles", "vcpus"}
_BOOL = {"write", "driver_domain"}


def empty(columns: tuple[str, ...]) -> pd.DataFrame:
    """A table with ``columns`` (typed as in a full table) and no rows."""
    def dtype(c: str) -> str:
        return "object" if c in _TEXT else "int64" if c in _INT else (
            "bool" if c in _BOOL else "float64")
    return pd.DataFrame({c: pd.Series([], dtype=dtype(c)) for c in columns})


def _frame(rows: dict[str, object] | list, columns: tuple[str, ...]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    return df if len(df) else empty(columns)


def guest_table(host, scenario) -> pd.DataFrame:
    """One row per domain: its group (the scenario's guest entry), mode, OS and vCPUs."""
    from model.build import guest_names

    group = {name: scenario.guests[i] for name, i in guest_names(scenario)}
    dd = host.io.driver_domain if host.io is not None else None
    rows = [{"guest": d.name, "group": group[d.name].name if d.name in group else d.name,
             "mode": d.mode.name, "os": group[d.name].os if d.name in group else "modified",
             "vcpus": len(d.vcpus), "driver_domain": d is dd} for d in host.domains]
    return _frame(rows, GUEST_COLUMNS)


def request_table(host, guests: pd.DataFrame) -> pd.DataFrame:
    """One row per completed I/O request, with its latency decomposed into stages."""
    io = host.io
    if io is None or not io.log.keep:
        return _frame([], REQUEST_COLUMNS)
    c = io.log.columns()
    freq = host.hw.freq_hz
    names = np.array([d.name for d in host.domains], dtype=object)
    devs = list(io.devices.values())
    guest = names[c["guest"] - 1]
    device = np.array([d.name for d in devs], dtype=object)[c["device"]]
    info = guests.set_index("guest")
    path = {(g, d): a.path for (g, d), a in io.attachments.items()}
    stamps = np.stack([c[s] for s in STAGES], axis=1)
    out = {"id": c["id"], "guest": guest,
           "group": info["group"].reindex(guest).to_numpy(),
           "mode": info["mode"].reindex(guest).to_numpy(), "device": device,
           "kind": np.array([d.kind for d in devs], dtype=object)[c["device"]],
           "path": np.array([path[(g, d)] for g, d in zip(guest, device, strict=True)],
                            dtype=object),
           "size": c["size"], "write": c["write"].astype(bool),
           "issued_s": c["issued"] / freq, "completed_s": c["completed"] / freq,
           "latency_ms": (c["completed"] - c["issued"]) / freq * 1e3}
    spans = np.diff(stamps, axis=1) / freq * 1e3
    for k, col in enumerate(STAGE_COLUMNS):
        out[col] = spans[:, k]
    return _frame(out, REQUEST_COLUMNS)


def cpu_table(host) -> pd.DataFrame:
    """Cycles by (entity, pCPU, category): every cycle of the run, exactly once."""
    cyc = host.hypervisor.ledger.cycles
    owner = {v.uid: v for v in host.hypervisor.vcpus}
    p, e, k = np.nonzero(cyc)
    rows = {"guest": [HYPERVISOR_ENTITY if x == 0 else owner[x - 1].domain.name for x in e],
            "vcpu": [-1 if x == 0 else owner[x - 1].index for x in e],
            "pcpu": p, "category": [NAMES[x] for x in k], "cycles": cyc[p, e, k]}
    df = _frame(rows, CPU_COLUMNS)
    df["seconds"] = df["cycles"] / host.hw.freq_hz
    return df


def schedule_table(host) -> pd.DataFrame:
    """Run segments (which vCPU ran on which pCPU when); consecutive segments of the
    same vCPU on the same pCPU are merged."""
    segs = host.hypervisor.segments
    if not segs:
        return _frame([], SCHEDULE_COLUMNS)
    a = segment_array(segs)
    a = a[np.lexsort((a[:, 2], a[:, 0]))]
    # a segment continues the previous one on its pCPU: same vCPU, no gap
    cont = np.zeros(len(a), bool)
    cont[1:] = (a[1:, 0] == a[:-1, 0]) & (a[1:, 1] == a[:-1, 1]) & (a[1:, 2] == a[:-1, 3])
    first = np.nonzero(~cont)[0]
    last = np.append(first[1:], len(a)) - 1
    owner = {v.uid: v for v in host.hypervisor.vcpus}
    freq = host.hw.freq_hz
    return _frame({"pcpu": a[first, 0],
                   "guest": [owner[u].domain.name for u in a[first, 1]],
                   "vcpu": [owner[u].index for u in a[first, 1]],
                   "start_s": a[first, 2] / freq, "end_s": a[last, 3] / freq}, SCHEDULE_COLUMNS)


def timeseries_table(host, interval_s: float) -> pd.DataFrame:
    """Per interval: CPU use per guest; per device its queue length and, when requests
    are kept, per guest its utilization share, completions and throughput."""
    freq = host.hw.freq_hz
    edges = bin_edges(int(host.env.now), int(round(interval_s * freq)))
    width = np.diff(edges).astype(float)
    t0 = edges[:-1] / freq
    parts = []

    def add(metric: str, device: str, guest: str, values: np.ndarray) -> None:
        parts.append(pd.DataFrame({"time_s": t0, "metric": metric, "device": device,
                                   "guest": guest, "value": values}))

    segs = host.hypervisor.segments
    if segs:
        a = segment_array(segs)
        owner = {v.uid: v.domain.dom for v in host.hypervisor.vcpus}
        dom = np.array([owner[u] for u in a[:, 1]])
        for d in host.domains:
            mine = dom == d.dom
            if mine.any():
                busy = np.diff(busy_until(a[mine, 2], a[mine, 3], edges))
                add("cpu_util", "", d.name, busy / width)
    io = host.io
    if io is not None:
        c = io.log.columns() if io.log.keep else None
        for dev in io.devices.values():
            t, q = dev.queue_series()
            area = np.concatenate(([0], np.cumsum(q[:-1] * np.diff(t))))
            i = np.searchsorted(t, edges, side="right") - 1
            add("queue_length", dev.name, "", np.diff(area[i] + q[i] * (edges - t[i])) / width)
            if c is None:
                continue
            for d in host.domains:
                mine = (c["device"] == dev.index) & (c["guest"] == d.dom)
                if not mine.any():
                    continue
                busy = np.diff(busy_until(c["service_start"][mine], c["service_end"][mine],
                                          edges))
                add("device_util", dev.name, d.name, busy / (width * dev.channels))
                end = c["completed"][mine]
                seconds = width / freq
                add("completions_per_s", dev.name, d.name,
                    np.histogram(end, bins=edges)[0] / seconds)
                add("throughput_mbps", dev.name, d.name,
                    np.histogram(end, bins=edges, weights=c["size"][mine])[0] * 8 / seconds / 1e6)
    if not parts:
        return _frame([], TIMESERIES_COLUMNS)
    return pd.concat(parts, ignore_index=True)
