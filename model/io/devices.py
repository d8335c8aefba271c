"""Shared devices: disks and NICs with channels, a service-time model and an arbitration queue.

A device serves up to ``channels`` requests at once; the others wait in its
arbitration policy (:mod:`model.io.arbitration`). Service times follow from
parameters in real units (:mod:`model.io.service`), spread by the device's service
distribution. A device is not a process per request: starting a service schedules one
timeout whose callback finishes it.

The device kinds of scenario files (``host.devices.NAME.kind``) are service models
registered in :data:`DEVICE_KINDS`; each declares its scenario parameters
(:attr:`ServiceModel.params`) and its :attr:`ServiceModel.device_class`, the
:data:`DEVICE_CLASSES` entry a workload names in its ``needs``. (They live in
:mod:`model.io.service` and are importable from here.)

Measured per device: utilization (busy channel-time), queue length over time,
requests and bytes per guest, and the contention matrix: the wait each guest's
requests suffered while each other guest's requests held the channels, integrated over
time as it goes (a wait under way counts up to now; over a window, the part in it).

Examples
--------
>>> import numpy as np
>>> from model.clock import Environment
>>> from model.io.requests import IORequest
>>> env = Environment()
>>> ssd = Device(env, "ssd0", SsdService(), freq_hz=1e9)
>>> r = IORequest(0, guest=1, device=0, size=4096, write=False, issued=0)
>>> ssd.submit(r); env.run()
>>> ssd.completed, r.durations()["service"] / 1e3  # microseconds: 80 + 4096 B at 62.5 MB/s
(1, 145.536)
"""

from __future__ import annotations

import numpy as np

from ..clock import Environment
from ..errors import ConfigError
from ..series import Bins, Level
from .arbitration import Fifo, Policy
from .requests import IORequest
from .service import (
    DEVICE_CLASSES,
    DEVICE_KINDS,
    DISTRIBUTIONS,
    TSO_MAX_BYTES,
    ExponentialService,
    HddService,
    NicService,
    NvmeService,
    ServiceDistribution,
    ServiceModel,
    SsdService,
)

__all__ = [
    "DEVICE_CLASSES",
    "DEVICE_KINDS",
    "DISTRIBUTIONS",
    "TSO_MAX_BYTES",
    "Device",
    "ExponentialService",
    "HddService",
    "NicService",
    "NvmeService",
    "ServiceDistribution",
    "ServiceModel",
    "SsdService",
]


class Device:
    """A shared device.

    Parameters
    ----------
    env : model.clock.Environment
        Time in cycles of the host clock.
    name : str
    service : ServiceModel
        Service times; its ``channels`` is how many requests run at once.
    policy : Policy, optional
        Arbitration among waiting requests (default FIFO).
    freq_hz : float
        Cycles per second.
    rng : numpy.random.Generator, optional
        The device's own random stream (every draw of its service times).
    distribution : ServiceDistribution, optional
        How service times spread around the modeled time (default: as modeled).

    Notes
    -----
    With interrupt coalescing (the service's ``coalesce_us`` > 0) the device holds the
    completion callbacks (``req.on_done``) of the requests that finish within a window
    of ``coalesce_us`` from the first one held, and releases them all, in order, at the
    window's end (one timeout per window). A request's ``service_end`` stays the time
    its service ended: the time held shows in the next stage.

    Examples
    --------
    >>> from model.clock import Environment
    >>> from model.io.requests import IORequest
    >>> env = Environment()
    >>> nic = Device(env, "nic0", NicService(rate_gbit_s=10, coalesce_us=50), freq_hz=1e9)
    >>> done = []
    >>> for i in range(2):
    ...     r = IORequest(i, guest=1, device=0, size=1460, write=True, issued=0)
    ...     r.on_done = lambda r: done.append((r.id, r.t[6], env.now))
    ...     nic.submit(r)
    >>> env.run(); done  # served one after the other, both released 50 us after the first
    [(0, 2230, 52230), (1, 4460, 52230)]
    >>> nic.max_request_bytes
    65536
    """

    def __init__(
        self,
        env: Environment,
        name: str,
        service: ServiceModel,
        policy: Policy | None = None,
        freq_hz: float = 1e9,
        rng: np.random.Generator | None = None,
        index: int = 0,
        distribution: ServiceDistribution | None = None,
    ) -> None:
        if service.channels < 1:
            raise ConfigError(f"device {name!r}: channels must be >= 1")
        self.env = env
        self.name = name
        self.index = index
        self.service = service
        self.channels = service.channels
        self.kind = service.device_class
        #: a network interface (its requests are packets) rather than a disk
        self.network = service.network
        self.policy = policy if policy is not None else Fifo()
        self.freq = freq_hz
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.distribution = distribution or ServiceDistribution()
        self._seconds = self.distribution.sampler(service)
        #: the coalescing window, cycles (0: none), and the completions it holds
        self.coalesce = (
            max(1, int(round(service.coalesce_us * 1e-6 * freq_hz)))
            if service.coalesce_us > 0
            else 0
        )
        self._held: list[IORequest] = []
        self.busy = 0
        self.completed = 0
        self._retry: object | None = None  # the event that asks again (a rate cap)
        # contention bookkeeping, by guest slot, integrated up to _last: each event's
        # cost grows with the guests waiting and holding channels then, not with all
        self._slot: dict[int, int] = {}
        self._serving: list[int] = []  # channels busy per guest
        self._waiting: list[int] = []  # requests queued per guest
        self._holders: set[int] = set()  # slots with a channel busy
        self._waiters: set[int] = set()  # slots with a request queued
        self._busy_area = 0  # channel-cycles busy up to _last
        self._last = 0
        #: [waiting guest][holding guest]: requests waiting x channels held, integrated
        #: (cycles; / channels: the wait behind that guest)
        self._behind: list[list[int]] = []
        self.requests: list[int] = []
        self.bytes: list[int] = []
        #: requests waiting, integrated over time (per interval once :meth:`record_queue`)
        self.queue = Level()

    @property
    def max_request_bytes(self) -> int | None:
        """The largest request a guest may hand this device, bytes (None: any size).

        A disk takes any size. A NIC: with TSO/GSO a guest hands packets of up to 64 KiB
        to its driver and the NIC cuts them into MTU frames; without, one frame's payload
        (``mtu - 40``). Workloads cut their sends to it.
        """
        return self.service.max_request_bytes

    # --- bookkeeping -------------------------------------------------------------------
    def slot(self, guest: int) -> int:
        s = self._slot.get(guest)
        if s is None:
            s = self._slot[guest] = len(self._slot)
            for row in self._behind:
                row.append(0)
            self._behind.append([0] * (s + 1))
            self._serving.append(0)
            self._waiting.append(0)
            self.requests.append(0)
            self.bytes.append(0)
        return s

    def guests(self) -> list[int]:
        """Guest ids in slot order."""
        return sorted(self._slot, key=self._slot.get)

    def _advance(self, now: int) -> None:
        dt = now - self._last
        if dt > 0:
            self._busy_area += self.busy * dt
            if self._holders:
                serving, waiting, behind = self._serving, self._waiting, self._behind
                for w in self._waiters:
                    row, n = behind[w], waiting[w] * dt
                    for h in self._holders:
                        row[h] += n * serving[h]
            self._last = now

    def _sample(self, now: int) -> None:
        self.queue.set(now, len(self.policy))

    def record_queue(self, width: int) -> None:
        """Integrate the queue length per interval of ``width`` cycles as well (called
        before the device's first request: the series starts at time 0)."""
        self.queue = Level(Bins(width))

    # --- the queue -----------------------------------------------------------------------
    def submit(self, req: IORequest) -> None:
        """A request arrives at the device (its arbitration queue)."""
        now = self.env.now
        req.stamp("queued", now)
        s = self.slot(req.guest)
        self._advance(now)
        self._waiting[s] += 1
        self._waiters.add(s)
        self.requests[s] += 1
        self.bytes[s] += req.size
        self.policy.push(req)
        self._dispatch()
        self._sample(now)

    def _dispatch(self) -> None:
        now = self.env.now
        while self.busy < self.channels:
            req = self.policy.pop(now)
            if req is None:
                break
            self._start(req, now)
        if len(self.policy) and self.busy < self.channels and self._retry is None:
            t = self.policy.next_eligible(now)
            if t is not None:  # requests held back by a rate cap: ask again then
                self._retry = self.env.call_later(t - now, self._on_retry)

    def _on_retry(self, _ev) -> None:
        self._retry = None
        self._dispatch()
        self._sample(self.env.now)

    def _start(self, req: IORequest, now: int) -> None:
        self._advance(now)
        s = self._slot[req.guest]
        self._waiting[s] -= 1
        if not self._waiting[s]:
            self._waiters.discard(s)
        self._serving[s] += 1
        self._holders.add(s)
        self.busy += 1
        req.stamp("service_start", now)
        cycles = max(1, int(round(self._seconds(req, self.rng) * self.freq)))
        self.env.call_later(cycles, lambda _ev: self._finish(req))

    def _finish(self, req: IORequest) -> None:
        now = self.env.now
        self._advance(now)
        s = self._slot[req.guest]
        self._serving[s] -= 1
        if not self._serving[s]:
            self._holders.discard(s)
        self.busy -= 1
        self.completed += 1
        req.stamp("service_end", now)
        self._dispatch()
        self._sample(now)
        if self.coalesce:
            self._hold(req)
        elif req.on_done is not None:
            req.on_done(req)

    def _hold(self, req: IORequest) -> None:
        """Hold ``req``'s completion until the coalescing window ends (opening one)."""
        self._held.append(req)
        if len(self._held) == 1:
            self.env.call_later(self.coalesce, self._release)

    def _release(self, _ev) -> None:
        held, self._held = self._held, []
        for req in held:
            if req.on_done is not None:
                req.on_done(req)

    # --- results -----------------------------------------------------------------------
    def busy_cycles(self) -> int:
        """Channel-cycles busy from time 0 to now (exact; :meth:`utilization` divides it)."""
        self._advance(self.env.now)
        return self._busy_area

    def utilization(self) -> float:
        """Mean fraction of channels busy from time 0 to now."""
        return self.busy_cycles() / max(self.env.now * self.channels, 1)

    def contention(self) -> dict[int, dict[int, float]]:
        """The contention matrix: seconds each guest's requests waited (rows) while each
        guest's requests held the device's channels (columns), up to now.

        Cell (a, b) is the time integral of (requests of guest a waiting) x (channels
        guest b holds) / channels. On a device that never idles with requests waiting,
        a row sums to all of the guest's waiting; the diagonal is a guest waiting behind
        its own requests."""
        self._advance(self.env.now)  # the waits under way count up to now
        g = self.guests()
        c = self.channels * self.freq
        return {
            a: {b: self._behind[self._slot[a]][self._slot[b]] / c for b in g} for a in g
        }
