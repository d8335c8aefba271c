"""The hypervisor: physical CPUs, world switches, timers and virtual interrupts.

Each physical CPU is one long-lived SimPy process (:class:`PCpu`). It asks the
scheduler for a vCPU, charges the world switch (the TLB is flushed unless the
hardware tags entries by VPID), lets the vCPU execute eagerly for its slice
(:meth:`model.vcpu.VCpu.run`) and then waits out the cycles it used. If the
pCPU is kicked during that wait (a reschedule for a BOOSTed vCPU, or an
interrupt to deliver) the vCPU has run ahead: the unelapsed part of the segment
becomes its *debt*, paid first when it next runs, before anything it did at
the end of the segment (a block, a yield) takes effect. Effects visible to other
entities therefore happen at the right simulated time (a timer the vCPU programmed
in the unelapsed part is armed only when the debt reaches it). What runs ahead,
by at most one segment, is state private to the guest: its TLB, page tables and
kernel bookkeeping, its translation cache, and the vCPU's own counters.

Hypercalls, traps and exits that need no scheduling decision are handled by
the CPU kernel on the calling vCPU's time, as Xen does them on the calling
pCPU; the hypervisor proper handles timers, event delivery and blocking.

Simulated time is an integer number of cycles of the host clock.
"""

from __future__ import annotations

from array import array
from enum import Enum
from typing import TYPE_CHECKING, Protocol

import numpy as np
import simpy

from .accounting import Ledger, split
from .categories import IDLE, N_CATEGORIES
from .clock import Environment
from .errors import InvariantError, PvsimError
from .hardware import HardwareProfile
from .runstate import BLOCKED, OFFLINE, RUNNABLE, RUNNING
from .sched.base import Scheduler
from .series import Bins
from .vcpu import Stop, VCpu

if TYPE_CHECKING:
    from .liveness import State


class Kick(Enum):
    """Why a pCPU is kicked (:meth:`PCpu.kick`).

    Examples
    --------
    >>> Kick("irq")
    <Kick.IRQ: 'irq'>
    """

    RESCHED = "resched"  # reschedule now (a BOOSTed wake-up, a parked vCPU)
    IRQ = "irq"  # deliver an interrupt to the vCPU it runs


class WakeSource(Protocol):
    """Something besides timers that wakes blocked vCPUs (the I/O system)."""

    def busy(self) -> bool:
        """Whether work is in flight that may still wake someone."""

    def waits(self, blocked: list[VCpu]) -> dict[VCpu, tuple[State, str]]:
        """For each of the ``blocked`` vCPUs this source concerns: its
        :class:`model.liveness.State` and why."""


class RunAhead:
    """What the pCPUs still have to run for one vCPU: owned by :class:`PCpu` (only the
    pCPUs read or write it; :meth:`Hypervisor.carry` adds to ``carry``).

    Attributes
    ----------
    debt : numpy.ndarray or None
        Cycles by category of a cut segment that have not elapsed: the vCPU ran ahead, and
        the next pCPU to run it pays them first.
    reason : Stop
        Why the vCPU's last run stopped: if its segment was cut, that effect is due once
        the debt is paid.
    carry : numpy.ndarray or None
        Cycles charged outside a run (an I/O action, an interrupt exit), run at the start
        of the vCPU's next segment.

    Examples
    --------
    >>> RunAhead().debt is None, RunAhead().reason
    (True, <Stop.BUDGET: 'budget'>)
    """

    __slots__ = ("debt", "reason", "carry")

    def __init__(self) -> None:
        self.debt: np.ndarray | None = None
        self.reason = Stop.BUDGET
        self.carry: np.ndarray | None = None


class PCpu:
    """One physical CPU: a SimPy process running vCPUs (see the module docstring).

    Examples
    --------
    >>> from model.host import Host
    >>> from model.domain import DomainConfig
    >>> from model.workloads import spin
    >>> host = Host(pcpus=2)
    >>> _ = host.add_guest(DomainConfig("g", "pv"), spin())
    >>> _ = host.run(seconds=0.001)
    >>> [(p.index, p.current.name if p.current else None) for p in host.hypervisor.pcpus]
    [(0, 'g.v0'), (1, None)]
    """

    def __init__(self, hv: Hypervisor, index: int) -> None:
        self.hv = hv
        self.env = hv.env
        self.index = index
        self.current: VCpu | None = None  # the vCPU scheduled here (None = idle)
        self.last: VCpu | None = None  # whose state is loaded (for world-switch costs)
        self.stint_start = 0
        self._waiting = False  # in an interruptible wait
        self._pending: Kick | None = None
        self._idle_evt = self.env.event()
        self._seg: np.ndarray | None = None  # the segment being waited out, and its start
        self._seg_t0 = 0
        self._idle_t0: int | None = None
        self.process = self.env.process(self._loop())
        self.switches = 0

    def kick(self, why: Kick = Kick.RESCHED) -> None:
        """Make the pCPU reschedule (:attr:`Kick.RESCHED`) or deliver an interrupt
        (:attr:`Kick.IRQ`) now."""
        if self._pending is not Kick.RESCHED:
            self._pending = why
        if self.current is None:
            if not self._idle_evt.triggered:
                self._idle_evt.succeed()
        elif self._waiting:
            self._waiting = False
            self.process.interrupt(why)

    def _loop(self):
        """The pCPU's process: (1) pick a vCPU, or idle; (2) start a segment with the world
        switch and carried cycles; (3) execute: deliver an interrupt, pay debt, or run the
        vCPU; (4) wait the segment out, unless kicked; (5) close it: the rest of a cut
        segment becomes debt, a whole one has its stop reason take effect."""
        env = self.env
        slice_end = 0
        resched = True
        while True:
            if resched or self.current is None:
                slice_end = self._pick()
                if slice_end is None:  # idle until kicked (unless kicked while picking)
                    t0 = self._idle_t0 = env.now
                    if self._pending is None:
                        self._idle_evt = env.event()
                        yield self._idle_evt
                    self._idle_t0 = None
                    self.hv.ledger.add_idle(self.index, env.now - t0)
                    continue
            vcpu = self.current
            self._pending = None
            ra = self.hv.run_ahead[vcpu.uid]
            lead_row, lead = self._start_segment(vcpu, ra)
            seg, reason, paying = self._execute(vcpu, ra, lead_row, lead, slice_end)
            total = sum(seg.tolist())
            t0 = env.now
            why = None
            if total > 0 and not env.advance(t0 + total):  # else nothing is due meanwhile
                self._waiting = True
                self._seg, self._seg_t0 = seg, t0
                try:
                    yield env.timeout(total)
                except simpy.Interrupt as intr:
                    why = intr.cause
                self._waiting = False
                self._seg = None
            if self._pending is Kick.RESCHED:  # a reschedule may have come with another kick
                why = Kick.RESCHED
            if env.now - t0 < total:
                resched = self._cut(vcpu, ra, seg, t0, lead, paying, why)
            else:
                resched = self._close(vcpu, seg, t0, reason, paying, why, slice_end)

    def _pick(self) -> int | None:
        """Phase 1: ask the scheduler; the end of the new slice, or None (idle)."""
        self._pending = None
        vcpu, slice_ = self.hv.scheduler.pick(self)
        now = self.env.now
        old = self.current
        if vcpu is not old and old is not None:
            old.pcpu = None
            if old.runnable:  # preempted: it waits for a pCPU again
                old.runstate.enter(RUNNABLE, now)
        self.current = vcpu
        if vcpu is None:
            return None
        vcpu.pcpu = self
        if vcpu is not old:
            vcpu.runstate.enter(RUNNING, now)
        return now + max(slice_, 1)

    def _start_segment(self, vcpu: VCpu, ra: RunAhead) -> tuple[np.ndarray | None, int]:
        """Phase 2: the cycles by category that lead a new segment, the world switch (and
        TLB flush) if another vCPU's state is loaded and the cycles carried from outside
        a run (None: nothing leads it); and their sum."""
        lead = None
        if vcpu is not self.last:
            lead = vcpu.domain.compiled.world_switch.copy()
            if not vcpu.domain.tlb_tagged:
                vcpu.flush_tlb()
            self.last = vcpu
            self.switches += 1
        if ra.carry is not None:  # cycles an I/O action charged
            lead = ra.carry if lead is None else lead + ra.carry
            ra.carry = None
        return lead, 0 if lead is None else sum(lead.tolist())  # (faster than numpy's sum)

    def _execute(
        self, vcpu: VCpu, ra: RunAhead, lead_row: np.ndarray | None, lead: int,
        slice_end: int
    ) -> tuple[np.ndarray, Stop, int]:
        """Phase 3: what the vCPU executes after the ``lead`` cycles (``lead_row``): a
        pending interrupt's handler if it has debt, else a payment of its debt, else a
        run. Returns the whole segment's cycles by category (a new array), the stop
        reason and the debt cycles paid."""
        hv, now = self.hv, self.env.now
        # no segment runs past the end of the run: what a vCPU counts is what ran
        budget = max(min(slice_end, hv.horizon) - now - lead, 1)
        paying = 0
        if ra.debt is None:
            vcpu.mark()
            _, reason = vcpu.run(budget, now + lead, hv)
            seg = vcpu.since_mark()
            ra.reason = reason  # the reason a debt of this segment, if it is cut, keeps
        elif vcpu.pending_irqs:
            # deliver the interrupt now; the debt is paid after the handler
            vcpu.mark()
            vcpu.run(budget, now + lead, hv, irq_only=True)
            seg, reason = vcpu.since_mark(), Stop.BUDGET
        else:
            seg, rest = split(ra.debt, budget)
            paying = sum(seg.tolist())
            ra.debt = rest if rest.any() else None
            due = vcpu.timer.reached(now + lead, paying)
            if due is not None:  # the payment reaches a deferred programming
                hv.set_timer(vcpu, *due)
            reason = ra.reason if ra.debt is None else Stop.BUDGET
        if lead_row is not None:
            seg += lead_row
        return seg, reason, paying

    def _cut(
        self,
        vcpu: VCpu,
        ra: RunAhead,
        seg: np.ndarray,
        t0: int,
        lead: int,
        paying: int,
        why: Kick | None,
    ) -> bool:
        """Phase 5, kicked mid-segment: account what elapsed; the rest becomes debt, paid
        before the reason the run stopped (kept in ``ra``) takes effect. Returns whether
        to reschedule."""
        now = self.env.now
        elapsed = now - t0
        hv = self.hv
        done, rest = split(seg, elapsed)
        hv.ledger.add(self.index, vcpu.uid, done)
        if hv.busy is not None:
            hv.busy[vcpu.uid].add(t0, now)
        if hv.segments is not None and elapsed:
            hv.segments.extend((self.index, vcpu.uid, t0, now))
        ra.debt = rest if ra.debt is None else ra.debt + rest
        vcpu.timer.defer(now, max(elapsed - lead, 0), paying)
        hv.scheduler.ran(vcpu, self, elapsed)
        return why is Kick.RESCHED

    def _close(
        self,
        vcpu: VCpu,
        seg: np.ndarray,
        t0: int,
        reason: Stop,
        paying: int,
        why: Kick | None,
        slice_end: int,
    ) -> bool:
        """Phase 5, the whole segment elapsed: account it and let the stop ``reason``
        take effect. Returns whether to reschedule."""
        hv, now = self.hv, self.env.now
        elapsed = now - t0
        vcpu.timer.paid(paying)  # the payment did not reach a deferred programming
        hv.ledger.add(self.index, vcpu.uid, seg)
        if hv.busy is not None:
            hv.busy[vcpu.uid].add(t0, now)
        if hv.segments is not None and elapsed:
            hv.segments.extend((self.index, vcpu.uid, t0, now))
        hv.scheduler.ran(vcpu, self, elapsed)
        why = why or self._pending
        if reason is Stop.BUDGET:
            return now >= slice_end or why is Kick.RESCHED
        if reason is Stop.BLOCK:
            hv.block(vcpu)
            return True
        if reason is Stop.YIELD:
            hv.scheduler.yield_(vcpu)
            return True
        if reason is Stop.EXIT:
            hv.finished(vcpu)
            return True
        return hv.perform_io(vcpu)  # Stop.IO

    def in_progress(self) -> tuple[int, np.ndarray] | None:
        """What of the segment (or idle period) under way has elapsed by now: ``(entity,
        cycles by category)`` in the ledger's terms (entity 0: idle), or None."""
        now = self.env.now
        if self._seg is not None:
            done, _ = split(self._seg, now - self._seg_t0)
            return self.current.uid + 1, done
        if self._idle_t0 is not None:
            row = np.zeros(N_CATEGORIES, np.int64)
            row[IDLE] = now - self._idle_t0
            return 0, row
        return None

    def settle(self) -> None:
        """At the end of a run, account the part of the current segment (or idle
        period) that has elapsed, so the ledger covers exactly [0, now]."""
        now = self.env.now
        part = self.in_progress()
        if part is not None:
            self.hv.ledger.cycles[self.index, part[0]] += part[1]
        hv = self.hv
        if self._seg is not None and now > self._seg_t0:
            if hv.busy is not None:
                hv.busy[self.current.uid].add(self._seg_t0, now)
            if hv.segments is not None:
                hv.segments.extend((self.index, self.current.uid, self._seg_t0, now))
        self._seg = None
        self._idle_t0 = None


class Hypervisor:
    """The hypervisor of one host: pCPUs, a scheduler, timers and interrupt delivery.

    Parameters
    ----------
    env : Environment
        Time in cycles of the host clock (:mod:`model.clock`).
    hw : HardwareProfile
    n_pcpus : int
    scheduler : Scheduler

    Examples
    --------
    >>> from model.host import Host
    >>> from model.domain import DomainConfig
    >>> from model.workloads import sleeper
    >>> host = Host("nehalem-2.93ghz-ept", pcpus=1)
    >>> _ = host.add_guest(DomainConfig("s", "pv"), sleeper(work_us=10, sleep_us=100))
    >>> log = host.hypervisor.start_log()
    >>> _ = host.run(seconds=0.001)
    >>> [event for _, event, _, _ in log[:5]]
    ['set_timer', 'block', 'timer', 'wake', 'irq']
    """

    def __init__(
        self, env: Environment, hw: HardwareProfile, n_pcpus: int, scheduler: Scheduler
    ) -> None:
        self.env = env
        self.hw = hw
        self.scheduler = scheduler
        self.ledger = Ledger(n_pcpus, 0)
        self.pcpus: list[PCpu] = []
        self.vcpus: list[VCpu] = []
        #: what the pCPUs still have to run for each vCPU (by uid), owned by the pCPUs
        self.run_ahead: list[RunAhead] = []
        self.timers_fired = 0
        self.finished_at: dict[str, int] = {}
        self.on_all_finished: simpy.Event | None = None
        self.io_actions: list = []
        #: what else can wake a blocked vCPU (the I/O system): see :meth:`add_wake_source`
        self.wake_sources: list[WakeSource] = []
        #: ``(time, event, vCPU, detail)`` of timers, interrupts, blocks and wake-ups, when
        #: recording (else None); times are the vCPU's own clock where it is ahead
        self.log: list[tuple[int, str, str, int | None]] | None = None
        #: pcpu, vcpu uid, start, end of every run segment, flat, when recording (else None);
        #: an ``array("q")``: 32 bytes a segment
        self.segments: array | None = None
        #: each vCPU's (by uid) busy cycles per time-series interval, when recording
        self.busy: list[Bins] | None = None
        self._busy_width = 0
        #: when the run ends (cycles); segments are cut there
        self.horizon = 1 << 62
        self._started = 0
        self.pcpus = [PCpu(self, i) for i in range(n_pcpus)]
        scheduler.attach(self)

    def add_vcpu(self, vcpu: VCpu) -> None:
        if vcpu.uid != len(self.vcpus):
            raise PvsimError(f"{vcpu.name}: uid {vcpu.uid}, expected {len(self.vcpus)}")
        self.vcpus.append(vcpu)
        self.run_ahead.append(RunAhead())
        vcpu.attach(self)
        self.ledger.grow(len(self.vcpus))
        if self.busy is not None:
            self.busy.append(Bins(self._busy_width))
        self.scheduler.add(vcpu)

    def start(self, vcpu: VCpu, daemon: bool = False) -> None:
        """Make a vCPU runnable for the first time."""
        vcpu.runnable = True
        vcpu.started = True
        vcpu.daemon = daemon
        vcpu.runstate.enter(RUNNABLE, self.env.now)
        self._started += 0 if daemon else 1
        self.scheduler.wake(vcpu)

    def kick(self, pcpu: PCpu) -> None:
        pcpu.kick(Kick.RESCHED)

    def add_wake_source(self, source: WakeSource) -> None:
        """Register something other than timers that wakes blocked vCPUs (the I/O system):
        the deadlock check and :func:`model.liveness.liveness` ask it."""
        self.wake_sources.append(source)

    def record_segments(self) -> array:
        """Record every run segment from now on (:attr:`segments`) and return the record;
        call it before the run: each pCPU takes the record when its loop first runs."""
        if self.segments is None:
            self.segments = array("q")
        return self.segments

    def record_busy(self, width: int) -> list[Bins]:
        """Accumulate each vCPU's busy cycles per interval of ``width`` cycles from now
        on (:attr:`busy`, those of vCPUs added later too) and return them."""
        self._busy_width = width
        self.busy = [Bins(width) for _ in self.vcpus]
        return self.busy

    def start_log(self, into: list | None = None) -> list[tuple[int, str, str, int | None]]:
        """Record the event log from now on (:attr:`log`) and return it: into ``into``
        if given (a list, or anything with a list's ``append``, such as a bounded log),
        else a new list."""
        self.log = [] if into is None else into
        return self.log

    def note(self, time: int, event: str, vcpu: VCpu, detail: int | None = None) -> None:
        """Add an entry to the event log (when :attr:`log` is a list)."""
        if self.log is not None:
            self.log.append((time, event, vcpu.name, detail))

    # --- I/O actions -----------------------------------------------------------------------
    def register_io(self, action) -> int:
        """Register ``action(vcpu, arg) -> (cycles by category or None, block)``: the
        handler of ``Op.IO`` instructions whose ``a`` is the returned id."""
        self.io_actions.append(action)
        return len(self.io_actions) - 1

    def carry(self, vcpu: VCpu, row: np.ndarray) -> None:
        """Run ``row`` (cycles by category, already charged to ``vcpu``) at the start of
        ``vcpu``'s next segment."""
        ra = self.run_ahead[vcpu.uid]
        ra.carry = row.copy() if ra.carry is None else ra.carry + row

    def perform_io(self, vcpu: VCpu) -> bool:
        """Perform ``vcpu``'s due I/O action now; True if the vCPU blocked."""
        action, arg = vcpu.take_io()
        row, block = self.io_actions[action](vcpu, arg)
        if row is not None and row.any():
            vcpu.add_carry(row)
        if block and (vcpu.ioreq is not None or not vcpu.pending_irqs):
            self.block(vcpu)
            return True
        return False

    # --- blocking and wake-up -----------------------------------------------------------
    def block(self, vcpu: VCpu) -> None:
        """The vCPU executed HLT / SCHEDOP_block, or an I/O action blocks it: it sleeps
        unless an interrupt is pending or (a halt) came since the guest decided to halt;
        waiting for an ioreq (:meth:`wait_ioreq`), it sleeps whatever is pending."""
        if vcpu.ioreq is None and vcpu.resolve_halt():
            return
        vcpu.runnable = False
        vcpu.blocked_at = self.env.now
        vcpu.runstate.enter(BLOCKED, self.env.now)
        if self.log is not None:
            self.note(self.env.now, "block", vcpu)
        self.scheduler.sleep(vcpu)
        if self.on_all_finished is not None:
            self._check_deadlock()

    def _check_deadlock(self) -> None:
        """In a run without a time limit: fail if no workload can ever make progress."""
        stuck = []
        for v in self.vcpus:
            if v.done or not v.started:
                continue
            if v.runnable or v.timer.pending:
                return  # something can still run (a driver domain's backend counts)
            if v.daemon:
                continue
            stuck.append(v.name)
        if stuck and not any(src.busy() for src in self.wake_sources):
            raise PvsimError(
                f"deadlock: {', '.join(stuck)} blocked with no timer armed and "
                "no I/O in flight, so the run would never end"
            )

    def finished(self, vcpu: VCpu) -> None:
        vcpu.runnable = False
        self.finished_at[vcpu.name] = self.env.now
        vcpu.runstate.enter(OFFLINE, self.env.now)
        self.scheduler.sleep(vcpu)
        done = self.on_all_finished
        if vcpu.daemon:
            return
        if done is not None and len(self.finished_at) == self._started and not done.triggered:
            done.succeed()

    def raise_irq(self, vcpu: VCpu) -> None:
        """Deliver a virtual interrupt (event-channel upcall or virtual APIC vector)."""
        vcpu.post_irq()
        self.wake(vcpu)

    def wait_ioreq(self, vcpu: VCpu, att) -> None:
        """``vcpu``'s emulated register access of attachment ``att`` went to the device
        model: it waits in the hypervisor for the answer (:meth:`answer_ioreq`), and
        nothing else wakes it (interrupts stay pending, delivered once it runs again:
        in Xen the vCPU waits in ``hvm_wait_for_io``, called by ``hvm_do_resume`` before it
        re-enters the guest: xen/arch/x86/hvm/ioreq.c)."""
        if vcpu.ioreq is not None:
            raise InvariantError(f"{vcpu.name}: a register access of {att.device.name} "
                                 f"before the device model answered its access of "
                                 f"{vcpu.ioreq.device.name}")
        vcpu.ioreq = att

    def answer_ioreq(self, vcpu: VCpu) -> None:
        """The device model answered ``vcpu``'s access: it resumes."""
        vcpu.ioreq = None
        self.wake(vcpu)

    def wake(self, vcpu: VCpu) -> None:
        """Make ``vcpu`` runnable if it is blocked, without an interrupt (a ring slot
        freed; an access answered, :meth:`answer_ioreq`). A running vCPU is told to look
        at its pending interrupts, if any. A vCPU waiting for an ioreq stays blocked."""
        if vcpu.done or vcpu.ioreq is not None:
            return
        if not vcpu.runnable:
            vcpu.runnable = True
            vcpu.woken_at = self.env.now
            vcpu.runstate.enter(RUNNING if vcpu.pcpu is not None else RUNNABLE, self.env.now)
            vcpu.wakes += 1
            if self.log is not None:
                self.note(self.env.now, "wake", vcpu)
            self.scheduler.wake(vcpu)
        elif vcpu.pcpu is not None and vcpu.pending_irqs:
            vcpu.pcpu.kick(Kick.IRQ)

    # --- timers --------------------------------------------------------------------------
    def set_timer(self, vcpu: VCpu, at: int, when: int) -> None:
        """``vcpu`` programs its one-shot timer at its local time ``at`` for absolute time
        ``when`` (cycles); a new deadline replaces the old one, as with Xen's singleshot
        timer (:class:`model.vtimer.VirtualTimer`)."""
        if self.log is not None:
            self.note(at, "set_timer", vcpu, when)
        vcpu.timer.program(at, when)

    def timer_fired(self, vcpu: VCpu, deadline: int) -> None:
        """``vcpu``'s timer event fired at its ``deadline`` (now): raise the interrupt."""
        self.timers_fired += 1
        if self.log is not None:
            self.note(self.env.now, "timer", vcpu, deadline)
        self.raise_irq(vcpu)

    def expire_timer(self, vcpu: VCpu, now: int) -> None:
        """``vcpu``'s timer is due by the vCPU's own clock ``now``, ahead of the
        simulation's (it reached a halt after the deadline within the segment it is
        running): the timer fires there, as a pending interrupt."""
        deadline = vcpu.timer.expire()
        if self.log is not None:
            self.note(now, "timer_at_halt", vcpu, deadline)
        self.timers_fired += 1
        vcpu.post_irq()

    def settle(self) -> None:
        """Close the books at the end of a run and check cycle conservation."""
        for p in self.pcpus:
            p.settle()
        self.ledger.check(int(self.env.now))
