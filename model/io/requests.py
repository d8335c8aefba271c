"""I/O requests and their columnar log.

A request records the simulated time (cycles) at which it passed each stage of
the I/O pipeline, so its latency decomposes exactly into stages. Stages a path
does not have (a native request has no ring) keep the time of the stage before,
so their duration is zero.

Examples
--------
>>> r = IORequest(0, guest=1, device=0, size=4096, write=False, issued=100)
>>> r.stamp("queued", 150)
>>> r.stamp("service_start", 150); r.stamp("service_end", 400); r.stamp("completed", 420)
>>> r.latency, r.durations()["service"]
(320, 250)
"""

from __future__ import annotations

from array import array

import numpy as np

#: Pipeline stages in order: the time each one ends.
STAGES = ("issued", "ring", "notified", "backend", "queued", "service_start", "service_end",
          "irq", "response", "completed")
#: Name of the interval that ends at each stage (after the first).
INTERVALS = ("ring_enqueue", "notify", "backend_pickup", "to_device", "device_wait",
             "service", "completion_irq", "response", "upcall")
_INDEX = {name: i for i, name in enumerate(STAGES)}


class IORequest:
    """One I/O request in flight."""

    __slots__ = ("id", "guest", "device", "size", "write", "offset", "t", "on_done", "tag",
                 "vcpu", "done", "inbound", "then", "answered_rs")

    def __init__(self, rid: int, guest: int, device: int, size: int, write: bool,
                 issued: int, offset: int = -1) -> None:
        self.id = rid
        self.guest = guest
        self.device = device
        self.size = size
        self.write = write
        self.offset = offset
        self.t = [issued] + [-1] * (len(STAGES) - 1)
        self.on_done = None
        self.tag = None
        self.vcpu = None  # the vCPU that issued it (completions go to it)
        self.done = False
        #: a packet that arrived from the network (not issued by the guest)
        self.inbound = False
        #: called with the request when it completes to the guest (None: nothing)
        self.then = None
        #: its vCPU's runstate (model.runstate) when the answer reached the guest
        self.answered_rs: tuple[int, int, int, int] | None = None

    def stamp(self, stage: str, time: int) -> None:
        """Record that the request reached ``stage`` at ``time``."""
        self.t[_INDEX[stage]] = time

    def times(self) -> list[int]:
        """The time of every stage; a stage the path skipped takes the time of the one before."""
        out = list(self.t)
        for i in range(1, len(out)):
            if out[i] < 0:
                out[i] = out[i - 1]
        return out

    @property
    def latency(self) -> int:
        return self.t[-1] - self.t[0]

    def durations(self) -> dict[str, int]:
        t = self.times()
        return {INTERVALS[i]: t[i + 1] - t[i] for i in range(len(INTERVALS))}


#: How :meth:`RequestLog.brief` packs a request's guest, device and direction in one int64.
_GUEST_SHIFT = 24
_DEVICE_MASK = (1 << _GUEST_SHIFT) - 1


class RequestLog:
    """Completed requests, stored by column (bounded: only what the run keeps).

    With ``keep`` every completed request is a row (:meth:`columns`). Without it only
    what the summary's latency figures read is kept (:meth:`brief`): the guest, device,
    direction and latency of each request issued at or after :attr:`start` (the end of
    the warm-up, set by the host before it runs), two integers per request instead of 15.

    Examples
    --------
    >>> log = RequestLog()
    >>> r = IORequest(7, guest=1, device=0, size=512, write=True, issued=10)
    >>> r.stamp("completed", 60)
    >>> log.add(r)
    >>> c = log.columns()
    >>> int(c["id"][0]), int(c["write"][0]), int(c["queued"][0]), log.latencies().tolist()
    (7, 1, 10, [50])
    >>> brief = RequestLog(keep=False)
    >>> brief.add(r)
    >>> {k: v.tolist() for k, v in brief.brief().items()}
    {'guest': [1], 'device': [0], 'write': [1], 'latency': [50]}
    """

    #: the log's columns, in the order of a row
    NAMES = ("id", "guest", "device", "size", "write", *STAGES)

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        #: the first cycle of the measured period: :meth:`brief` has the requests issued
        #: at or after it
        self.start = 0
        self._rows = array("q")  # flat: len(NAMES) int64 per request
        self._brief = array("q")  # without rows: (guest, device, write) packed, latency
        self.completed = 0
        #: (guest, device) -> [requests, bytes] completed, kept even without the rows
        self.totals: dict[tuple[int, int], list[int]] = {}

    def add(self, r: IORequest) -> None:
        self.completed += 1
        t = self.totals.get((r.guest, r.device))
        if t is None:
            t = self.totals[r.guest, r.device] = [0, 0]
        t[0] += 1
        t[1] += r.size
        if self.keep:
            self._rows.extend((r.id, r.guest, r.device, r.size, r.write, *r.times()))
        elif r.t[0] >= self.start:
            self._brief.extend(((r.guest << _GUEST_SHIFT) | (r.device << 1) | int(r.write),
                                r.t[-1] - r.t[0]))

    def columns(self) -> dict[str, np.ndarray]:
        """The log as int64 arrays: id, guest, device, size, write and one per stage."""
        names = self.NAMES
        data = np.frombuffer(self._rows, dtype=np.int64).reshape(-1, len(names)).copy()
        return {n: data[:, i] for i, n in enumerate(names)}

    def brief(self) -> dict[str, np.ndarray]:
        """``guest``, ``device``, ``write`` and ``latency`` (cycles from issued to
        completed) of every request issued at or after :attr:`start`, in the order they
        completed (int64)."""
        if self.keep:
            c = self.columns()
            sel = c["issued"] >= self.start
            return {"guest": c["guest"][sel], "device": c["device"][sel],
                    "write": c["write"][sel], "latency": (c["completed"] - c["issued"])[sel]}
        data = np.frombuffer(self._brief, dtype=np.int64).reshape(-1, 2)
        key = data[:, 0]
        return {"guest": key >> _GUEST_SHIFT, "device": (key & _DEVICE_MASK) >> 1,
                "write": key & 1, "latency": data[:, 1].copy()}

    def latencies(self) -> np.ndarray:
        c = self.columns()
        return c["completed"] - c["issued"]
