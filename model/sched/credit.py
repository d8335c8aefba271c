"""The Xen credit scheduler (credit1), after xen/common/sched/credit.c.

Per pCPU a run queue ordered by priority (BOOST > UNDER > OVER), FIFO within a
priority. A running vCPU burns 10 credits per millisecond. Every tick (10 ms)
the running vCPU is charged, loses BOOST and joins the active list; every
accounting period (3 ticks = one 30 ms time slice) ``_account`` shares
``300 credits x pCPUs`` among the active domains by weight, clipped by caps;
a vCPU with credit >= 0 is UNDER, < 0 OVER, and a capped one that fell below
``-cap share`` is parked (not runnable) until its credit turns positive. A vCPU
woken while UNDER is BOOSTed and preempts UNDER/OVER vCPUs, except that a
running vCPU keeps the CPU for the rate limit (1 ms) after it was scheduled.
A pCPU whose best local choice is OVER or idle steals better work from peers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Scheduler

BOOST, UNDER, OVER, IDLE = 0, -1, -2, -64


@dataclass(slots=True)
class _CVcpu:
    """The credit scheduler's record of one vCPU (csched_vcpu): only the scheduler reads
    or writes it."""

    credit: int = 0
    pri: int = UNDER
    active: bool = False
    parked: bool = False
    processor: int = 0
    last_burn: int = 0
    burn_rest: int = 0  # cycles x 10,000 run since the last whole credit, below freq_hz
    yielded: bool = False


class CreditScheduler(Scheduler):
    """Xen's credit scheduler.

    Parameters
    ----------
    timeslice_ms : float
        Time slice (Xen default 30 ms); the tick is a third of it.
    ratelimit_us : float
        Minimum run time before a running vCPU can be preempted (default 1000 us).
    boost : bool
        Whether woken vCPUs are BOOSTed (True in Xen; False shows what BOOST buys).

    Examples
    --------
    >>> from model.host import Host
    >>> from model.domain import DomainConfig
    >>> from model.workloads import spin
    >>> sched = CreditScheduler(timeslice_ms=30)
    >>> host = Host(pcpus=1, scheduler=sched)
    >>> v = host.add_guest(DomainConfig("g", "pv"), spin()).vcpus[0]
    >>> sched.record(v).pri == BOOST  # started: woken while UNDER
    True
    >>> _ = host.run(seconds=0.015)
    >>> sched.record(v).pri == UNDER  # the 10 ms tick took the BOOST away
    True
    """

    name = "credit"

    def __init__(
        self, timeslice_ms: float = 30.0, ratelimit_us: float = 1000.0, boost: bool = True
    ) -> None:
        self.timeslice_ms = timeslice_ms
        self.ratelimit_us = ratelimit_us
        self.boost = boost
        self.credits_per_tslice = int(10 * timeslice_ms)
        self.runq: list[list] = []

    def attach(self, host) -> None:
        super().attach(host)
        self.runq = [[] for _ in host.pcpus]
        self.tslice = int(self.timeslice_ms * self.ms)
        self.tick = self.tslice // 3
        self.ratelimit = int(self.ratelimit_us * self.ms / 1000.0)
        self._freq = int(round(host.hw.freq_hz))  # 10 credits per ms: cycles x 10,000 / freq
        self.env.process(self._ticker())

    # --- bookkeeping -----------------------------------------------------------------------
    def new_record(self, vcpu) -> _CVcpu:
        aff = vcpu.domain.config.affinity
        first = aff[0] if aff else vcpu.uid % len(self.host.pcpus)
        return _CVcpu(processor=first)

    def _burn(self, vcpu, now: int) -> None:
        """Charge ``vcpu`` the credits of its running since it was last charged, in
        integers: the whole credits of all its running so far, whatever the pieces."""
        s = self._records[vcpu]
        ran = now - s.last_burn
        if ran > 0:
            whole, s.burn_rest = divmod(s.burn_rest + ran * 10_000, self._freq)
            s.credit -= whole
        s.last_burn = now

    def _insert(self, vcpu) -> None:
        rec = self._records
        s = rec[vcpu]
        q = self.runq[s.processor]
        i = 0
        while i < len(q) and rec[q[i]].pri >= s.pri:
            i += 1
        if s.yielded and i < len(q):
            i += 1  # a yielding vCPU goes behind one lower-priority vCPU
        s.yielded = False
        q.insert(i, vcpu)

    def _remove(self, vcpu) -> None:
        q = self.runq[self._records[vcpu].processor]
        if vcpu in q:
            q.remove(vcpu)

    # --- events ----------------------------------------------------------------------------
    def wake(self, vcpu) -> None:
        s = self._records[vcpu]
        if s.parked or vcpu.pcpu is not None:
            return
        if self.boost and s.pri == UNDER:
            s.pri = BOOST
        self._insert(vcpu)
        self._tickle(vcpu)

    def _tickle(self, vcpu) -> None:
        """__runq_tickle: an idle pCPU the vCPU may run on takes it (stealing it from the
        home run queue); only if there is none does it preempt a lower priority."""
        s = self._records[vcpu]
        home = self.host.pcpus[s.processor]
        if home.current is None:
            self.host.kick(home)
            return
        for p in self.host.pcpus:
            if p.current is None and self.allowed(vcpu, p):
                self.host.kick(p)
                return
        if s.pri > self._records[home.current].pri:
            self.host.kick(home)

    def sleep(self, vcpu) -> None:
        self._remove(vcpu)

    def yield_(self, vcpu) -> None:
        self._records[vcpu].yielded = True

    def ran(self, vcpu, pcpu, cycles: int) -> None:
        """Nothing: a running vCPU is charged when its credit is next read (the tick, or
        the pick that ends its stint), exactly as if at every segment (integers)."""

    def pick(self, pcpu):
        now = self.env.now
        cur = pcpu.current
        rec = self._records
        if cur is not None:
            self._burn(cur, now)
            s = rec[cur]
            if cur.runnable and not s.parked:
                if not s.yielded and now - pcpu.stint_start < self.ratelimit:
                    return cur, self.ratelimit - (now - pcpu.stint_start)
                s.processor = pcpu.index
                self._insert(cur)
        q = self.runq[pcpu.index]
        nxt = next((v for v in q if self.allowed(v, pcpu)), None)
        if nxt is None or rec[nxt].pri <= OVER:
            stolen = self._steal(pcpu, IDLE if nxt is None else rec[nxt].pri)
            if stolen is not None:
                nxt = stolen
        if nxt is None:
            return None, 0
        self._remove(nxt)
        s = rec[nxt]
        s.processor = pcpu.index
        s.last_burn = now
        pcpu.stint_start = now
        return nxt, self.tslice

    def _steal(self, pcpu, pri: int):
        for peer in self.host.pcpus:
            if peer is pcpu or peer.current is None:
                continue
            for v in self.runq[peer.index]:
                if self._records[v].pri <= pri:
                    break
                if self.allowed(v, pcpu):
                    return v
        return None

    # --- periodic accounting -------------------------------------------------------------
    def _ticker(self):
        n = 0
        while True:
            yield self.env.timeout(self.tick)
            n += 1
            now = self.env.now
            for p in self.host.pcpus:
                v = p.current
                if v is not None:
                    self._burn(v, now)
                    s = self._records[v]
                    if s.pri == BOOST:
                        s.pri = UNDER
                    s.active = True
            if n % 3 == 0:
                self._account()

    def _account(self) -> None:
        """csched_acct: share the period's credit among active domains by weight."""
        doms: dict = {}
        for v, s in self._records.items():
            if s.active:
                doms.setdefault(v.domain, []).append(v)
        if not doms:
            return
        per = self.credits_per_tslice
        credit_total = per * len(self.host.pcpus)
        weight_total = sum(d.weight * len(vs) for d, vs in doms.items())
        weight_left = weight_total
        for dom, vs in doms.items():
            n = len(vs)
            weight_left -= dom.weight * n
            peak = n * per
            cap_share = 0
            if dom.cap:
                cap = (dom.cap * per + 99) // 100
                peak = min(peak, cap)
                cap_share = (cap + n - 1) // n
            fair = (credit_total * dom.weight * n + weight_total - 1) // weight_total
            if fair >= peak:
                if weight_left:  # give other domains a chance at the unused credit
                    credit_total += ((fair - peak) * weight_total + weight_left - 1) // weight_left
                fair = peak
            fair = (fair + n - 1) // n
            for v in vs:
                s = self._records[v]
                s.credit += fair
                if s.credit < 0:
                    s.pri = OVER
                    if dom.cap and s.credit < -cap_share and not s.parked:
                        s.parked = True
                        self._park(v)
                    s.credit = max(s.credit, -per)
                else:
                    s.pri = UNDER
                    if s.parked:  # unpark without a BOOST (Xen clears the flag after)
                        s.parked = False
                        if v.runnable and v.pcpu is None:
                            self._insert(v)
                            self._tickle(v)
                    if s.credit > per:
                        s.active = False
                        s.credit //= 2
        for q in self.runq:  # csched_runq_sort
            q.sort(key=lambda v: -self._records[v].pri)

    def _park(self, vcpu) -> None:
        self._remove(vcpu)
        if vcpu.pcpu is not None:
            self.host.kick(vcpu.pcpu)
