"""Operation costs measured on the exact engine (model.costs), and their replay."""

from __future__ import annotations

import numpy as np
import pytest

from model.categories import NAMES
from model.costs import measure
from model.domain import DomainConfig
from model.errors import PvsimError
from model.host import Host
from model.microbench import OPS, run_op
from model.vectors import COUNTS, S_INSTR
from model.workloads import enter

HW = "nehalem-2.93ghz-ept"


@pytest.mark.parametrize("op", ["null_syscall", "stat", "open_close", "fork"])
@pytest.mark.parametrize("mode", ["pv", "hvm", "full"])
def test_the_mean_cost_is_what_pvsim_bench_measures(op, mode):
    spec = OPS[op]
    c = measure(spec.make, mode, HW, iterations=spec.iterations, warm=spec.warmup)
    bench = run_op(op, mode, HW)
    assert c.cycles.sum(axis=1).mean() == pytest.approx(bench.cycles)
    assert c.breakdown() == pytest.approx(bench.breakdown)


def test_replaying_the_measured_bursts_gives_the_exact_run():
    """Ten stat() calls executed, and ten replayed from their measured cost, on a fresh
    guest each: the same cycles by category, instructions and counts."""
    spec = OPS["stat"]
    cost = measure(spec.make, "pv", HW, iterations=10)

    def run(replay: bool) -> np.ndarray:
        def program(ctx):
            k = ctx.kernel
            p = k.spawn()
            it = spec.make(k, p)
            yield enter(k, p)
            for _ in range(5):
                yield from it()
            before.append(ctx.vcpu.cpu.copy())
            for i in range(10):
                if replay:
                    yield cost.sample(np.random.default_rng(i))
                else:
                    yield from it()
        before: list = []
        host = Host(HW, pcpus=1, memory_mb=1024)
        v = host.add_guest(DomainConfig("g", "pv", memory_mb=512), program).vcpus[0]
        host.run()
        return v.cpu - before[0]

    exact, replayed = run(False), run(True)
    assert (exact[COUNTS:] == replayed[COUNTS:]).all()  # cycles by category, counts per op
    assert exact[S_INSTR] == replayed[S_INSTR]


def test_a_cold_tlb_costs_the_walks_of_refilling_it():
    """After a flush (a world switch without tagged TLB entries) the same operation walks
    the page tables again: page_walk cycles appear, and nothing else gets cheaper."""
    spec = OPS["null_io"]
    warm = measure(spec.make, "pv", HW, iterations=5)
    cold = measure(spec.make, "pv", HW, iterations=5, cold=True)
    w, c = warm.breakdown(), cold.breakdown()
    assert "page_walk" not in w and c["page_walk"] > 0
    assert all(c.get(k, 0.0) >= v for k, v in w.items())
    assert set(NAMES) >= set(c)


def test_a_sample_is_one_of_the_measured_iterations():
    cost = measure(OPS["fork"].make, "pv", HW, iterations=4, warm=1)
    rng = np.random.default_rng(3)
    totals = {int(t) for t in cost.cycles.sum(axis=1)}
    assert {cost.sample(rng).total for _ in range(20)} <= totals


def test_bad_counts_are_refused():
    with pytest.raises(PvsimError, match="iterations >= 1"):
        measure(OPS["stat"].make, "pv", HW, iterations=0)
