"""I/O paths: how a guest's request reaches a shared device and how the answer comes back.

Paths (one per guest device attachment):

``direct``       the guest's own driver programs the device (native, and ``passthrough``:
                 an assigned device; only interrupt delivery costs an exit, none with
                 posted interrupts).
``pv``           the Xen split driver: the frontend puts the request on a shared ring
                 (blkif: 32 slots) and notifies the backend over an event channel only
                 when the backend re-armed its event index; the backend runs in the
                 driver domain, which needs CPU time under the scheduler like any guest,
                 and issues the request to the real device. The response returns the
                 same way and wakes the guest's vCPU.
``emulated``     the unmodified driver's register accesses each trap or exit, and are
                 forwarded (an ioreq) to the device model in the driver domain, while the
                 guest's vCPU waits; the doorbell access starts the real request.
``virtio``       an hvm guest's virtqueue (256 slots, EVENT_IDX suppression): one exit per
                 kick; the backend is the device model in the driver domain, or in-kernel
                 (``vhost``).

Every step that other entities can observe (publishing on a ring, a notification, a
device submission, taking responses) is an ``Op.IO`` instruction, performed by the
hypervisor at its exact simulated time; the work around it is ordinary guest or
driver-domain instructions on the CPU. Each request records the time of each stage
(:mod:`model.iorequest`).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from itertools import count

import numpy as np

from .categories import HYPERVISOR, N_CATEGORIES, TRANSITION
from .devices import Device
from .errors import ConfigError
from .iorequest import STAGES, IORequest, RequestLog
from .isa import Chunk, ChunkBuilder, Op
from .liveness import State
from .modes import transition_of
from .ring import Ring
from .vcpu import Behalf, VCpu

_QUEUED, _SERVICE_END = STAGES.index("queued"), STAGES.index("service_end")

PATHS = ("direct", "passthrough", "pv", "emulated", "virtio", "vhost")
DEFAULT_PATH = {"native": "direct", "pv": "pv", "full": "emulated", "hvm": "emulated"}


def path_problem(mode: str, path: str) -> str | None:
    """Why a guest in ``mode`` cannot use I/O ``path`` (None if it can).

    Examples
    --------
    >>> path_problem("hvm", "virtio") is None, path_problem("full", "pv")
    (True, 'the pv split driver needs a pv guest (a modified kernel with netfront/blkfront)')
    """
    if path not in PATHS:
        return f"unknown I/O path {path!r}; valid choices: {', '.join(PATHS)}"
    if mode == "native" and path != "direct":
        return "a native guest drives its devices directly (path: direct)"
    if path == "pv" and mode != "pv":
        return "the pv split driver needs a pv guest (a modified kernel with netfront/blkfront)"
    if path in ("virtio", "vhost") and mode != "hvm":
        return f"{path} is for hvm guests"
    return None


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


def _work(n: int, kernel: bool = True) -> Chunk:
    return ChunkBuilder(kernel=kernel).alu(n).build()


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
        host.io = self
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
        self.backend_inbox: list = []  # (kind, request, attachment) for the driver domain
        self.attachments: dict[tuple[str, str], Attachment] = {}
        #: (guest, statistic, label) -> count: exits, hypercalls and emulations the I/O
        #: paths charge without executing an instruction for them (see Attachment)
        self.transitions: dict[tuple[str, str, str], int] = {}
        self.by_id: dict[int, Attachment] = {}
        reg = self.hv.register_io
        self.A_BEGIN, self.A_SUBMIT, self.A_TAKE = reg(self._begin), reg(self._submit), reg(
            self._take)
        self.A_ACCESS, self.A_POLL, self.A_DEVICE, self.A_RESPOND = (
            reg(self._access), reg(self._poll), reg(self._device_submit), reg(self._respond))
        hw = host.hw
        self.send_cost = _row(((TRANSITION, hw.cost("hypercall_entry")),
                               (HYPERVISOR, hw.cost("evtchn_send")),
                               (TRANSITION, hw.cost("hypercall_exit"))))

    # --- configuration ---------------------------------------------------------------------
    def add_device(self, device: Device) -> Device:
        """Add a device; it gets its own random stream from the host's seed and an index."""
        if device.name in self.devices:
            raise ConfigError(f"duplicate device name {device.name!r}")
        device.index = len(self.devices)
        device.rng = self.host.rng(f"device:{device.name}", 0)
        self.devices[device.name] = device
        return device

    def set_driver_domain(self, domain) -> None:
        """The domain whose vCPUs run the backends and device models."""
        from .workloads import enter

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
            raise ConfigError(f"unknown device {device!r}; valid choices: "
                              f"{', '.join(self.devices)}")
        path = path or DEFAULT_PATH[domain.mode.name]
        problem = path_problem(domain.mode.name, path)
        if problem:
            raise ConfigError(f"guest {domain.name!r}: {problem}")
        if path in ("pv", "emulated", "virtio", "vhost") and self.driver_domain is None:
            raise ConfigError(f"the {path} path needs a driver domain")
        att = Attachment(self, domain, self.devices[device], path, len(self.by_id))
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

    def _submit(self, vcpu, rid):
        """The driver hands the request on: to the ring, the device, or (emulated) the
        device model. Blocks the vCPU while a ring is full."""
        req = self.live[rid]
        att = req.tag
        now = self.env.now
        if att.path in ("direct", "passthrough"):
            req.stamp("ring", now)
            att.device.submit(req)
            return None, False
        if att.ring.full:
            self._take_answered(att)  # as the frontend's interrupt handler would have
        if att.ring.full:
            att.waiting.append(vcpu)
            return None, True  # backpressure: wait for a response to free a slot
        req.stamp("ring", now)
        notify = att.ring.push_request(req)
        row = None
        if notify:
            req.stamp("notified", now)
            row = self._notify_cost(att)
            self._wake_backend()
        return row, False

    def _count(self, att, what: tuple[str, str] | None) -> None:
        if what is not None:
            key = (att.domain.name, *what)
            self.transitions[key] = self.transitions.get(key, 0) + 1

    def _notify_cost(self, att) -> np.ndarray:
        self._count(att, att.notify_what)
        if att.path == "pv":
            return self.send_cost  # event_channel_op(EVTCHNOP_send)
        return att.kick_cost  # a virtqueue kick: one exit (ioeventfd)

    def _take(self, vcpu, aid):
        """The guest's completion handling: take answered requests, free ring slots."""
        self._take_answered(self.by_id[aid])
        return None, False

    def _take_answered(self, att) -> None:
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

    def _access(self, vcpu, arg):
        """An emulated register access: the vCPU waits while the device model runs.
        ``arg`` = 2 x request id + 1 for a status access (after completion)."""
        if arg & 1:
            att = self.by_id[arg >> 1]
            entry = ("status", None, att)
        else:
            req = self.live[arg >> 1]
            att = req.tag
            entry = ("access", req, att)
        att.access_waiters.append(vcpu)
        self._count(att, att.access_what)
        self.backend_inbox.append(entry)
        self._wake_backend()
        return att.exit_cost, True

    # --- device completion -----------------------------------------------------------------
    def _device_done(self, req):
        att = req.tag
        if att.path in ("direct", "passthrough"):
            req.stamp("irq", self.env.now)
            att.answered.append(req)
            self.hv.raise_irq(req.vcpu)
            if att.irq_exit is not None:
                req.vcpu.add_carry(att.irq_exit)
                self._count(att, ("vm_exits", "EXTERNAL_INTERRUPT"))
            return
        self.backend_inbox.append(("complete", req, att))  # a physical IRQ to the driver domain
        self._wake_backend()

    # --- the driver domain -----------------------------------------------------------------
    def _wake_backend(self):
        for v in self.backend_vcpus:
            if not v.runnable or v.pcpu is None:
                self.hv.raise_irq(v)
                return
        self.hv.raise_irq(self.backend_vcpus[0])

    def _poll(self, vcpu, _arg):
        """The backend takes its work: requests on every ring, completions, ioreqs."""
        now = self.env.now
        for att in self.attachments.values():
            if att.ring is not None:
                for req in att.ring.take_requests():
                    req.stamp("backend", now)
                    self.backend_inbox.append(("request", req, att))
        if not self.backend_inbox:  # RING_FINAL_CHECK_FOR_REQUESTS: re-arm, look again
            for att in self.attachments.values():
                if att.ring is not None and att.ring.final_check_requests():
                    for req in att.ring.take_requests():
                        req.stamp("backend", now)
                        self.backend_inbox.append(("request", req, att))
        vcpu.work, self.backend_inbox = self.backend_inbox, []
        return None, False  # with no work the backend halts until a notification

    def _device_submit(self, vcpu, rid):
        req = self.live[rid]
        req.tag.device.submit(req)
        return None, False

    def _respond(self, vcpu, rid):
        req = self.live[rid]
        att = req.tag
        now = self.env.now
        req.stamp("response", now)
        if att.ring is not None:
            if att.ring.push_response(req):
                self.hv.raise_irq(req.vcpu)
                return (self.send_cost if att.path == "pv" else att.inject_cost), False
            return None, False
        att.answered.append(req)  # emulated: the device model raises the interrupt
        self.hv.raise_irq(req.vcpu)
        return att.inject_cost, False

    def _backend_loop(self, vcpu) -> Generator:
        p = self.p
        poll = ChunkBuilder(kernel=True).op(Op.IO, self.A_POLL).build()
        vcpu.work = []
        while True:
            yield Behalf(None)
            yield poll
            if not vcpu.work:
                yield vcpu.halt()
                continue
            for kind, req, att in vcpu.work:
                yield Behalf(att.domain.dom)
                if kind == "request":
                    n = {"pv": p.backend_request, "virtio": p.virtio_backend,
                         "vhost": p.vhost_backend}[att.path]
                    if att.device.kind == "nic" and not req.write:
                        n += p.netback_rx_copy  # received data is copied, not mapped
                    yield _work(n, kernel=att.path != "virtio")
                    yield ChunkBuilder(kernel=True).op(Op.IO, self.A_DEVICE, req.id).build()
                elif kind == "status":
                    yield _work(p.device_model_access, kernel=False)
                    att.release_access(self.hv)
                elif kind == "access":
                    yield _work(p.device_model_access, kernel=False)
                    if att.accesses_left(req) == 0:  # the doorbell: start the real I/O
                        req.stamp("backend", self.env.now)
                        yield _work(p.device_model_request, kernel=False)
                        yield ChunkBuilder(kernel=True).op(Op.IO, self.A_DEVICE, req.id).build()
                    att.release_access(self.hv)
                else:  # "complete": the device finished
                    req.stamp("irq", self.env.now)
                    n = p.backend_response if att.path == "pv" else p.device_model_access
                    yield _work(n, kernel=att.path in ("pv", "vhost"))
                    yield ChunkBuilder(kernel=True).op(Op.IO, self.A_RESPOND, req.id).build()

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
            out["returning" if r.t[_SERVICE_END] >= 0 else "at_device"
                if r.t[_QUEUED] >= 0 else "to_device"] += 1
        return out

    # --- as a wake source of the hypervisor (model.liveness) ----------------------------
    def busy(self) -> bool:
        """Whether requests are in flight or work waits for the driver domain."""
        return bool(self.live or self.backend_inbox)

    def _backend_queued(self) -> int:
        return len(self.backend_inbox) + sum(len(a.ring.requests) for a in self.by_id.values()
                                             if a.ring is not None)

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
                out[vcpu] = ((State.IDLE, "a driver-domain backend with no work") if not queued
                             else (State.WAITING, f"{queued} I/O items for the driver "
                                   "domain's other vCPUs") if backend_awake
                             else (State.STALLED, f"{queued} I/O items wait for the driver "
                                   "domain, but all its vCPUs are blocked and none was "
                                   "notified"))
                continue
            reqs = mine.get(vcpu, [])
            answered = next((r for r in reqs if r in (
                r.tag.ring.responses if r.tag.ring is not None else r.tag.answered)), None)
            slot = next((a for a in self.by_id.values() if vcpu in a.waiting), None)
            model = next((a for a in self.by_id.values() if vcpu in a.access_waiters), None)
            if model is not None:  # e.g. the interrupt handler's status read, which
                # comes before the handler takes the answered request
                out[vcpu] = (State.WAITING, "the device model to emulate a register access "
                             f"of {model.device.name}")
            elif answered is not None:
                out[vcpu] = (State.STALLED, f"I/O request {answered.id} to "
                             f"{answered.tag.device.name} was answered but its vCPU was not "
                             "woken")
            elif slot is not None:
                out[vcpu] = (State.WAITING, f"a free slot on its ring to {slot.device.name}")
            elif reqs:
                devices = ", ".join(sorted({r.tag.device.name for r in reqs}))
                out[vcpu] = (State.WAITING, f"{len(reqs)} I/O requests in flight ({devices})")
        return out

    def check(self) -> None:
        """Request conservation: issued = completed + in flight; and per device, the
        requests it served = those completed to their guests + those returning."""
        from .errors import InvariantError

        begun = self.in_flight()
        if self.issued != self.log.completed + begun:
            raise InvariantError(f"I/O requests not conserved: issued {self.issued}, completed "
                                 f"{self.log.completed}, in flight {begun}")
        for dev in self.devices.values():
            done = sum(n for (_, d), (n, _) in self.log.totals.items() if d == dev.index)
            back = sum(1 for r in self.live.values()
                       if r.device == dev.index and r.t[_SERVICE_END] >= 0)
            if dev.completed != done + back:
                raise InvariantError(f"device {dev.name}: served {dev.completed} requests, but "
                                     f"{done} completed to guests and {back} are returning")


def _row(pairs) -> np.ndarray:
    row = np.zeros(N_CATEGORIES, np.int64)
    for cat, cycles in pairs:
        row[cat] += cycles
    return row


class Attachment:
    """One guest's access to one device through one path."""

    def __init__(self, io: IOSystem, domain, device: Device, path: str, aid: int) -> None:
        self.id = aid
        self.io = io
        self.domain = domain
        self.device = device
        self.path = path
        hw, p = io.host.hw, io.p
        slots = p.virtqueue_slots if path in ("virtio", "vhost") else (
            p.net_ring_slots if device.kind == "nic" else p.blk_ring_slots)
        self.ring = Ring(slots) if path in ("pv", "virtio", "vhost") else None
        self.waiting: list[VCpu] = []
        self.answered: list[IORequest] = []
        self.access_waiters: list[VCpu] = []
        self._accesses: dict[int, int] = {}
        cm = domain.compiled
        pio = cm.cost[Op.PIO].copy()
        self.kick_cost = pio  # a kick is one trapped register write
        rules = domain.mode.rules
        register = Op.PIO if device.kind == "disk" else Op.MMIO  # IDE ports, e1000 MMIO
        self.notify_what = (("hypercalls", "event_channel_op") if path == "pv"
                            else transition_of(rules[Op.PIO]))
        # hvm: an exit whose reason depends on the register; full: a callout to the VMM
        self.access_what = transition_of(rules[register if domain.mode.name == "hvm"
                                                else Op.MMIO])
        forward = _row(((HYPERVISOR, hw.cost("ioreq_forward")),))
        if domain.mode.name == "hvm":
            self.exit_cost = _row(((TRANSITION, hw.cost("vmexit")), (TRANSITION,
                                   hw.cost("vmentry")))) + forward
        else:  # binary translation: a callout to the VMM
            self.exit_cost = cm.cost[Op.MMIO].copy() + forward
        self.inject_cost = _row(((HYPERVISOR, hw.cost("evtchn_send")),))
        self.irq_exit = None
        if path == "passthrough" and domain.mode.name == "hvm" and not hw.features.apicv:
            # an assigned device's interrupt exits unless posted interrupts deliver it
            self.irq_exit = _row(((TRANSITION, hw.cost("vmexit")),
                                  (HYPERVISOR, hw.cost("vintr_inject")),
                                  (TRANSITION, hw.cost("vmentry"))))

    def accesses_left(self, req: IORequest) -> int:
        n = self._accesses.get(req.id, self.io.p.emulated_accesses) - 1
        self._accesses[req.id] = n
        if n <= 0:
            self._accesses.pop(req.id, None)
        return max(n, 0)

    def release_access(self, hv) -> None:
        if self.access_waiters:
            hv.raise_irq(self.access_waiters.pop(0))

    # --- what the guest executes ------------------------------------------------------
    def submit(self, size: int, write: bool = False, offset: int = -1
               ) -> Generator[Chunk, None, IORequest]:
        """Issue a request without waiting (``req = yield from att.submit(4096)``); a
        full ring blocks the submitter until a slot frees."""
        io, p = self.io, self.io.p
        req = io.new_request(self, size, write, offset)
        yield ChunkBuilder(kernel=True).op(Op.IO, io.A_BEGIN, req.id).build()
        yield _work(p.block_layer)
        if self.path == "emulated":
            for _ in range(p.emulated_accesses):
                yield ChunkBuilder(kernel=True).op(Op.IO, io.A_ACCESS, 2 * req.id).build()
            return req
        yield _work(p.native_driver if self.path in ("direct", "passthrough") else p.frontend)
        submit = ChunkBuilder(kernel=True).op(Op.IO, io.A_SUBMIT, req.id).build()
        while req.t[1] < 0:  # until it is on the ring (or at the device)
            yield submit
        return req

    def wait(self, req: IORequest) -> Generator[Chunk, None, IORequest]:
        """Block until ``req`` completes (interrupts wake the vCPU); then finish it."""
        io, p = self.io, self.io.p
        take = ChunkBuilder(kernel=True).op(Op.IO, io.A_TAKE, self.id).build()
        while True:
            yield take
            if req.done:
                break
            yield req.vcpu.halt()
        if self.path == "emulated":  # the interrupt handler reads and acks the status
            for _ in range(p.status_accesses):
                yield ChunkBuilder(kernel=True).op(Op.IO, io.A_ACCESS, 2 * self.id + 1).build()
        yield _work(p.completion)
        return req

    def read(self, size: int, offset: int = -1, write: bool = False
             ) -> Generator[Chunk, None, IORequest]:
        """A blocking request: submit and wait (``req = yield from att.read(4096)``)."""
        req = yield from self.submit(size, write, offset)
        return (yield from self.wait(req))
