"""Whole event logs of the hypervisor's subtlest mechanisms, SimPy style.

Each test runs a tiny host (one pCPU, hand-written instruction streams) and asserts the
exact list of ``(time, event, vCPU, detail)`` entries of ``hv.start_log()``: every
timer programming, block, timer expiry, wake-up and interrupt delivery, in order. Times
are cycles of the host clock, derived in the comments from the costs of the operations
(the mode's policy rows and the hardware profile): a change in any mechanism shows up
as a changed entry, not as a drifted average. A vCPU runs ahead of the simulation by up
to one segment, so an entry it makes (a timer it programs) carries its own clock.
"""

from __future__ import annotations

import pytest

from model.domain import DomainConfig
from model.host import Host
from model.isa import ChunkBuilder, Op
from model.sched import CreditScheduler
from model.workloads import enter, spin

NEHALEM = "nehalem-2.93ghz-ept"
MS = 2_930_000  # cycles per millisecond at 2.93 GHz


def _costs(dom):
    """World switch, set_timer_op, SCHEDOP_block (HLT), and the cost of an ALU instruction."""
    c = dom.compiled
    return (
        int(c.world_switch.sum()),
        int(c.cost[Op.TIMER].sum()),
        int(c.cost[Op.HLT].sum()),
        dom.hw.cost("alu"),
    )


def _sleeper(seen: dict, key: str, delay: int):
    """Program the timer ``delay`` ahead and halt; then 100 ALU instructions and exit.
    ``seen[key]``: the cycles the vCPU had caused when it programmed the timer."""

    def program(ctx):
        k = ctx.kernel
        yield enter(k, k.spawn())
        seen[key] = ctx.vcpu.cycles
        yield ChunkBuilder(kernel=True).op(Op.TIMER, delay).op(Op.HLT).build()
        yield ChunkBuilder().alu(100).build()

    return program


def test_a_timer_programmed_in_a_preempted_segment_is_armed_when_the_debt_reaches_it():
    """Guest a programs a 5 ms timer 20 ms into a segment, by its own clock; guest b wakes
    at 15 ms and BOOST-preempts it. The programming lies in the part of a's segment that
    had not elapsed: it is cancelled and made again, later by exactly the time a was
    preempted, when a's run-ahead debt reaches it; a blocks and its timer wakes it then."""
    seen: dict = {}

    def a_program(ctx):
        k = ctx.kernel
        yield enter(k, k.spawn())
        yield ChunkBuilder().alu(20 * MS).build()
        seen["a"] = ctx.vcpu.cycles
        yield ChunkBuilder(kernel=True).op(Op.TIMER, 5 * MS).alu(2 * MS).op(Op.HLT).build()
        yield ChunkBuilder().alu(100).build()

    host = Host(NEHALEM, pcpus=1)
    b = host.add_guest(DomainConfig("b", "pv"), _sleeper(seen, "b", 15 * MS))
    a = host.add_guest(DomainConfig("a", "pv"), a_program)
    log = host.hypervisor.start_log()
    host.run()
    W, T, H, alu = _costs(a)
    # b runs first: a world switch, its start-up, set_timer_op; then it halts
    prog_b = W + seen["b"] + T
    block_b = prog_b + H
    deadline_b = prog_b + 15 * MS
    # a runs from b's block: a world switch, 20 ms of work, its timer (by a's clock)
    prog_a = block_b + W + seen["a"] + T
    # at b's deadline b is BOOSTed (a lost its BOOST at the 10 ms tick): a is cut, the
    # rest of its segment becomes debt; b handles its interrupt and exits at b_done
    b_done = deadline_b + W + b.vcpus[0].cycles - (seen["b"] + T + H)
    # a resumes (a world switch) paying its debt: it reaches the programming
    # prog_a - deadline_b cycles into it
    prog_a2 = b_done + W + (prog_a - deadline_b)
    block_a = prog_a2 + 2 * MS * alu + H
    deadline_a = prog_a2 + 5 * MS
    assert log == [
        (prog_b, "set_timer", "b.v0", deadline_b),
        (block_b, "block", "b.v0", None),
        (prog_a, "set_timer", "a.v0", prog_a + 5 * MS),  # run ahead, then cut
        (deadline_b, "timer", "b.v0", deadline_b),
        (deadline_b, "wake", "b.v0", None),
        (deadline_b + W, "irq", "b.v0", None),
        (prog_a2, "set_timer", "a.v0", deadline_a),  # programmed again
        (block_a, "block", "a.v0", None),
        (deadline_a, "timer", "a.v0", deadline_a),
        (deadline_a, "wake", "a.v0", None),
        (deadline_a, "irq", "a.v0", None),
    ]  # a ran last: no world switch
    assert host.hypervisor.finished_at["b.v0"] == b_done
    assert host.hypervisor.timers_fired == 2


@pytest.mark.parametrize("irq_at_ms", [0.5, 2.0])
def test_an_interrupt_between_the_halt_decision_and_the_halt_cancels_the_halt(irq_at_ms):
    """The guest decides to halt (``vcpu.halt()``: no halt if an interrupt comes from now
    on), works 1 ms, then executes the HLT. By its own clock it reaches the HLT at once
    (the whole segment runs ahead); the halt takes effect only when the segment has
    elapsed. An interrupt at 0.5 ms comes between the decision and the halt: it is
    delivered then, and the halt does not block (no ``block`` entry: the wake-up is not
    lost). One at 2 ms comes after the halt took effect: it wakes the blocked vCPU."""
    seen: dict = {}

    def program(ctx):
        k = ctx.kernel
        yield enter(k, k.spawn())
        seen["g"] = ctx.vcpu.cycles
        halt = ctx.vcpu.halt()  # the decision
        yield ChunkBuilder().alu(MS).build()
        yield halt
        yield ChunkBuilder().alu(100).build()

    host = Host(NEHALEM, pcpus=1)
    g = host.add_guest(DomainConfig("g", "pv"), program)
    hv = host.hypervisor
    irq_at = int(irq_at_ms * MS)

    def device():
        yield host.env.timeout(irq_at)
        hv.raise_irq(g.vcpus[0])

    host.env.process(device())
    log = hv.start_log()
    host.run(cycles=4 * MS)
    W, _, H, alu = _costs(g)
    halted = W + seen["g"] + MS * alu + H  # when the halt takes effect (if it does)
    v = g.vcpus[0]
    if irq_at < halted:
        # the pCPU is kicked: the segment is cut, the interrupt delivered at once (the
        # same vCPU: no world switch), then the debt is paid and the halt is cancelled
        assert log == [(irq_at, "irq", "g.v0", None)]
        assert hv.finished_at["g.v0"] == W + v.cycles  # it never slept
    else:
        assert log == [
            (halted, "block", "g.v0", None),
            (irq_at, "wake", "g.v0", None),
            (irq_at, "irq", "g.v0", None),
        ]
        assert hv.finished_at["g.v0"] == W + v.cycles + (irq_at - halted)  # slept until then
    assert v.done


@pytest.mark.parametrize("boost", [True, False])
def test_a_boosted_vcpu_preempts_a_cpu_hog_at_once(boost):
    """A sleeper (15 ms timer) shares the pCPU with a CPU hog under the credit scheduler.
    When its timer wakes it, BOOST puts it ahead of the hog, which lost its own BOOST at
    the 10 ms tick and has run for more than the 1 ms rate limit: the hog is preempted and
    the sleeper's interrupt is delivered after one world switch. Without BOOST both are
    UNDER and the sleeper waits for the end of the hog's 30 ms time slice."""
    seen: dict = {}
    host = Host(NEHALEM, pcpus=1, scheduler=CreditScheduler(boost=boost))
    b = host.add_guest(DomainConfig("b", "pv"), _sleeper(seen, "b", 15 * MS))
    host.add_guest(DomainConfig("hog", "pv"), spin())
    log = host.hypervisor.start_log()
    host.run(cycles=40 * MS)
    W, T, H, _ = _costs(b)
    prog = W + seen["b"] + T
    block = prog + H  # the hog is scheduled here, for a 30 ms slice
    deadline = prog + 15 * MS
    runs = deadline + W if boost else block + 30 * MS + W
    assert log == [
        (prog, "set_timer", "b.v0", deadline),
        (block, "block", "b.v0", None),
        (deadline, "timer", "b.v0", deadline),
        (deadline, "wake", "b.v0", None),
        (runs, "irq", "b.v0", None),
    ]
