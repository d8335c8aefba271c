"""Determinism and cycle conservation."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.domain import DomainConfig
from model.host import Host
from model.microbench import run_op
from model.workloads import cpu_bound, sleeper, spin

WORKLOADS = {
    "spin": lambda: spin(),
    "sleeper": lambda: sleeper(work_us=30, sleep_us=300),
    "compute": lambda: cpu_bound(cold_pages=2048, chunk_mem_ops=4096),
}


def mixed_host(seed: int, hardware="nehalem-2.93ghz-ept"):
    host = Host(hardware, pcpus=2, seed=seed)
    host.add_guest(DomainConfig("a", "pv", weight=512), cpu_bound(chunk_mem_ops=4096))
    host.add_guest(DomainConfig("b", "hvm", vcpus=2), sleeper(work_us=30, sleep_us=300))
    host.add_guest(DomainConfig("c", "full", cap=30), spin())
    return host


def test_same_seed_gives_identical_results():
    runs = []
    for _ in range(2):
        stats = mixed_host(seed=7).run(seconds=0.05)
        runs.append((stats.ledger.cycles.copy(), stats.counters("a"), stats.transitions("b")))
    assert np.array_equal(runs[0][0], runs[1][0])
    assert runs[0][1:] == runs[1][1:]


def test_a_different_seed_changes_the_compute_stream():
    a = mixed_host(seed=1).run(seconds=0.02).counters("a")
    b = mixed_host(seed=2).run(seconds=0.02).counters("a")
    assert a["tlb_misses"] != b["tlb_misses"]


def test_bench_results_are_deterministic():
    assert run_op("fork", "hvm", "netburst-3.8ghz-vt") == run_op("fork", "hvm",
                                                                 "netburst-3.8ghz-vt")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pcpus=st.integers(1, 3),
       guests=st.lists(st.tuples(st.sampled_from(["native", "pv", "full", "hvm"]),
                                 st.sampled_from(sorted(WORKLOADS)), st.integers(1, 2),
                                 st.sampled_from([0, 40]), st.sampled_from([128, 256, 1024])),
                       min_size=1, max_size=4),
       scheduler=st.sampled_from(["credit", "round_robin"]),
       hardware=st.sampled_from(["netburst-3.8ghz-vt", "skylake-3.0ghz-ept"]),
       ms=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_every_cycle_of_every_pcpu_is_accounted_for(pcpus, guests, scheduler, hardware, ms, seed):
    host = Host(hardware, pcpus=pcpus, scheduler=scheduler, seed=seed, memory_mb=1024)
    for i, (mode, work, vcpus, cap, weight) in enumerate(guests):
        host.add_guest(DomainConfig(f"g{i}", mode, vcpus=vcpus, cap=cap, weight=weight,
                                    memory_mb=128), WORKLOADS[work]())
    stats = host.run(seconds=ms / 1000)  # run() checks conservation and raises otherwise
    per_cpu = stats.ledger.cycles.sum(axis=(1, 2))
    assert (per_cpu == stats.elapsed).all()
    assert (stats.ledger.cycles >= 0).all()
