"""The run record: everything a finished run yields, as flat columns and id tables.

A :class:`RunRecord` is the one thing between the model and analysis. The engine that ran
the scenario fills it (:func:`record_run` for the exact engine, from a finished
:class:`model.host.Host`); analysis reads only the record, never the host, so it does not
know which engine produced it. Everything in it is plain data: numpy columns, tuples of
names, numbers. Nothing refers to a live simulation object.

Identities are ids, and names are looked up in the id tables: a domain id names a domain
through :attr:`RunRecord.domains` (never "id = position + 1"), a vCPU uid its domain and
index through :attr:`RunRecord.vcpus`, a device id its name and kind through
:attr:`RunRecord.devices`.

Conventions: times are cycles of the host clock (:attr:`RunRecord.freq_hz` per second);
the cycle ledger is indexed ``(pcpu, entity, category)``, entity 0 being the hypervisor
itself (idle time and work on nobody's behalf) and entity ``uid + 1`` vCPU ``uid``
(categories: :data:`model.categories.NAMES`); a string column is a numpy object array.

Large columns are views of what the engine recorded, not copies: the run segments are
the hypervisor's ``array("q")`` seen through :func:`numpy.frombuffer`.

Examples
--------
>>> from model.host import Host
>>> from model.domain import DomainConfig
>>> from model.workloads import spin
>>> host = Host("nehalem-2.93ghz-ept", pcpus=1, seed=1)
>>> _ = host.add_guest(DomainConfig("hog", mode="hvm"), spin())
>>> _ = host.record_segments()
>>> rec = record_run(host, host.run(seconds=0.001))
>>> rec.domains.name_of(rec.vcpus.dom[0]), int(rec.vcpu_cycles(0).sum()) == rec.elapsed
('hog', True)
>>> rec.segments.shape[1], int(rec.segments[-1, 3]) == rec.elapsed
(4, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .app.requests import AppRecord, app_record
from .categories import IDLE
from .errors import PvsimError
from .fidelity import EXACT
from .io.requests import STAGES
from .liveness import State, VcpuState
from .rules import TRANSITION_KINDS
from .vectors import STAT_NAMES

if TYPE_CHECKING:
    from .host import Host, RunStats

#: The columns of the request log, in order: one row per completed request.
REQUEST_FIELDS = ("id", "guest", "device", "size", "write", *STAGES)
#: The columns of a run segment: which vCPU ran on which pCPU, from when to when.
SEGMENT_FIELDS = ("pcpu", "vcpu", "start", "end")


class RecordError(PvsimError):
    """A run record that is inconsistent: an id its tables do not name, columns of
    different lengths."""


def _names(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _ints(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


def _same_length(what: str, **columns: np.ndarray) -> None:
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise RecordError(f"{what}: columns of different lengths {lengths}")


@dataclass(frozen=True, eq=False)
class DomainTable:
    """Domain id -> name and mode, one row per domain in creation order.

    Examples
    --------
    >>> t = DomainTable.of([3, 1], ["b", "a"], ["pv", "hvm"])
    >>> t.name_of(1), t.names_of(np.array([3, 3, 1])).tolist(), t.id_of("b")
    ('a', ['b', 'b', 'a'], 3)
    """

    dom: np.ndarray
    name: np.ndarray
    mode: np.ndarray

    @classmethod
    def of(cls, dom, name, mode) -> DomainTable:
        """The table from three sequences (ids, names, mode names)."""
        t = cls(_ints(dom), _names(name), _names(mode))
        _same_length("domain table", dom=t.dom, name=t.name, mode=t.mode)
        return t

    def __len__(self) -> int:
        return len(self.dom)

    def rows_of(self, dom: np.ndarray) -> np.ndarray:
        """The row of each id in ``dom``; :class:`RecordError` for an id not in the table."""
        return _rows(self.dom, dom, "domain id")

    def row_of(self, dom: int) -> int:
        """The row of domain ``dom``."""
        return int(self.rows_of(np.array([dom]))[0])

    def names_of(self, dom: np.ndarray) -> np.ndarray:
        """The name of each domain id in ``dom``."""
        return self.name[self.rows_of(np.asarray(dom))]

    def name_of(self, dom: int) -> str:
        """The name of domain ``dom``."""
        return str(self.names_of(np.array([dom]))[0])

    def id_of(self, name: str) -> int:
        """The id of the domain named ``name``."""
        hit = np.nonzero(self.name == name)[0]
        if not len(hit):
            raise RecordError(
                f"no domain named {name!r}; the record has "
                f"{', '.join(map(str, self.name)) or '(none)'}"
            )
        return int(self.dom[hit[0]])


def _rows(keys: np.ndarray, wanted: np.ndarray, what: str) -> np.ndarray:
    """Rows of ``keys`` holding each of ``wanted`` (keys unique, in any order)."""
    wanted = np.asarray(wanted, dtype=np.int64).reshape(-1)
    if not len(keys):
        if len(wanted):
            raise RecordError(f"{what} {int(wanted[0])} is not in the record's table (empty)")
        return np.zeros(0, np.intp)
    order = np.argsort(keys, kind="stable")
    rows = order[np.minimum(np.searchsorted(keys, wanted, sorter=order), len(keys) - 1)]
    bad = keys[rows] != wanted
    if bad.any():
        raise RecordError(f"{what} {int(wanted[np.argmax(bad)])} is not in the record's table")
    return rows


@dataclass(frozen=True, eq=False)
class VcpuTable:
    """vCPU uid -> (domain id, index within the domain) and name, with what each one
    did: its counters (:data:`model.vectors.STAT_NAMES`: instructions, TLB misses, ...) and
    when its workload finished (cycles; -1 if it had not when the run ended).

    Examples
    --------
    >>> t = VcpuTable.of([0, 1], [1, 1], [0, 1], ["a.v0", "a.v1"], [50, -1])
    >>> t.of_domain(1).tolist(), t.row_of(1)
    ([0, 1], 1)
    """

    uid: np.ndarray
    dom: np.ndarray
    index: np.ndarray
    name: np.ndarray
    finished_at: np.ndarray
    counters: dict[str, np.ndarray]

    @classmethod
    def of(
        cls, uid, dom, index, name, finished_at, counters: dict[str, object] | None = None
    ) -> VcpuTable:
        """The table from sequences, one element per vCPU."""
        t = cls(
            _ints(uid),
            _ints(dom),
            _ints(index),
            _names(name),
            _ints(finished_at),
            {k: _ints(v) for k, v in (counters or {}).items()},
        )
        _same_length(
            "vCPU table",
            uid=t.uid,
            dom=t.dom,
            index=t.index,
            name=t.name,
            finished_at=t.finished_at,
            **t.counters,
        )
        return t

    def __len__(self) -> int:
        return len(self.uid)

    def of_domain(self, dom: int) -> np.ndarray:
        """The uids of domain ``dom``'s vCPUs, by index."""
        mine = np.nonzero(self.dom == dom)[0]
        return self.uid[mine[np.argsort(self.index[mine], kind="stable")]]

    def row_of(self, uid: int) -> int:
        """The row of vCPU ``uid``."""
        return int(_rows(self.uid, np.array([uid]), "vCPU uid")[0])

    def rows_of(self, uid: np.ndarray) -> np.ndarray:
        """The row of each vCPU uid in ``uid``."""
        return _rows(self.uid, uid, "vCPU uid")


@dataclass(frozen=True, eq=False)
class DeviceTable:
    """Device id -> name and kind, with each device's figures over the run: channels,
    mean utilization (fraction of channels busy), requests served; its queue length
    integrated over time (``queue_cycles``: request-cycles of waiting, counted like the
    other figures from the record's ``start``; ``queue_area``: per time-series interval
    of the whole run, one row per device, no columns if the series were not recorded);
    and its contention matrix as rows (``waiting`` guest, ``holding`` guest, ``seconds``
    the first waited while the second held the device), ordered as the device first saw
    each guest.
    """

    id: np.ndarray
    name: np.ndarray
    kind: np.ndarray
    channels: np.ndarray
    utilization: np.ndarray
    completed: np.ndarray
    queue_cycles: np.ndarray
    queue_area: np.ndarray
    contention_device: np.ndarray
    waiting: np.ndarray
    holding: np.ndarray
    seconds: np.ndarray

    def __post_init__(self) -> None:
        _same_length(
            "device table",
            id=self.id,
            name=self.name,
            kind=self.kind,
            channels=self.channels,
            utilization=self.utilization,
            completed=self.completed,
            queue_cycles=self.queue_cycles,
            queue_area=self.queue_area,
        )
        _same_length(
            "device contention",
            contention_device=self.contention_device,
            waiting=self.waiting,
            holding=self.holding,
            seconds=self.seconds,
        )

    def __len__(self) -> int:
        return len(self.id)

    def rows_of(self, device: np.ndarray) -> np.ndarray:
        """The row of each device id in ``device``."""
        return _rows(self.id, device, "device id")

    def name_of(self, device: int) -> str:
        """The name of device ``device``."""
        return str(self.name[self.rows_of(np.array([device]))[0]])

    def contention(self, device: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Device ``device``'s contention rows: waiting guests, holding guests, seconds."""
        mine = self.contention_device == device
        return self.waiting[mine], self.holding[mine], self.seconds[mine]


@dataclass(frozen=True, eq=False)
class IORecord:
    """The I/O of a run: requests issued, completed and in flight (by stage), completed
    requests and bytes per (guest, device) in ``totals`` (columns ``guest``, ``device``,
    ``requests``, ``bytes``), the attachments (columns ``guest``, ``device``, ``path``,
    in the order they were made) and, when the run kept them, every completed request
    (``requests``: the columns :data:`REQUEST_FIELDS`; None if not kept). ``brief``, kept
    or not: the columns ``guest``, ``device``, ``write`` and ``latency`` (cycles) of every
    request issued in the measured period, in the order they completed
    (:meth:`model.io.requests.RequestLog.brief`).
    """

    issued: int
    completed: int
    in_flight: int
    in_flight_by_stage: dict[str, int]
    totals: dict[str, np.ndarray]
    attachments: dict[str, np.ndarray]
    requests: dict[str, np.ndarray] | None
    brief: dict[str, np.ndarray]


@dataclass(frozen=True)
class Engine:
    """What running the model cost the machine that ran it."""

    wall_s: float
    events: int
    instructions: int
    instructions_per_s: float
    events_per_s: float


@dataclass(frozen=True, eq=False)
class RunRecord:
    """Everything a finished run yields (see the module docstring).

    Attributes
    ----------
    hardware : str
        The hardware profile's name.
    freq_hz : float
        Cycles per second of the host clock.
    elapsed : int
        Cycles simulated.
    pcpus : int
    domains : DomainTable
    vcpus : VcpuTable
    driver_domain : int or None
        The driver domain's id (None without one).
    behalf_cycles : numpy.ndarray
        Per row of ``domains``: cycles the driver domain spent on that domain's I/O.
    cycles : numpy.ndarray
        The cycle ledger, ``(pcpu, entity, category)`` (see the module docstring).
    transitions : dict of numpy.ndarray
        Columns ``dom``, ``kind``, ``label``, ``count``: hypercalls by type, VM exits by
        reason, traps, emulations and interrupts of each domain, in the order counted.
    transition_kinds : tuple of str
        Every kind of transition, counted or not.
    context_switches, timers_fired : int
        World switches of all pCPUs; one-shot timers that fired.
    segments : numpy.ndarray or None
        ``(n, 4)``: the run segments, rows of :data:`SEGMENT_FIELDS` in the order they
        ended; None if they were not recorded (they are only for the schedule table and
        graph: the time series do not need them).
    devices : DeviceTable
    io : IORecord or None
        None if the host has no devices.
    app : AppRecord or None
        The application requests; None if no guest serves requests.
    liveness : tuple of model.liveness.VcpuState
        Every started vCPU's state at the end, in creation order.
    engine : Engine
    interval : int
        The time series' interval, cycles: intervals ``[k * interval, (k + 1) *
        interval)`` from time 0, the last one cut at ``elapsed`` (0: no time series).
    cpu_busy : numpy.ndarray or None
        ``(vCPUs, intervals)``: each vCPU's busy cycles per interval, rows as ``vcpus``;
        None without time series.
    fidelity : str
        The fidelity level of the engine that filled the record: ``"exact"`` for
        :func:`record_run` (the instruction-level engine, the ground truth).
    start : int
        Where the statistics start (cycles): the end of the warm-up (0 without one). The
        cycle ledger, counters, transitions, device figures and I/O totals count from
        there to ``elapsed`` (:mod:`model.warmup`); the request logs, the segments and the
        time series cover the whole run.
    """

    hardware: str
    freq_hz: float
    elapsed: int
    pcpus: int
    domains: DomainTable
    vcpus: VcpuTable
    driver_domain: int | None
    behalf_cycles: np.ndarray
    cycles: np.ndarray
    transitions: dict[str, np.ndarray]
    transition_kinds: tuple[str, ...]
    context_switches: int
    timers_fired: int
    segments: np.ndarray | None
    devices: DeviceTable
    io: IORecord | None
    liveness: tuple[VcpuState, ...]
    engine: Engine
    app: AppRecord | None = None
    interval: int = 0
    cpu_busy: np.ndarray | None = None
    start: int = 0
    fidelity: str = EXACT

    def __post_init__(self) -> None:
        if self.cycles.ndim != 3 or self.cycles.shape[0] != self.pcpus:
            raise RecordError(
                f"the cycle ledger is {self.cycles.shape}, not (pcpus="
                f"{self.pcpus}, entities, categories)"
            )
        if self.cycles.shape[1] < len(self.vcpus) + 1:
            raise RecordError(
                f"the cycle ledger has {self.cycles.shape[1]} entities for "
                f"{len(self.vcpus)} vCPUs and the hypervisor"
            )
        _same_length("transitions", **self.transitions)
        if self.segments is not None and (
            self.segments.ndim != 2 or self.segments.shape[1] != len(SEGMENT_FIELDS)
        ):
            raise RecordError(f"segments are {self.segments.shape}, not (n, 4)")
        n = self.intervals
        if self.cpu_busy is not None and self.cpu_busy.shape != (len(self.vcpus), n):
            raise RecordError(
                f"the CPU time series is {self.cpu_busy.shape}, not (vCPUs={len(self.vcpus)}, "
                f"intervals={n})"
            )
        if self.devices.queue_area.shape[1] not in (0, n):
            raise RecordError(
                f"the queue time series has {self.devices.queue_area.shape[1]} intervals, "
                f"not {n}"
            )
        if len(self.behalf_cycles) != len(self.domains):
            raise RecordError(
                f"{len(self.behalf_cycles)} behalf figures for {len(self.domains)} domains"
            )

    @property
    def intervals(self) -> int:
        """How many time-series intervals the run has (0 without time series)."""
        return _intervals(self.elapsed, self.interval)

    def vcpu_cycles(self, uid: int) -> np.ndarray:
        """Cycles by category that vCPU ``uid`` consumed, summed over pCPUs."""
        return self.cycles[:, uid + 1].sum(axis=0)

    def domain_cycles(self, dom: int) -> np.ndarray:
        """Cycles by category of all domain ``dom``'s vCPUs."""
        return self.cycles[:, self.vcpus.of_domain(dom) + 1].sum(axis=(0, 1))

    @property
    def measured(self) -> int:
        """Cycles the statistics cover: from :attr:`start` to :attr:`elapsed`."""
        return self.elapsed - self.start

    def busy_fraction(self) -> float:
        """The fraction of all pCPUs' time that was not idle (after the warm-up)."""
        idle = int(self.cycles[:, 0, IDLE].sum())
        return 1.0 - idle / max(self.measured * self.cycles.shape[0], 1)

    @property
    def stalled(self) -> tuple[VcpuState, ...]:
        """vCPUs blocked at the end with nothing that will ever wake them."""
        return tuple(s for s in self.liveness if s.state is State.STALLED)


# --- filling a record from the exact engine ---------------------------------------------------
def record_run(host: Host, stats: RunStats) -> RunRecord:
    """The record of ``host``'s finished run (``stats`` is what :meth:`Host.run` returned).

    Parameters
    ----------
    host : model.host.Host
        A host whose run has ended; afterwards nothing needs it.
    stats : model.host.RunStats

    Returns
    -------
    RunRecord
        Columns that are views of the host's own records where they can be (the
        segments), so recording costs no copy of the largest arrays.
    """
    hv, freq = host.hypervisor, host.hw.freq_hz
    doms = host.domains
    snap = host.warmup  # what the warm-up counted, left out (model.warmup)
    domains = DomainTable.of(
        [d.dom for d in doms], [d.name for d in doms], [d.mode.name for d in doms]
    )
    vcpus = sorted(hv.vcpus, key=lambda v: v.uid)
    done = hv.finished_at
    before = snap.counters if snap is not None else None
    table = VcpuTable.of(
        [v.uid for v in vcpus],
        [v.domain.dom for v in vcpus],
        [v.index for v in vcpus],
        [v.name for v in vcpus],
        [done.get(v.name, -1) for v in vcpus],
        {label: [int(v.cpu[i]) - (0 if before is None else int(before[v.uid, i]))
                 for v in vcpus] for i, label in STAT_NAMES.items()},
    )
    io = host.io
    dd = io.driver_domain if io is not None else None
    rows: list[tuple[int, str, str, int]] = []
    for d in doms:
        was = snap.transitions[d.name] if snap is not None else {}
        for kind, counts in stats.transitions(d.name).items():
            old = was.get(kind, {})
            rows += [(d.dom, kind, label, n - old.get(label, 0)) for label, n in counts.items()
                     if n - old.get(label, 0)]
    eng = stats.engine()
    segs = hv.segments
    intervals = _intervals(stats.elapsed, host.series_width)
    start, was_devices = (0, {}) if snap is None else (snap.at, snap.devices)
    return RunRecord(
        hardware=host.hw.name,
        freq_hz=freq,
        elapsed=stats.elapsed,
        pcpus=len(hv.pcpus),
        domains=domains,
        vcpus=table,
        driver_domain=None if dd is None else dd.dom,
        behalf_cycles=_ints([stats.driver_domain_cycles(d.name)
                             - (0 if snap is None else snap.behalf[d.name]) for d in doms]),
        cycles=stats.ledger.cycles if snap is None else stats.ledger.cycles - snap.cycles,
        transitions={
            "dom": _ints([r[0] for r in rows]),
            "kind": _names([r[1] for r in rows]),
            "label": _names([r[2] for r in rows]),
            "count": _ints([r[3] for r in rows]),
        },
        transition_kinds=tuple(TRANSITION_KINDS.values()),
        context_switches=sum(p.switches for p in hv.pcpus) - (0 if snap is None
                                                               else snap.switches),
        timers_fired=hv.timers_fired - (0 if snap is None else snap.timers_fired),
        segments=None
        if segs is None
        else np.frombuffer(segs, dtype=np.int64).reshape(-1, len(SEGMENT_FIELDS)),
        devices=device_table(list(io.devices.values()) if io is not None else [],
                             io.env.now if io is not None else 0, start, was_devices, intervals),
        interval=host.series_width,
        cpu_busy=None if hv.busy is None else np.array(
            [hv.busy[v.uid].values(intervals) for v in vcpus], dtype=np.int64
        ).reshape(len(vcpus), intervals),
        io=None if io is None else _io(io, snap),
        liveness=tuple(stats.liveness),
        app=app_record(host.app),
        start=start,
        fidelity=EXACT,
        engine=Engine(
            wall_s=eng["wall_s"],
            events=eng["events"],
            instructions=eng["instructions"],
            instructions_per_s=eng["instructions_per_s"],
            events_per_s=eng["events_per_s"],
        ),
    )


def _intervals(elapsed: int, width: int) -> int:
    """Intervals of ``width`` cycles in ``[0, elapsed)``, the last one cut short (0 for
    no width)."""
    return -(-elapsed // width) if width else 0


def device_table(devs: list, now: int, start: int, was: dict, intervals: int) -> DeviceTable:
    """The :class:`DeviceTable` of devices ``devs`` (:class:`model.io.devices.Device`) at
    ``now``, counting from ``start``, when each had counted ``was[index]`` (as
    :attr:`model.warmup.Snapshot.devices`; empty: nothing left out)."""
    util, completed, cont, queued, area = [], [], [], [], []
    for dev in devs:
        busy0, done0, cont0, queued0 = was.get(dev.index, (0, 0, {}, 0))
        q = dev.queue
        q.advance(now)
        queued.append(q.area_at(now) - queued0)
        if intervals:
            area.append(q.bins.values(intervals))
        util.append((dev.busy_cycles() - busy0) / max((now - start) * dev.channels, 1))
        completed.append(dev.completed - done0)
        cont += [(dev.index, a, b, w - cont0.get(a, {}).get(b, 0.0))
                 for a, row in dev.contention().items() for b, w in row.items()]
    return DeviceTable(
        id=_ints([d.index for d in devs]),
        name=_names([d.name for d in devs]),
        kind=_names([d.kind for d in devs]),
        channels=_ints([d.channels for d in devs]),
        utilization=np.array(util, dtype=float),
        completed=_ints(completed),
        queue_cycles=_ints(queued),
        queue_area=np.array(area, dtype=np.int64).reshape(len(devs), intervals if area else 0),
        contention_device=_ints([c[0] for c in cont]),
        waiting=_ints([c[1] for c in cont]),
        holding=_ints([c[2] for c in cont]),
        seconds=np.array([c[3] for c in cont], dtype=float),
    )


def _io(io, snap) -> IORecord:
    was = {} if snap is None else snap.io_totals
    totals = [(k, (v[0] - was.get(k, (0, 0))[0], v[1] - was.get(k, (0, 0))[1]))
              for k, v in io.log.totals.items()]
    atts = list(io.attachments.values())
    return IORecord(
        issued=io.issued,
        completed=io.log.completed,
        in_flight=io.in_flight(),
        in_flight_by_stage=dict(io.in_flight_by_stage()),
        totals={
            "guest": _ints([g for (g, _), _ in totals]),
            "device": _ints([d for (_, d), _ in totals]),
            "requests": _ints([v[0] for _, v in totals]),
            "bytes": _ints([v[1] for _, v in totals]),
        },
        attachments={
            "guest": _ints([a.domain.dom for a in atts]),
            "device": _ints([a.device.index for a in atts]),
            "path": _names([a.path for a in atts]),
        },
        requests=io.log.columns() if io.log.keep else None,
        brief=io.log.brief(),
    )
