"""A Burst: CPU work given by its cost, run like the instructions it stands for."""

from __future__ import annotations

import numpy as np
import pytest

from model.categories import HYPERVISOR, KERNEL, N_CATEGORIES, TRANSITION, USER
from model.domain import DomainConfig
from model.errors import PvsimError
from model.host import Host
from model.isa import ChunkBuilder, Op
from model.vcpu import Behalf, Burst
from model.vectors import COUNTS, CPU_VECTOR, CYCLES, R_SPACE, S_INSTR


def _delta(user=0, kernel=0, **counts) -> np.ndarray:
    d = np.zeros(CPU_VECTOR, np.int64)
    d[CYCLES + USER], d[CYCLES + KERNEL] = user, kernel
    for op, n in counts.items():
        d[COUNTS + int(Op[op])] = n
    return d


def _measure(chunks) -> np.ndarray:
    """What running ``chunks`` (and nothing else) added to a fresh pv vCPU's vector."""
    def program(ctx):
        yield from chunks

    host = Host(pcpus=1)
    v = host.add_guest(DomainConfig("g", "pv"), program).vcpus[0]
    before = v.cpu.copy()
    host.run()
    return v.cpu - before


def test_a_burst_replays_what_the_instructions_it_was_measured_on_did():
    """Measure a system call's chunks on the exact engine, replay the difference as a
    burst on a fresh host: the same cycles by category and the same counts."""
    chunks = [ChunkBuilder().alu(2000).build(),
              ChunkBuilder(kernel=True).op(Op.SYSCALL).alu(500).op(Op.SYSRET).build()]
    delta = _measure(chunks)
    delta[:COUNTS] = np.where(np.arange(COUNTS) == S_INSTR, delta[:COUNTS], 0)
    assert delta[CYCLES + TRANSITION] > 0 and delta[COUNTS + int(Op.SYSCALL)] == 1
    replayed = _measure([Burst(delta)])
    assert (replayed[CYCLES:] == delta[CYCLES:]).all()
    assert (replayed[COUNTS:CYCLES] == delta[COUNTS:CYCLES]).all()
    assert replayed[S_INSTR] == delta[S_INSTR]


def test_a_burst_longer_than_a_slice_is_preempted_and_split_exactly():
    """Two guests share one pCPU; each runs a burst of 60 ms (3:1 user:kernel). After 70
    ms the credit scheduler's 30 ms slices have cut them; what each ran is in the
    ledger, every piece's categories sum to the time it ran, and nothing is lost."""
    host = Host("nehalem-2.93ghz-ept", pcpus=1)
    ms = int(host.hw.freq_hz / 1000)
    burst = _delta(user=45 * ms, kernel=15 * ms)
    vs = [host.add_guest(DomainConfig(f"g{i}", "pv"), lambda ctx: iter([Burst(burst)]))
          .vcpus[0] for i in range(2)]
    host.run(seconds=0.07)
    led = host.hypervisor.ledger
    ran = [led.vcpu(v.uid) for v in vs]
    assert all(0 < r.sum() < 60 * ms for r in ran)  # both ran, neither finished
    total = sum(int(r.sum()) for r in ran) + int(led.cycles[:, 0].sum())
    assert total == int(0.07 * host.hw.freq_hz)  # conservation (world switches included)
    for r in ran:
        assert r[USER] <= 45 * ms and r[KERNEL] <= 15 * ms
        assert r[USER] == pytest.approx(3 * r[KERNEL], rel=0.01)


def test_a_burst_runs_to_its_end_and_counts_once():
    host = Host("nehalem-2.93ghz-ept", pcpus=1)
    d = _delta(user=5000, kernel=1000, SYSCALL=2)
    v = host.add_guest(DomainConfig("g", "pv"),
                       lambda ctx: iter([Burst(d), Burst(d)])).vcpus[0]
    host.run()
    assert v.done
    assert int(v.breakdown()[USER]) == 10_000 and int(v.breakdown()[KERNEL]) == 2000
    assert int(v.cpu[COUNTS + int(Op.SYSCALL)]) == 4
    assert int(v.breakdown()[HYPERVISOR]) == 0  # a burst charges only what it carries


def test_a_burst_is_on_the_behalf_of_whom_the_program_says():
    host = Host(pcpus=1)

    def backend(ctx):
        yield Behalf(7)
        yield Burst(_delta(kernel=800))
        yield Behalf(None)
        yield Burst(_delta(kernel=200))

    v = host.add_guest(DomainConfig("dom0", "pv"), backend).vcpus[0]
    host.run()
    assert v.behalf_cycles == {7: 800}


@pytest.mark.parametrize("bad", ["shape", "register", "negative"])
def test_a_burst_that_would_do_more_than_cost_cycles_is_refused(bad):
    d = np.zeros(CPU_VECTOR, np.int64)
    if bad == "shape":
        d = np.zeros(N_CATEGORIES, np.int64)
    elif bad == "register":
        d[R_SPACE] = 3
    else:
        d[CYCLES + USER] = -1
    with pytest.raises(PvsimError, match="burst"):
        Burst(d)


def test_a_program_that_yields_something_else_is_told_what_it_may_yield():
    host = Host(pcpus=1)
    host.add_guest(DomainConfig("g", "pv"), lambda ctx: iter([42]))
    with pytest.raises(PvsimError, match="yielded 42, not a Chunk, Marker, Behalf or Burst"):
        host.run()
