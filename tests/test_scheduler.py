"""The credit scheduler's shares, caps and BOOST, and the round-robin seam."""

from __future__ import annotations

import numpy as np
import pytest

from model.domain import DomainConfig
from model.host import Host
from model.sched import CreditScheduler, RoundRobinScheduler, make_scheduler
from model.workloads import sleeper, spin

HW = "nehalem-2.93ghz-ept"


def share_run(configs, seconds=6.0, scheduler="credit", pcpus=1):
    host = Host(HW, pcpus=pcpus, scheduler=scheduler)
    for cfg in configs:
        host.add_guest(cfg, spin())
    stats = host.run(seconds=seconds)
    busy = {
        c.name: sum(v for k, v in stats.domain_cycles(c.name).items() if k != "idle")
        for c in configs
    }
    return busy, stats


def test_weights_512_256_share_a_contended_pcpu_two_to_one():
    busy, stats = share_run(
        [
            DomainConfig("heavy", "pv", weight=512, affinity=(0,)),
            DomainConfig("light", "pv", weight=256, affinity=(0,)),
        ]
    )
    assert busy["heavy"] / busy["light"] == pytest.approx(2.0, rel=0.02)
    assert stats.busy_fraction() == 1.0


def test_cap_50_holds_a_guest_at_half_a_pcpu():
    busy, stats = share_run([DomainConfig("capped", "hvm", cap=50)])
    assert busy["capped"] / stats.elapsed == pytest.approx(0.5, rel=0.02)


def test_equal_weights_on_two_pcpus_use_both():
    busy, stats = share_run([DomainConfig(f"g{i}", "pv") for i in range(4)], pcpus=2)
    shares = np.array(list(busy.values())) / stats.elapsed
    assert shares == pytest.approx([0.5] * 4, rel=0.03)


def _wake_latency_ms(scheduler, sleep_us=2000.0, pcpus=1) -> float:
    """Mean wake-to-run latency of a sleeper sharing pCPU 0 with a CPU hog."""
    host = Host(HW, pcpus=pcpus, scheduler=scheduler)
    host.add_guest(DomainConfig("hog", "pv", affinity=(0,)), spin())
    io = host.add_guest(
        DomainConfig("io", "pv", affinity=(0,)), sleeper(work_us=50, sleep_us=sleep_us)
    )
    host.run(seconds=2.0)
    lat = np.array(io.vcpus[0].wake_latencies[5:])
    assert len(lat) > 20
    return float(lat.mean() / host.hw.freq_hz * 1e3)


def test_a_woken_io_bound_vcpu_preempts_a_cpu_hog():
    # On a 2-pCPU host the hog earns a whole pCPU's credit and stays UNDER, as the
    # sleeper does: only BOOST lets the sleeper jump ahead of it.
    boosted = _wake_latency_ms(CreditScheduler(), pcpus=2)
    unboosted = _wake_latency_ms(CreditScheduler(boost=False), pcpus=2)
    rr = _wake_latency_ms(RoundRobinScheduler(quantum_ms=30))
    assert boosted < 0.05  # a world switch and the rare rate-limit wait
    assert unboosted > 5.0  # waits for the end of the hog's 30 ms time slice
    assert rr > 5.0


def test_ratelimit_delays_preemption_until_the_hog_ran_its_minimum():
    # the sleeper wakes 0.5 ms after the hog was scheduled: it waits out the 1 ms rate limit
    assert _wake_latency_ms(CreditScheduler(), sleep_us=500) == pytest.approx(0.5, rel=0.05)
    assert _wake_latency_ms(CreditScheduler(ratelimit_us=100), sleep_us=500) < 0.01


def test_unknown_scheduler_lists_choices():
    with pytest.raises(KeyError, match="credit, round_robin"):
        make_scheduler("bvt")


def test_a_waking_vcpu_takes_an_idle_pcpu_rather_than_preempting():
    # the hog is pinned to pCPU 1; the sleeper may run anywhere: pCPU 0 should take it
    host = Host(HW, pcpus=2)
    host.add_guest(DomainConfig("hog", "pv", affinity=(1,)), spin())
    host.add_guest(DomainConfig("io", "pv"), sleeper(work_us=3000, sleep_us=3000))
    stats = host.run(seconds=1.0)
    assert sum(stats.domain_cycles("hog").values()) / stats.elapsed > 0.99


def test_an_unparked_vcpu_is_not_boosted():
    from model.sched.credit import BOOST

    host = Host(HW, pcpus=1)
    capped = host.add_guest(DomainConfig("capped", "pv", cap=20), spin()).vcpus[0]
    host.add_guest(DomainConfig("other", "pv"), spin())
    sched = host.hypervisor.scheduler
    unparks = []
    account = sched._account

    def watched():
        was = sched.record(capped).parked
        account()
        if was and not sched.record(capped).parked:
            unparks.append(sched.record(capped).pri == BOOST)

    sched._account = watched
    stats = host.run(seconds=1.0)
    assert unparks and not any(unparks)
    assert sum(stats.domain_cycles("capped").values()) / stats.elapsed == pytest.approx(
        0.2, rel=0.05
    )
