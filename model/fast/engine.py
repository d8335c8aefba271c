"""The fast level's engine: vCPUs running bursts of measured CPU work on pCPUs.

What other entities can observe stays an event at its simulated time: every arrival,
every I/O request's stages, every device's arbitration (:mod:`model.fast.servers`,
:mod:`model.fast.host`), and each vCPU taking and giving back a pCPU (here). What only
the guest sees is not simulated but replayed: a vCPU runs *bursts* of CPU work whose
cycles by category the exact engine measured (:mod:`model.fast.calibrate`).

- A :class:`Work` is one cost (cycles by category), made once and replayed: the ledger
  counts how many times each ran on each pCPU for each vCPU, so a burst costs no array
  arithmetic.
- A :class:`Burst` runs its work, then calls ``then``; its *tail* (what the vCPU does
  after what the burst's path waits for: the end of a handler, a halt) runs after the
  vCPU's other bursts, and a burst posted meanwhile preempts it.
- A :class:`Cpu` (a vCPU) runs its bursts in order, one at a time, each to its end. With
  work it takes a free pCPU (its last one if free, else the first free one, as the credit
  scheduler's tickle picks it; at first its uid modulo the pCPUs) or waits, first come
  first served, for one; with none left it halts and gives its pCPU to the next waiting
  vCPU. A pCPU taking another vCPU than the one it ran last is a
  world switch: the vCPU pays its cost (and, where its mode flushes the TLB, the measured
  cost of running cold) before its next burst. A vCPU *held* (:meth:`Engine.hold`:
  waiting in the hypervisor for the device model to answer an emulated register access)
  halts and runs nothing, its tails included, until each hold is released.

A pinned vCPU (:attr:`Cpu.allowed`) takes only the pCPUs it may run on, and a pCPU it
frees goes to the first waiting vCPU that may run there.

Not modelled at this level (the exact level has them): preemption of a burst (credit
slices and boost, an interrupt in the middle of a stretch), the credit scheduler's
weights and caps, and ring slots running out.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable

import numpy as np

from ..accounting import split
from ..categories import N_CATEGORIES
from ..series import Level

_IDLE, _RUNNABLE, _RUNNING, _HELD = 0, 1, 2, 3
_FOLD = 64  # distinct works counted for a (pCPU, vCPU) before they are added up


class Work:
    """Cycles by category (int64), made once by :meth:`Engine.work` and replayed."""

    __slots__ = ("id", "cycles", "total", "behalf", "_splits")

    def __init__(self, wid: int, cycles: np.ndarray, behalf: int) -> None:
        self.id = wid  # -1: the rest of a work cut in two (charged as cycles, not counted)
        self.cycles = cycles
        self.total = int(cycles.sum())
        self.behalf = behalf  # of them, on a guest's behalf (driver-domain work)
        self._splits: dict[int, tuple[Work, Work]] = {}


class Burst:
    """CPU work a vCPU runs: ``work``, then ``then(t)``; ``begin(t)``, if given, when it
    starts (``t``: its start, after the world switch that may lead it); ``tail``: a
    :class:`Work` run after (see the module); ``behalf``: the guest a driver-domain burst
    works for (-1: none). ``local``: ``then`` touches only the vCPU's own work (a
    worker's), so it may be called ahead of the clock, at ``t``.

    A vCPU runs the bursts it has back to back without an event between them where
    nothing another entity sees happens at the end of one: no ``then``, or a local one.
    Their ``begin`` and local ``then`` are called with the times they happen at."""

    __slots__ = ("work", "then", "begin", "behalf", "tail", "local")

    def __init__(self, work: Work, then: Callable[[int], None] | None,
                 begin: Callable[[int], None] | None = None, behalf: int = -1,
                 tail: Work | None = None, local: bool = False) -> None:
        self.work = work
        self.then = then
        self.begin = begin
        self.behalf = behalf
        self.tail = tail
        self.local = local


class Cpu:
    """A vCPU of the fast level: its bursts, its state, and how long it has been running
    and runnable (its runstate)."""

    __slots__ = ("engine", "uid", "dom", "name", "bursts", "state", "since", "time",
                 "pcpu", "last", "cur", "then", "t0", "busy", "switch", "tail", "in_tail",
                 "gen", "lead", "tail_end", "runs", "held", "allowed")

    def __init__(self, engine: Engine, uid: int, dom: int, name: str,
                 bursts: deque | None = None, allowed: tuple[int, ...] | None = None) -> None:
        self.engine = engine
        #: the pCPUs it may run on (its domain's pinning; None: any)
        self.allowed = frozenset(allowed) if allowed else None
        self.uid, self.dom, self.name = uid, dom, name
        #: its bursts to run (the driver domain's vCPUs share one queue)
        self.bursts: deque[Burst] = deque() if bursts is None else bursts
        self.state, self.since = _IDLE, 0
        self.time = [0, 0, 0, 0]  # cycles idle, runnable, running, held (up to ``since``)
        #: it waits in the hypervisor (for the device model's answer to an emulated
        #: register access): it runs nothing while held (holds not yet released)
        self.held = 0
        self.pcpu = -1
        self.last = -1  # the pCPU it ran on last
        self.cur: list[Work] | None = None  # what it runs now, and then
        self.then: Callable[[int], None] | None = None
        self.t0 = 0  # when that started
        #: running or not (1, 0) over time: its busy time per interval, if recorded
        self.busy: Level | None = None
        #: a world switch to it (and running cold after one)
        self.switch: Work | None = None
        self.lead = False  # a world switch leads its next burst
        self.tail: list[Work] = []  # tails to run before it halts
        self.in_tail = False
        self.gen = 0  # counts its runs, so that a preempted tail's timeout is ignored
        self.tail_end = -1  # a tail run without an event (nobody waits for a pCPU): its end
        #: the runs of each work counted on its pCPU now (the engine's, for that pCPU)
        self.runs: dict[int, int] = {}

    def runstate_at(self, now: int) -> tuple[int, int, int]:
        """Cycles running, runnable and held (:attr:`held`, halted meanwhile) from time 0
        to ``now`` (``now`` may be ahead of the clock while it runs a burst to its end)."""
        if self.tail_end >= 0:
            self.engine.catch_up(self)
        t, state = self.time, self.state
        run, wait, held = t[_RUNNING], t[_RUNNABLE], t[_HELD]
        if state == _RUNNING:
            run += now - self.since
        elif state == _RUNNABLE:
            wait += now - self.since
        elif state == _HELD:
            held += now - self.since
        return run, wait, held

    def _set(self, state: int, now: int) -> None:
        if self.busy is not None and (state == _RUNNING) != (self.state == _RUNNING):
            self.busy.set(now, 1 if state == _RUNNING else 0)  # a running vCPU runs a burst
        self.time[self.state] += now - self.since
        self.state, self.since = state, now

    def post(self, burst: Burst) -> None:
        """Give the vCPU a burst to run (after those it has)."""
        self.bursts.append(burst)
        if self.tail_end >= 0:
            self.engine.catch_up(self)
        if self.state == _IDLE:
            self.engine.wake(self)
        elif self.in_tail and not self.held:
            self.engine.preempt_tail(self)


class Engine:
    """The pCPUs, the works and the cycle ledger of a fast-level host.

    Parameters
    ----------
    env : simpy.Environment
    pcpus : int
    vcpus : int
        vCPUs of the host (the ledger's entities are their uids + 1; 0 is the pCPUs' idle).
    """

    def __init__(self, env, pcpus: int, vcpus: int) -> None:
        self.env = env
        self.pcpus = pcpus
        self.free = list(range(pcpus))
        self.waiting: deque[Cpu] = deque()
        self.last_on = [-1] * pcpus  # the uid each pCPU ran last
        self.on: list[Cpu | None] = [None] * pcpus  # the vCPU each pCPU runs
        self.switches = 0
        self.works: list[Work] = []
        #: (pcpu, uid) -> {work id: runs}
        self._counts: dict[tuple[int, int], dict[int, int]] = {}
        #: the cycles charged: the counts folded in, and the parts of works cut in two
        self._parts = np.zeros((pcpus, vcpus + 1, N_CATEGORIES), np.int64)
        self.behalf: dict[int, int] = {}
        self.cpus: list[Cpu] = []
        self.lazy: set[Cpu] = set()  # vCPUs running a tail without an event
        #: (pCPU, uid, start, end) of each time a vCPU ran, if recorded (the schedule)
        self.segments: array | None = None
        #: the tails given an event for waiting vCPUs (one serves every vCPU that may run
        #: on its pCPU)
        self.timed: set[Cpu] = set()

    def add(self, cpu: Cpu) -> Cpu:
        """A vCPU of the host; its home pCPU is its uid modulo the pCPUs, or the first it is
        pinned to (as credit's)."""
        cpu.last = cpu.uid % self.pcpus if cpu.allowed is None else min(cpu.allowed)
        self.cpus.append(cpu)
        return cpu

    def work(self, cycles: np.ndarray, behalf_share: float = 0.0) -> Work:
        """A new :class:`Work` of ``cycles`` (whole cycles by category), ``behalf_share``
        of them on a guest's behalf."""
        cycles = np.asarray(cycles, np.int64)
        w = Work(len(self.works), cycles, 0)
        w.behalf = int(round(w.total * behalf_share))
        self.works.append(w)
        return w

    def split(self, w: Work, part: int) -> tuple[Work, Work]:
        """``w``'s first ``part`` cycles and the rest, as works (made once per part)."""
        out = w._splits.get(part)
        if out is None:
            a, b = split(w.cycles, part)
            share = w.behalf / w.total if w.total else 0.0
            out = w._splits[part] = (self.work(a, share), self.work(b, share))
        return out

    def ledger(self) -> np.ndarray:
        """``(pcpu, entity, category)``: the cycles charged so far (no idle)."""
        for key, runs in self._counts.items():
            self._fold(key, runs)
        return self._parts.copy()

    def _fold(self, key: tuple[int, int], runs: dict[int, int]) -> None:
        """Add the ``runs`` counted for (pCPU, vCPU) ``key`` into the ledger's array and
        clear them (so the counts stay few: a vCPU replays many different measured works)."""
        if runs:
            works = self.works
            cycles = np.array([works[w].cycles for w in runs], np.int64)
            n = np.fromiter(runs.values(), np.int64, len(runs))
            self._parts[key[0], key[1] + 1] += n @ cycles
            runs.clear()

    # --- scheduling -------------------------------------------------------------------------
    def wake(self, cpu: Cpu) -> None:
        now = self.env.now
        if self.lazy:  # a tail that has ended frees its pCPU: its last, or any if none is
            holder = self.on[cpu.last] if cpu.last >= 0 else None
            for c in ([holder] if holder is not None and holder in self.lazy and self.free
                      else list(self.lazy)):
                self.catch_up(c)
        free = self.free if cpu.allowed is None else [p for p in self.free if p in cpu.allowed]
        if free:  # its last pCPU if free, else the first free one (as credit's tickle)
            p = cpu.last if cpu.last in free else min(free)
            self.free.remove(p)
            self._run(cpu, p, now)
        else:
            cpu._set(_RUNNABLE, now)
            self.waiting.append(cpu)
            self._time_a_tail(now, cpu)

    def hold(self, cpu: Cpu) -> None:
        """``cpu`` waits in the hypervisor from the end of the burst under way (whose
        ``then`` calls this): it halts, and runs nothing, its tails included, until each
        hold is released (:meth:`release`; its bursts posted meanwhile wait)."""
        cpu.held += 1

    def release(self, cpu: Cpu) -> None:
        """One of ``cpu``'s holds ends (now); with none left it runs what it has."""
        cpu.held -= 1
        if not cpu.held and cpu.state == _HELD:
            now = self.env.now
            if cpu.bursts or cpu.tail:
                self.wake(cpu)
            else:
                cpu._set(_IDLE, now)

    def offer(self, cpus: list[Cpu]) -> None:
        """A burst was put on the queue that ``cpus`` share (the driver domain's): one of
        them about to halt (running its tails) takes it, else an idle one wakes if the
        others are too few for the queue's bursts."""
        busy, idle = 0, None
        for c in cpus:
            if c.tail_end >= 0:
                self.catch_up(c)
            if c.in_tail:
                self.preempt_tail(c)
                return
            if c.state != _IDLE:
                busy += 1
            elif idle is None:
                idle = c
        if idle is not None and len(idle.bursts) > busy:
            self.wake(idle)

    def _time_a_tail(self, now: int, waiter: Cpu) -> None:
        """``waiter`` waits for a pCPU: unless a tail timed already ends on one it may run
        on, the first tail on such a pCPU to end without an event gets one, so that its
        pCPU is handed over then."""
        ok = waiter.allowed
        if not self.lazy or any(ok is None or c.pcpu in ok for c in self.timed):
            return
        mine = [c for c in self.lazy if ok is None or c.pcpu in ok]
        if mine:
            c = min(mine, key=lambda c: (c.tail_end, c.uid))
            self.lazy.discard(c)
            c.tail_end = -1
            c.gen += 1
            self.timed.add(c)
            self.env.call_later(c.t0 + sum(w.total for w in c.cur) - now,
                                lambda _e, c=c, g=c.gen: self._done(c, g))

    def _run(self, cpu: Cpu, p: int, now: int) -> None:
        if self.last_on[p] != cpu.uid:  # another vCPU's state is loaded
            self.switches += 1
            self.last_on[p] = cpu.uid
            cpu.lead = cpu.switch is not None
        cpu.pcpu = cpu.last = p
        self.on[p] = cpu
        key = (p, cpu.uid)
        runs = self._counts.get(key)
        cpu.runs = runs if runs is not None else self._counts.setdefault(key, {})
        cpu._set(_RUNNING, now)
        self._next(cpu, now)

    def _next(self, cpu: Cpu, now: int) -> None:
        bursts = cpu.bursts
        run: list[Work] = []  # what runs back to back from now, ending at ``t``
        t = now
        while bursts and not cpu.held:
            b = bursts.popleft()
            if cpu.lead:  # a world switch runs first
                cpu.lead = False
                run.append(cpu.switch)
                t += cpu.switch.total
            if b.behalf >= 0:
                self.behalf[b.behalf] = self.behalf.get(b.behalf, 0) + b.work.behalf + (
                    b.tail.behalf if b.tail is not None else 0)
            if b.begin is not None:
                b.begin(t)
            if b.tail is not None:
                cpu.tail.append(b.tail)
            if b.work.total:
                run.append(b.work)
                t += b.work.total
            if b.then is None:
                continue
            if b.local or t == now:
                b.then(t)
                continue
            self._start(cpu, run, b.then, t - now, now)
            return
        if t > now:  # what ran back to back ends then
            self._start(cpu, run, None, t - now, now)
            return
        if cpu.held:  # it waits in the hypervisor
            self._halt(cpu, now, _HELD)
            return
        if cpu.tail:  # its tails, until a burst preempts them
            run, cpu.tail = cpu.tail, []
            cpu.in_tail = True
            total = sum(w.total for w in run)
            if self._waited_for(cpu.pcpu):  # a vCPU waits for its pCPU: the end is an event
                self._start(cpu, run, None, total, now)
            else:  # nobody waits: it ends when someone next looks (catch_up)
                cpu.cur, cpu.then, cpu.t0, cpu.tail_end = run, None, now, now + total
                cpu.gen += 1
                self.lazy.add(cpu)
            return
        self._halt(cpu, now)

    def _halt(self, cpu: Cpu, t: int, state: int = _IDLE) -> None:
        """``cpu`` has nothing left, or is held (``state``), since ``t``: it halts, and
        its pCPU goes to the first waiting vCPU that may run on it (now), or is free."""
        p = cpu.pcpu
        if self.segments is not None and t > cpu.since:
            self.segments.extend((p, cpu.uid, cpu.since, t))
        cpu.pcpu = -1
        self.on[p] = None
        cpu._set(state, t)
        waiting = self.waiting
        nxt = next((w for w in waiting if w.allowed is None or p in w.allowed), None) \
            if waiting else None
        if nxt is None:
            self.free.append(p)
            return
        waiting.remove(nxt)
        now = self.env.now
        self._run(nxt, p, now)
        for w in list(waiting):
            self._time_a_tail(now, w)

    def _waited_for(self, p: int) -> bool:
        """Whether a waiting vCPU may run on pCPU ``p``."""
        return bool(self.waiting) and any(w.allowed is None or p in w.allowed
                                          for w in self.waiting)

    def _start(self, cpu: Cpu, run: list[Work], then, total: int, now: int) -> None:
        cpu.cur, cpu.then, cpu.t0 = run, then, now
        cpu.gen += 1
        self.env.call_later(total, lambda _e, c=cpu, g=cpu.gen: self._done(c, g))

    def _done(self, cpu: Cpu, gen: int) -> None:
        if gen != cpu.gen:  # a tail that a burst preempted
            return
        self.timed.discard(cpu)
        now = self.env.now
        self._charge(cpu, cpu.cur)
        then = cpu.then
        cpu.cur = cpu.then = None
        cpu.in_tail = False
        if then is not None:
            then(now)
        self._next(cpu, now)

    def _charge(self, cpu: Cpu, run: list[Work]) -> None:
        """Count ``run``'s works as run by ``cpu`` on its pCPU."""
        runs = cpu.runs
        for w in run:
            i = w.id
            if i >= 0:
                runs[i] = runs.get(i, 0) + 1
            else:  # the rest of a work cut in two
                self._parts[cpu.pcpu, cpu.uid + 1] += w.cycles
        if len(runs) > _FOLD:
            self._fold((cpu.pcpu, cpu.uid), runs)

    def _charge_done(self, cpu: Cpu, now: int) -> list[Work]:
        """Charge what ``cpu`` has run of its current works up to ``now``; the rest (a
        work cut in two leaves a work of its own for the rest, not kept by the engine)."""
        left, ran = [], now - cpu.t0
        for w in cpu.cur:
            if ran >= w.total:
                self._charge(cpu, [w])
                ran -= w.total
            elif ran > 0:
                a, b = split(w.cycles, ran)
                self._parts[cpu.pcpu, cpu.uid + 1] += a
                left.append(Work(-1, b, 0))
                ran = 0
            else:
                left.append(w)
        return left

    def catch_up(self, cpu: Cpu) -> None:
        """If ``cpu``'s tail run without an event has ended, it halted then."""
        end = cpu.tail_end
        if end < 0 or end > self.env.now:
            return
        self.lazy.discard(cpu)
        cpu.tail_end = -1
        self._charge(cpu, cpu.cur)
        cpu.cur = None
        cpu.in_tail = False
        self._halt(cpu, end)

    def preempt_tail(self, cpu: Cpu) -> None:
        """A burst for ``cpu`` while it runs its tails: what is left of them waits."""
        now = self.env.now
        self.lazy.discard(cpu)
        cpu.tail_end = -1
        left = self._charge_done(cpu, now)
        cpu.tail = left + cpu.tail
        cpu.cur = cpu.then = None
        cpu.in_tail = False
        cpu.gen += 1
        if cpu in self.timed:  # it was to hand its pCPU to a waiting vCPU: another will
            self.timed.discard(cpu)
            for w in list(self.waiting):
                self._time_a_tail(now, w)
        self._next(cpu, now)

    def settle(self, now: int) -> None:
        """Charge what the bursts under way have run up to ``now`` (the warm-up's end,
        the run's end); they go on from there."""
        for cpu in self.cpus:
            if cpu.tail_end >= 0:
                self.catch_up(cpu)
            if cpu.cur is None:
                continue
            cpu.cur, cpu.t0 = self._charge_done(cpu, now), now

    def close(self, now: int) -> None:
        """The run ends at ``now``: the vCPUs' busy time series are complete up to it, and
        the schedule has the runs under way, cut there."""
        for cpu in self.cpus:
            if cpu.busy is not None:
                cpu.busy.advance(now)
            if self.segments is not None and cpu.state == _RUNNING and now > cpu.since:
                self.segments.extend((cpu.pcpu, cpu.uid, cpu.since, now))
