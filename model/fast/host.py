"""A host at the fast level: built from a scenario, run, and recorded as a
:class:`model.record.RunRecord` that every table, summary and graph reads as they read
the exact level's.

The record's figures, and where they come from:

- the cycle ledger, the driver domain's cycles on each guest's behalf, each vCPU's busy
  time per interval, the schedule (with ``record.trace: true``), world switches (a pCPU
  taking a vCPU other than the one it ran last): counted as the bursts run
  (:mod:`model.fast.engine`);
- the devices, the I/O requests and their stages, the application requests and their
  parts: simulated as at the exact level (the same :class:`model.io.devices.Device`,
  request logs and parts);
- transitions (by kind and label) and vCPU counters (instructions, TLB statistics, ...):
  estimates, the calibration's counts per request served (a guest's) and per I/O request
  (the driver domain's), times the requests and I/O requests of the measured period,
  rounded, and shared out evenly over the guest's vCPUs; the engine block's
  ``instructions`` is 0 (none is simulated); ``timers_fired`` is 0 (a fast-level guest
  programs no timer).
"""

from __future__ import annotations

import time
from array import array
from collections import deque
from collections.abc import Callable

import numpy as np

from ..app.requests import AppLog
from ..clock import Environment, run_to
from ..hardware import load_profile
from ..host import entity_rng
from ..io.paths import PATHS
from ..io.requests import IORequest, RequestLog
from ..io.system import IOParams
from ..modes import MODES, is_modified
from ..record import DomainTable, RunRecord
from ..series import Bins, Level
from .calibrate import CalibrationError, costs_of, world_switch
from .engine import Burst, Cpu, Engine
from .plans import PLANS, packet_bytes, shapes
from .servers import CostBook, Server


class Guest:
    """A serving guest of the fast level: its vCPUs, devices, costs and workload."""

    def __init__(self, host: FastHost, spec, name: str, dom: int, book: CostBook,
                 first_uid: int) -> None:
        self.name, self.dom, self.spec, self.book = name, dom, spec, book
        seed = host.seed
        self.cpus = [host.engine.add(Cpu(host.engine, first_uid + i, dom, f"{name}.v{i}",
                                         allowed=spec.pinning))
                     for i in range(spec.vcpus)]
        for cpu in self.cpus:
            cpu.switch = book.switch
        self.rngs = [entity_rng(seed, name, i) for i in range(spec.vcpus)]  # the pools'
        self.arrival_rng = entity_rng(seed, f"arrivals:{name}", 0)
        self.cost_rng = entity_rng(seed, f"fast:{name}", 0)
        params = spec.workload.params
        self.params = {k: getattr(params, k) for k in type(params).model_fields}
        self.arrivals = params.arrivals
        self.workers = params.workers
        self.requests = params.requests
        self.devices, self.paths = host.attachments(spec)
        self.emulated = book.emulated
        nic = self.devices.get("nic")
        self._packet = packet_bytes(getattr(nic, "max_request_bytes", None))
        self._plan = PLANS[spec.workload.profile]

    def plan(self, size: int, rng):
        return self._plan(self.params, size, rng, self._packet)


class FastHost:
    """A scenario's host at the fast level (build it with :func:`build_fast`)."""

    def __init__(self, s, seed: int | None = None) -> None:
        from ..scenario.build import BuildContext, guest_names, make_devices
        from ..scenario.checks import DRIVER_DOMAIN

        self.s = s
        self.seed = s.seed if seed is None else seed
        self.hw = load_profile(s.hardware)
        self.freq = self.hw.freq_hz
        self.env = Environment()
        replicas = guest_names(s)
        dd = s.driver_domain if s.needs_driver_domain else None
        n_vcpus = sum(s.guests[i].vcpus for _, i in replicas) + (dd.vcpus if dd else 0)
        self.engine = Engine(self.env, s.host.pcpus, n_vcpus)
        self.app_log = AppLog(keep=s.record.requests)
        self.io_log = RequestLog(s.record.requests)
        self.in_flight: dict[int, object] = {}
        self.live: dict[int, IORequest] = {}
        self.issued = 0
        self._app_ids = self._io_ids = 0
        self.io_p = IOParams()
        names, modes = [], []
        self.dd_cpus: list[Cpu] = []
        self.dd_dom = None
        self._dd_queue: deque[Burst] = deque()
        if dd is not None:
            self.dd_dom = 1
            self.dd_cpus = [self.engine.add(Cpu(self.engine, i, 1, f"{DRIVER_DOMAIN}.v{i}",
                                                self._dd_queue, dd.pinning))
                            for i in range(dd.vcpus)]
            names.append(DRIVER_DOMAIN)
            modes.append(dd.mode)
        ids: dict[str, tuple[int, ...]] = {}
        plan = []
        for name, i in replicas:
            dom = len(names) + 1
            names.append(name)
            modes.append(s.guests[i].mode)
            ids[s.guests[i].name] = (*ids.get(s.guests[i].name, ()), dom)
            plan.append((name, i, dom))
        self.domains = DomainTable.of(list(range(1, len(names) + 1)), names,
                                      [MODES[m].name for m in modes])
        ctx = BuildContext(ids, {dom: s.guests[i].weight for _, i, dom in plan}, self.freq)
        self.devices = {}
        for k, d in enumerate(make_devices(s, self.env, ctx)):
            d.index = k
            d.rng = entity_rng(self.seed, f"device:{d.name}", 0)
            d.record_queue(self.width)
            self.devices[d.name] = d
        costs = {i: costs_of(s, i) for i in sorted({i for _, i in replicas})}
        for i, c in costs.items():  # every kind of request has measured ones to replay
            g = s.guests[i]
            nic = self.attachments(g)[0].get("nic")
            want = shapes(g.workload.profile, dict(g.workload.params),
                          packet_bytes(getattr(nic, "max_request_bytes", None)),
                          g.workload.params.arrivals.sizes())
            if not want <= set(c.stretches):
                raise CalibrationError(
                    f"guest entry {g.name!r}: its calibration run ({c.requests} requests) "
                    f"served none with {sorted(want - set(c.stretches))} stretches (it saw "
                    f"{sorted(c.stretches)}): a request kind too rare to measure "
                    "(miss_ratio? a trace's largest requests?); run it with fidelity: exact")
        books = {i: CostBook(self.engine, c, self.attachments(s.guests[i])[1],
                             world_switch(s.guests[i].mode, self.hw,
                                          is_modified(s.guests[i].os)), self.io_p)
                 for i, c in costs.items()}
        if dd is not None:  # the driver domain's world switch, and its cold cost (the mean)
            sw = self.engine.work(np.rint(world_switch(dd.mode, self.hw) + np.mean(
                [c.dom0_cold for c in costs.values()], axis=0)))
            for cpu in self.dd_cpus:
                cpu.switch = sw
        self.guests: list[Guest] = []
        uid = len(self.dd_cpus)
        for name, i, dom in plan:
            g = Guest(self, s.guests[i], name, dom, books[i], uid)
            uid += len(g.cpus)
            self.guests.append(g)
        for cpu in self.engine.cpus:
            cpu.busy = Level(Bins(self.width))
        if s.record.trace:  # the schedule: which vCPU ran on which pCPU when
            self.engine.segments = array("q")
        self.servers = [Server(self, g) for g in self.guests]
        self.start = 0
        self._snap = None
        self._wall = 0.0

    @property
    def width(self) -> int:
        """The time series' interval, cycles."""
        return int(round(self.s.record.interval * self.freq))

    def attachments(self, spec) -> tuple[dict, dict]:
        """Guest entry ``spec``'s devices and I/O paths, by device class (the first of
        each class, as the exact level gives its workload)."""
        devices, paths = {}, {}
        for a in spec.devices:
            dev = self.devices[a.device]
            devices.setdefault(dev.kind, dev)
            paths.setdefault(dev.kind, a.path or MODES[spec.mode].default_path)
        return devices, paths

    # --- I/O ------------------------------------------------------------------------------
    def new_app_id(self) -> int:
        self._app_ids += 1
        return self._app_ids - 1

    def new_io(self, g: Guest, cls: str, size: int, write: bool, issued: int) -> IORequest:
        dev = g.devices[cls]
        req = IORequest(self._io_ids, g.dom, dev.index, size, write, issued)
        req.tag = (g, cls, write)
        self._io_ids += 1
        self.issued += 1
        self.live[req.id] = req
        return req

    def _dd_burst(self, g: Guest, work: tuple, then, begin=None) -> None:
        """Driver-domain work for guest ``g`` (its path and tail) on the backends' queue."""
        self._dd_queue.append(Burst(work[0], then, begin, g.dom, work[1]))
        self.engine.offer(self.dd_cpus)

    def submit(self, g: Guest, req: IORequest, answered) -> None:
        """A guest's I/O request, published on its ring and notified now: the backend
        takes it, the device serves it, the backend answers; ``answered(req, now)``."""
        now = self.env.now
        req.stamp("ring", now)
        req.stamp("notified", now)
        req.on_done = lambda r: self.answer(r, False, lambda t: answered(r, t))
        _, cls, write = req.tag
        dev = g.devices[cls]
        if not PATHS[g.paths[cls]].via_driver_domain:
            dev.submit(req)
            return
        wake = g.book.stage(cls, write)[1]
        self._dd_burst(g, g.book.backend(cls, write, False, False), lambda t: dev.submit(req),
                       begin=lambda t: req.stamp("backend", t + wake))

    def submit_emulated(self, g: Guest, req: IORequest, answered, cpu: Cpu, resumed) -> None:
        """A guest's I/O request on an emulated device, issued now by its vCPU ``cpu``:
        its register accesses go to the device model one after the other, ``cpu`` held
        meanwhile, the last one starting it (then ``resumed(t)``). The device serves it,
        the device model answers: ``answered(req, now)``."""
        req.on_done = lambda r: self.answer(r, False, lambda t: answered(r, t))
        _, cls, write = req.tag
        self.engine.hold(cpu)
        self._access(g, cls, write, 1, req, cpu, resumed)

    def _access(self, g: Guest, cls: str, write: bool, k: int, req: IORequest, cpu: Cpu,
                resumed) -> None:
        """The device model emulates register access ``k`` of ``req``'s submission; the
        last one (the doorbell) starts the request on the device, and releases ``cpu``."""
        last = k == self.io_p.emulated_accesses

        def answered(t: int) -> None:
            if not last:
                self._access(g, cls, write, k + 1, req, cpu, resumed)
                return
            req.stamp("backend", t)
            g.devices[cls].submit(req)
            resumed(t)  # (which may hold it for the next submission)
            self.engine.release(cpu)

        self._dd_burst(g, g.book.access(last), answered)

    def after_status(self, g: Guest, cls: str, cpu: Cpu, then):
        """For the end of guest ``g``'s interrupt handler for an answer of an emulated
        device of class ``cls``: what reads and acknowledges the device's status (each
        access a trip to the device model, ``cpu`` held: after the handler took the
        answer, before it ends), then calls ``then(t)`` (if not None)."""
        def trip(k: int) -> None:
            def answered(t: int) -> None:
                if k < self.io_p.status_accesses:
                    trip(k + 1)
                    return
                if then is not None:
                    then(t)
                self.engine.release(cpu)

            self._dd_burst(g, g.book.status(), answered)

        def handler(t: int) -> None:  # the vCPU's handler: its first status access
            self.engine.hold(cpu)
            trip(1)

        return handler

    def answer(self, req: IORequest, inbound: bool, then) -> None:
        """The device finished ``req``: the backend answers the guest, then ``then(now)``."""
        g, cls, write = req.tag

        def answered(t: int) -> None:
            req.stamp("response", t)
            then(t)

        if not PATHS[g.paths[cls]].via_driver_domain:
            answered(self.env.now)
            return
        self._dd_burst(g, g.book.backend(cls, write, inbound, True), answered)

    def complete(self, req: IORequest, now: int) -> None:
        """The guest has taken ``req``'s answer (at ``now``)."""
        req.stamp("completed", now)
        req.done = True
        del self.live[req.id]
        self.io_log.add(req)

    # --- running ----------------------------------------------------------------------------
    def run(self, seconds: float, warmup: float | None = None,
            progress: Callable[[float], None] | None = None) -> None:
        """Run ``seconds`` of simulated time, the first ``warmup`` left out of the
        statistics; ``progress`` is called with the fraction done, a hundred times."""
        limit = int(round(seconds * self.freq))
        if warmup:
            self.start = int(round(warmup * self.freq))
            self.app_log.start = self.io_log.start = self.start
            ev = self.env.timeout(self.start)
            ev.callbacks.append(lambda _e: self._take_snapshot())
        t = time.perf_counter()
        run_to(self.env, limit, progress)
        self._wall += time.perf_counter() - t
        self.engine.settle(self.env.now)
        self.engine.close(self.env.now)

    def _take_snapshot(self) -> None:
        now = self.env.now
        self.engine.settle(now)
        self._snap = {
            "ledger": self.engine.ledger(),
            "behalf": dict(self.engine.behalf),
            "switches": self.engine.switches,
            "totals": {k: tuple(v) for k, v in self.io_log.totals.items()},
            "devices": {d.index: (d.busy_cycles(), d.completed, d.contention(),
                                  d.queue.area_at(now)) for d in self.devices.values()},
        }

    def record(self) -> RunRecord:
        """The run's :class:`RunRecord` (see the module)."""
        from .record import record_fast

        return record_fast(self)


def build_fast(s, seed: int | None = None) -> FastHost:
    """The host of scenario ``s`` at the fast level (its calibrations measured, or read
    from the cache, first)."""
    return FastHost(s, seed)
