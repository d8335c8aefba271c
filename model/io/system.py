"""The I/O system of a host: devices, attachments, and the driver domain's backends.

A guest reaches a device through an :class:`Attachment`, whose I/O path (a strategy
of :mod:`model.io.paths`: direct, passthrough, the pv split driver, emulated, virtio,
vhost, hosted) decides every stage. Every step that other entities can observe (publishing on
a ring, a notification, a device submission, taking responses) is an ``Op.IO``
instruction, performed by the hypervisor at its exact simulated time; the work around
it is ordinary guest or driver-domain instructions on the CPU. Each request records
the time of each stage (:mod:`model.io.requests`). The backends' work waits in an inbox
(:class:`model.io.inbox.BackendInbox`) that the I/O system owns.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from itertools import count

import numpy as np

from ..categories import HYPERVISOR, N_CATEGORIES, TRANSITION
from ..errors import ConfigError, valid_choices
from ..isa import Chunk, Op
from ..liveness import State
from ..modes import MODES
from ..rules import transition_of
from ..vcpu import Behalf, VCpu
from .devices import Device
from .inbox import BackendInbox, Work
from .paths import PATHS, IOPath, io_op, work
from .requests import STAGES, IORequest, RequestLog
from .ring import Ring

_QUEUED, _SERVICE_END = STAGES.index("queued"), STAGES.index("service_end")


def path_problem(mode: str, path: str) -> str | None:
    """Why a guest in ``mode`` cannot use I/O ``path`` (None if it can):
    ``MODES[mode].path_problem(path)``.

    Examples
    --------
    >>> path_problem("hvm", "virtio") is None, path_problem("full", "pv")
    (True, 'the pv split driver needs a pv guest (a modified kernel with netfront/blkfront)')
    """
    return MODES[mode].path_problem(path)


@dataclass(frozen=True)
class IOParams:
    """Path lengths (instructions) of the I/O software, all estimates of 2.6-era Linux,
    Xen's blkback/netback and QEMU, and the ring sizes (from the headers)."""

    block_layer: int = 1500  # guest VFS and block layer before the driver
    native_driver: int = 800  # a native driver's submission
    frontend: int = 600  # blkfront/netfront: fill a ring slot, grant the pages
    completion: int = 500  # the guest's completion handling, per request
    backend_request: int = 2500  # blkback: map grants, build a bio, submit to the driver
    backend_response: int = 1200  # blkback: end the bio, unmap grants, push the response
    emulated_accesses: int = 6  # register accesses per request of an emulated controller
    status_accesses: int = 2  # accesses by the guest's interrupt handler (status, ack)
    device_model_access: int = 15000  # QEMU: upcall, wake the process, decode, emulate, reply
    device_model_request: int = 6000  # QEMU: walk the guest's descriptors, submit the I/O
    virtio_backend: int = 3500  # QEMU virtio backend per request
    vhost_backend: int = 1500  # vhost (in-kernel) per request
    netback_rx_copy: int = 1500  # netback: grant-copy a received packet into the guest
    blk_ring_slots: int = 32  # blkif, one ring page
    net_ring_slots: int = 256  # netif tx/rx, one page
    virtqueue_slots: int = 256  # QEMU's default queue size


class IOSystem:
    """The I/O of one host: devices, attachments, the driver domain's backends.

    Parameters
    ----------
    host : Host
        The host whose hypervisor performs the I/O actions.
    params : IOParams, optional
    keep_requests : bool
        Keep every completed request in :attr:`log` (per-request table).
    """

    def __init__(self, host, params: IOParams | None = None, keep_requests: bool = True):
        self.host = host
        self.env = host.env
        self.hv = host.hypervisor
        self.hv.add_wake_source(self)
        self.p = params or IOParams()
        self.devices: dict[str, Device] = {}
        self.log = RequestLog(keep_requests)
        self.issued = 0
        self.live: dict[int, IORequest] = {}
        self._ids = count()
        self.driver_domain = None
        self.backend_vcpus: list[VCpu] = []
        self.inbox = BackendInbox()  # the driver domain's work
        self.attachments: dict[tuple[str, str], Attachment] = {}
        #: (guest, statistic, label) -> count: exits, hypercalls and emulations the I/O
        #: paths charge without executing an instruction for them (see Attachment)
        self.transitions: dict[tuple[str, str, str], int] = {}
        self.by_id: dict[int, Attachment] = {}
        #: attachments whose ring has published requests the backend has not taken, and
        #: those whose request event a backend must re-arm before it sleeps: a poll visits
        #: only these, not every ring of the host
        self._ready: set[int] = set()
        self._unarmed: set[int] = set()
        reg = self.hv.register_io
        self.A_BEGIN, self.A_SUBMIT, self.A_TAKE = (
            reg(self._begin),
            reg(self._submit),
            reg(self._take),
        )
        self.A_ACCESS, self.A_POLL, self.A_DEVICE, self.A_RESPOND = (
            reg(self._access),
            reg(self._poll),
            reg(self._device_submit),
            reg(self._respond),
        )
        self.A_STATUS = reg(self._status)
        hw = host.hw
        self.send_cost = _row(
            (
                (TRANSITION, hw.cost("hypercall_entry")),
                (HYPERVISOR, hw.cost("evtchn_send")),
                (TRANSITION, hw.cost("hypercall_exit")),
            )
        )

    # --- configuration ---------------------------------------------------------------------
    def add_device(self, device: Device) -> Device:
        """Add a device; it gets its own random stream from the host's seed and an index."""
        if device.name in self.devices:
            raise ConfigError(f"duplicate device name {device.name!r}")
        device.index = len(self.devices)
        device.rng = self.host.rng(f"device:{device.name}", 0)
        self.devices[device.name] = device
        if self.host.series_width:
            device.record_queue(self.host.series_width)
        return device

    def record_queues(self, width: int) -> None:
        """Every device added so far integrates its queue length per interval of
        ``width`` cycles (those added later do it at the host's series width)."""
        for dev in self.devices.values():
            dev.record_queue(width)

    def set_driver_domain(self, domain) -> None:
        """The domain whose vCPUs run the backends and device models."""
        from ..workloads import enter

        self.driver_domain = domain
        self.backend_vcpus = list(domain.vcpus)

        def backend(ctx):
            yield enter(ctx.kernel, ctx.kernel.spawn())
            yield from self._backend_loop(ctx.vcpu)

        for v in domain.vcpus:
            self.host.start(v, backend, daemon=True)

    def attach(self, domain, device: str, path: str | None = None) -> Attachment:
        """Give ``domain`` access to ``device`` through ``path`` (default by its mode)."""
        if device not in self.devices:
            raise ConfigError(
                f"unknown device {device!r}; {valid_choices(device, self.devices)}"
            )
        mode = domain.mode.kind
        path = path or mode.default_path
        problem = mode.path_problem(path)
        if problem:
            raise ConfigError(f"guest {domain.name!r}: {problem}")
        if PATHS[path].via_driver_domain and self.driver_domain is None:
            raise ConfigError(f"the {path} path needs a driver domain")
        att = Attachment(self, domain, self.devices[device], PATHS[path], len(self.by_id))
        self.attachments[(domain.name, device)] = att
        self.by_id[att.id] = att
        return att

    # --- the guest side ------------------------------------------------------------------
    def new_request(self, att: Attachment, size: int, write: bool, offset: int = -1):
        rid = next(self._ids)
        req = IORequest(rid, att.domain.dom, att.device.index, size, write, -1, offset)
        req.tag = att
        req.on_done = self._device_done
        self.live[rid] = req
        return req

    def _begin(self, vcpu, rid):
        req = self.live[rid]
        req.t[0] = self.env.now
        req.vcpu = vcpu
        self.issued += 1
        return None, False

    def receive(self, att: Attachment, size: int, vcpu: VCpu, then=None) -> IORequest:
        """A packet of ``size`` bytes arrives from the network for ``att``'s guest (now):
        the NIC receives it and the path brings it to ``vcpu``, as it brings a completion
        (the driver domain's backend copies it into a posted buffer and notifies, or the
        device model raises the emulated NIC's interrupt). ``then(req)`` is called when
        the guest has taken it (:meth:`take_answered`)."""
        req = self.new_request(att, size, False)
        req.t[0] = self.env.now
        req.vcpu = vcpu
        req.inbound = True
        req.then = then
        self.issued += 1
        req.stamp("ring", self.env.now)
        att.device.submit(req)
        return req

    def _submit(self, vcpu, rid):
        """The driver hands the request on, as its path does it: to the ring or the
        device. Blocks the vCPU while a ring is full."""
        req = self.live[rid]
        att = req.tag
        return att.io_path.on_submit(self, att, vcpu, req)

    def count(self, att: Attachment, what: tuple[str, str] | None) -> None:
        """Count a transition (statistic, label) of ``att``'s guest (None: none)."""
        if what is not None:
            key = (att.domain.name, *what)
            self.transitions[key] = self.transitions.get(key, 0) + 1

    def _take(self, vcpu, aid):
        """The guest's completion handling: take answered requests, free ring slots."""
        self.take_answered(self.by_id[aid])
        return None, False

    def take_answered(self, att: Attachment) -> None:
        """Complete ``att``'s answered requests to the guest and free their ring slots."""
        now = self.env.now
        if att.ring is not None:
            done = att.ring.take_responses()
            att.ring.final_check_responses()
            for w in att.waiting:  # slots freed: wake blocked submitters
                self.hv.raise_irq(w)
            att.waiting.clear()
        else:
            done, att.answered = att.answered, []
        for req in done:
            self._finish(req, now)

    def _finish(self, req, now):
        req.stamp("completed", now)
        req.done = True
        del self.live[req.id]
        self.log.add(req)
        if req.then is not None:
            req.then(req)

    def _access(self, vcpu, rid):
        """An emulated register access while request ``rid`` is submitted: the vCPU
        waits while the device model runs."""
        req = self.live[rid]
        return self._to_device_model(vcpu, Work.ACCESS, req, req.tag)

    def _status(self, vcpu, aid):
        """An emulated status access (the interrupt handler's, after completion) of
        attachment ``aid``: the vCPU waits while the device model runs."""
        return self._to_device_model(vcpu, Work.STATUS, None, self.by_id[aid])

    def _to_device_model(self, vcpu, kind: Work, req, att):
        self.hv.wait_ioreq(vcpu, att)
        self.count(att, att.access_what)
        self.inbox.put(kind, req, att, vcpu)
        self.wake_backend()
        return att.exit_cost, True

    # --- device completion -----------------------------------------------------------------
    def _device_done(self, req):
        att = req.tag
        att.io_path.device_done(self, att, req)
        if not att.io_path.via_driver_domain:  # the device's interrupt is the answer
            req.answered_rs = req.vcpu.runstate.at(self.env.now)

    # --- the driver domain -----------------------------------------------------------------
    def wake_backend(self) -> None:
        """Wake a driver-domain vCPU for new work (one not running, if any)."""
        for v in self.backend_vcpus:
            if not v.runnable or v.pcpu is None:
                self.hv.raise_irq(v)
                return
        self.hv.raise_irq(self.backend_vcpus[0])

    def published(self, att: Attachment) -> None:
        """A request was published on ``att``'s ring: the next poll takes it."""
        self._ready.add(att.id)

    def _poll(self, vcpu, _arg):
        """The backend takes its work: requests on every ring that has some (in attachment
        order), completions, ioreqs. With none, it re-arms the request event of every ring
        it took from (``RING_FINAL_CHECK_FOR_REQUESTS``; nothing can arrive in between)."""
        now = self.env.now
        inbox = self.inbox
        if self._ready:
            by_id = self.by_id
            for aid in sorted(self._ready):
                att = by_id[aid]
                for req in att.ring.take_requests():
                    req.stamp("backend", now)
                    inbox.put(Work.REQUEST, req, att)
            self._unarmed |= self._ready
            self._ready.clear()
        if not inbox:
            for aid in self._unarmed:
                self.by_id[aid].ring.final_check_requests()
            self._unarmed.clear()
        inbox.take(vcpu)
        return None, False  # with no work the backend halts until a notification

    def _device_submit(self, vcpu, rid):
        req = self.live[rid]
        req.tag.device.submit(req)
        return None, False

    def _respond(self, vcpu, rid):
        req = self.live[rid]
        att = req.tag
        req.stamp("response", self.env.now)
        req.answered_rs = req.vcpu.runstate.at(self.env.now)
        return att.io_path.respond(self, att, req), False

    def _backend_loop(self, vcpu) -> Generator:
        inbox = self.inbox
        poll = io_op(self.A_POLL, 0)
        while True:
            yield Behalf(None)
            yield poll
            batch = inbox.taken(vcpu)
            if not batch:
                yield vcpu.halt()
                continue
            for kind, req, att, accessor in batch:
                yield Behalf(att.domain.dom)
                path = att.io_path
                if kind is Work.REQUEST:
                    yield from path.serve_request(self, att, req)
                elif kind is Work.COMPLETE:
                    yield from path.serve_completion(self, att, req)
                else:  # Work.ACCESS, Work.STATUS (req None)
                    yield from path.serve_access(self, att, req, accessor)

    def in_flight(self) -> int:
        """Requests issued (their first step performed) and not yet completed to the guest."""
        return sum(1 for r in self.live.values() if r.t[0] >= 0)

    def in_flight_by_stage(self) -> dict[str, int]:
        """The requests in flight by where they are: on the way to the device, at the
        device (queued or in service), or served and on the way back to the guest."""
        out = {"to_device": 0, "at_device": 0, "returning": 0}
        for r in self.live.values():
            if r.t[0] < 0:
                continue
            out[
                "returning"
                if r.t[_SERVICE_END] >= 0
                else "at_device"
                if r.t[_QUEUED] >= 0
                else "to_device"
            ] += 1
        return out

    # --- as a wake source of the hypervisor (model.liveness) ----------------------------
    def busy(self) -> bool:
        """Whether requests are in flight or work waits for the driver domain."""
        return bool(self.live or self.inbox)

    def _backend_queued(self) -> int:
        return len(self.inbox) + sum(
            len(a.ring.requests) for a in self.by_id.values() if a.ring is not None
        )

    def waits(self, blocked: list[VCpu]) -> dict[VCpu, tuple[State, str]]:
        """What will wake each of the ``blocked`` vCPUs from the I/O side (those it does
        not concern are left out): I/O in flight, a ring slot, the device model; or, for
        a backend, nothing to do (``idle``); or nothing at all (``stalled``)."""
        out: dict[VCpu, tuple[State, str]] = {}
        queued = self._backend_queued()
        backend_awake = any(v.runnable for v in self.backend_vcpus)
        mine: dict[VCpu, list[IORequest]] = {}
        for r in self.live.values():
            if r.t[0] >= 0:
                mine.setdefault(r.vcpu, []).append(r)
        for vcpu in blocked:
            if vcpu in self.backend_vcpus:
                out[vcpu] = (
                    (State.IDLE, "a driver-domain backend with no work")
                    if not queued
                    else (State.WAITING, f"{queued} I/O items for the driver domain's other vCPUs")
                    if backend_awake
                    else (
                        State.STALLED,
                        f"{queued} I/O items wait for the driver "
                        "domain, but all its vCPUs are blocked and none was "
                        "notified",
                    )
                )
                continue
            reqs = mine.get(vcpu, [])
            answered = next(
                (
                    r
                    for r in reqs
                    if r in (r.tag.ring.responses if r.tag.ring is not None else r.tag.answered)
                ),
                None,
            )
            slot = next((a for a in self.by_id.values() if vcpu in a.waiting), None)
            model = vcpu.ioreq
            if model is not None:  # e.g. the interrupt handler's status read, which
                # comes before the handler takes the answered request
                out[vcpu] = (
                    State.WAITING,
                    f"the {model.io_path.backend_label} to emulate a register access of "
                    f"{model.device.name}",
                )
            elif answered is not None and any(
                    u is not vcpu and (u.runnable or u.pending_irqs)
                    for u in vcpu.domain.vcpus):
                out[vcpu] = (  # a shared ring notified one of them: it takes the answer
                    State.WAITING,
                    f"another vCPU of its guest to take the answer to I/O request "
                    f"{answered.id}",
                )
            elif answered is not None:
                out[vcpu] = (
                    State.STALLED,
                    f"I/O request {answered.id} to "
                    f"{answered.tag.device.name} was answered but its vCPU was not "
                    "woken",
                )
            elif slot is not None:
                out[vcpu] = (State.WAITING, f"a free slot on its ring to {slot.device.name}")
            elif reqs:
                devices = ", ".join(sorted({r.tag.device.name for r in reqs}))
                out[vcpu] = (State.WAITING, f"{len(reqs)} I/O requests in flight ({devices})")
        return out

    def check(self) -> None:
        """Request conservation: issued = completed + in flight; and per device, the
        requests it served = those completed to their guests + those returning."""
        from ..errors import InvariantError

        begun = self.in_flight()
        if self.issued != self.log.completed + begun:
            raise InvariantError(
                f"I/O requests not conserved: issued {self.issued}, completed "
                f"{self.log.completed}, in flight {begun}"
            )
        for dev in self.devices.values():
            done = sum(n for (_, d), (n, _) in self.log.totals.items() if d == dev.index)
            back = sum(
                1 for r in self.live.values() if r.device == dev.index and r.t[_SERVICE_END] >= 0
            )
            if dev.completed != done + back:
                raise InvariantError(
                    f"device {dev.name}: served {dev.completed} requests, but "
                    f"{done} completed to guests and {back} are returning"
                )


def _row(pairs) -> np.ndarray:
    row = np.zeros(N_CATEGORIES, np.int64)
    for cat, cycles in pairs:
        row[cat] += cycles
    return row


class Attachment:
    """One guest's access to one device through one path.

    Attributes
    ----------
    io_path : IOPath
        The path (a strategy of :mod:`model.io.paths`); :attr:`path` is its name.
    """

    def __init__(self, io: IOSystem, domain, device: Device, io_path: IOPath, aid: int) -> None:
        self.id = aid
        self.io = io
        self.domain = domain
        self.device = device
        self.io_path = io_path
        self.path = io_path.name
        hw, p = io.host.hw, io.p
        #: a NIC (e1000 MMIO registers; received data copied) rather than a disk (IDE ports)
        self.network = device.network
        slots = io_path.ring_slots(p, self.network)
        self.ring = Ring(slots) if slots is not None else None
        self.waiting: list[VCpu] = []
        self.answered: list[IORequest] = []
        self._accesses: dict[int, int] = {}
        cm = domain.compiled
        mode = domain.mode.kind
        self.kick_cost = cm.cost[Op.PIO].copy()  # a kick is one trapped register write
        self.notify_what = io_path.notify_transition(self)
        # how the mode reaches an emulated device's registers: an exit whose reason
        # depends on the register (hvm), or a callout to the VMM (binary translation)
        self.access_what = transition_of(domain.mode.rules[mode.register_op(not self.network)])
        self.exit_cost = io_path.access_cost(self)
        self.inject_cost = _row(((HYPERVISOR, hw.cost("evtchn_send")),))
        self.irq_exit = io_path.interrupt_exit(self)
        # its own steps, as chunks made once (a chunk is never changed)
        self._take = io_op(io.A_TAKE, aid)
        #: an access to its interrupt status register (the emulated path's handler)
        self.status_op = io_op(io.A_STATUS, aid)

    def accesses_left(self, req: IORequest) -> int:
        n = self._accesses.get(req.id, self.io_path.device_model_accesses(self.io.p)) - 1
        self._accesses[req.id] = n
        if n <= 0:
            self._accesses.pop(req.id, None)
        return max(n, 0)

    # --- what the guest executes ------------------------------------------------------
    def submit(
        self, size: int, write: bool = False, offset: int = -1
    ) -> Generator[Chunk, None, IORequest]:
        """Issue a request without waiting (``req = yield from att.submit(4096)``); a
        full ring blocks the submitter until a slot frees."""
        io = self.io
        req = io.new_request(self, size, write, offset)
        yield io_op(io.A_BEGIN, req.id)
        yield work(io.p.block_layer)
        yield from self.io_path.submit(io, self, req)
        return req

    def wait(self, req: IORequest) -> Generator[Chunk, None, IORequest]:
        """Block until ``req`` completes (interrupts wake the vCPU); then finish it."""
        io = self.io
        while True:
            yield self._take
            if req.done:
                break
            yield req.vcpu.halt()
        yield from self.io_path.finish(io, self, req)
        return req

    def read(
        self, size: int, offset: int = -1, write: bool = False
    ) -> Generator[Chunk, None, IORequest]:
        """A blocking request: submit and wait (``req = yield from att.read(4096)``)."""
        req = yield from self.submit(size, write, offset)
        return (yield from self.wait(req))
