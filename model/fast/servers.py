"""Servers and their workers at the fast level: the requests of a serving guest.

A :class:`Server` has the exact level's arrival stream (the same seed; a closed loop's
users think, send and wait as there), accept queue,
backlog and workers (bound to vCPUs as the exact level shares them out); a
:class:`Worker` draws each request's plan (:mod:`model.fast.plans`) from the stream the
exact program draws from, runs its stretches as bursts (:mod:`model.fast.engine`) and
waits for its I/O. A request's latency splits into the exact level's parts
(:mod:`model.app.requests`), adding up to it exactly; under contention the split is the
fast level's own (its vCPUs wait for pCPUs first come, first served), and at 72% busy
the mean ``worker_wait``, ``pcpu_wait`` and ``run_queue`` differed from the exact level's by
up to 39%.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ..app.arrivals import NO_SIZE
from ..app.requests import PART, WAIT_PART, AppLog, AppRequest, cpu_parts
from ..categories import (
    N_CATEGORIES,
)
from ..io.paths import PATHS, EmulatedPath
from ..io.requests import IORequest
from .calibrate import CalibrationError, backend_units, stage_key
from .engine import Burst, Cpu, Work

_USER, _KERNEL, _WALK, _VIRT = PART["user"], PART["kernel"], PART["page_walk"], PART["virt"]
_PCPU, _RUNQ, _RECEIVE = PART["pcpu_wait"], PART["run_queue"], PART["receive"]
_BLOCKED = PART["vcpu_blocked"]
_SUBMIT, _WAKE, _TO_DEVICE, _ANSWER, _TAKE, _RESUME = range(6)  # calibrate.STAGE_NAMES


class Server:
    """The requests of one serving guest at the fast level (see the module).

    Parameters
    ----------
    host : model.fast.host.FastHost
    guest : model.fast.host.Guest
    """

    def __init__(self, host, guest) -> None:
        self.host, self.guest = host, guest
        self.env = host.env
        self.log: AppLog = host.app_log
        self.book = guest.book
        self.params = guest.params
        self.queue: deque[AppRequest] = deque()
        self.idle: list[Worker] = []
        self.workers: list[Worker] = []
        n = len(guest.cpus)
        for i, cpu in enumerate(guest.cpus):  # shared out as the exact level does
            mine = guest.workers // n + (1 if i < guest.workers % n else 0)
            for _ in range(mine):
                w = Worker(self, cpu, guest.rngs[i])
                self.workers.append(w)
                self.idle.append(w)
        #: the guest has several vCPUs: its accept queue is shared between them, so what
        #: one does to it happens at its time (no burst's end runs ahead of the clock)
        self.shared = n > 1
        self._next_cpu = 0
        self.sent = 0
        self._freq = host.freq
        a = guest.arrivals
        if a.open:
            self._gaps = a.gaps(guest.arrival_rng)
            self._t = 0.0
            self._schedule()
        else:  # closed loop: each user thinks, sends, waits for the answer (as the exact)
            self._think_s = a.think_ms / 1e3
            for user in range(a.users):
                self._think(user, 0)

    # --- arrivals ---------------------------------------------------------------------------
    def _schedule(self) -> None:
        n = self.guest.requests
        nxt = None if n is not None and self.sent >= n else next(self._gaps, None)
        if nxt is None:
            return
        gap, kind, size = nxt
        self.sent += 1
        self._t += gap
        at = int(round(self._t * self._freq))
        self.env.call_later(max(at - self.env.now, 0), lambda _e: self._arrive_open(kind, size))

    def _think(self, user: int, now: int) -> None:
        """Closed loop: ``user`` sends its next request after a think time from ``now``
        (its answer or drop, which may be ahead of the clock)."""
        n = self.guest.requests
        if n is not None and self.sent >= n:
            return
        self.sent += 1
        mean = self._think_s
        gap = self.guest.arrival_rng.exponential(mean) if mean > 0 else 0.0
        at = now + int(round(gap * self._freq))
        self.env.call_later(max(at - self.env.now, 0), lambda _e: self._arrive(0, NO_SIZE, user))

    def _arrive_open(self, kind: int, size: int) -> None:
        self._arrive(kind, size)
        self._schedule()

    def _arrive(self, kind: int, size: int, user: int = -1) -> None:
        """A request's packet reaches the NIC now."""
        now = self.env.now
        g = self.guest
        self.log.arrived(g.dom, now)
        req = AppRequest(self.host.new_app_id(), g.dom, kind, size, now, user)
        cpu = g.cpus[self._next_cpu % len(g.cpus)]
        self._next_cpu += 1
        rx = self.host.new_io(g, "nic", self.params["request_bytes"], False, now)
        rx.stamp("ring", now)
        rx.on_done = lambda r: self.host.answer(r, True, lambda t: self._answered(req, rx, cpu, t))
        g.devices["nic"].submit(rx)
        self.host.in_flight[req.id] = req

    def _answered(self, req: AppRequest, rx: IORequest, cpu: Cpu, now: int) -> None:
        """The request's packet reached the guest: its vCPU takes it (``take`` into its
        handler), then it waits for a worker."""
        req.parts[_RECEIVE] = now - req.arrival
        rs0 = cpu.runstate_at(now)
        work, take = self.book.handler("nic", False)

        def received(t: int) -> None:
            t += take
            self.host.complete(rx, t)
            req.received = t
            rs = cpu.runstate_at(t)
            req.parts[_RUNQ] += rs[0] - rs0[0]
            req.parts[_PCPU] += rs[1] - rs0[1]
            req.parts[_BLOCKED] += rs[2] - rs0[2]
            if t > self.env.now and self.shared:  # another vCPU's workers may look first
                self.env.call_later(t - self.env.now, lambda _e: self._queue(req, cpu))
            else:  # only this vCPU's workers look at the queue, after this handler
                self._queue(req, cpu)

        # its worker runs after all of the handler (an emulated NIC's status read too)
        g = self.guest
        cpu.post(Burst(work, self.host.after_status(g, "nic", cpu, None)
                       if g.emulated["nic"] else None, begin=received))

    def _queue(self, req: AppRequest, cpu: Cpu) -> None:
        """``req`` joins the accept queue (or is dropped), and wakes an idle worker,
        preferably one of ``cpu``'s."""
        if len(self.queue) >= self.params["backlog"]:
            self.log.dropped(req)
            del self.host.in_flight[req.id]
            if req.user >= 0:  # the user hears nothing: it tries again after thinking
                self._think(req.user, req.received)
            return
        self.queue.append(req)
        if self.idle:
            pick = next((w for w in self.idle if w.cpu is cpu), self.idle[0])
            self.idle.remove(pick)
            pick.take()


class Worker:
    """A worker process of a fast-level server: takes requests, runs their stretches and
    waits for their I/O."""

    __slots__ = ("server", "cpu", "rng", "req", "stretches", "k", "phases", "pending",
                 "blocked", "answered", "rs0", "kind", "rs_blocked")

    def __init__(self, server: Server, cpu: Cpu, rng: np.random.Generator) -> None:
        self.server, self.cpu, self.rng = server, cpu, rng
        self.req: AppRequest | None = None

    def take(self) -> None:
        """Take the next request of the accept queue when the vCPU gets to it."""
        self.cpu.post(Burst(self.server.book.nothing, None, begin=self._accept))

    def _accept(self, now: int) -> None:
        s = self.server
        if not s.queue:  # another worker took it meanwhile
            self.req = None
            s.idle.append(self)
            return
        req = self.req = s.queue.popleft()
        req.start = now
        req.parts[PART["worker_wait"]] = now - req.received
        g = s.guest
        self.phases = g.plan(req.size, self.rng)
        n = len(self.phases) + 1
        samples = s.book.stretches.get(n)
        if samples is None:
            raise CalibrationError(
                f"guest {g.name}: a request with {n} stretches, which its calibration run "
                f"never served (it saw {sorted(s.book.stretches)})")
        self.stretches = samples[int(g.cost_rng.random() * len(samples))]  # one measured
        self.k = 0
        self._stretch()

    def _stretch(self) -> None:
        """Run stretch ``k`` next on the vCPU, up to its I/O submission (its last ``post``
        cycles, until the worker blocks, are its tail)."""
        path, tail, _, _ = self.stretches[self.k]
        # its end (the request done, the next taken) is the worker's own with one vCPU
        last = self.k == len(self.phases) and not self.server.shared
        self.cpu.bursts.appendleft(Burst(path, self._after, tail=tail, local=last))

    def _after(self, now: int) -> None:
        _, _, parts, post = self.stretches[self.k]
        req = self.req
        p = req.parts
        p[_USER] += parts[0]
        p[_KERNEL] += parts[1]
        p[_WALK] += parts[2]
        p[_VIRT] += parts[3]
        s = self.server
        if self.k == len(self.phases):  # the last: done, and the next request
            req.end = now
            s.log.add(req)
            del s.host.in_flight[req.id]
            if req.user >= 0:
                s._think(req.user, now)
            self.req = None
            if s.queue:
                self.cpu.bursts.appendleft(Burst(s.book.nothing, None, begin=self._accept))
            else:
                s.idle.append(self)
            return
        phase = self.phases[self.k]
        self.kind = phase[0][0]
        self.pending = len(phase)
        self._issue(0, now, None)

    def _issue(self, i: int, now: int, rs_issued) -> None:
        """Issue the phase's I/O from its ``i``-th on, now; one on an emulated device
        holds the vCPU for its register accesses (from the runstate ``rs_issued``) and
        issues the rest when it is released. Then the worker blocks, after the stretch's
        ``post`` cycles."""
        s = self.server
        host, g, phase = s.host, s.guest, self.phases[self.k]
        while i < len(phase):
            cls, size, write = phase[i]
            # the first issued as the stretch's submission work began
            ahead = s.book.submit(cls, write, self.k, self.stretches) if i == 0 else 0
            i += 1
            io = host.new_io(g, cls, size, write, now - ahead)
            if g.emulated[cls]:
                rs = rs_issued or self.cpu.runstate_at(now)
                host.submit_emulated(g, io, self._io_answered, self.cpu,
                                     lambda t, i=i, rs=rs: self._issue(i, t, rs))
                return
            host.submit(g, io, self._io_answered)
        post = self.stretches[self.k][3]
        self.blocked = now + post  # it blocks after ``post`` cycles, running all that while
        run, wait, held = self.cpu.runstate_at(now)
        if rs_issued is not None:  # held by its submissions meanwhile
            self.req.parts[_BLOCKED] += held - rs_issued[2]
        self.rs_blocked = (run + post, wait, held)

    def _io_answered(self, io: IORequest, now: int) -> None:
        """One of the phase's I/O requests reached the guest: its vCPU handles it (takes
        it ``take`` into the handler; the worker runs again after ``path``)."""
        self.answered = now
        self.rs0 = self.cpu.runstate_at(now)
        g, cls, write = io.tag
        path, tail, take = self.server.book.completion(cls, write)
        host = self.server.host
        if g.emulated[cls]:  # its status reads go to the device model (at their time)
            self.cpu.post(Burst(path, host.after_status(g, cls, self.cpu, self._handled),
                                tail=tail, begin=lambda t: host.complete(io, t + take)))
            return
        self.cpu.post(Burst(path, self._handled, tail=tail, local=True,  # the worker's own
                            begin=lambda t: host.complete(io, t + take)))

    def _handled(self, now: int) -> None:
        self.pending -= 1
        if self.pending == 0:
            self._resume(now)

    def _resume(self, now: int) -> None:
        """The phase's I/O has all been answered and handled: the worker runs again.
        The wait splits as at the exact level: the device's part until the last answer
        (if it came after the block), and what the vCPU did after (from the block if
        the answer came first)."""
        p = self.req.parts
        if self.answered > self.blocked:
            p[WAIT_PART[self.kind]] += self.answered - self.blocked
            rs0 = self.rs0
        else:
            rs0 = self.rs_blocked
        rs = self.cpu.runstate_at(now)
        p[_RUNQ] += rs[0] - rs0[0]
        p[_PCPU] += rs[1] - rs0[1]
        p[_BLOCKED] += rs[2] - rs0[2]
        self.k += 1
        self._stretch()


class CostBook:
    """The works of one guest entry's costs (:class:`model.fast.calibrate.GuestCosts`),
    made once and shared by its replicas: its stretches, its handlers of answered I/O, its
    driver-domain work and its world switch.

    Parameters
    ----------
    engine : model.fast.engine.Engine
    costs : GuestCosts
    paths : dict
        Device class -> the I/O path of the entry's attachment.
    switch : numpy.ndarray
        Cycles by category of a world switch to one of its vCPUs (its mode's).
    io_params : model.io.system.IOParams
        The I/O software's path lengths (the units of the driver domain's work).
    """

    def __init__(self, engine, costs, paths: dict[str, str], switch: np.ndarray,
                 io_params) -> None:
        self.engine, self.costs = engine, costs
        self.nothing = engine.work(np.zeros(N_CATEGORIES, np.int64))
        self.switch = engine.work(np.rint(switch + costs.cold))
        per_io = engine.work(np.rint(costs.per_io))
        self._per_io = per_io
        self._handlers: dict = {}
        self._dd: dict = {}
        self._stages: dict[tuple[str, bool], tuple[int, ...]] = {}
        self._paths, self._io_params = paths, io_params
        #: by device class: whether the guest's vCPU waits for the device model on each
        #: register access (an emulated device)
        self.emulated = {cls: isinstance(PATHS[p], EmulatedPath) for cls, p in paths.items()}
        self.stretches: dict[int, list] = {}
        for n, table in costs.stretches.items():
            rows = []
            for sample in table:
                row = []
                for r in sample:
                    c = np.asarray(r[:N_CATEGORIES], np.int64)
                    w = engine.work(c)
                    post = min(int(r[N_CATEGORIES]), w.total)
                    path, tail = engine.split(w, w.total - post) if post else (w, None)
                    row.append((path, tail, cpu_parts(c), post))
                rows.append(tuple(row))
            self.stretches[n] = rows

    def access(self, start: bool) -> tuple:
        """The device model's work for one register access of an emulated device's
        submission (``start``: the doorbell, which also starts the request): what the
        guest's vCPU waits for (the calibrated round trip), and the rest (a tail)."""
        p = self._io_params
        return self._unit_work(("access", start), p.device_model_access
                               + (p.device_model_request if start else 0))

    def status(self) -> tuple:
        """The same for one access of the guest's interrupt handler to an emulated
        device's status registers."""
        return self._unit_work(("status",), self._io_params.device_model_access)

    def _unit_work(self, key: tuple, units: int) -> tuple:
        """The driver domain's work of ``units`` instructions of backend work, split at
        the calibrated round trip of one register access (what the guest waits for),
        once per ``key``."""
        out = self._dd.get(key)
        if out is None:
            w = self.engine.work(np.rint(self.costs.dom0_unit * units), self.costs.dom0_behalf)
            trip = int(round(self.costs.trip))
            out = self._dd[key] = self.engine.split(w, trip) if 0 < trip < w.total \
                else (w, None)
        return out

    def stage(self, cls: str, write: bool) -> tuple[int, ...]:
        """The calibrated stage durations of its I/O of device class ``cls`` in that
        direction (:data:`model.fast.calibrate.STAGE_NAMES`, whole cycles; 0 if none)."""
        key = (cls, write)
        out = self._stages.get(key)
        if out is None:
            v = self.costs.stages.get(stage_key(cls, write))
            out = self._stages[key] = (tuple(int(round(x)) for x in v) if v is not None
                                       else (0,) * 6)
        return out

    def submit(self, cls: str, write: bool, k: int, stretches) -> int:
        """How long before the end of stretch ``k``'s path its I/O was issued: the
        frontend's work; on an emulated device, the guest's share of the calibrated
        register accesses (its exits and returns, which the stretch runs before the
        first access) too."""
        path = stretches[k][0]
        st = self.stage(cls, write)
        ahead = st[_SUBMIT]
        if self.emulated[cls]:
            ahead = max(st[_TO_DEVICE] - self._io_params.emulated_accesses
                        * int(round(self.costs.trip)), 0)
        return min(ahead, path.total)

    def _handler(self, cls: str, write: bool, path: int) -> tuple:
        key = (cls, write, path)
        out = self._handlers.get(key)
        if out is None:
            w = self._per_io
            take = min(self.stage(cls, write)[_TAKE], w.total)
            a, b = self.engine.split(w, min(path, w.total)) if path < w.total else (w, None)
            out = self._handlers[key] = (a, b, take)
        return out

    def handler(self, cls: str, write: bool) -> tuple[Work, int]:
        """A packet received: (the handler's work, the take)."""
        return self._per_io, min(self.stage(cls, write)[_TAKE], self._per_io.total)

    def completion(self, cls: str, write: bool) -> tuple:
        """A worker's I/O answered: (the handler until the worker runs, its tail, the
        take)."""
        st = self.stage(cls, write)
        return self._handler(cls, write, st[_TAKE] + st[_RESUME])

    def backend(self, cls: str, write: bool, inbound: bool, answer: bool) -> tuple:
        """The driver domain's work for one request of ``cls``: taking it (``answer``
        false) or answering it: (its path, its tail), each a work."""
        key = (cls, write, inbound, answer)
        out = self._dd.get(key)
        if out is None:
            q, a, _ = backend_units(self._paths[cls], self._io_params, inbound, write)
            units = a if answer else q
            w = self.engine.work(np.rint(self.costs.dom0_unit * units), self.costs.dom0_behalf)
            st = self.stage(cls, write)
            path = st[_ANSWER] if answer else st[_TO_DEVICE]
            out = self._dd[key] = self.engine.split(w, path) if 0 < path < w.total \
                else (w, None)
        return out
