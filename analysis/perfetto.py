"""A run's timeline as a Chrome Trace Event file, for ui.perfetto.dev and chrome://tracing.

``record.trace: perfetto`` in a scenario writes ``trace.json.gz`` into the results
directory beside the tables; ``pvsim trace DIR`` (:func:`trace_directory`) writes it for
an earlier run from its ``schedule.parquet`` and ``requests.parquet``. The file is the
Trace Event Format's JSON object (``{"traceEvents": [...], "otherData": {...}}``),
gzip-compressed: both viewers open ``.json.gz`` as it is, and the text compresses about
ten times (a path not ending in ``.gz`` gets plain JSON).

What it shows, every time in microseconds of simulated time (cycles / freq_hz * 1e6,
to the nanosecond), names given by metadata events (``"M"``):

- process ``pCPUs``: one thread per pCPU (``pCPU 0``, ...) with the vCPUs' run segments
  (``schedule.parquet``) as complete slices (``"X"``) named by the vCPU (``web.v0``),
  with its guest, vCPU index and mode as args;
- one process per device (``nic0``, ...): its service intervals (``service_start`` to
  ``service_end`` of ``requests.parquet``) as complete slices named by the guest served
  (a device serving several requests at once, such as an SSD's channels, has one thread
  per channel in use: ``ssd0 #1``, ...); counters ``queue_length`` and ``utilization``
  (per guest) per time-series interval;
- one process per domain (the driver domain and each guest, as named in the run): one
  thread per vCPU; its I/O requests as async slices (``"b"``/``"e"``, category ``io``,
  id the request's id) from issue to completion, each with its stages nested
  (:data:`model.io.requests.INTERVALS`; a stage of zero length is left out); the
  counter ``cpu_util`` per interval; and, when the run kept the hypervisor's event log
  (a run with ``record.trace: perfetto``, not ``pvsim trace DIR``), the vCPUs' blocks,
  wake-ups, timer programming and expiry and virtual interrupt deliveries as instant
  events on their threads, and the counter ``vCPU events`` with how many of each kind
  there were per interval. VM exits and hypercalls are not timed events in pvsim (the
  compiled kernel consumes them in bulk): their counts are in ``summary.json``.

Bounds (:class:`TraceLimits`), so that a long run does not make a huge file: the first
``requests`` I/O requests issued at or after the warm-up, plus ``sample`` more spread
evenly over the others (the device tracks show the service of those same requests);
the first ``segments`` run segments by start time; the first ``instants`` entries of
the event log (the ``vCPU events`` counters count them all); at most ``counter_points``
points per counter (consecutive intervals are merged beyond). Whatever the run's length,
the defaults keep the slices and instants under about 700,000 events (some 10 MB
gzipped), and each counter series under 2,000 points; a 5 s run of
``web-consolidation`` (44,205 requests, 110,639 segments, 333,777 event-log entries)
makes 331,061 events, 2.4 MB gzipped. ``otherData`` says what was kept and what the
bounds were.

Examples
--------
>>> from model.scenario import parse_scenario
>>> from analysis.run import simulate
>>> r = simulate(parse_scenario("name: t\\nduration: 5ms\\nrecord: {trace: perfetto}\\n"
...                             "guests: [{name: a, workload: {profile: sleeper}}]"))
>>> doc = trace_document(r)
>>> sorted({e["ph"] for e in doc["traceEvents"]})
['C', 'M', 'X', 'i']
>>> doc["otherData"]["segments"]["in_trace"] == len(r.schedule)
True
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model import __version__
from model.errors import PvsimError
from model.io.requests import INTERVALS

from .resultsdir import record_files, write_atomically
from .tables import STAGE_COLUMNS

if TYPE_CHECKING:
    from .results import Results

__all__ = ["TRACE_FILE", "EventLog", "TraceError", "TraceLimits", "trace_directory",
           "trace_document", "write_trace"]

#: The trace's file name in a results directory.
TRACE_FILE = "trace.json.gz"
#: What ``pvsim trace DIR`` needs of a results directory.
NEEDED = ("schedule.parquet", "requests.parquet")

_PCPUS = 1  # the pid of the pCPUs' process; domains follow, then devices
_VCPU_NAME = re.compile(r"^(?P<guest>.+)\.v(?P<index>\d+)$")


class TraceError(PvsimError):
    """A trace that cannot be made: a results directory without what it needs."""


@dataclass(frozen=True)
class TraceLimits:
    """How much of a run a trace holds (see the module docstring).

    Attributes
    ----------
    requests : int
        I/O requests shown in full: the first ones issued at or after the warm-up.
    sample : int
        Further I/O requests, spread evenly over all the others (by issue time).
    segments : int
        pCPU run segments: the first ones by start time.
    instants : int
        Entries of the event log shown as instant events: the first ones.
    counter_points : int
        The most points of one counter; consecutive intervals are merged beyond (their
        mean; the event counters: their sum).

    Examples
    --------
    >>> TraceLimits(requests=100).sample
    1000
    """

    requests: int = 10_000
    sample: int = 1_000
    segments: int = 500_000
    instants: int = 50_000
    counter_points: int = 2_000

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (
                    name == "counter_points" and value < 1):
                raise TraceError(f"TraceLimits.{name}: {value!r} is not a count "
                                 f"(a whole number, {'1' if name == 'counter_points' else '0'} "
                                 "or more)")


class EventLog(list):
    """The hypervisor's event log, bounded: give it to
    :meth:`model.hypervisor.Hypervisor.start_log` before the run.

    Like the hypervisor's own log it receives ``(cycles, event, vcpu name, detail)``
    entries, but it keeps only the first ``keep`` of them; every entry is also counted
    per (event, vCPU) in bins of ``bin`` cycles (:attr:`counts`), whatever the run's
    length: at most ``points`` bins over ``duration_s``.

    Examples
    --------
    >>> log = EventLog(freq_hz=1e9, width=1_000_000, duration_s=0.01, keep=1)
    >>> for t in (10, 20, 2_500_000):
    ...     log.append((t, "wake", "a.v0", None))
    >>> len(log), log.total, log.counts["wake", "a.v0"].tolist()
    (1, 3, [2, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    """

    def __init__(self, freq_hz: float, width: int, duration_s: float, keep: int = 50_000,
                 points: int = 2_000) -> None:
        super().__init__()
        self.freq_hz = float(freq_hz)
        self.keep = keep
        self.total = 0
        intervals = max(1, -(-int(round(duration_s * freq_hz)) // max(width, 1)))
        factor = max(1, -(-intervals // max(points, 1)))
        #: cycles per counting bin (a whole number of time-series intervals)
        self.bin = max(width, 1) * factor
        self.bins = -(-intervals // factor)
        #: (event, vCPU name) -> entries per bin
        self.counts: dict[tuple[str, str], np.ndarray] = {}

    def append(self, entry: tuple) -> None:  # type: ignore[override]
        self.total += 1
        c = self.counts.get((entry[1], entry[2]))
        if c is None:
            c = self.counts[entry[1], entry[2]] = np.zeros(self.bins, np.int64)
        c[min(max(entry[0] // self.bin, 0), self.bins - 1)] += 1
        if len(self) < self.keep:
            super().append(entry)

    def __reduce__(self):  # pickled without replaying append (which would count again)
        return (_restore, (type(self), list(self), self.__dict__))


def _restore(cls: type, entries: list, state: dict) -> EventLog:
    log = cls.__new__(cls)
    list.extend(log, entries)
    log.__dict__.update(state)
    return log


# --- the trace ------------------------------------------------------------------------
def _us(seconds: np.ndarray) -> np.ndarray:
    """Seconds -> microseconds, to the nanosecond."""
    return np.round(np.asarray(seconds, dtype=float) * 1e6, 3)


def _tid(pid: int, k: int) -> int:
    """The thread id of a process's ``k``-th track (pCPU, device channel, vCPU): unique
    over the whole trace, as a viewer may key threads by their id alone."""
    return pid * 10_000 + k


def _meta(what: str, pid: int, tid: int, name: str | int, key: str = "name") -> dict:
    return {"ph": "M", "name": what, "pid": pid, "tid": tid, "ts": 0, "args": {key: name}}


def _lanes(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """A lane for each interval (``start`` sorted) such that the intervals of a lane do
    not overlap: the first free lane, as a device's first free channel."""
    ends: list[float] = []
    out = np.zeros(len(start), np.int64)
    for i, (s, e) in enumerate(zip(start.tolist(), end.tolist(), strict=True)):
        k = next((j for j, until in enumerate(ends) if until <= s), len(ends))
        if k == len(ends):
            ends.append(e)
        else:
            ends[k] = e
        out[i] = k
    return out


def _coarse(values: np.ndarray, factor: int, how=np.mean) -> np.ndarray:
    """``values`` with each run of ``factor`` consecutive ones merged by ``how``."""
    if factor <= 1:
        return values
    pad = -len(values) % factor
    grid = np.append(values.astype(float), np.full(pad, np.nan)).reshape(-1, factor)
    return how(grid, axis=1, where=~np.isnan(grid))


class _Trace:
    """The events of one run's trace, made on demand (:meth:`events`) from its tables."""

    def __init__(self, r: Results, limits: TraceLimits, log: EventLog | None) -> None:
        self.r, self.limits, self.log = r, limits, log
        guests = r.guests
        self.mode = dict(zip(guests["guest"], guests["mode"], strict=True))
        self.dom_pid = {g: _PCPUS + 1 + i for i, g in enumerate(guests["guest"])}
        self.vcpus = dict(zip(guests["guest"], guests["vcpus"].astype(int), strict=True))
        devices = list(r.summary.get("devices", {}))
        devices += [d for d in dict.fromkeys(r.requests["device"]) if d not in devices]
        first = _PCPUS + 1 + len(self.dom_pid)
        self.dev_pid = {d: first + i for i, d in enumerate(devices)}
        self._select_requests()
        self._select_segments()
        self.t = self._stage_times()
        self.meta = {
            "generator": f"pvsim {__version__} (analysis.perfetto)",
            "scenario": r.summary.get("scenario", r.scenario.name),
            "seed": r.summary.get("seed"),
            "hardware": r.summary.get("hardware"),
            "sim_time_s": r.summary.get("sim_time_s"),
            "time_unit": "microseconds of simulated time (cycles / freq_hz * 1e6)",
            "limits": asdict(limits),
            "io_requests": self.req_meta,
            "segments": self.seg_meta,
            "vcpu_events": self._log_meta(),
        }

    # --- what is kept ---------------------------------------------------------------
    def _select_requests(self) -> None:
        req, lim = self.r.requests, self.limits
        warm = self.r.scenario.record.warmup or 0.0
        issued = req["issued_s"].to_numpy(float)
        order = np.argsort(issued, kind="stable")
        after = order[issued[order] >= warm]
        first = after[:lim.requests]
        rest = order[~np.isin(order, first)]
        if len(rest) > lim.sample:
            rest = rest[np.unique(np.linspace(0, len(rest) - 1, lim.sample).round()
                                  .astype(np.int64))] if lim.sample else rest[:0]
        keep = np.concatenate([first, rest])
        self.req = req.iloc[keep[np.argsort(issued[keep], kind="stable")]]
        recorded = bool(self.r.scenario.record.requests)
        self.req_meta = {
            "recorded": recorded, "total": len(req), "in_trace": len(self.req),
            "first_after_warmup": len(first), "sampled": len(rest), "warmup_s": warm,
            "rule": (f"the first {lim.requests} issued at or after the warm-up, and "
                     f"{lim.sample} spread evenly over the others by issue time; the "
                     "devices' service slices are those of the same requests")
            if len(req) > len(self.req) else "every completed request",
        }
        if not recorded:
            self.req_meta["rule"] = "none: the run did not keep them (record.requests: false)"

    def _select_segments(self) -> None:
        sched = self.r.schedule
        order = np.argsort(sched["start_s"].to_numpy(float), kind="stable")
        kept = sched.iloc[order[:self.limits.segments]]
        self.seg = kept.sort_values(["pcpu", "start_s"], kind="stable")
        self.seg_meta = {"recorded": bool(self.r.scenario.record.trace), "total": len(sched),
                         "in_trace": len(kept)}
        if len(kept) < len(sched):
            self.seg_meta["complete_until_us"] = float(_us(kept["start_s"].max()))

    def _log_meta(self) -> dict:
        if self.log is None:
            return {"recorded": False, "why": "not in a results directory: the trace a "
                    "run with record.trace: perfetto writes has them"}
        kept = min(len(self.log), self.limits.instants)
        return {"recorded": True, "total": self.log.total, "in_trace": kept,
                "counter_bin_us": self.log.bin / self.log.freq_hz * 1e6,
                "rule": f"the first {min(self.log.keep, self.limits.instants)} entries as "
                        "instant events; the vCPU events counters count every entry"}

    # --- the events -----------------------------------------------------------------
    def events(self) -> Iterator[dict]:
        yield from self._names()
        yield from self._segments()
        yield from self._service()
        yield from self._requests()
        yield from self._instants()
        yield from self._counters()

    def _names(self) -> Iterator[dict]:
        sched = self.r.schedule
        pcpus = max(self.r.scenario.host.pcpus,
                    int(sched["pcpu"].max()) + 1 if len(sched) else 0)
        yield _meta("process_name", _PCPUS, 0, "pCPUs")
        yield _meta("process_sort_index", _PCPUS, 0, 0, "sort_index")
        for p in range(pcpus):
            yield _meta("thread_name", _PCPUS, _tid(_PCPUS, p), f"pCPU {p}")
            yield _meta("thread_sort_index", _PCPUS, _tid(_PCPUS, p), p, "sort_index")
        for i, (dev, pid) in enumerate(self.dev_pid.items()):
            yield _meta("process_name", pid, 0, dev)
            yield _meta("process_sort_index", pid, 0, 1 + i, "sort_index")
        for i, (g, pid) in enumerate(self.dom_pid.items()):
            yield _meta("process_name", pid, 0, g)
            yield _meta("process_sort_index", pid, 0, 1 + len(self.dev_pid) + i, "sort_index")
            for v in range(self.vcpus[g]):
                yield _meta("thread_name", pid, _tid(pid, v), f"{g}.v{v}")
                yield _meta("thread_sort_index", pid, _tid(pid, v), v, "sort_index")

    def _segments(self) -> Iterator[dict]:
        s = self.seg
        start, end = _us(s["start_s"]), _us(s["end_s"])
        dur = np.round(end - start, 3)
        for p, g, v, t, d in zip(s["pcpu"].tolist(), s["guest"].tolist(), s["vcpu"].tolist(),
                                 start.tolist(), dur.tolist(), strict=True):
            yield {"ph": "X", "cat": "sched", "name": f"{g}.v{v}", "pid": _PCPUS,
                   "tid": _tid(_PCPUS, p), "ts": t, "dur": d,
                   "args": {"guest": g, "vcpu": v, "mode": self.mode.get(g, "")}}

    def _stage_times(self) -> np.ndarray:
        """``(requests, stages)``: the time each kept request reached each stage, us."""
        req = self.req
        ms = req[list(STAGE_COLUMNS)].to_numpy(float)
        t = req["issued_s"].to_numpy(float)[:, None] * 1e3 + np.concatenate(
            [np.zeros((len(req), 1)), np.cumsum(ms, axis=1)], axis=1)
        return np.round(np.maximum.accumulate(t, axis=1) * 1e3, 3)

    def _service(self) -> Iterator[dict]:
        req, t = self.req, self.t
        service = INTERVALS.index("service")  # from stage service_start to service_end
        for dev, pid in self.dev_pid.items():
            mine = np.nonzero(req["device"].to_numpy() == dev)[0]
            if not len(mine):
                continue
            a, b = t[mine, service], t[mine, service + 1]
            o = np.argsort(a, kind="stable")
            mine, a, b = mine[o], a[o], b[o]
            lane = _lanes(a, b)
            for k in range(int(lane.max()) + 1):
                yield _meta("thread_name", pid, _tid(pid, k), dev if k == 0 else f"{dev} #{k}")
                yield _meta("thread_sort_index", pid, _tid(pid, k), k, "sort_index")
            rows = req.iloc[mine]
            for g, rid, size, w, s, e, k in zip(
                    rows["guest"].tolist(), rows["id"].tolist(), rows["size"].tolist(),
                    rows["write"].tolist(), a.tolist(), b.tolist(), lane.tolist(),
                    strict=True):
                yield {"ph": "X", "cat": "device", "name": g, "pid": pid, "tid": _tid(pid, k),
                       "ts": s, "dur": round(e - s, 3),
                       "args": {"request": rid, "guest": g, "size": size, "write": w}}

    def _requests(self) -> Iterator[dict]:
        req, t = self.req, self.t
        for i, (g, rid, dev, size, w, path, lat) in enumerate(zip(
                req["guest"].tolist(), req["id"].tolist(), req["device"].tolist(),
                req["size"].tolist(), req["write"].tolist(), req["path"].tolist(),
                req["latency_ms"].tolist(), strict=True)):
            pid, ti = self.dom_pid[g], t[i].tolist()
            base = {"cat": "io", "id": rid, "pid": pid, "tid": _tid(pid, 0)}
            name = f"{dev} {'write' if w else 'read'}"  # few names: a viewer groups by name
            yield {"ph": "b", "name": name, "ts": ti[0], **base,
                   "args": {"request": rid, "device": dev, "path": path, "size": size,
                            "write": w, "latency_us": round(lat * 1e3, 3)}}
            for k, stage in enumerate(INTERVALS):
                if ti[k + 1] > ti[k]:
                    yield {"ph": "b", "name": stage, "ts": ti[k], **base}
                    yield {"ph": "e", "name": stage, "ts": ti[k + 1], **base}
            yield {"ph": "e", "name": name, "ts": ti[-1], **base}

    def _instants(self) -> Iterator[dict]:
        if self.log is None:
            return
        f = 1e6 / self.log.freq_hz
        for t, event, vcpu, detail in itertools.islice(self.log, self.limits.instants):
            m = _VCPU_NAME.match(vcpu)
            if m is None or m["guest"] not in self.dom_pid:
                continue
            e = {"ph": "i", "s": "t", "cat": "vcpu", "name": event, "ts": round(t * f, 3),
                 "pid": self.dom_pid[m["guest"]],
                 "tid": _tid(self.dom_pid[m["guest"]], int(m["index"]))}
            if detail is not None:  # a timer's deadline
                e["args"] = {"deadline_us": round(detail * f, 3)}
            yield e

    def _counter(self, pid: int, name: str, t: np.ndarray, series: dict) -> Iterator[dict]:
        for k, ts in enumerate(t.tolist()):
            args = {key: round(float(v[k]), 6) for key, v in series.items()
                    if np.isfinite(v[k])}  # JSON has no NaN: a gap is left out
            if args:
                yield {"ph": "C", "name": name, "pid": pid, "tid": _tid(pid, 0), "ts": ts,
                       "args": args}

    def _counters(self) -> Iterator[dict]:
        ts = self.r.timeseries
        points = self.limits.counter_points
        for metric, key, owner, pids in (("cpu_util", "guest", None, self.dom_pid),
                                         ("queue_length", "device", None, self.dev_pid),
                                         ("device_util", "device", "guest", self.dev_pid)):
            rows = ts[ts["metric"] == metric]
            for who, part in rows.groupby(key, sort=False):
                if who not in pids:
                    continue
                wide = part.pivot_table(index="time_s", columns=owner or key,
                                        values="value", sort=True)
                factor = max(1, -(-len(wide) // points))
                t = _us(wide.index.to_numpy(float)[::factor])
                series = {str(c) if owner else metric: _coarse(wide[c].to_numpy(float), factor)
                          for c in wide.columns}
                name = "utilization" if metric == "device_util" else metric
                yield from self._counter(pids[who], name, t, series)
        if self.log is None or not self.log.counts:
            return
        per_dom: dict[str, dict[str, np.ndarray]] = {}
        for (event, vcpu), c in self.log.counts.items():
            m = _VCPU_NAME.match(vcpu)
            if m is None or m["guest"] not in self.dom_pid:
                continue
            kinds = per_dom.setdefault(m["guest"], {})
            kinds[event] = kinds.get(event, 0) + c
        t = _us(np.arange(self.log.bins) * self.log.bin / self.log.freq_hz)
        for g, kinds in per_dom.items():
            yield from self._counter(self.dom_pid[g], "vCPU events", t, dict(sorted(kinds.items())))


# --- public API -------------------------------------------------------------------------
def trace_document(r: Results, limits: TraceLimits | None = None,
                   event_log: EventLog | None = None) -> dict:
    """The trace of run ``r`` as one JSON-ready dict (``traceEvents`` and ``otherData``).

    Parameters
    ----------
    r : Results
        A run's results (fresh, or read from a results directory).
    limits : TraceLimits, optional
        The bounds; the defaults if None.
    event_log : EventLog, optional
        The run's event log; by default ``r.event_log`` (a fresh run with
        ``record.trace: perfetto`` has one, results read from disk none).

    Returns
    -------
    dict
        For small runs and tests; :func:`write_trace` streams a large one to a file.
    """
    t = _Trace(r, limits or TraceLimits(), event_log if event_log is not None
               else getattr(r, "event_log", None))
    return {"traceEvents": list(t.events()), "displayTimeUnit": "ns", "otherData": t.meta}


def write_trace(r: Results, path: str | Path, limits: TraceLimits | None = None,
                event_log: EventLog | None = None) -> Path:
    """Write the trace of run ``r`` to ``path`` (gzip-compressed if it ends in ``.gz``),
    atomically (:func:`analysis.resultsdir.write_atomically`).

    Parameters
    ----------
    r, limits, event_log
        As for :func:`trace_document`.
    path : str or Path

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> from model.scenario import parse_scenario
    >>> from analysis.run import simulate
    >>> r = simulate(parse_scenario("name: t\\nduration: 2ms\\nrecord: {trace: true}\\n"
    ...                             "guests: [{name: a, workload: {profile: spin}}]"))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = write_trace(r, Path(d) / "t.json.gz")
    ...     doc = json.loads(gzip.decompress(p.read_bytes()))
    >>> [e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "thread_name"]
    ['pCPU 0', 'pCPU 1', 'a.v0']
    """
    path = Path(path)
    t = _Trace(r, limits or TraceLimits(), event_log if event_log is not None
               else getattr(r, "event_log", None))
    buf = io.BytesIO()
    raw = gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6, mtime=0) \
        if path.suffix == ".gz" else buf
    dump = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    raw.write(b'{"traceEvents":[\n')
    chunk: list[str] = []
    for k, e in enumerate(t.events()):
        chunk.append(("" if k == 0 else ",\n") + dump(e))
        if len(chunk) >= 4096:
            raw.write("".join(chunk).encode())
            chunk.clear()
    raw.write("".join(chunk).encode())
    raw.write(('\n],"displayTimeUnit":"ns","otherData":' + json.dumps(t.meta) + "}\n").encode())
    if raw is not buf:
        raw.close()
    write_atomically(path, buf.getvalue())
    return path


def trace_directory(directory: str | Path, output: str | Path | None = None,
                    limits: TraceLimits | None = None, force: bool = False) -> Path:
    """Write the trace of the run in results directory ``directory`` (``pvsim trace
    DIR``): into ``output``, by default ``directory/trace.json.gz`` (then added to the
    directory's manifest). The event log is not in a results directory: the trace has
    no instant events, so an existing trace (a run's, which has them) is replaced only
    with ``force``.

    Raises
    ------
    TraceError
        ``directory`` lacks :data:`NEEDED` (named), its run did not record the vCPU
        schedule (``record.trace: false``), or ``output`` exists (without ``force``).
    PvsimError
        The directory is not a readable pvsim results directory
        (:meth:`analysis.results.Results.load` says why).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     trace_directory(d)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    analysis.perfetto.TraceError: ...: pvsim trace needs schedule.parquet and requests.parquet ...
    """
    from .results import Results

    directory = Path(directory)
    if not directory.is_dir():
        what = "not a directory" if directory.exists() else "no such directory"
        raise TraceError(f"{directory}: {what}; give a results directory written by pvsim run")
    missing = [f for f in NEEDED if not (directory / f).is_file()]
    if missing:
        raise TraceError(f"{directory}: pvsim trace needs {' and '.join(NEEDED)} of a results "
                         f"directory; missing: {', '.join(missing)} (write one with pvsim run "
                         "and record.trace: true or perfetto)")
    r = Results.load(directory)
    if not r.scenario.record.trace:
        raise TraceError(f"{directory}: its run did not record the vCPU schedule "
                         "(record.trace: false, so schedule.parquet is empty); run it again "
                         "with --set record.trace=perfetto")
    out = directory / TRACE_FILE if output is None else Path(output)
    if out.exists() and not force:
        raise TraceError(f"{out}: exists (the trace of a run with record.trace: perfetto "
                         "has the vCPU events, which a results directory does not keep); "
                         "give another file (-o), or replace it (--force)")
    write_trace(r, out, limits)
    if out.parent.resolve() == directory.resolve():
        record_files(directory, [directory / out.name])
    return out
