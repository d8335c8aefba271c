"""The application level: arrivals, servers with worker pools, the accept queue, and
each request's latency decomposed into parts that add up to it exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.cli import main
from analysis.run import simulate
from model.app.requests import PART, PARTS
from model.record import record_run
from model.scenario import build_host, load_scenario, parse_scenario, with_overrides

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))

SERVER = """
name: srv
seed: 4
duration: {duration}
hardware: nehalem-2.93ghz-ept
host: {{pcpus: 2, devices: {{ssd0: {{kind: ssd}}, nic0: {{kind: nic, rate_gbit_s: 10}}}}}}
guests:
  - name: web
    mode: {mode}
    os: {os}
    vcpus: {vcpus}
    workload: {{profile: web_server, params: {params}}}
    devices: [{{device: ssd0}}, {{device: nic0}}]
"""


def server(mode: str = "pv", params: str = "{}", duration: str = "50ms", vcpus: int = 1):
    os = "modified" if mode == "pv" else "unmodified"
    return parse_scenario(SERVER.format(mode=mode, os=os, params=params, duration=duration,
                                        vcpus=vcpus))


def _record(s):
    host = build_host(s)
    return host, record_run(host, host.run(seconds=s.duration))


def _unexplained(rec) -> np.ndarray:
    c = rec.app.requests
    return (c["end"] - c["arrival"]) - sum(c[p] for p in PARTS)


# --- the decomposition -------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["native", "pv", "hvm", "full"])
@pytest.mark.parametrize("vcpus", [1, 2])
def test_every_request_s_parts_add_up_to_its_latency_exactly(mode, vcpus):
    s = server(mode, "{arrivals: {kind: poisson, rate_per_s: 3000}, workers: 6}", vcpus=vcpus)
    _, rec = _record(s)
    assert len(rec.app.requests["id"]) > 50
    assert (_unexplained(rec) == 0).all()
    for p in PARTS:
        assert (rec.app.requests[p] >= 0).all(), p


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_the_parts_add_up_on_every_shipped_scenario(path):
    s = with_overrides(load_scenario(str(path)), ["duration=40ms", "record.warmup=null"])
    _, rec = _record(s)
    if rec.app is None:
        pytest.skip("no guest serves requests")
    assert (_unexplained(rec) == 0).all()


def test_one_request_on_an_idle_native_host_is_only_work_and_devices():
    """One request: nothing waits for a pCPU, no vCPU halts while it is served, and no
    worker waits for another."""
    s = server("native", "{arrivals: {kind: deterministic, rate_per_s: 100}, requests: 1, "
               "miss_ratio: 1.0}")
    _, rec = _record(s)
    c = rec.app.requests
    assert len(c["id"]) == 1
    for p in ("pcpu_wait", "vcpu_blocked", "virt"):
        assert c[p][0] == 0, p
    assert c["user"][0] == 100_000  # parse_instructions, one cycle each
    assert c["disk"][0] > 0 and c["send"][0] > 0 and c["receive"][0] > 0
    assert _unexplained(rec)[0] == 0


def test_the_vcpu_runstates_account_for_all_time_and_match_the_cycle_ledger():
    host, rec = _record(server("hvm", "{arrivals: {kind: poisson, rate_per_s: 5000}}"))
    now = host.env.now
    for v in host.hypervisor.vcpus:
        running, runnable, blocked, offline = v.runstate.at(now)
        assert running + runnable + blocked + offline == now
        assert running == int(host.hypervisor.ledger.vcpu(v.uid).sum())


def test_a_neighbour_s_cpu_hog_shows_as_pcpu_wait_not_as_work():
    """One pCPU shared with a hog under round robin (no BOOST for a woken vCPU, unlike
    the credit scheduler's): the server's vCPU waits for the hog's quantum (steal time)."""
    s = parse_scenario("""
name: steal
duration: 60ms
hardware: nehalem-2.93ghz-ept
host: {pcpus: 1, scheduler: round_robin, timeslice_ms: 1, devices: {nic0: {kind: nic}}}
guests:
  - {name: kv, workload: {profile: kv_store, params: {arrivals: {kind: poisson,
     rate_per_s: 2000}}}, devices: [{device: nic0}]}
  - {name: hog, workload: {profile: spin}}
""")
    r = simulate(s)
    parts = r.summary["guests"]["kv"]["app"]["parts_ms"]
    assert parts["pcpu_wait"] > parts["user"] + parts["kernel"]


# --- the accept queue, workers and arrivals -----------------------------------------------

def test_an_overloaded_server_drops_beyond_its_backlog_and_counts_every_request():
    s = server("pv", "{arrivals: {kind: poisson, rate_per_s: 40000}, workers: 1, backlog: 4, "
               "parse_instructions: 2000000}")
    r = simulate(s)
    a = r.summary["guests"]["web"]["app"]
    assert a["dropped"] > 0 and a["offered"] == a["served"] + a["dropped"] + a["in_flight"]
    assert 0 < a["in_flight"] <= 4 + 1  # the queue's, and the one being served
    assert a["drop_rate"] == a["dropped"] / a["offered"]


def test_closed_loop_users_never_have_more_requests_in_the_system_than_users():
    s = server("pv", "{arrivals: {kind: closed, users: 3, think_ms: 0.2}, workers: 8}")
    r = simulate(s)
    t = r.app_requests
    events = sorted([(a, 1) for a in t["arrival_s"]] + [(e, -1) for e in t["end_s"]])
    inside = np.cumsum([d for _, d in events])
    assert inside.max() <= 3
    assert r.summary["guests"]["web"]["app"]["dropped"] == 0


def test_workers_serve_requests_concurrently_when_they_wait_for_the_disk():
    """Every request reads the disk: with one worker they are served one at a time."""
    base = "{arrivals: {kind: poisson, rate_per_s: 4000}, miss_ratio: 1.0, workers: %d}"
    one = simulate(server("pv", base % 1)).summary["guests"]["web"]["app"]
    many = simulate(server("pv", base % 16)).summary["guests"]["web"]["app"]
    assert many["latency"]["mean_ms"] < one["latency"]["mean_ms"] / 2
    assert one["parts_ms"]["worker_wait"] > many["parts_ms"]["worker_wait"]


def test_a_finite_source_lets_the_run_end_when_every_request_is_answered():
    s = server("hvm", "{arrivals: {kind: poisson, rate_per_s: 2000}, requests: 30, "
               "workers: 2}", vcpus=2)
    host = build_host(s)
    stats = host.run()  # no time limit: ends when the server is done
    assert host.app.log.counts_of(host.domains[-1].dom) == [30, 0, 30]
    assert stats.stalled == []


def test_the_warm_up_is_left_out_of_the_statistics():
    s = server("pv", "{arrivals: {kind: deterministic, rate_per_s: 1000}}", "40ms")
    all_ = simulate(s).summary["guests"]["web"]["app"]
    warm = simulate(with_overrides(s, ["record.warmup=20ms"]))
    a = warm.summary["guests"]["web"]["app"]
    assert all_["offered"] == 39 and a["offered"] == 20  # arrivals at 20, 21, ..., 39 ms
    assert a["offered_per_s"] == pytest.approx(1000.0)
    assert warm.summary["app"]["warmup_s"] == 0.02
    assert warm.app_requests["warmup"].sum() == 19


def test_bursty_arrivals_have_the_mean_rate_they_state():
    from model.app.arrivals import Bursty

    b = Bursty(rate_per_s=4000, off_rate_per_s=500, mean_on_ms=2, mean_off_ms=6)
    gaps = np.array([g for (g, _, _), _ in zip(b.gaps(np.random.default_rng(1)),
                                                range(200_000), strict=False)])
    assert 1 / gaps.mean() == pytest.approx(b.mean_rate_per_s(), rel=0.02)  # 1375/s
    assert gaps.std() / gaps.mean() > 1.1  # burstier than Poisson (cv 1)


# --- traces and determinism --------------------------------------------------------------

def test_a_trace_replays_its_times_types_and_sizes(tmp_path):
    (tmp_path / "t.csv").write_text("time_s,type,size\n0.001,get,100\n0.002,put,5000\n"
                                    "0.002,get,0\n0.010,get,64\n")
    (tmp_path / "s.yaml").write_text(SERVER.format(
        mode="pv", os="modified", vcpus=1, duration="20ms",
        params="{arrivals: {kind: trace, file: t.csv}, miss_ratio: 0}"))
    r = simulate(load_scenario(str(tmp_path / "s.yaml")))
    t = r.app_requests.sort_values("arrival_s")
    assert t["arrival_s"].round(9).tolist() == [0.001, 0.002, 0.002, 0.010]
    assert t["type"].tolist() == [0, 1, 0, 0] and t["size"].tolist() == [100, 5000, 0, 64]
    assert r.summary["guests"]["web"]["app"]["offered"] == 4


def test_a_bad_trace_is_refused_before_the_run_with_its_file_line_and_column(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("time_s,size\n0.001,100\n0.0005,7\n")
    (tmp_path / "s.yaml").write_text(SERVER.format(
        mode="pv", os="modified", vcpus=1, duration="20ms",
        params="{arrivals: {kind: trace, file: t.csv}}"))
    assert main(["run", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 't.csv'}:3:1:" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_trace_that_changed_since_validation_is_refused(tmp_path):
    (tmp_path / "t.csv").write_text("time_s\n0.001\n")
    (tmp_path / "s.yaml").write_text(SERVER.format(
        mode="pv", os="modified", vcpus=1, duration="20ms",
        params="{arrivals: {kind: trace, file: t.csv}}"))
    s = load_scenario(str(tmp_path / "s.yaml"))
    (tmp_path / "t.csv").write_text("time_s\n0.002\n")
    with pytest.raises(Exception, match="changed"):
        with_overrides(s, ["seed=2"])


@pytest.mark.parametrize("name", ["web-consolidation", "trace-replay"])
def test_same_seed_same_results(name):
    s = with_overrides(load_scenario(str(ROOT / "scenarios" / f"{name}.yaml")),
                       ["duration=60ms", "record.warmup=10ms"])
    a, b = simulate(s), simulate(s)
    assert a.equals(b, engine=False)
    assert len(a.app_requests) > 0


def test_the_slo_metrics_of_a_serving_group():
    from analysis.metrics import headline, metric_names

    s = server("pv", "{arrivals: {kind: poisson, rate_per_s: 2000}}")
    m = headline(simulate(s))
    for k in ("request_p99_ms", "request_p50_ms", "drop_rate", "served_per_s"):
        assert f"group.web.{k}" in m and f"group.web.{k}" in metric_names(s)
    assert m["group.web.drop_rate"] == 0.0
    assert m["group.web.request_p99_ms"] >= m["group.web.request_p50_ms"] > 0


def test_parts_are_named_once():
    assert list(PART) == list(PARTS) and len(set(PARTS)) == len(PARTS)


def test_the_warm_up_is_left_out_of_the_cpu_devices_and_io_too():
    """The cycle ledger after the warm-up covers exactly the measured time on every pCPU;
    a steady load's CPU per second and device utilization are about the same measured
    from 0 or after the warm-up, while the counts fall with the time left out."""
    s = server("pv", "{arrivals: {kind: deterministic, rate_per_s: 2000}}", "60ms")
    whole = simulate(s)
    warm = simulate(with_overrides(s, ["record.warmup=30ms"]))
    assert warm.summary["warmup_s"] == 0.03
    per_pcpu = warm.cpu.groupby("pcpu")["cycles"].sum()
    assert (per_pcpu == 30 * 2_930_000).all()  # 30 ms at 2.93 GHz on each pCPU
    a, b = whole.summary, warm.summary
    for dev in ("ssd0", "nic0"):
        assert b["devices"][dev]["completed"] < a["devices"][dev]["completed"]
        assert b["devices"][dev]["utilization"] == pytest.approx(
            a["devices"][dev]["utilization"], rel=0.2)
    assert b["guests"]["web"]["io"]["requests"] < a["guests"]["web"]["io"]["requests"]
    assert b["guests"]["web"]["io"]["throughput_mbps"] == pytest.approx(
        a["guests"]["web"]["io"]["throughput_mbps"], rel=0.2)
    assert b["host"]["busy_fraction"] == pytest.approx(a["host"]["busy_fraction"], rel=0.2)


# --- regressions found by review -------------------------------------------------------

@pytest.mark.parametrize(("users", "n"), [(4, 2), (16, 20), (6, 5)])
def test_a_closed_loop_sends_exactly_its_requests_and_the_run_ends(users, n):
    s = server("pv", f"{{arrivals: {{kind: closed, users: {users}, think_ms: 0.1}}, "
               f"requests: {n}, workers: 4, backlog: 2}}", vcpus=2)
    host = build_host(s)
    stats = host.run()  # no time limit: the server ends when every request is answered
    offered, dropped, served = host.app.log.counts_of(host.domains[-1].dom)
    assert offered == n and dropped + served == n and stats.stalled == []


def test_fewer_workers_than_vcpus_is_a_server_with_idle_vcpus():
    s = server("hvm", "{arrivals: {kind: poisson, rate_per_s: 3000}, workers: 1}", vcpus=3)
    r = simulate(s)
    a = r.summary["guests"]["web"]["app"]
    assert a["served"] > 0 and r.summary["invariants"]["stalled"] == []


def test_results_of_a_trace_run_load_after_the_trace_changed(tmp_path):
    from analysis.results import Results

    (tmp_path / "t.csv").write_text("time_s\n0.001\n0.002\n")
    (tmp_path / "s.yaml").write_text(SERVER.format(
        mode="pv", os="modified", vcpus=1, duration="10ms",
        params="{arrivals: {kind: trace, file: t.csv}}"))
    assert main(["run", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "out")]) == 0
    (tmp_path / "t.csv").write_text("time_s\n0.005\n")  # edited after the run
    r = Results.load(tmp_path / "out")
    assert r.summary["guests"]["web"]["app"]["offered"] == 2


def test_no_false_stall_when_another_vcpu_of_the_server_has_the_work():
    for seed in range(1, 5):
        s = with_overrides(server("hvm", "{arrivals: {kind: poisson, rate_per_s: 15000}, "
                                  "workers: 6}", "8ms", vcpus=3), [f"seed={seed}"])
        _, rec = _record(s)
        assert rec.stalled == (), rec.stalled


def test_an_override_naming_another_trace_reads_and_pins_that_one(tmp_path):
    (tmp_path / "a.csv").write_text("time_s\n0.001\n")
    (tmp_path / "b.csv").write_text("time_s\n0.001\n0.002\n0.003\n")
    (tmp_path / "s.yaml").write_text(SERVER.format(
        mode="pv", os="modified", vcpus=1, duration="10ms",
        params="{arrivals: {kind: trace, file: a.csv}}"))
    s = load_scenario(str(tmp_path / "s.yaml"))
    b = with_overrides(s, [f"guests.web.workload.params.arrivals.file={tmp_path / 'b.csv'}"])
    pinned = [x.guests[0].workload.params.arrivals.sha256 for x in (s, b)]
    assert pinned[0] != pinned[1]
    assert simulate(b).summary["guests"]["web"]["app"]["offered"] == 3


@pytest.mark.parametrize("name", ["web-consolidation", "kv-latency", "trace-replay"])
def test_without_request_records_the_summary_is_the_same_and_no_rows_are_kept(name):
    s = with_overrides(load_scenario(str(ROOT / "scenarios" / f"{name}.yaml")),
                       ["duration=60ms", "record.warmup=10ms"])
    kept = simulate(s)
    brief = simulate(with_overrides(s, ["record.requests=false"]))
    assert len(kept.app_requests) > 0 and len(brief.app_requests) == 0
    machine = {"engine", "reproducibility", "scenario_hash"}  # the hash: of the setting
    assert {k: v for k, v in brief.summary.items() if k not in machine} == {
        k: v for k, v in kept.summary.items() if k not in machine}
    first = next(iter(brief.summary["guests"].values()))
    assert first["io"]["p99_ms"] > 0  # the I/O latency figures too


def test_without_request_records_a_request_costs_three_integers():
    s = with_overrides(server("pv", "{arrivals: {kind: poisson, rate_per_s: 3000}}"),
                       ["record.requests=false"])
    host, rec = _record(s)
    n = host.app.log.counts_of(host.domains[-1].dom)[2]
    assert n > 50 and len(host.app.log._rows) == 0 and len(host.app.log._brief) == 3 * n
    assert len(rec.app.brief["end"]) == n and len(rec.app.requests["id"]) == 0
