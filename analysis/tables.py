"""Tidy tables of a finished run: requests, CPU, time series and the vCPU schedule.

Each table is built from the run's :class:`model.record.RunRecord` alone (and, for the
guests' groups, the scenario), whichever engine filled it. Every table is a pandas
DataFrame with one row per record. Times are seconds unless a column's name says
``_ms``; guests are named as their domains (``web-0``), looked up by id in the
record's tables.

The time series are exact, not sampled: CPU busy time per interval and the device
queues' time integrals are accumulated per interval as the run goes (:mod:`model.series`),
device busy time comes from the requests' service intervals (overlap with each
interval), so the queue length is the time-weighted mean of the queue's step function.

Examples
--------
>>> import numpy as np
>>> busy_until(np.array([0, 10]), np.array([5, 30]), np.array([0, 10, 20, 30])).tolist()
[0, 5, 15, 25]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from model.accounting import split
from model.app.requests import PARTS
from model.categories import NAMES
from model.io.requests import INTERVALS, STAGES
from model.record import RecordError, RunRecord
from model.scenario import Scenario

#: The latency stage columns of the requests table, in pipeline order.
STAGE_COLUMNS = tuple(f"{i}_ms" for i in INTERVALS)
HYPERVISOR_ENTITY = "(hypervisor)"

REQUEST_COLUMNS = (
    "id",
    "guest",
    "group",
    "mode",
    "device",
    "kind",
    "path",
    "size",
    "write",
    "issued_s",
    "completed_s",
    "latency_ms",
    *STAGE_COLUMNS,
)
#: The latency decomposition columns of the application requests table, in order.
PART_COLUMNS = tuple(f"{p}_ms" for p in PARTS)
APP_REQUEST_COLUMNS = (
    "id",
    "guest",
    "group",
    "mode",
    "type",
    "size",
    "arrival_s",
    "start_s",
    "end_s",
    "latency_ms",
    "warmup",
    *PART_COLUMNS,
)
CPU_COLUMNS = ("guest", "vcpu", "pcpu", "category", "on_behalf_of", "cycles", "seconds")
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


def bin_edges(elapsed: int, interval: int) -> np.ndarray:
    """Edges ``0, I, 2I, ...`` ending exactly at ``elapsed`` (the last bin may be short)."""
    edges = np.arange(0, elapsed, max(interval, 1), dtype=np.int64)
    return np.append(edges, elapsed)


_TEXT = {"guest", "group", "mode", "os", "device", "kind", "path", "metric", "category",
         "on_behalf_of"}
_INT = {"id", "size", "vcpu", "pcpu", "cycles", "vcpus", "type"}
_BOOL = {"write", "driver_domain", "warmup"}


def empty(columns: tuple[str, ...]) -> pd.DataFrame:
    """A table with ``columns`` (typed as in a full table) and no rows."""

    def dtype(c: str) -> str:
        return (
            "object"
            if c in _TEXT
            else "int64"
            if c in _INT
            else ("bool" if c in _BOOL else "float64")
        )

    return pd.DataFrame({c: pd.Series([], dtype=dtype(c)) for c in columns})


def _frame(rows: dict[str, object] | list, columns: tuple[str, ...]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    return df if len(df) else empty(columns)


def guest_table(rec: RunRecord, scenario: Scenario) -> pd.DataFrame:
    """One row per domain: its group (the scenario's guest entry), mode, OS and vCPUs."""
    from model.scenario import guest_names

    group = {name: scenario.guests[i] for name, i in guest_names(scenario)}
    doms = rec.domains
    rows = [
        {
            "guest": name,
            "group": group[name].name if name in group else name,
            "mode": mode,
            "os": group[name].os if name in group else "modified",
            "vcpus": int((rec.vcpus.dom == dom).sum()),
            "driver_domain": rec.driver_domain is not None and dom == rec.driver_domain,
        }
        for dom, name, mode in zip(doms.dom.tolist(), doms.name, doms.mode, strict=True)
    ]
    return _frame(rows, GUEST_COLUMNS)


def request_table(rec: RunRecord, guests: pd.DataFrame) -> pd.DataFrame:
    """One row per completed I/O request, with its latency decomposed into stages."""
    io = rec.io
    if io is None or io.requests is None:
        return _frame([], REQUEST_COLUMNS)
    c = io.requests
    freq = rec.freq_hz
    guest = rec.domains.names_of(c["guest"])
    dev_rows = rec.devices.rows_of(c["device"])
    device = rec.devices.name[dev_rows]
    info = guests.set_index("guest")
    at = io.attachments
    path = dict(
        zip(zip(at["guest"].tolist(), at["device"].tolist(), strict=True), at["path"], strict=True)
    )
    out = {
        "id": c["id"],
        "guest": guest,
        "group": info["group"].reindex(guest).to_numpy(),
        "mode": info["mode"].reindex(guest).to_numpy(),
        "device": device,
        "kind": rec.devices.kind[dev_rows],
        "path": np.array(
            [path[(g, d)] for g, d in zip(c["guest"].tolist(), c["device"].tolist(), strict=True)],
            dtype=object,
        ),
        "size": c["size"],
        "write": c["write"].astype(bool),
        "issued_s": c["issued"] / freq,
        "completed_s": c["completed"] / freq,
        "latency_ms": (c["completed"] - c["issued"]) / freq * 1e3,
    }
    for k, col in enumerate(STAGE_COLUMNS):  # column by column: no (requests, stages) copy
        out[col] = (c[STAGES[k + 1]] - c[STAGES[k]]) / freq * 1e3
    return _frame(out, REQUEST_COLUMNS)


def app_request_table(rec: RunRecord, guests: pd.DataFrame,
                      warmup_s: float = 0.0) -> pd.DataFrame:
    """One row per finished application request: when it arrived, a worker started it
    and it ended, its latency and the latency's parts (:data:`model.app.requests.PARTS`,
    which add up to it); ``warmup`` marks those that arrived in the warm-up (left out of
    the summary's statistics); ``type`` is the request type's id (a trace's types in
    order of first appearance), ``size`` the size a trace gave it (-1: none)."""
    if rec.app is None or not len(rec.app.requests["id"]):
        return _frame([], APP_REQUEST_COLUMNS)
    c = rec.app.requests
    freq = rec.freq_hz
    guest = rec.domains.names_of(c["guest"])
    info = guests.set_index("guest")
    out = {
        "id": c["id"],
        "guest": guest,
        "group": info["group"].reindex(guest).to_numpy(),
        "mode": info["mode"].reindex(guest).to_numpy(),
        "type": c["type"],
        "size": c["size"],
        "arrival_s": c["arrival"] / freq,
        "start_s": c["start"] / freq,
        "end_s": c["end"] / freq,
        "latency_ms": (c["end"] - c["arrival"]) / freq * 1e3,
        "warmup": c["arrival"] < int(round(warmup_s * freq)),
    }
    for part, col in zip(PARTS, PART_COLUMNS, strict=True):
        out[col] = c[part] / freq * 1e3
    return _frame(out, APP_REQUEST_COLUMNS)


def _owners(rec: RunRecord, uid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The domain name and vCPU index of each vCPU uid in ``uid``."""
    rows = rec.vcpus.rows_of(uid)
    return rec.domains.names_of(rec.vcpus.dom[rows]), rec.vcpus.index[rows]


def cpu_table(rec: RunRecord) -> pd.DataFrame:
    """Cycles by (entity, pCPU, category, beneficiary): every cycle of the run, exactly once.

    ``guest`` is the domain whose vCPU ran the cycles, ``on_behalf_of`` the domain whose
    CPU they count in: the same, except for the driver domain's work on a guest's I/O,
    which counts in that guest's (as the summary's ``cpu_s["driver_domain"]`` and the
    CLI's per-guest CPU count it). Summing ``cycles`` by ``on_behalf_of`` gives each
    guest's CPU as the summary has it; by ``guest``, what each domain's vCPUs ran.

    The engine counts the driver domain's work on each guest's behalf as a total per
    guest (:attr:`model.record.RunRecord.behalf_cycles`): those totals are exact here,
    and each is split over the driver domain's (vCPU, pCPU, category) cells in
    proportion to what the cells hold (:func:`model.accounting.split`, guest by guest in
    domain order); what is left is its own work.

    Examples
    --------
    >>> from analysis.run import simulate
    >>> from model.scenario import load_scenario
    >>> r = simulate(load_scenario("scenarios/quickstart.yaml", ["duration=20ms"]))
    >>> per_guest = r.cpu.groupby("on_behalf_of")["seconds"].sum()
    >>> all(abs(per_guest[g] - sum(v["cpu_s"].values())) < 1e-12
    ...     for g, v in r.summary["guests"].items())
    True
    """
    cyc = rec.cycles
    p, e, k = np.nonzero(cyc)
    guest = np.full(len(e), HYPERVISOR_ENTITY, dtype=object)
    vcpu = np.full(len(e), -1, dtype=np.int64)
    of_vcpu = e > 0
    guest[of_vcpu], vcpu[of_vcpu] = _owners(rec, e[of_vcpu] - 1)
    cycles = cyc[p, e, k]
    take, behalf = np.arange(len(e)), guest  # cell of each row, and whose CPU it counts in
    dd = rec.driver_domain
    if dd is not None and rec.behalf_cycles.any():
        cells = np.nonzero(guest == rec.domains.name_of(dd))[0]
        own = cycles.copy()
        rest = own[cells]
        takes, values, owners = [take], [own], [behalf]
        for row in np.nonzero(rec.behalf_cycles)[0]:
            part, rest = split(rest, int(rec.behalf_cycles[row]))
            takes.append(cells)
            values.append(part)
            owners.append(np.full(len(cells), rec.domains.name[row], dtype=object))
        own[cells] = rest
        take, cycles, behalf = (np.concatenate(x) for x in (takes, values, owners))
        keep = cycles > 0
        take, cycles, behalf = take[keep], cycles[keep], behalf[keep]
    rows = {
        "guest": guest[take],
        "vcpu": vcpu[take],
        "pcpu": p[take],
        "category": np.array(NAMES, dtype=object)[k[take]],
        "on_behalf_of": behalf,
        "cycles": cycles,
    }
    df = _frame(rows, CPU_COLUMNS)
    df["seconds"] = df["cycles"] / rec.freq_hz
    return df


def schedule_table(rec: RunRecord) -> pd.DataFrame:
    """Run segments (which vCPU ran on which pCPU when); consecutive segments of the
    same vCPU on the same pCPU are merged."""
    a = rec.segments
    if a is None or not len(a):
        return _frame([], SCHEDULE_COLUMNS)
    a = a[np.lexsort((a[:, 2], a[:, 0]))]
    # a segment continues the previous one on its pCPU: same vCPU, no gap
    cont = np.zeros(len(a), bool)
    cont[1:] = (a[1:, 0] == a[:-1, 0]) & (a[1:, 1] == a[:-1, 1]) & (a[1:, 2] == a[:-1, 3])
    first = np.nonzero(~cont)[0]
    last = np.append(first[1:], len(a)) - 1
    guest, vcpu = _owners(rec, a[first, 1])
    freq = rec.freq_hz
    return _frame(
        {
            "pcpu": a[first, 0],
            "guest": guest,
            "vcpu": vcpu,
            "start_s": a[first, 2] / freq,
            "end_s": a[last, 3] / freq,
        },
        SCHEDULE_COLUMNS,
    )


def timeseries_table(rec: RunRecord, interval_s: float) -> pd.DataFrame:
    """Per interval: CPU use per guest; per device its queue length and, when requests
    are kept, per guest its utilization share, completions and throughput."""
    freq = rec.freq_hz
    interval = int(round(interval_s * freq))
    if rec.interval and rec.interval != interval:
        raise RecordError(
            f"the run recorded its time series every {rec.interval} cycles, not "
            f"{interval} ({interval_s} s)"
        )
    edges = bin_edges(int(rec.elapsed), interval)
    width = np.diff(edges).astype(float)
    t0 = edges[:-1] / freq
    parts = []

    def add(metric: str, device: str, guest: str, values: np.ndarray) -> None:
        parts.append(
            pd.DataFrame(
                {"time_s": t0, "metric": metric, "device": device, "guest": guest, "value": values}
            )
        )

    doms = list(zip(rec.domains.dom.tolist(), rec.domains.name.tolist(), strict=True))
    if rec.cpu_busy is not None:
        for d, name in doms:
            busy = rec.cpu_busy[rec.vcpus.dom == d]  # the domain's vCPUs
            if busy.any():  # a domain that ran
                add("cpu_util", "", name, busy.sum(axis=0) / width)
    if rec.io is not None:
        c = rec.io.requests
        dv = rec.devices
        for k in range(len(dv)):
            dev, dev_name, channels = int(dv.id[k]), str(dv.name[k]), int(dv.channels[k])
            if dv.queue_area.shape[1]:
                add("queue_length", dev_name, "", dv.queue_area[k] / width)
            if c is None:
                continue
            for d, name in doms:
                mine = (c["device"] == dev) & (c["guest"] == d)
                if not mine.any():
                    continue
                busy = np.diff(busy_until(c["service_start"][mine], c["service_end"][mine], edges))
                add("device_util", dev_name, name, busy / (width * channels))
                end = c["completed"][mine]
                seconds = width / freq
                add("completions_per_s", dev_name, name, np.histogram(end, bins=edges)[0] / seconds)
                add(
                    "throughput_mbps",
                    dev_name,
                    name,
                    np.histogram(end, bins=edges, weights=c["size"][mine])[0] * 8 / seconds / 1e6,
                )
    if not parts:
        return _frame([], TIMESERIES_COLUMNS)
    return pd.concat(parts, ignore_index=True)
