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

PARTS = ("receive", "worker_wait", "user", "kernel", "page_walk", "virt", "pcpu_wait",
         "vcpu_blocked", "run_queue", "disk", "send")
PART = {name: i for i, name in enumerate(PARTS)}
#: The columns of :meth:`AppLog.columns` besides the parts.
FIELDS = ("id", "guest", "type", "size", "arrival", "received", "start", "end")


class AppRequest:
    """One application request (times in cycles; -1 until reached)."""

    __slots__ = ("id", "guest", "kind", "size", "arrival", "received", "start", "end",
                 "parts", "user")

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

    @property
    def latency(self) -> int:
        return self.end - self.arrival

    def unexplained(self) -> int:
        """The latency the parts do not account for: 0 for every finished request."""
        return self.latency - sum(self.parts)


class AppLog:
    """Finished application requests by column, and counts per guest.

    ``keep=False`` keeps only the counts (and no rows)."""

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self._rows = array("q")  # flat: len(FIELDS) + len(PARTS) per request
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
        if self.keep:
            self._rows.extend((r.id, r.guest, r.kind, r.size, r.arrival, r.received,
                               r.start, r.end, *r.parts))

    def columns(self) -> dict[str, np.ndarray]:
        """The log as int64 arrays: :data:`FIELDS`, then one per part."""
        names = (*FIELDS, *PARTS)
        if not self._rows:
            return {n: np.zeros(0, np.int64) for n in names}
        data = np.frombuffer(self._rows, dtype=np.int64).reshape(-1, len(names)).copy()
        return {n: data[:, i] for i, n in enumerate(names)}


@dataclass(frozen=True, eq=False)
class AppRecord:
    """The application requests of a run (part of :class:`model.record.RunRecord`).

    Attributes
    ----------
    requests : dict of numpy.ndarray
        Every finished request: the columns :data:`FIELDS` (times in cycles), then one
        per part of :data:`PARTS` (cycles).
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
    servers: dict[str, np.ndarray]
    arrivals: dict[int, np.ndarray]
    drops: dict[int, np.ndarray]
    unfinished: dict[int, np.ndarray]


def app_record(app) -> AppRecord | None:
    """The :class:`AppRecord` of a host's application system (None without one)."""
    if app is None:
        return None
    doms = sorted(app.servers)
    counts = [app.log.counts_of(d) for d in doms]
    col = lambda i: np.array([c[i] for c in counts], dtype=np.int64)  # noqa: E731
    offered, dropped, served = col(0), col(1), col(2)
    return AppRecord(
        requests=app.log.columns(),
        servers={"guest": np.array(doms, dtype=np.int64), "offered": offered,
                 "dropped": dropped, "served": served,
                 "in_flight": offered - dropped - served},
        arrivals={d: np.array(app.log.arrivals.get(d, ()), dtype=np.int64) for d in doms},
        drops={d: np.array(app.log.drops.get(d, ()), dtype=np.int64) for d in doms},
        unfinished={d: np.sort(np.array([r.arrival for r in app.servers[d].in_flight()],
                                        dtype=np.int64)) for d in doms})
