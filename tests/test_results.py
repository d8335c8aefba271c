"""The Results of a run: tables that agree with each other and with the summary, exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.results import Results
from analysis.run import simulate
from analysis.tables import STAGE_COLUMNS
from model.scenario import parse_scenario

SCENARIO = """
name: tables
seed: 3
duration: 60ms
hardware: nehalem-2.93ghz-ept
host:
  pcpus: 2
  devices: {ssd0: {kind: ssd}, nic0: {kind: nic}}
driver_domain: {pinning: [0]}
guests:
  - {name: web, mode: pv, workload: {profile: web_server, params: {arrivals: {kind: poisson,
                                                                               rate_per_s: 2000}}},
     devices: [{device: ssd0}, {device: nic0}]}
  - {name: db, os: unmodified, mode: hvm, workload: {profile: oltp_db},
     devices: [{device: ssd0, path: virtio}, {device: nic0, path: virtio}]}
  - {name: hog, mode: full, os: unmodified, workload: {profile: spin}}
record: {interval: 5ms, trace: true}
"""


@pytest.fixture(scope="module")
def run() -> Results:
    return simulate(parse_scenario(SCENARIO, "tables.yaml"))


def _width(r: Results) -> pd.Series:
    edges = np.append(np.unique(r.timeseries["time_s"]), r.summary["sim_time_s"])
    return pd.Series(np.diff(edges), index=edges[:-1])


def test_every_cycle_of_every_pcpu_is_in_the_cpu_table_once(run):
    assert run.cpu["seconds"].sum() == pytest.approx(2 * 0.060)
    per_pcpu = run.cpu.groupby("pcpu")["cycles"].sum()
    assert per_pcpu.nunique() == 1


def test_cpu_time_series_integrates_to_each_guests_cpu_time(run):
    ts = run.timeseries[run.timeseries["metric"] == "cpu_util"]
    width = _width(run)
    for guest, rows in ts.groupby("guest"):
        integral = (rows.set_index("time_s")["value"] * width).sum()
        booked = run.cpu.loc[run.cpu["guest"] == guest, "seconds"].sum()
        assert integral == pytest.approx(booked, rel=1e-9), guest
    assert set(ts["guest"]) == {"web", "db", "hog", "dom0"}


def test_device_series_integrate_to_the_summary(run):
    ts, width = run.timeseries, _width(run)
    for dev, d in run.summary["devices"].items():
        util = ts[(ts["metric"] == "device_util") & (ts["device"] == dev)]
        total = sum((rows.set_index("time_s")["value"] * width).sum()
                    for _, rows in util.groupby("guest"))
        # only completed requests are in the table; the summary also counts those in service
        assert total == pytest.approx(d["utilization"] * 0.060, rel=0.05)
        q = ts[(ts["metric"] == "queue_length") & (ts["device"] == dev)].set_index("time_s")
        assert (q["value"] * width).sum() / 0.060 == pytest.approx(d["mean_queue"], rel=1e-9)
    for g, v in run.summary["guests"].items():
        if "io" not in v:
            continue
        mbps = ts[(ts["metric"] == "throughput_mbps") & (ts["guest"] == g)]
        bits = sum((rows.set_index("time_s")["value"] * width).sum()
                   for _, rows in mbps.groupby("device")) * 1e6
        assert bits == pytest.approx(v["io"]["bytes"] * 8, rel=1e-9)


def test_request_stages_add_up_to_the_latency(run):
    rq = run.requests
    assert len(rq) == sum(v["io"]["requests"] for v in run.summary["guests"].values()
                          if "io" in v)
    assert np.allclose(rq[list(STAGE_COLUMNS)].sum(axis=1), rq["latency_ms"], atol=1e-9)
    assert set(rq.loc[rq["guest"] == "web", "path"]) == {"pv"}
    assert set(rq.loc[rq["guest"] == "db", "path"]) == {"virtio"}
    p99 = rq.loc[rq["guest"] == "db", "latency_ms"].quantile(0.99)
    assert p99 == pytest.approx(run.summary["guests"]["db"]["io"]["p99_ms"])


def test_the_schedule_never_runs_two_vcpus_on_one_pcpu_at_once(run):
    sch = run.schedule.sort_values(["pcpu", "start_s"])
    assert len(sch) > 10 and set(sch["guest"]) >= {"web", "db", "hog", "dom0"}
    for _, rows in sch.groupby("pcpu"):
        assert (rows["start_s"].to_numpy()[1:] >= rows["end_s"].to_numpy()[:-1] - 1e-12).all()
    assert set(sch.loc[sch["guest"] == "dom0", "pcpu"]) == {0}  # pinned


def test_a_results_directory_reads_back_equal(run, tmp_path):
    run.save(tmp_path / "r")
    back = Results.load(tmp_path / "r")
    assert back.equals(run)
    assert "web" in repr(back) and "<table" in back._repr_html_()


def test_a_results_directory_written_before_the_on_behalf_column_still_loads(run, tmp_path):
    """cpu.parquet gained ``on_behalf_of``: an older one reads each row as counted in the
    domain that ran it."""
    import pandas as pd

    out = run.save(tmp_path / "r")
    cpu = pd.read_parquet(out / "cpu.parquet").drop(columns="on_behalf_of")
    cpu.to_parquet(out / "cpu.parquet")
    old = Results.load(out)
    assert (old.cpu["on_behalf_of"] == old.cpu["guest"]).all()
    assert old.cpu["cycles"].sum() == run.cpu["cycles"].sum()


def test_progress_does_not_change_the_run():
    s = parse_scenario(SCENARIO, "tables.yaml")
    seen: list[float] = []
    a, b = simulate(s), simulate(s, progress=seen.append)
    assert len(seen) == 100 and seen[-1] == 1.0
    assert a.equals(b, engine=False) and not a.equals(b)


def test_io_paths_count_the_transitions_they_charge(run):
    web, db = (run.summary["guests"][g]["transitions"] for g in ("web", "db"))
    assert web["hypercalls"]["event_channel_op"] > 0  # pv ring notifications
    assert db["vm_exits"]["IO_INSTRUCTION"] > 0  # virtqueue kicks
    s = parse_scenario(SCENARIO.replace("path: virtio", "path: emulated"), "t.yaml")
    emulated = simulate(s).summary["guests"]["db"]
    # every emulated register access is an exit: several per request
    assert emulated["transitions"]["vm_exits"]["IO_INSTRUCTION"] >= 3 * emulated["io"][
        "requests"]
