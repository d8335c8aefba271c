"""The fast fidelity level (model/fast): validated against the exact level on reduced
versions of the shipped scenarios it runs, with the same seeds; its accounting exact;
its scope refused with reasons; its calibrations cached.

The bounds (issue 13):

- CPU time by category within 3%: per guest for the categories of at least 5% of its
  CPU, per guest entry (its replicas pooled) for those of at least 1%. A replica's
  hypervisor time (2-3% of its CPU) differs by up to 11% here (57% on the 64-guest host
  in 0.2 s): its world switches follow a first-come pCPU order, not the credit
  scheduler's; the page walks after a world switch (0.1% of the CPU) by up to 25%
  pooled. Each guest's CPU within 1%.
- Throughput within 2%; device utilization within 2 points.
- Request and I/O latency p50 and p99 within 10% (each entry's replicas pooled). On
  kv-latency, whose requests take 15-30 us, the p99s differ by up to 20% for requests and
  40% for I/O: the fast level replays each stage's median and leaves out the variation
  of the guests' and backends' wake-ups (model/fast/calibrate.py); beside its emulated
  guest, by up to 30% (the device model's work after an answer is a tail there).
- HVM guests on emulated devices, sharing pCPUs: hypervisor and transition time within
  15% and 10% (the fast level counts fewer world switches).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis.cli import main
from analysis.run import simulate
from model.app.requests import PARTS
from model.categories import N_CATEGORIES
from model.clock import Environment
from model.errors import PvsimError
from model.fast import build_fast
from model.fast.calibrate import cache_dir, calibration_scenario, costs_of
from model.fast.engine import Burst, Cpu, Engine
from model.scenario import load_scenario, with_overrides

ROOT = Path(__file__).resolve().parents[1]
WEB = str(ROOT / "scenarios" / "web-consolidation.yaml")
KV = str(ROOT / "scenarios" / "kv-latency.yaml")


def _pair(s):
    return simulate(s), simulate(with_overrides(s, ["fidelity=fast"]))


def _kv_without_the_emulated_guest():
    s = load_scenario(KV, ["duration=150ms"])
    return with_overrides(s.model_copy(update={"guests": [g for g in s.guests
                                                          if g.name != "kv-emulated"]}), [])


def _rel(a, b):
    return abs(b - a) / abs(a)


def _bench(pcpus: int, vcpus: int):
    """A bare fast-level engine for tests with exact times: (env, engine, ``w(n)``: a work
    of ``n`` user cycles, ``at(t, f)``: call ``f()`` at ``t``)."""
    env = Environment()
    eng = Engine(env, pcpus, vcpus)

    def w(n: int):
        c = np.zeros(N_CATEGORIES, np.int64)
        c[0] = n
        return eng.work(c)

    def at(t, f):
        env.timeout(t).callbacks.append(lambda _e: f())

    return env, eng, w, at


def _check(exact, fast, p99_request=0.10, p99_io=0.10, p50_io=0.10, cpu_bound=None,
           cpu_total=0.01):
    """The bounds of the module's docstring (``cpu_bound``: a category's own, if stated;
    ``cpu_total``: a guest's CPU in all)."""
    cpu_bound = cpu_bound or {}
    a, b = exact.summary, fast.summary
    assert b["reproducibility"]["fidelity"] == "fast"
    pooled: dict[str, list[dict]] = {}
    for name, g in a["guests"].items():
        h = b["guests"][name]
        pooled.setdefault(g["spec"], []).append((g["cpu_s"], h["cpu_s"]))
        cpu = sum(g["cpu_s"].values())
        for k, v in g["cpu_s"].items():
            if v >= 0.05 * cpu:
                assert _rel(v, h["cpu_s"][k]) <= cpu_bound.get(k, 0.03), (name, k, v,
                                                                          h["cpu_s"][k])
        assert _rel(cpu, sum(h["cpu_s"].values())) <= cpu_total, name
        if g.get("app"):
            assert _rel(g["app"]["served_per_s"], h["app"]["served_per_s"]) <= 0.02, name
    for spec, rows in pooled.items():  # an entry's replicas pooled: categories of 1% too
        x = {k: sum(r[0].get(k, 0) for r in rows) for k in rows[0][0]}
        y = {k: sum(r[1].get(k, 0) for r in rows) for k in rows[0][0]}
        for k, v in x.items():
            if v >= 0.01 * sum(x.values()):
                assert _rel(v, y[k]) <= cpu_bound.get(k, 0.03), (spec, k, v, y[k])
    for spec, x in a["app"]["groups"].items():  # latencies: each entry's replicas pooled
        y = b["app"]["groups"][spec]
        for q, bound in (("p50_ms", 0.10), ("p99_ms", p99_request)):
            assert _rel(x["latency"][q], y["latency"][q]) <= bound, (spec, q)
    ta, tb = exact.requests, fast.requests
    ta, tb = (t[t["issued_s"] >= a["warmup_s"]] for t in (ta, tb))
    for (group, device, write), x in ta.groupby(["group", "device", "write"]):
        y = tb[(tb["group"] == group) & (tb["device"] == device) & (tb["write"] == write)]
        assert len(x) == len(y), (group, device, write)
        for q, bound in ((50, p50_io), (99, p99_io)):
            ex, fa = (np.percentile(t["latency_ms"], q) for t in (x, y))
            assert _rel(ex, fa) <= bound, (group, device, write, q, ex, fa)
    for d, x in a["devices"].items():
        assert abs(x["utilization"] - b["devices"][d]["utilization"]) <= 0.02, d


@pytest.mark.slow
def test_web_consolidation_at_both_levels_within_the_bounds():
    _check(*_pair(load_scenario(WEB, ["duration=200ms", "record.warmup=40ms"])))


@pytest.mark.parametrize("mode", [
    [],  # pv, the split driver
    ["guests.web.mode=native", "guests.web.os=unmodified"],  # the direct path, no dom0
    ["guests.web.mode=hvm", "guests.web.os=unmodified",  # virtio, the device model
     "guests.web.devices=[{device: ssd0, path: virtio}, {device: nic0, path: virtio}]"],
    ["guests.web.workload.params.arrivals={kind: closed, users: 20, think_ms: 30}"],
    ["driver_domain.pinning=[0]", "guests.web.pinning=[1]"],  # dom0 on 0, the guests on 1
], ids=["pv", "native", "hvm-virtio", "closed-loop", "pinned"])
def test_a_reduced_web_host_at_both_levels_within_the_bounds(mode):
    _check(*_pair(load_scenario(WEB, ["duration=120ms", "record.warmup=20ms",
                                      "guests.web.count=4", "host.pcpus=2", *mode])))


def test_kv_latency_at_both_levels_within_its_stated_bounds():
    _check(*_pair(_kv_without_the_emulated_guest()), p99_request=0.20, p99_io=0.40)


def test_kv_latency_with_its_emulated_guest_at_both_levels_within_its_stated_bounds():
    """The emulated guest's vCPU waits for the device model on each register access: its
    request p50 within 10%, p99 within 20%; beside it the other guests' p99s come out up
    to 27% low (seeds 1-4; 1-17% without it): the device model's work after each answer
    is a tail at the fast level, which their backend work preempts."""
    exact, fast = _pair(load_scenario(KV, ["duration=150ms"]))
    _check(exact, fast, p99_request=0.30, p99_io=0.45)
    x, y = (r.summary["app"]["groups"]["kv-emulated"]["latency"] for r in (exact, fast))
    assert _rel(x["p99_ms"], y["p99_ms"]) <= 0.20
    parts = fast.summary["app"]["groups"]["kv-emulated"]["parts_ms"]
    assert parts["vcpu_blocked"] > parts["user"]  # the accesses' waits, as at the exact level


def test_a_reduced_hvm_web_host_with_emulated_devices_within_its_stated_bounds():
    """Its p50 and p99 within 5% here; a received packet's I/O p99 within 20% (17% low
    over 300 ms); its transition and hypervisor time (VM exits and world switches: 6-7%
    and 3% of its CPU) up to 8% and 13% low: the fast level counts fewer world switches
    (405 against 726), its vCPUs keeping their last pCPU where the credit scheduler runs
    the device model on the pCPU a waiting guest left."""
    _check(*_pair(load_scenario(WEB, ["duration=120ms", "record.warmup=20ms",
                                      "guests.web.count=4", "host.pcpus=2",
                                      "guests.web.mode=hvm", "guests.web.os=unmodified"])),
           p99_io=0.20, cpu_bound={"transition": 0.10, "hypervisor": 0.15})


def test_quickstart_at_both_levels_within_its_stated_bounds():
    """A pv and an hvm guest (emulated devices), dom0 pinned to pCPU 0 of 2, the schedule
    recorded: the requests' p50 and p99 within 10%; the pv guest's hypervisor time (4% of
    its CPU) 43% low, its CPU in all 2%: the fast level counts fewer world switches (149
    against 174); kernel time (4-6%) within 4% (100 requests per guest, each replaying a
    measured one drawn at random); the hvm guest's received packets' I/O p99 11% low (as on
    the reduced hvm host)."""
    _check(*_pair(load_scenario(str(ROOT / "scenarios" / "quickstart.yaml"), [])),
           p99_io=0.20, cpu_bound={"hypervisor": 0.50, "kernel": 0.05}, cpu_total=0.025)


def test_the_fast_schedule_is_each_vcpu_s_cpu_time_and_no_pcpu_runs_two_at_once():
    r = simulate(load_scenario(str(ROOT / "scenarios" / "quickstart.yaml"), ["fidelity=fast"]))
    sc = r.schedule
    assert len(sc) > 500
    for _, runs in sc.groupby("pcpu"):
        runs = runs.sort_values("start_s")
        assert (runs.start_s.to_numpy()[1:] >= runs.end_s.to_numpy()[:-1]).all()
    ran = (sc.end_s - sc.start_s).groupby(sc.guest).sum()
    for name, g in r.summary["guests"].items():  # a guest's own CPU (not dom0's for it)
        own = sum(v for k, v in g["cpu_s"].items() if k != "driver_domain")
        assert ran[name] == pytest.approx(own, rel=1e-9)
    assert ran["dom0"] == pytest.approx(r.summary["host"]["driver_domain_s"], rel=1e-9)


def test_every_fast_request_s_parts_add_up_to_its_latency_exactly():
    r = simulate(load_scenario(WEB, ["fidelity=fast", "duration=80ms", "record.warmup=10ms"]))
    t = r.app_requests
    assert len(t) > 200
    parts = sum(t[f"{p}_ms"] for p in PARTS)
    assert np.allclose(parts, t["latency_ms"], rtol=0, atol=1e-9)


def test_the_same_seed_gives_the_same_fast_run():
    s = load_scenario(WEB, ["fidelity=fast", "duration=60ms", "record.warmup=10ms"])
    assert simulate(s).equals(simulate(s), engine=False)
    other = simulate(s, seed=2).summary["guests"]["web-0"]["app"]["offered"]
    assert other != simulate(s).summary["guests"]["web-0"]["app"]["offered"]


def test_the_fast_ledger_conserves_every_cycle_and_counts_the_world_switches():
    s = load_scenario(WEB, ["fidelity=fast", "duration=50ms", "record.warmup=10ms"])
    h = build_fast(s)
    h.run(s.duration, s.record.warmup)
    rec = h.record()
    assert (rec.cycles.sum(axis=(1, 2)) == rec.elapsed - rec.start).all()
    assert rec.context_switches > 0  # 9 vCPUs on 4 pCPUs
    assert rec.io.issued == rec.io.completed + rec.io.in_flight


def test_a_scenario_the_fast_level_does_not_run_is_refused_with_the_reason(capsys):
    with pytest.raises(PvsimError, match=r"guests\[0\]\.workload\.params: a response of "
                       r"218173 bytes is 4 packets of at most 65536 bytes"):  # the trace's
        load_scenario(str(ROOT / "scenarios" / "trace-replay.yaml"), ["fidelity=fast"])
    assert main(["run", str(ROOT / "scenarios" / "microbench.yaml"), "--fidelity", "fast"]) == 2
    err = capsys.readouterr().err
    assert "workload is kernel_build: run it with fidelity: exact" in err
    assert "Traceback" not in err


def test_pvsim_run_at_the_fast_level_says_so_in_its_results(tmp_path):
    out = tmp_path / "r"
    assert main(["run", WEB, "--fidelity", "fast", "--set", "duration=40ms", "--set",
                 "record.warmup=10ms", "-o", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reproducibility"]["fidelity"] == "fast"
    block = summary["fidelity"]
    assert block["level"] == "fast" and block["not_modelled"] and block["bounds"]
    assert "fidelity: fast" in (out / "scenario.resolved.yaml").read_text()


def test_a_calibration_is_measured_once_and_then_read_from_the_cache():
    s = load_scenario(WEB, ["guests.web.count=3"])
    first = costs_of(s, 0)
    files = sorted(cache_dir().glob("*.npz"))
    assert files
    stamps = [f.stat().st_mtime_ns for f in files]
    again = costs_of(load_scenario(WEB, ["guests.web.count=5", "seed=9"]), 0)  # the same
    assert [f.stat().st_mtime_ns for f in sorted(cache_dir().glob("*.npz"))] == stamps
    assert np.array_equal(first.per_io, again.per_io)
    assert sorted(first.stretches) == sorted(again.stretches) == [2, 3]  # hits, misses


def test_a_calibration_runs_the_guest_alone_pinned_and_at_the_exact_level():
    s = load_scenario(WEB, ["fidelity=fast"])
    c = calibration_scenario(s, 0)
    assert c.fidelity == "exact" and c.guests[0].count == 1 and c.host.pcpus == 2
    assert c.guests[0].pinning == [0] and c.driver_domain.pinning == [1]
    cold = calibration_scenario(s, 0, cold=True)
    assert cold.host.pcpus == 1 and cold.guests[0].pinning == cold.driver_domain.pinning == [0]


def test_a_vcpu_waiting_for_a_pcpu_gets_the_first_one_a_tail_frees():
    """Two pCPUs busy with tails (A's ends at 110, B's at 210), C waits from 20, and A's
    tail is preempted at 30 by a long burst: C gets B's pCPU when B's tail ends (210), and
    a vCPU that comes later (D, at 400) does not run before it (exact times)."""
    env, eng, w, at = _bench(2, 4)


    a, b, c, d = (eng.add(Cpu(eng, i, 1, n)) for i, n in enumerate("ABCD"))
    log = []

    at(0, lambda: a.post(Burst(w(10), None, tail=w(100))))
    at(0, lambda: b.post(Burst(w(10), None, tail=w(200))))
    at(20, lambda: c.post(Burst(w(5), None, begin=lambda t: log.append(("C", t)))))
    at(30, lambda: a.post(Burst(w(1000), None)))
    at(400, lambda: d.post(Burst(w(5), None, begin=lambda t: log.append(("D", t)))))
    env.run(until=5000)
    eng.settle(env.now)
    assert log == [("C", 210), ("D", 400)]
    assert c.runstate_at(env.now) == (5, 190, 0)  # it waited from 20 to 210
    ledger = eng.ledger()
    assert ledger[:, 1:, 0].sum(axis=0).tolist() == [1110, 210, 5, 5]  # every cycle once


def test_a_pinned_vcpu_waits_for_a_pcpu_it_may_run_on():
    """A (pinned to pCPU 0) runs from 0 to 100; B, pinned to 0 too, waits from 10 although
    pCPU 1 is free, and runs when A halts (100); C (unpinned), waiting from 20 behind B
    with both pCPUs busy (D took pCPU 1 at 15), gets pCPU 1 when D halts (65), not
    pCPU 0 (exact times: each burst's start and pCPU)."""
    env, eng, w, at = _bench(2, 4)
    a, b = (eng.add(Cpu(eng, i, 1, n, allowed=(0,))) for i, n in enumerate("AB"))
    c, d = (eng.add(Cpu(eng, i, 2, n)) for i, n in ((2, "C"), (3, "D")))
    log = []


    def burst(cpu, n):
        return Burst(w(n), None, begin=lambda t: log.append((cpu.name, t, cpu.pcpu)))

    a.post(burst(a, 100))
    at(10, lambda: b.post(burst(b, 5)))
    at(15, lambda: d.post(burst(d, 50)))
    at(20, lambda: c.post(burst(c, 5)))
    env.run(until=1000)
    assert log == [("A", 0, 0), ("D", 15, 1), ("C", 65, 1), ("B", 100, 0)]
    assert b.runstate_at(env.now)[1] == 90  # it waited from 10 to 100


def test_a_held_vcpu_runs_nothing_until_each_of_its_holds_is_released():
    """A vCPU held at the end of its burst (t=10: an emulated access, twice over) runs
    nothing posted meanwhile (t=20) until both holds are released (t=40, t=50); the time
    held is its own in the runstate (exact times)."""
    env, eng, w, at = _bench(1, 1)
    a = eng.add(Cpu(eng, 0, 1, "A"))
    log = []


    a.post(Burst(w(10), lambda t: (eng.hold(a), eng.hold(a))))
    at(20, lambda: a.post(Burst(w(5), None, begin=lambda t: log.append(("run", t)))))
    at(40, lambda: eng.release(a))
    at(50, lambda: eng.release(a))
    env.run(until=100)
    assert log == [("run", 50)]
    assert a.runstate_at(env.now) == (15, 0, 40)  # running, runnable, held (10 to 50)


def test_a_two_vcpu_server_s_parts_are_never_negative():
    s = load_scenario(WEB, ["fidelity=fast", "duration=80ms", "record.warmup=10ms",
                            "guests.web.count=2", "guests.web.vcpus=2",
                            "guests.web.workload.params.workers=2",
                            "guests.web.workload.params.arrivals={kind: poisson, "
                            "rate_per_s: 3000}"])
    t = simulate(s).app_requests
    assert len(t) > 300
    for p in PARTS:
        assert (t[f"{p}_ms"] >= 0).all(), p


def test_a_request_kind_too_rare_to_calibrate_is_refused_before_the_run():
    s = load_scenario(WEB, ["fidelity=fast", "guests.web.workload.params.miss_ratio=0.0003"])
    with pytest.raises(PvsimError, match="guest entry 'web'.*served none with \\[3\\] stretches"):
        build_fast(s)


def test_a_response_of_several_packets_is_refused_with_the_reason():
    with pytest.raises(PvsimError, match="12 packets of at most 1460"):
        load_scenario(WEB, ["fidelity=fast", "host.devices.nic0.tso=false"])


def test_a_busy_web_host_at_both_levels_keeps_cpu_and_p50_but_its_p99_drifts():
    """At 72% busy (parse_instructions=1000000, 1,000 requests/s per guest) vCPUs wait
    for pCPUs and the engine's waiting paths run: CPU times and the requests' p50 stay
    within the bounds; the p99s within the stated 35%, and a received packet's I/O within
    30% at p50 (it waits for the stretch under way, which at the exact level its
    interrupt preempts: README, "the tails drift with load")."""
    s = load_scenario(WEB, ["duration=150ms", "record.warmup=30ms",
                            "guests.web.workload.params.parse_instructions=1000000",
                            "guests.web.workload.params.arrivals={kind: poisson, "
                            "rate_per_s: 1000}"])
    exact, fast = _pair(s)
    assert exact.summary["host"]["busy_fraction"] > 0.6
    _check(exact, fast, p99_request=0.35, p99_io=0.35, p50_io=0.30)
