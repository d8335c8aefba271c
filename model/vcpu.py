"""A virtual CPU: the loop that feeds instruction chunks to the CPU/MMU kernel.

A vCPU executes a stack of instruction sources: its workload at the bottom,
and above it whatever the guest kernel pushed (a page-fault handler, an
interrupt handler). :meth:`VCpu.run` executes for up to a cycle budget and
returns the cycles used and why it stopped; only stops that the hypervisor or
the scheduler must see at the right simulated time end a run (HLT, yield, the
budget, the end of the workload). Page faults are resolved in place by pushing
the guest kernel's handler; timer programming arms a hypervisor timer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from .accounting import split
from .categories import N_CATEGORIES
from .cpu import execute, tlb_flush
from .errors import PvsimError
from .isa import Chunk, Op
from .runstate import Runstate
from .vectors import (
    COUNTS,
    CPU_VECTOR,
    CYCLES,
    IS_COUNTER,
    R_FAULT_KIND,
    R_FAULT_VA,
    R_FAULT_WRITE,
    R_SPACE,
    R_TIMER,
    R_TIMER_DELAY,
    ST_BUDGET,
    ST_CHUNK_END,
    ST_FAULT,
    ST_NO_MEMORY,
    ST_STOP,
    new_cpu_vector,
    new_tlb,
)
from .vtimer import VirtualTimer

if TYPE_CHECKING:
    from .domain import Domain
    from .hypervisor import Hypervisor


class Stop(Enum):
    """Why a run of a vCPU stopped (:meth:`VCpu.run`).

    Examples
    --------
    >>> Stop.BLOCK, Stop("yield") is Stop.YIELD
    (<Stop.BLOCK: 'block'>, True)
    """

    BUDGET = "budget"  # its cycle budget is used up (or only interrupts were delivered)
    BLOCK = "block"  # it halted (HLT, SCHEDOP_block): the hypervisor decides at the halt
    YIELD = "yield"  # it gave the pCPU up (SCHEDOP_yield)
    EXIT = "exit"  # its workload ended
    IO = "io"  # an I/O action is due (:attr:`VCpu.pending_io`)


BUDGET, BLOCK, YIELD, EXIT, IO = Stop.BUDGET, Stop.BLOCK, Stop.YIELD, Stop.EXIT, Stop.IO
_HLT, _YIELD, _IO = int(Op.HLT), int(Op.YIELD), int(Op.IO)
_HLT_OP, _ZERO = np.array((_HLT,), np.uint8), np.zeros(1, np.int64)  # shared by every halt
_INTERRUPT = int(Op.INTERRUPT)


@dataclass(frozen=True, slots=True)
class Marker:
    """Yielded by a workload between chunks to timestamp a point of its progress
    (the bench harness measures between markers).

    Examples
    --------
    >>> from model.host import Host
    >>> from model.domain import DomainConfig
    >>> from model.isa import ChunkBuilder
    >>> def program(ctx):
    ...     yield Marker("start")
    ...     yield ChunkBuilder().alu(1000).build()
    ...     yield Marker("stop")
    >>> host = Host(pcpus=1)
    >>> v = host.add_guest(DomainConfig("g", "pv"), program).vcpus[0]
    >>> _ = host.run()
    >>> [(label, int(cycles.sum())) for label, cycles, _ in v.marks]
    [('start', 0), ('stop', 1000)]
    """

    label: str


@dataclass(frozen=True, slots=True)
class Behalf:
    """Yielded by a driver domain's program: the cycles that follow are spent on behalf
    of guest (domain id) ``guest`` (None: on its own behalf).

    Examples
    --------
    >>> from model.host import Host
    >>> from model.domain import DomainConfig
    >>> from model.isa import ChunkBuilder
    >>> def backend(ctx):
    ...     yield Behalf(2)
    ...     yield ChunkBuilder().alu(500).build()
    >>> host = Host(pcpus=1)
    >>> v = host.add_guest(DomainConfig("dom0", "pv"), backend).vcpus[0]
    >>> _ = host.run()
    >>> v.behalf_cycles
    {2: 500}
    """

    guest: int | None


class Burst:
    """Yielded by a program: CPU work given by its cost instead of its instructions (a
    cost measured once on the exact engine, replayed), consumed like the instructions
    it stands for: preemptible, its cycles split exactly over the segments that run it
    (:func:`model.accounting.split`), on the domain's behalf like a chunk's.

    Parameters
    ----------
    delta : numpy.ndarray
        What the work adds to the vCPU's vector (:mod:`model.vectors`, length
        ``CPU_VECTOR``): cycles by category from ``CYCLES``, consumed as the burst runs;
        counters (instructions, TLB statistics, counts per op from ``COUNTS``), added
        when it starts. Its registers must be zero: a burst cannot fault, program a
        timer or switch address spaces (those stay instructions).

    Examples
    --------
    >>> import numpy as np
    >>> from model.host import Host
    >>> from model.domain import DomainConfig
    >>> from model.categories import KERNEL, USER
    >>> from model.vectors import CPU_VECTOR, CYCLES, S_INSTR
    >>> d = np.zeros(CPU_VECTOR, np.int64)
    >>> d[CYCLES + USER], d[CYCLES + KERNEL], d[S_INSTR] = 3000, 1000, 3500
    >>> def program(ctx):
    ...     yield Burst(d)
    >>> host = Host(pcpus=1)
    >>> v = host.add_guest(DomainConfig("g", "pv"), program).vcpus[0]
    >>> _ = host.run()
    >>> int(v.breakdown()[USER]), int(v.breakdown()[KERNEL]), int(v.cpu[S_INSTR])
    (3000, 1000, 3500)
    """

    __slots__ = ("cycles", "counters", "total")

    def __init__(self, delta: np.ndarray) -> None:
        delta = np.asarray(delta, np.int64)
        if delta.shape != (CPU_VECTOR,):
            raise PvsimError(f"a burst's delta has {CPU_VECTOR} entries, not {delta.shape}")
        if (delta[:COUNTS][~IS_COUNTER] != 0).any() or (delta < 0).any():
            raise PvsimError("a burst's delta is non-negative and leaves the registers alone")
        self.cycles = delta[CYCLES : CYCLES + N_CATEGORIES].copy()
        self.counters = delta.copy()
        self.counters[CYCLES : CYCLES + N_CATEGORIES] = 0
        self.total = int(self.cycles.sum())


class Frame:
    """One instruction source on a vCPU's stack: the workload at the bottom, above it
    what the guest kernel pushed (a fault or interrupt handler).

    Attributes
    ----------
    source : iterator
        Yields the chunks (and :class:`Marker`, :class:`Behalf` items) to execute.
    chunk : Chunk or None
        The chunk being executed (None before the first).
    pos, sub : int
        Where in it: the instruction, and the progress within a run-length encoded one.
    rest : numpy.ndarray or None
        A :class:`Burst` under way: its cycles by category still to run.
    skip_on_return : bool
        When the source ends, the instruction that faulted below it is skipped (an
        exception-table fixup, a signal) rather than executed again.
    interrupt : bool
        An interrupt handler: its cycles are on nobody's behalf.

    Examples
    --------
    >>> f = Frame(iter(()), skip_on_return=True)
    >>> f.chunk is None, f.pos, f.skip_on_return
    (True, 0, True)
    """

    __slots__ = ("source", "chunk", "pos", "sub", "skip_on_return", "interrupt", "rest")

    def __init__(
        self, source: Iterator, skip_on_return: bool = False, interrupt: bool = False
    ) -> None:
        self.source = source
        self.chunk: Chunk | None = None
        self.pos = 0
        self.sub = 0
        self.skip_on_return = skip_on_return
        self.interrupt = interrupt
        self.rest: np.ndarray | None = None


class VCpu:
    """One virtual CPU of a domain.

    Attributes
    ----------
    cpu : numpy.ndarray
        The register/statistics vector of :mod:`model.cpu` (cycles by category the
        vCPU has caused, counts per sensitive operation, TLB statistics).
    marks : list
        ``(label, cycles by category so far, simulated time)`` for each :class:`Marker`.
    timer : VirtualTimer
        Its one-shot timer (:mod:`model.vtimer`).

    The vCPU writes its own execution state (the instruction-source stack, its counters,
    pending interrupts, a halt under way, a due I/O action), through its methods when
    others act on it (:meth:`post_irq`, :meth:`resolve_halt`, :meth:`take_io`); the
    hypervisor writes its scheduling state (``runnable``, ``started``, ``daemon``,
    ``woken_at``, ``wakes``, ``blocked_at``, ``runstate``); the pCPU running it sets
    ``pcpu``. What a
    pCPU still has to run for it and a scheduler's view of it are kept by them
    (:class:`model.hypervisor.RunAhead`, :meth:`model.sched.base.Scheduler.record`).

    Examples
    --------
    >>> from model.host import Host
    >>> from model.domain import DomainConfig
    >>> from model.workloads import spin
    >>> host = Host(pcpus=1)
    >>> v = host.add_guest(DomainConfig("g", "pv"), spin()).vcpus[0]
    >>> _ = host.run(seconds=0.001)
    >>> v.name, v.done, v.cycles > 0, v.timer_deadline
    ('g.v0', False, True, None)
    """

    def __init__(self, domain: Domain, index: int, uid: int) -> None:
        self.domain = domain
        self.index = index
        self.uid = uid  # host-wide index, used by the cycle ledger
        self.name = f"{domain.name}.v{index}"
        hw = domain.hw
        self.cpu = new_cpu_vector(domain.dom, domain.kernel.kernel_space)
        self._caused = self.cpu[CYCLES : CYCLES + N_CATEGORIES]  # a view
        self._mark = np.zeros(N_CATEGORIES, np.int64)  # see mark()
        self.tlb = new_tlb(hw.tlb_sets, hw.tlb_ways)
        cm, mem = domain.compiled, domain.memory
        self._args = (
            self.cpu,
            self.tlb,
            cm.policy,
            cm.costs,
            mem.pt,
            mem.pt_free,
            mem.spaces,
            mem.reservations,
            mem.pt_owner,
            mem.pt_shadow,
            mem.ctl,
            domain.tc,
        )
        self._cost = cm.cost
        self._cost_total = cm.cost.sum(axis=1)
        self._stack: list[Frame] = []
        self.pending_irqs = 0
        #: the attachment whose device model it waits for, in the hypervisor, to answer an
        #: emulated register access (an ioreq): only the answer resumes it; interrupts stay
        #: pending meanwhile (:meth:`model.hypervisor.Hypervisor.wait_ioreq`)
        self.ioreq = None
        self.done = False
        self.marks: list[tuple[str, np.ndarray, int]] = []
        self._fault_streak = 0
        self._fault_at: tuple[int, int] = (0, -1)
        self._hv: Hypervisor | None = None  # the hypervisor it was added to (attach)
        # scheduling state, written by the hypervisor and its pCPUs
        self.pcpu = None
        self.runnable = False
        self.pending_io: tuple[int, int] | None = None
        self.daemon = False
        self.started = False
        self.irq_seq = 0  # interrupts delivered so far
        self._halt_seq, self._halt = 0, None  # see halt()
        self.hlt_after = 0
        self.on_behalf: int | None = None  # a driver domain's vCPU: whose I/O it works for
        self.behalf_cycles: dict[int, int] = {}
        #: the one-shot virtual timer (its whole lifecycle: :mod:`model.vtimer`)
        self.timer = VirtualTimer()
        self.wakes = 0  # wake-ups from a block so far
        self.woken_at = 0  # when it was last woken (simulated time)
        #: wake-to-run latencies (cycles) that a workload asked for (:meth:`measure_wake`)
        self.wake_latencies: list[int] = []
        self.blocked_at = 0  # when it last blocked (simulated time)
        #: time running, runnable, blocked and offline (:mod:`model.runstate`), kept by
        #: the hypervisor
        self.runstate = Runstate()

    # --- program ---------------------------------------------------------------------------
    def start(self, program: Iterator[Chunk | Marker]) -> None:
        """Give the vCPU its workload."""
        self._stack = [Frame(program)]
        self.done = False

    def push(
        self, source: Iterator[Chunk], skip_on_return: bool = False, interrupt: bool = False
    ) -> None:
        self._stack.append(Frame(source, skip_on_return, interrupt))

    @property
    def cycles(self) -> int:
        """Cycles caused so far (all categories)."""
        return int(self.cpu[CYCLES : CYCLES + N_CATEGORIES].sum())

    def breakdown(self) -> np.ndarray:
        return self._caused.copy()

    def mark(self) -> None:
        """Remember the cycles caused so far, for :meth:`since_mark`."""
        np.copyto(self._mark, self._caused)

    def since_mark(self) -> np.ndarray:
        """Cycles by category caused since the last :meth:`mark` (a new array)."""
        return self._caused - self._mark

    def charge_row(self, row: np.ndarray) -> np.ndarray:
        """Add ``row`` (cycles by category) to what the vCPU has caused; returns it."""
        self._caused += row
        return row

    @property
    def timer_deadline(self) -> int | None:
        """When the vCPU's timer fires (cycles), None if it is not armed."""
        return self.timer.deadline

    def woken_since_decision(self) -> bool:
        """Whether an interrupt was delivered after the guest decided to halt (only while
        a halt is under way: from its HLT until the hypervisor resolves it)."""
        return self.hlt_after > 0 and self.irq_seq >= self.hlt_after

    def post_irq(self) -> None:
        """A virtual interrupt is pending: it is delivered when the vCPU next runs."""
        self.pending_irqs += 1

    def resolve_halt(self) -> bool:
        """The halt (or block) under way takes effect: whether it is cancelled, because an
        interrupt is pending or (a halt) came since the guest decided to halt."""
        woken = bool(self.pending_irqs) or self.woken_since_decision()
        self.hlt_after = 0  # the halt, if one was under way, is resolved
        return woken

    def take_io(self) -> tuple[int, int]:
        """The due I/O action (``Stop.IO``): ``(action id, argument)``; it is no longer due."""
        io = self.pending_io
        self.pending_io = None
        return io

    def halt(self) -> Chunk:
        """A HLT that does not halt if an interrupt arrives from now on (the same chunk
        until the next interrupt: it names the interrupts' sequence number, and a chunk
        is never changed)."""
        seq = self.irq_seq + 1
        if seq != self._halt_seq:
            self._halt_seq = seq
            self._halt = Chunk(_HLT_OP, np.array((seq,), np.int64), _ZERO, True)
        return self._halt

    def measure_wake(self, wakes_before: int, now: int) -> None:
        """If the vCPU was woken since its wake count was ``wakes_before``, record how long
        it waited from that wake-up until ``now`` (it runs) in :attr:`wake_latencies`."""
        if self.wakes > wakes_before:
            self.wake_latencies.append(now - self.woken_at)

    def _credit_behalf(self, cycles: int) -> None:
        g = self.on_behalf
        self.behalf_cycles[g] = self.behalf_cycles.get(g, 0) + cycles

    def attach(self, hypervisor: Hypervisor) -> None:
        """Join ``hypervisor`` (once, when it adds the vCPU): its timer fires there."""
        if self._hv is not None:
            raise PvsimError(f"{self.name} is already added to a hypervisor")
        self._hv = hypervisor
        self.timer.attach(hypervisor.env, lambda deadline: hypervisor.timer_fired(self, deadline))

    def add_carry(self, row: np.ndarray) -> None:
        """Charge ``row`` now and run its cycles at the start of the vCPU's next segment
        (costs of an I/O action or an interrupt exit, performed outside a run): the
        pCPUs keep what is still to run (:meth:`model.hypervisor.Hypervisor.carry`)."""
        self.charge_row(row)
        if self.on_behalf is not None:
            self._credit_behalf(int(row.sum()))
        self._hv.carry(self, row)

    def charge(self, op: int) -> int:
        """Add the policy row of ``op`` (handled outside the kernel) to the vCPU's cycles."""
        self._caused += self._cost[op]
        self.cpu[COUNTS + op] += 1
        return int(self._cost_total[op])

    def flush_tlb(self) -> None:
        tlb_flush(self.tlb, False)

    # --- execution -------------------------------------------------------------------------
    def run(
        self, budget: int, now: int, hypervisor: Hypervisor, irq_only: bool = False
    ) -> tuple[int, Stop]:
        """Execute for up to ``budget`` cycles starting at simulated time ``now``.

        Returns ``(cycles used, reason)``, a :class:`Stop` (``IO``: an I/O action is
        due, :attr:`pending_io`). With
        ``irq_only`` only pending interrupts are delivered (their handlers run to
        completion) and the run stops there.
        """
        used = 0
        stack = self._stack
        kernel = self.domain.kernel
        args = self._args
        cpu = self.cpu
        floor = len(stack) if irq_only else -1
        while True:
            if self.pending_irqs and stack:
                self.pending_irqs = 0
                self.irq_seq += 1
                if hypervisor.log is not None:
                    hypervisor.note(now + used, "irq", self)
                used += self.charge(_INTERRUPT)
                self.push(kernel.interrupt(), interrupt=True)
            if not stack:
                self.done = True
                return used, EXIT
            fr = stack[-1]
            if fr.rest is not None:  # a burst under way
                if used >= budget:
                    return used, BUDGET
                used += self._consume(fr, budget - used)
                continue
            chunk = fr.chunk
            if chunk is None or fr.pos >= len(chunk.op):
                item = next(fr.source, None)
                if item is None:
                    stack.pop()
                    if fr.skip_on_return and stack:
                        stack[-1].pos += 1  # the faulting instruction is skipped
                        self._fault_at = (0, -1)
                    if len(stack) <= floor:
                        return used, BUDGET
                    continue
                if type(item) is not Chunk:  # the common case first
                    if isinstance(item, Marker):
                        self.marks.append((item.label, self.breakdown(), now + used))
                    elif isinstance(item, Behalf):
                        self.on_behalf = item.guest
                    elif isinstance(item, Burst):
                        cpu += item.counters
                        fr.chunk, fr.rest = None, item.cycles
                    else:
                        raise PvsimError(f"{self.name}: a program yielded {item!r}, not a "
                                         "Chunk, Marker, Behalf or Burst")
                    continue
                fr.chunk, fr.pos, fr.sub = item, 0, 0
                chunk = item
            if used >= budget:
                return used, BUDGET
            if chunk.action >= 0:  # a lone Op.IO (not yet performed: pos is 0)
                fr.pos = 1
                self.pending_io = (chunk.action, int(chunk.b[0]))
                return used, IO
            pos, sub, status, u = execute(
                chunk.op, chunk.a, chunk.b, fr.pos, fr.sub, chunk.kernel, budget - used, *args
            )
            if cpu[R_TIMER] >= 0:  # a one-shot timer was programmed (set_timer_op, APIC)
                at = now + used + int(cpu[R_TIMER])
                hypervisor.set_timer(self, at, at + int(cpu[R_TIMER_DELAY]))
                cpu[R_TIMER] = -1
            used += u
            if self.on_behalf is not None and not fr.interrupt:  # interrupts are on nobody's behalf
                self._credit_behalf(u)
            fr.pos, fr.sub = pos, sub
            at = self._fault_at
            if at[1] >= 0 and at[0] == id(chunk) and pos > at[1]:
                self._fault_at = (0, -1)  # the faulting instruction completed
            if status == ST_CHUNK_END:
                continue
            if status == ST_BUDGET:
                return used, BUDGET
            if status == ST_FAULT:
                key = (id(chunk), pos)
                self._fault_streak = self._fault_streak + 1 if key == self._fault_at else 1
                self._fault_at = key
                self._fault(chunk.kernel)
                continue
            if status == ST_STOP:
                op = int(chunk.op[pos])
                fr.pos = pos + 1
                if op == _IO:  # performed by the hypervisor once the cycles so far elapsed
                    self.pending_io = (int(chunk.a[pos]), int(chunk.b[pos]))
                    return used, IO
                used += self.charge(op)
                if op == _HLT:
                    # HLT a: halt only if no interrupt came since the guest decided to (its
                    # sequence was a - 1; a = 0: at this HLT), like Linux's "check, then
                    # safe_halt". The vCPU's own timer is due by its own clock, which runs
                    # ahead of the simulation's: if its deadline has passed there, it fires
                    # here, before the halt could take effect (else the wake-up is lost).
                    self.hlt_after = int(chunk.a[pos]) or self.irq_seq + 1
                    if self.timer.due(now + used):
                        hypervisor.expire_timer(self, now + used)
                    if not self.pending_irqs and not self.woken_since_decision():
                        return used, BLOCK  # the hypervisor decides again when it takes effect
                    self.hlt_after = 0  # this halt is over: no later block depends on it
                elif op == _YIELD:
                    return used, YIELD
                continue
            if status == ST_NO_MEMORY:
                raise PvsimError("the host's page-table pool is exhausted (raise max_pt_pages)")

    def _consume(self, fr: Frame, room: int) -> int:
        """Run up to ``room`` cycles of the burst under way in ``fr``; the cycles run."""
        rest = fr.rest
        total = sum(rest.tolist())
        if total <= room:
            row, fr.rest = rest, None
        else:
            row, rest = split(rest, room)
            fr.rest = rest
            total = room
        self._caused += row
        if self.on_behalf is not None and not fr.interrupt:
            self._credit_behalf(total)
        return total

    def _fault(self, kernel_mode: bool) -> None:
        cpu = self.cpu
        va = int(cpu[R_FAULT_VA])
        if self._fault_streak > 4:
            raise PvsimError(
                f"{self.name}: the guest faults again and again at {va:#x} "
                f"(kind {int(cpu[R_FAULT_KIND])}): its handler cannot resolve it"
            )
        proc = self.domain.kernel.by_space.get(int(cpu[R_SPACE]))
        if proc is None:
            raise PvsimError(f"{self.name}: page fault at {va:#x} outside any process")
        res = self.domain.kernel.page_fault(proc, va, bool(cpu[R_FAULT_WRITE]), kernel_mode)
        self.push(res.chunks, res.skip)
