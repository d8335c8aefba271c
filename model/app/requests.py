"""Application requests and their columnar log: when each arrived, waited, ran and ended,
and its latency decomposed into parts that add up to it exactly.

The parts, in cycles (:data:`PARTS`):

``receive``       from its arrival at the NIC until the path brought the packet to the
                  guest (the NIC, the driver domain's backend or device model)
``worker_wait``   in the accept queue, until a worker took it
``user``, ``kernel``, ``page_walk``, ``virt``
                  its worker ran on the vCPU: the vCPU's cycles by category meanwhile
                  (``virt``: hypervisor, transitions and emulation)
``pcpu_wait``     its vCPU was runnable but waited for a pCPU (steal time)
``vcpu_blocked``  its vCPU was halted while it ran (an emulated register access waiting
                  for the device model, a full ring) or before it ran again
``run_queue``     after its packet reached the guest, or its I/O completed, the vCPU ran
                  other work before taking it (the interrupt handler, other workers)
``disk``, ``send`` its worker waited for its disk I/O, or for its response's packets to
                  be sent, until the answer reached the guest

Examples
--------
>>> r = AppRequest(0, guest=1, kind=0, size=100, arrival=10)
>>> r.received, r.start, r.end = 30, 35, 90
>>> r.parts[PART["receive"]] += 20; r.parts[PART["worker_wait"]] += 5
>>> r.parts[PART["user"]] += 40; r.parts[PART["send"]] += 15
>>> r.latency, r.unexplained()
(80, 0)
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import numpy as np

from ..categories import DRIVER_DOMAIN, EMULATION, HYPERVISOR, KERNEL, PAGE_WALK, TRANSITION, USER

PARTS = ("receive", "worker_wait", "user", "kernel", "page_walk", "virt", "pcpu_wait",
         "vcpu_blocked", "run_queue", "disk", "send")
PART = {name: i for i, name in enumerate(PARTS)}
#: The part a worker's wait for an I/O of a device class goes to.
WAIT_PART = {"disk": PART["disk"], "nic": PART["send"]}


def cpu_parts(d) -> tuple[int, int, int, int]:
    """What a worker's stretch of cycles by category ``d`` (:mod:`model.categories`)
    adds to the parts ``user``, ``kernel``, ``page_walk`` and ``virt`` (hypervisor,
    transitions, emulation and the driver domain).

    Examples
    --------
    >>> cpu_parts([100, 20, 5, 3, 7, 0, 0, 0])
    (100, 20, 7, 8)
    """
    return (int(d[USER]), int(d[KERNEL]), int(d[PAGE_WALK]),
            int(d[HYPERVISOR] + d[TRANSITION] + d[EMULATION] + d[DRIVER_DOMAIN]))
#: The columns of :meth:`AppLog.columns` besides the parts.
FIELDS = ("id", "guest", "type", "size", "arrival", "received", "start", "end")


class AppRequest:
    """One application request (times in cycles; -1 until reached)."""

    __slots__ = ("id", "guest", "kind", "size", "arrival", "received", "start", "end",
                 "parts", "user", "stretches")

    def __init__(self, rid: int, guest: int, kind: int, size: int, arrival: int,
                 user: int = -1) -> None:
        self.id = rid
        self.guest = guest
        self.kind = kind
        self.size = size
        self.arrival = arrival
        self.received = self.start = self.end = -1
        self.parts = [0] * len(PARTS)
        self.user = user  # the closed-loop user that sent it (-1: an open source)
        #: when the log calibrates the fast level: the cycles by category of each stretch
        #: its worker ran for it (between taking it or resuming and blocking or finishing),
        #: then the cycles from the submission of the request it blocked for to the block
        self.stretches: list[list[int]] | None = None

    @property
    def latency(self) -> int:
        return self.end - self.arrival

    def unexplained(self) -> int:
        """The latency the parts do not account for: 0 for every finished request."""
        return self.latency - sum(self.parts)


class AppLog:
    """Finished application requests by column, and counts per guest.

    With ``keep`` every finished request is a row (:meth:`columns`). Without it only what
    the summary's statistics read is kept (:meth:`brief`: the guest, arrival and end of
    each), and the parts' sums per guest (:meth:`part_sums`) of the requests that arrived
    at or after :attr:`start` (the end of the warm-up, set by the host before it runs):
    3 integers per request instead of 19, and the same statistics
    (:func:`analysis.appstats.app_summary`).

    Examples
    --------
    >>> log = AppLog(keep=False)
    >>> log.start = 50
    >>> r = AppRequest(0, guest=1, kind=0, size=100, arrival=60)
    >>> r.end = 90; r.parts[PART["user"]] = 30
    >>> log.add(r)
    >>> log.brief()["end"].tolist(), int(log.part_sums()[1][PART["user"]])
    ([90], 30)
    >>> len(log.columns()["id"])  # no rows kept
    0
    """

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        #: the fast level's calibration (:mod:`model.fast.calibrate`): each request keeps
        #: its stretches' cycles, and the finished ones measured are kept in
        #: :attr:`calibrated`
        self.calibrating = False
        self.calibrated: list[AppRequest] = []
        #: the first cycle of the measured period: :meth:`part_sums` adds the requests
        #: that arrived at or after it
        self.start = 0
        self._rows = array("q")  # flat: len(FIELDS) + len(PARTS) per request
        self._brief = array("q")  # without rows: (guest, arrival, end) per request
        self._sums: dict[int, list[int]] = {}
        #: guest -> [offered, dropped, served]
        self.counts: dict[int, list[int]] = {}
        #: guest -> the arrival time of every request offered, and of every one dropped
        self.arrivals: dict[int, array] = {}
        self.drops: dict[int, array] = {}

    def arrived(self, guest: int, now: int) -> None:
        self.counts_of(guest)[0] += 1
        self.arrivals.setdefault(guest, array("q")).append(now)

    def dropped(self, r: AppRequest) -> None:
        self.counts_of(r.guest)[1] += 1
        self.drops.setdefault(r.guest, array("q")).append(r.arrival)

    def counts_of(self, guest: int) -> list[int]:
        c = self.counts.get(guest)
        if c is None:
            c = self.counts[guest] = [0, 0, 0]
        return c

    def add(self, r: AppRequest) -> None:
        self.counts_of(r.guest)[2] += 1
        if self.calibrating and r.arrival >= self.start:
            self.calibrated.append(r)
        if self.keep:
            self._rows.extend((r.id, r.guest, r.kind, r.size, r.arrival, r.received,
                               r.start, r.end, *r.parts))
            return
        self._brief.extend((r.guest, r.arrival, r.end))
        if r.arrival >= self.start:
            sums = self._sums.get(r.guest)
            if sums is None:
                sums = self._sums[r.guest] = [0] * len(PARTS)
            for i, v in enumerate(r.parts):
                sums[i] += v

    def columns(self) -> dict[str, np.ndarray]:
        """The log as int64 arrays: :data:`FIELDS`, then one per part (no rows without
        ``keep``)."""
        return _table(self._rows, (*FIELDS, *PARTS))

    def brief(self) -> dict[str, np.ndarray]:
        """``guest``, ``arrival`` and ``end`` of every finished request (int64)."""
        if self.keep:
            c = self.columns()
            return {n: c[n] for n in BRIEF}
        return _table(self._brief, BRIEF)

    def part_sums(self) -> dict[int, np.ndarray]:
        """Per guest, the sum of each part (:data:`PARTS`, cycles) over its finished
        requests that arrived at or after :attr:`start`."""
        if not self.keep:
            return {g: np.array(v, dtype=np.int64) for g, v in self._sums.items()}
        c = self.columns()
        sel = c["arrival"] >= self.start
        guests, rows = np.unique(c["guest"][sel], return_inverse=True)
        sums = np.zeros((len(guests), len(PARTS)), np.int64)
        np.add.at(sums, rows, np.column_stack([c[p][sel] for p in PARTS]))
        return {int(g): sums[i] for i, g in enumerate(guests)}


#: The columns of :meth:`AppLog.brief`.
BRIEF = ("guest", "arrival", "end")


def _table(flat: array, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not flat:
        return {n: np.zeros(0, np.int64) for n in names}
    data = np.frombuffer(flat, dtype=np.int64).reshape(-1, len(names)).copy()
    return {n: data[:, i] for i, n in enumerate(names)}


@dataclass(frozen=True, eq=False)
class AppRecord:
    """The application requests of a run (part of :class:`model.record.RunRecord`).

    Attributes
    ----------
    requests : dict of numpy.ndarray
        Every finished request: the columns :data:`FIELDS` (times in cycles), then one
        per part of :data:`PARTS` (cycles); no rows if requests were not recorded
        (``record.requests: false``).
    brief : dict of numpy.ndarray
        Every finished request's :data:`BRIEF` columns, recorded or not.
    part_sums : dict of int to numpy.ndarray
        Per serving guest with finished requests: the sum of each part over those that
        arrived at or after ``start`` (cycles, in the order of :data:`PARTS`).
    start : int
        The first cycle of the measured period (the end of the warm-up, 0 without one).
    servers : dict of numpy.ndarray
        Per serving guest (column ``guest``, a domain id): requests ``offered`` (arrived
        at its NIC), ``dropped`` (the accept queue was full), ``served``, and
        ``in_flight`` (arrived, neither dropped nor served when the run ended).
    arrivals, drops : dict of numpy.ndarray
        Per serving guest: the arrival time of every request offered, and of every
        request dropped (cycles, in order).
    unfinished : dict of numpy.ndarray
        Per serving guest: the arrival time of every request still in flight when the run
        ended (its packet on the way in, in the accept queue, or being served).
    """

    requests: dict[str, np.ndarray]
    brief: dict[str, np.ndarray]
    part_sums: dict[int, np.ndarray]
    start: int
    servers: dict[str, np.ndarray]
    arrivals: dict[int, np.ndarray]
    drops: dict[int, np.ndarray]
    unfinished: dict[int, np.ndarray]


def app_record(app) -> AppRecord | None:
    """The :class:`AppRecord` of a host's application system (None without one)."""
    if app is None:
        return None
    return app_record_of(app.log, {d: [r.arrival for r in s.in_flight()]
                                   for d, s in app.servers.items()})


def app_record_of(log: AppLog, unfinished: dict[int, list[int]]) -> AppRecord:
    """The :class:`AppRecord` of request log ``log`` whose serving guests are the keys
    of ``unfinished``, each with the arrival times of its requests still in flight."""
    doms = sorted(unfinished)
    counts = [log.counts_of(d) for d in doms]
    col = lambda i: np.array([c[i] for c in counts], dtype=np.int64)  # noqa: E731
    offered, dropped, served = col(0), col(1), col(2)
    return AppRecord(
        requests=log.columns(),
        brief=log.brief(),
        part_sums=log.part_sums(),
        start=log.start,
        servers={"guest": np.array(doms, dtype=np.int64), "offered": offered,
                 "dropped": dropped, "served": served,
                 "in_flight": offered - dropped - served},
        arrivals={d: np.array(log.arrivals.get(d, ()), dtype=np.int64) for d in doms},
        drops={d: np.array(log.drops.get(d, ()), dtype=np.int64) for d in doms},
        unfinished={d: np.sort(np.array(unfinished[d], dtype=np.int64)) for d in doms})
