"""The hypervisor's event log: timers, blocking and wake-up, world switches and the TLB."""

from __future__ import annotations

import pytest

from model.categories import HYPERVISOR
from model.domain import DomainConfig
from model.hardware import load_profile
from model.host import Host
from model.isa import ChunkBuilder, Op
from model.sched import RoundRobinScheduler
from model.workloads import cpu_bound, enter, spin

P4, NEHALEM = "netburst-3.8ghz-vt", "nehalem-2.93ghz-ept"


def test_timer_then_halt_blocks_until_the_deadline_exactly():
    """set_timer_op(+50000 cycles); SCHEDOP_block: the vCPU sleeps, the pCPU idles, the
    timer's event-channel upcall wakes it at the deadline, and the guest handles it."""
    hw = load_profile(P4)
    seen = {}

    def program(ctx):
        k = ctx.kernel
        p = k.spawn()
        yield enter(k, p)
        seen["armed"] = ctx.vcpu.cycles
        yield ChunkBuilder(kernel=True).op(Op.TIMER, 50_000).op(Op.HLT).build()
        seen["woke"] = ctx.vcpu.pcpu.env.now
        yield ChunkBuilder().alu(100).build()

    host = Host(P4, pcpus=1)
    dom = host.add_guest(DomainConfig("g", "pv"), program)
    stats = host.run()
    timer = hw.cost("hypercall_entry") + hw.cost("pv_set_timer") + hw.cost("hypercall_exit")
    block = hw.cost("hypercall_entry") + hw.cost("pv_sched_op") + hw.cost("hypercall_exit")
    # the deadline counts from the end of the set_timer_op hypercall; before the vCPU's
    # first instruction the pCPU switched worlds to it
    switch = hw.cost("context_switch") + hw.cost("cr3_load")
    assert seen["woke"] == switch + seen["armed"] + timer + 50_000
    assert host.hypervisor.timers_fired == 1
    idle = stats.ledger.cycles[0, 0].sum()
    assert idle == 50_000 - block  # the pCPU idled while the vCPU was blocked
    assert stats.op_count("g", Op.INTERRUPT) == 1  # one event-channel upcall delivered
    assert dom.vcpus[0].done


def _two_guests_alternating(hardware: str, mode: str, workload=None):
    host = Host(hardware, pcpus=1, scheduler=RoundRobinScheduler(quantum_ms=1))
    for name in ("a", "b"):
        host.add_guest(DomainConfig(name, mode, affinity=(0,)), workload or spin())
    stats = host.run(seconds=0.05)
    return host, stats


def _tlb_misses(mode: str) -> int:
    small = cpu_bound(hot_pages=32, p_cold=0.0, chunk_mem_ops=2048)  # fits any TLB
    host, stats = _two_guests_alternating(NEHALEM, mode, small)
    assert host.hypervisor.pcpus[0].switches >= 40  # 1 ms quanta over 50 ms
    return stats.counters("a")["tlb_misses"]


def test_world_switch_flushes_the_tlb_unless_tagged_by_vpid():
    # hvm on Nehalem tags entries with the VPID: only the 32 compulsory misses. PV
    # guests get no VPID tag: every switch back refills the TLB.
    assert _tlb_misses("hvm") == 32
    assert _tlb_misses("pv") >= 20 * 32


def test_world_switch_costs_are_charged_to_the_incoming_vcpu():
    hw = load_profile(P4)

    def finite(ctx):
        k = ctx.kernel
        yield enter(k, k.spawn())
        for _ in range(20):
            yield ChunkBuilder().alu(1_000_000).build()

    host = Host(P4, pcpus=1, scheduler=RoundRobinScheduler(quantum_ms=0.1))
    for name in ("a", "b"):
        host.add_guest(DomainConfig(name, "pv"), finite)
    host.run()  # until both finish: no segment is cut short
    switches = host.hypervisor.pcpus[0].switches
    assert switches > 100
    vcpus = [d.vcpus[0] for d in host.domains]
    on_pcpu = sum(int(host.hypervisor.ledger.vcpu(v.uid)[HYPERVISOR]) for v in vcpus)
    caused = sum(int(v.breakdown()[HYPERVISOR]) for v in vcpus)
    assert on_pcpu - caused == switches * (hw.cost("context_switch") + hw.cost("cr3_load"))


# --- regressions found in review -----------------------------------------------------------

def test_a_preempted_sleeper_never_loses_its_timer():
    """A timer programmed in the part of a segment a preemption cut off is armed only when
    the vCPU really gets there; before the fix the guest blocked with no timer left."""
    from model.workloads import sleeper

    host = Host(NEHALEM, pcpus=1, seed=1)
    a = host.add_guest(DomainConfig("A", "pv"), sleeper(work_us=12000, sleep_us=100))
    host.add_guest(DomainConfig("B", "pv"), sleeper(work_us=5000, sleep_us=5000))
    host.run(seconds=0.5)
    v = a.vcpus[0]
    assert len(v.wake_latencies) > 20
    assert v.runnable or v.timer_deadline is not None  # never blocked without a timer


@pytest.mark.parametrize("irq_first", [True, False])
def test_a_reschedule_arriving_with_an_interrupt_kick_is_not_lost(irq_first):
    def blocker(ctx):
        yield enter(ctx.kernel, ctx.kernel.spawn())
        yield ChunkBuilder(kernel=True).op(Op.HLT).build()
        ctx.vcpu.ran_at = ctx.vcpu.pcpu.env.now
        yield ChunkBuilder().alu(1000).build()

    host = Host(NEHALEM, pcpus=1, seed=1)
    a = host.add_guest(DomainConfig("A", "pv"), spin()).vcpus[0]
    b = host.add_guest(DomainConfig("B", "pv"), blocker).vcpus[0]
    hv, env = host.hypervisor, host.env
    wake = int(35e-3 * host.hw.freq_hz)

    def inject():
        yield env.timeout(wake)
        for v in ((a, b) if irq_first else (b, a)):
            hv.raise_irq(v)  # A's interrupt (an irq kick), B's wake-up (BOOST: resched)

    env.process(inject())
    host.run(seconds=0.1)
    assert b.ran_at == wake


def test_a_host_runs_once():
    from model.errors import PvsimError

    host = Host(NEHALEM, pcpus=1)
    host.add_guest(DomainConfig("A", "pv"), spin())
    host.run(seconds=0.001)
    with pytest.raises(PvsimError, match="runs once"):
        host.run(seconds=0.001)


def test_a_run_without_a_limit_reports_a_deadlock_instead_of_hanging():
    from model.errors import PvsimError

    def stuck(ctx):
        yield enter(ctx.kernel, ctx.kernel.spawn())
        yield ChunkBuilder(kernel=True).op(Op.HLT).build()  # no timer, nothing to wake it

    host = Host(NEHALEM, pcpus=1)
    host.add_guest(DomainConfig("A", "pv"), stuck)
    with pytest.raises(PvsimError, match="deadlock: A.v0 blocked"):
        host.run()
