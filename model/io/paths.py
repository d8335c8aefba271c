"""I/O paths as strategy classes: how a guest's request reaches a device and comes back.

Each path owns its stages and costs: what the frontend executes to submit a request
and to finish one, what the submission does at its simulated time (a ring slot, a
notification and its cost, or the device itself), whether it goes through the driver
domain and what the backend executes there, the ring it uses and its size, and which
transitions it counts. The I/O system (:mod:`model.io.system`) asks the attachment's path
and never its name. One instance of each path is registered in :data:`PATHS`; adding a
path is one subclass and one registration (see ``tests/test_extension_points.py``).

``direct``       the guest's own driver programs the device (native).
``passthrough``  an assigned device: as direct, but its interrupt costs an exit (none with
                 posted interrupts).
``pv``           the Xen split driver: a shared ring (blkif 32 slots, netif 256) and an
                 event channel; the backend runs in the driver domain.
``emulated``     every register access of an unmodified driver traps or exits to the
                 device model in the driver domain, while the guest's vCPU waits.
``virtio``       an hvm guest's virtqueue (256 slots): one exit per kick; the backend is
                 the device model (user space) in the driver domain.
``vhost``        virtio with the in-kernel backend of the driver domain.
``hosted``       a hosted VMM's emulated device (VMware Workstation): the VMM handles
                 most register accesses; the one that needs the device is a world
                 switch to the host, whose user-level VMApp does the I/O.

Examples
--------
>>> PATHS.names()
('direct', 'passthrough', 'pv', 'emulated', 'virtio', 'vhost', 'hosted')
>>> PATHS["virtio"].refusal("pv"), PATHS["pv"].backend_label
('virtio is for hvm guests', 'pv backend')
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from ..categories import EMULATION, HYPERVISOR, KERNEL, N_CATEGORIES, USER
from ..isa import Chunk, ChunkBuilder, Op
from ..registry import Registry
from ..rules import transition_of
from ..vcpu import Burst
from ..vectors import CPU_VECTOR, CYCLES
from .inbox import Work

if TYPE_CHECKING:
    from ..hardware import HardwareProfile
    from ..modes import VirtMode
    from ..vcpu import VCpu
    from .requests import IORequest
    from .system import Attachment, IOParams, IOSystem

#: An I/O action's answer: (cycles by category charged to the vCPU or None, block).
Outcome = tuple[np.ndarray | None, bool]


def work(n: int, kernel: bool = True) -> Chunk:
    """``n`` instructions of I/O software (kernel or user mode): the chunk
    ``ChunkBuilder(kernel=kernel).alu(n).build()``, made once per length and mode.

    Examples
    --------
    >>> c, ref = work(600), ChunkBuilder(kernel=True).alu(600).build()
    >>> [(x.dtype, x.tolist()) for x in (c.op, c.a, c.b)] == [
    ...     (x.dtype, x.tolist()) for x in (ref.op, ref.a, ref.b)]
    True
    >>> c.instructions(), c.kernel
    (600, True)
    """
    key = (n, kernel)
    chunk = _WORK.get(key)
    if chunk is None:
        if n <= 0:
            chunk = ChunkBuilder(kernel=kernel).build()
        else:
            chunk = Chunk(np.array((_ALU,), np.uint8), np.array((int(n),), np.int64),
                          np.zeros(1, np.int64), kernel)  # fmt: skip
        chunk = _WORK.setdefault(key, chunk)
    return chunk


#: the chunks of :func:`work` made so far: one per (length, mode), shared by every
#: request (a chunk is never changed; a vCPU keeps its position in its own frame)
_WORK: dict[tuple[int, bool], Chunk] = {}


def io_op(action: int, arg: int) -> Chunk:
    """One ``Op.IO`` instruction (kernel mode): I/O action ``action`` with argument
    ``arg``, as ``ChunkBuilder(kernel=True).op(Op.IO, action, arg).build()``."""
    return Chunk(_IO_OP, np.array((int(action),), np.int64),
                 np.array((int(arg),), np.int64), True, int(action))  # fmt: skip


_ALU, _IO = int(Op.ALU), int(Op.IO)
_IO_OP = np.array((_IO,), np.uint8)  # shared by every I/O chunk: no chunk is changed


class IOPath(ABC):
    """An I/O path (one instance per path, shared by its attachments)."""

    #: The registered name.
    name: str = ""
    #: Whether its requests go through the driver domain (which must then exist).
    via_driver_domain: bool = False
    #: What serves it in the driver domain, for the topology graph (None: nothing).
    backend_label: str | None = None
    #: Whether the driver domain is the host OS of a hosted VMM, which must then run
    #: natively on the guest's one pCPU (a world switch is the switch between them).
    hosted: bool = False

    def serves(self, mode: VirtMode) -> bool:
        """Whether guests in ``mode`` may use it (a mode may also restrict its paths,
        as native does: :meth:`model.modes.VirtMode.paths`)."""
        return True

    def refusal(self, mode: str) -> str:
        """What to tell a guest in ``mode`` that asks for this path."""
        return f"a {mode} guest cannot use the {self.name} path"

    def ring_slots(self, params: IOParams, network: bool) -> int | None:
        """The slots of its ring (None: no ring) for a NIC (``network``) or a disk."""
        return None

    def notify_transition(self, att: Attachment) -> tuple[str, str] | None:
        """(statistic, label) a notification of the backend is counted as: a kick is
        one trapped register write."""
        return transition_of(att.domain.mode.rules[Op.PIO])

    def access_cost(self, att: Attachment) -> np.ndarray:
        """Cycles by category the guest pays to hand an emulated register access to the
        device model (before it waits for it): the mode's exit or callout, then the
        hypervisor's forwarding of the ioreq."""
        hw, cm = att.io.host.hw, att.domain.compiled
        forward = np.zeros(N_CATEGORIES, np.int64)
        forward[HYPERVISOR] = hw.cost("ioreq_forward")
        return att.domain.mode.kind.access_exit(hw, cm) + forward

    def device_model_accesses(self, p: IOParams) -> int:
        """Register accesses of one request that the device model handles (the last one
        starts the I/O)."""
        return p.emulated_accesses

    def interrupt_exit(self, att: Attachment) -> np.ndarray | None:
        """Cycles by category a completion interrupt costs the guest beyond its
        delivery (None: nothing)."""
        return None

    @abstractmethod
    def submit(self, io: IOSystem, att: Attachment, req: IORequest) -> Iterable[Chunk]:
        """What the guest's driver executes to submit ``req`` (after the block layer).

        Here and in the backend's ``serve_*`` methods a path returns a generator where
        it acts between chunks (at each one's simulated time), and a tuple of prepared
        chunks where it does not (no generator per request on the hot path)."""

    def finish(self, io: IOSystem, att: Attachment, req: IORequest) -> Iterable[Chunk]:
        """What the guest executes once ``req`` completed."""
        return (work(io.p.completion),)

    def finish_all(self, io: IOSystem, att: Attachment, reqs: list[IORequest]) -> Iterator[Chunk]:
        """What the guest's interrupt handler executes for ``reqs``, completed together
        (the packets a NIC's interrupt brings, taken in one pass as NAPI does): by
        default, each one's :meth:`finish`."""
        for req in reqs:
            yield from self.finish(io, att, req)

    @abstractmethod
    def device_done(self, io: IOSystem, att: Attachment, req: IORequest) -> None:
        """The device finished ``req`` (at the simulation's time)."""


class DirectPath(IOPath):
    """The guest's own driver programs the device; its interrupt goes to the guest."""

    name = "direct"

    def submit(self, io: IOSystem, att: Attachment, req: IORequest) -> Iterable[Chunk]:
        yield work(io.p.native_driver)
        submit = io_op(io.A_SUBMIT, req.id)
        while req.t[1] < 0:  # until it is at the device (repeated as for a ring)
            yield submit

    def on_submit(self, io: IOSystem, att: Attachment, vcpu: VCpu, req: IORequest) -> Outcome:
        """The ``Op.IO`` submission: the request goes to the device now."""
        req.stamp("ring", io.env.now)
        att.device.submit(req)
        return None, False

    def device_done(self, io: IOSystem, att: Attachment, req: IORequest) -> None:
        req.stamp("irq", io.env.now)
        att.answered.append(req)
        io.hv.raise_irq(req.vcpu)
        if att.irq_exit is not None:
            req.vcpu.add_carry(att.irq_exit)
            io.count(att, ("vm_exits", "EXTERNAL_INTERRUPT"))


class PassthroughPath(DirectPath):
    """An assigned device: the guest's driver programs it; its interrupt may exit."""

    name = "passthrough"

    def interrupt_exit(self, att: Attachment) -> np.ndarray | None:
        return att.domain.mode.kind.assigned_irq_exit(att.io.host.hw)


class BackendPath(IOPath):
    """A path served in the driver domain: the device's completion goes to the backend,
    which answers the guest (:meth:`respond`)."""

    via_driver_domain = True
    #: Whether its backend runs in the driver domain's kernel (else in user space).
    backend_in_kernel: bool = True

    @abstractmethod
    def response_work(self, p: IOParams) -> int:
        """Instructions of the backend's answer to a completed request."""

    @abstractmethod
    def respond(self, io: IOSystem, att: Attachment, req: IORequest) -> np.ndarray | None:
        """The backend's ``Op.IO`` answer to the guest: what it costs (None: nothing)."""

    def device_done(self, io: IOSystem, att: Attachment, req: IORequest) -> None:
        io.inbox.put(Work.COMPLETE, req, att)  # a physical IRQ to the driver domain
        io.wake_backend()

    def answer_work(self, io: IOSystem, req: IORequest) -> tuple[Chunk | Burst, ...]:
        """What the backend executes to answer a completed request: its response work,
        and the copy of a packet received into the guest's buffer."""
        n = self.response_work(io.p)
        if req.inbound:
            n += io.p.netback_rx_copy
        return (work(n, kernel=self.backend_in_kernel),)

    def serve_completion(self, io: IOSystem, att: Attachment, req: IORequest) -> Iterable[Chunk]:
        """The backend's work for a completed request (it reached it now)."""
        req.stamp("irq", io.env.now)
        return (*self.answer_work(io, req), io_op(io.A_RESPOND, req.id))


class RingPath(BackendPath):
    """A shared ring to a backend in the driver domain, with notification suppression."""

    @abstractmethod
    def request_work(self, p: IOParams) -> int:
        """Instructions of the backend's handling of a request taken from the ring."""

    @abstractmethod
    def notify_cost(self, io: IOSystem, att: Attachment) -> np.ndarray:
        """Cycles by category of the frontend's notification of the backend."""

    @abstractmethod
    def upcall_cost(self, io: IOSystem, att: Attachment) -> np.ndarray:
        """Cycles by category of the backend's notification of the frontend."""

    def submit(self, io: IOSystem, att: Attachment, req: IORequest) -> Iterable[Chunk]:
        yield work(io.p.frontend)
        submit = io_op(io.A_SUBMIT, req.id)
        while req.t[1] < 0:  # until it is on the ring: a full ring blocks the action
            yield submit

    def on_submit(self, io: IOSystem, att: Attachment, vcpu: VCpu, req: IORequest) -> Outcome:
        """The ``Op.IO`` submission: publish on the ring (notifying the backend if it
        re-armed); a full ring blocks the vCPU until a response frees a slot."""
        ring = att.ring
        if ring.full:
            io.take_answered(att)  # as the frontend's interrupt handler would have
        if ring.full:
            att.waiting.append(vcpu)
            return None, True  # backpressure
        now = io.env.now
        req.stamp("ring", now)
        row = None
        notify = ring.push_request(req)
        io.published(att)
        if notify:
            req.stamp("notified", now)
            io.count(att, att.notify_what)
            row = self.notify_cost(io, att)
            io.wake_backend()
        return row, False

    def serve_request(self, io: IOSystem, att: Attachment, req: IORequest) -> Iterable[Chunk]:
        """The backend's work for a request taken from the ring: hand it to the device."""
        p = io.p
        n = self.request_work(p)
        if att.network and not req.write:
            n += p.netback_rx_copy  # received data is copied, not mapped
        return work(n, kernel=self.backend_in_kernel), io_op(io.A_DEVICE, req.id)

    def respond(self, io: IOSystem, att: Attachment, req: IORequest) -> np.ndarray | None:
        if att.ring.push_response(req):
            io.hv.raise_irq(req.vcpu)
            return self.upcall_cost(io, att)
        return None


class SplitDriverPath(RingPath):
    """Xen's split driver (blkfront/netfront to blkback/netback) over an event channel."""

    name = "pv"
    backend_label = "pv backend"

    def serves(self, mode: VirtMode) -> bool:
        return mode.pv_drivers

    def refusal(self, mode: str) -> str:
        return "the pv split driver needs a pv guest (a modified kernel with netfront/blkfront)"

    def ring_slots(self, params: IOParams, network: bool) -> int | None:
        return params.net_ring_slots if network else params.blk_ring_slots

    def notify_transition(self, att: Attachment) -> tuple[str, str] | None:
        return ("hypercalls", "event_channel_op")

    def request_work(self, p: IOParams) -> int:
        return p.backend_request

    def response_work(self, p: IOParams) -> int:
        return p.backend_response

    def notify_cost(self, io: IOSystem, att: Attachment) -> np.ndarray:
        return io.send_cost  # event_channel_op(EVTCHNOP_send)

    def upcall_cost(self, io: IOSystem, att: Attachment) -> np.ndarray:
        return io.send_cost


class VirtioPath(RingPath):
    """A virtqueue with EVENT_IDX suppression; the backend is the device model."""

    name = "virtio"
    backend_label = "virtio backend"
    backend_in_kernel = False

    def serves(self, mode: VirtMode) -> bool:
        return mode.needs_vtx  # a kick is one VM exit (ioeventfd)

    def refusal(self, mode: str) -> str:
        return f"{self.name} is for hvm guests"

    def ring_slots(self, params: IOParams, network: bool) -> int | None:
        return params.virtqueue_slots

    def request_work(self, p: IOParams) -> int:
        return p.virtio_backend

    def response_work(self, p: IOParams) -> int:
        return p.device_model_access

    def notify_cost(self, io: IOSystem, att: Attachment) -> np.ndarray:
        return att.kick_cost  # a virtqueue kick: one exit (ioeventfd)

    def upcall_cost(self, io: IOSystem, att: Attachment) -> np.ndarray:
        return att.inject_cost


class VhostPath(VirtioPath):
    """virtio with the driver domain's in-kernel backend."""

    name = "vhost"
    backend_label = "vhost"
    backend_in_kernel = True

    def request_work(self, p: IOParams) -> int:
        return p.vhost_backend

    def response_work(self, p: IOParams) -> int:
        return p.vhost_backend  # vhost-net answers in the kernel too (irqfd): no QEMU


class EmulatedPath(BackendPath):
    """An emulated controller: each register access waits for the device model; the
    doorbell access starts the real request."""

    name = "emulated"
    backend_label = "device model"
    backend_in_kernel = False

    def submit(self, io: IOSystem, att: Attachment, req: IORequest) -> Iterable[Chunk]:
        """The driver's register accesses: those the VMM handles beside the guest, then
        those the device model does (:meth:`device_model_accesses`: all of them here)."""
        n = self.device_model_accesses(io.p)
        return (_IN_VMM,) * (io.p.emulated_accesses - n) + (io_op(io.A_ACCESS, req.id),) * n

    def status_access(self, att: Attachment) -> Chunk:
        """One access of the guest's interrupt handler to the status registers: a trip to
        the device model."""
        return att.status_op

    def finish(self, io: IOSystem, att: Attachment, req: IORequest) -> Iterable[Chunk]:
        # the interrupt handler reads and acks
        return (self.status_access(att),) * io.p.status_accesses + (work(io.p.completion),)

    def finish_all(self, io: IOSystem, att: Attachment, reqs: list[IORequest]) -> Iterator[Chunk]:
        """One read and ack of the interrupt status for all of ``reqs`` (the e1000's ICR
        is read-to-clear: it acknowledges every cause at once), then each one's completion
        work."""
        if reqs:
            yield from (self.status_access(att),) * io.p.status_accesses
            yield from (work(io.p.completion),) * len(reqs)

    def response_work(self, p: IOParams) -> int:
        return p.device_model_access

    def serve_access(self, io: IOSystem, att: Attachment, req: IORequest | None,
                     vcpu: VCpu) -> Iterator[Chunk]:
        """The device model emulates one register access of ``vcpu`` (``req`` None: a
        status access), then answers it: the vCPU resumes (an ioreq's completion is no
        interrupt). The doorbell, the request's last access, starts the real I/O first."""
        yield self.access_work(io)
        if req is not None and att.accesses_left(req) == 0:
            req.stamp("backend", io.env.now)
            yield from self.start_work(io, att, req)
            yield io_op(io.A_DEVICE, req.id)
        io.hv.answer_ioreq(vcpu)

    def access_work(self, io: IOSystem) -> Chunk | Burst:
        """What the device model executes for one register access."""
        return work(io.p.device_model_access, kernel=False)

    def start_work(self, io: IOSystem, att: Attachment, req: IORequest) -> Iterable[Chunk | Burst]:
        """What it executes to start ``req`` on the device, after the doorbell."""
        return (work(io.p.device_model_request, kernel=False),)

    def respond(self, io: IOSystem, att: Attachment, req: IORequest) -> np.ndarray | None:
        att.answered.append(req)  # the device model raises the interrupt
        io.hv.raise_irq(req.vcpu)
        return att.inject_cost


class HostedPath(EmulatedPath):
    """A hosted VMM's emulated device (VMware Workstation; Sugerman, Venkitachalam and Lim,
    USENIX ATC 2001): the VMM, beside the guest, handles most register accesses itself;
    the one that needs the device (a transmit's OUT, a disk command) costs a world switch
    to the host, where the VMM's user-level process (the VMApp) makes host system calls
    (for a packet, to the host's VMNet driver), and a world switch back.

    The driver domain is the host OS (``driver_domain.mode: native`` in a scenario): a
    guest's access that goes there blocks its vCPU, and the hypervisor's switch to the
    host's vCPU and back is the world switch, on the one pCPU both run on (a scenario is
    refused otherwise, :attr:`IOPath.hosted`). The status accesses of the guest's
    interrupt handler stay in the VMM. Send combining (up to 3 packets per world switch,
    SU01's optimization) is not modelled: every transmit switches.
    """

    name = "hosted"
    backend_label = "host (VMApp)"
    hosted = True

    def serves(self, mode: VirtMode) -> bool:
        return mode.hosted_devices

    def refusal(self, mode: str) -> str:
        return "the hosted path is a hosted VMM's (binary translation: mode full)"

    def device_model_accesses(self, p: IOParams) -> int:
        return 1  # the rest are the VMM's

    def access_cost(self, att: Attachment) -> np.ndarray:
        row = np.zeros(N_CATEGORIES, np.int64)
        row[EMULATION] = att.io.host.hw.cost("hosted_vmm_forward")
        return row

    def status_access(self, att: Attachment) -> Chunk:
        return _IN_VMM  # the VMM keeps the device's status

    def access_work(self, io: IOSystem) -> Chunk | Burst:
        return host_work(io.host.hw, "hosted_vmapp_access", kernel=False)

    def start_work(self, io: IOSystem, att: Attachment, req: IORequest) -> Iterable[Chunk | Burst]:
        if att.network and req.write:  # a packet: the VMApp writes it to VMNet
            hw = io.host.hw
            return (host_work(hw, "hosted_vmapp_transmit", kernel=False),
                    host_work(hw, "vmnet_transmit", kernel=True))
        return super().start_work(io, att, req)  # a disk command, a receive buffer: SU01 has none

    def answer_work(self, io: IOSystem, req: IORequest) -> tuple[Chunk | Burst, ...]:
        vmapp = self.access_work(io)
        return (vmapp, work(io.p.netback_rx_copy)) if req.inbound else (vmapp,)

    def respond(self, io: IOSystem, att: Attachment, req: IORequest) -> np.ndarray | None:
        att.answered.append(req)  # the VMApp raises the virtual interrupt
        io.hv.raise_irq(req.vcpu)
        return None


#: a register access the VMM handles beside the guest (a translated IN/OUT)
_IN_VMM = ChunkBuilder(kernel=True).op(Op.PIO).build()


def host_work(hw: HardwareProfile, cost: str, kernel: bool) -> Burst:
    """The host's work of software cost ``cost`` (its cycles on ``hw``), as a
    :class:`~model.vcpu.Burst` in kernel or user mode: SU01 gives these as times, not
    instructions. One burst per (cycles, mode), shared (a burst is never changed).

    Examples
    --------
    >>> from model.hardware import load_profile
    >>> hw = load_profile("piii-733mhz")
    >>> host_work(hw, "vmnet_transmit", kernel=True).total == hw.cost("vmnet_transmit")
    True
    """
    key = (hw.cost(cost), kernel)
    burst = _HOST_WORK.get(key)
    if burst is None:
        delta = np.zeros(CPU_VECTOR, np.int64)
        delta[CYCLES + (KERNEL if kernel else USER)] = key[0]
        burst = _HOST_WORK[key] = Burst(delta)
    return burst


_HOST_WORK: dict[tuple[int, bool], Burst] = {}


#: The I/O paths, by name (:class:`IOPath` instances).
PATHS: Registry[IOPath] = Registry("I/O path")
for _path in (
    DirectPath(),
    PassthroughPath(),
    SplitDriverPath(),
    EmulatedPath(),
    VirtioPath(),
    VhostPath(),
    HostedPath(),
):
    PATHS.register(_path.name, _path)
