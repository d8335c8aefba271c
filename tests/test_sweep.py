"""Sweeps, replications, resumption and the capacity search."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import main
from analysis.plan import judge, parse_slo, plan
from analysis.plots import plan_figure, sweep_metric
from analysis.sweep import factorial, parse_vary, read_design, replication_seed, sweep
from model.scenario import load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]

SCENARIO = """
name: sw
seed: 11
duration: 15ms
hardware: nehalem-2.93ghz-ept
host: {pcpus: 2, devices: {ssd0: {kind: ssd}}}
driver_domain: {pinning: [0]}
guests:
  - {name: db, mode: pv, workload: {profile: disk_io, params: {size: 8192, think_us: 70}},
     devices: [{device: ssd0}]}
  - {name: web, os: unmodified, mode: hvm, workload: {profile: disk_io, params: {think_us: 200}},
     devices: [{device: ssd0}]}
"""
AXES = ["guests.db.count=1,2", "guests.web.mode=hvm,full"]


@pytest.fixture(scope="module")
def base():
    return parse_scenario(SCENARIO, "sw.yaml")


def test_a_factorial_design_and_a_design_file_give_the_same_points(tmp_path):
    points = factorial([parse_vary(a) for a in AXES])
    assert points == [{"guests.db.count": "1", "guests.web.mode": "hvm"},
                      {"guests.db.count": "1", "guests.web.mode": "full"},
                      {"guests.db.count": "2", "guests.web.mode": "hvm"},
                      {"guests.db.count": "2", "guests.web.mode": "full"}]
    (tmp_path / "d.csv").write_text("guests.db.count,guests.web.mode\n1,hvm\n1,full\n2,hvm\n"
                                    "2,full\n")
    (tmp_path / "d.yaml").write_text("- {guests.db.count: 1, guests.web.mode: hvm}\n"
                                     "- {guests.db.count: 1, guests.web.mode: full}\n"
                                     "- {guests.db.count: 2, guests.web.mode: hvm}\n"
                                     "- {guests.db.count: 2, guests.web.mode: full}\n")
    assert read_design(tmp_path / "d.csv") == points
    assert [{k: str(v) for k, v in p.items()} for p in read_design(tmp_path / "d.yaml")] == points


def test_replications_have_their_own_seeds_shared_across_points(base):
    sw = sweep(base, factorial([parse_vary("guests.db.count=1,2")]), replications=3)
    assert sw.table["seed"].tolist() == [replication_seed(11, k) for k in range(3)] * 2
    assert len(set(sw.table["seed"])) == 3
    summary = sw.summary()
    one = sw.table[sw.table["point"] == 0]["group.db.p99_ms"]
    assert summary.loc[0, "group.db.p99_ms.mean"] == pytest.approx(one.mean())
    assert summary.loc[0, "replications"] == 3


def test_the_table_does_not_depend_on_the_number_of_jobs(base):
    points = factorial([parse_vary(a) for a in AXES])
    one = sweep(base, points, replications=3, jobs=1)
    two = sweep(base, points, replications=3, jobs=2)
    pd.testing.assert_frame_equal(one.table, two.table)
    assert one.table.shape[0] == 12


@pytest.mark.slow
def test_a_dask_local_cluster_gives_the_same_table(base):
    points = factorial([parse_vary(a) for a in AXES])
    pd.testing.assert_frame_equal(sweep(base, points, 3, jobs=1).table,
                                  sweep(base, points, 3, dask="local:2").table)


def test_the_command_writes_the_parquet_the_summary_and_the_plots(tmp_path, capsys):
    f = tmp_path / "sw.yaml"
    f.write_text(SCENARIO)
    out = tmp_path / "out"
    assert main(["sweep", str(f), "--vary", AXES[0], "--vary", AXES[1], "--replications", "3",
                 "-o", str(out)]) == 0
    table = pd.read_parquet(out / "sweep.parquet")
    summary = pd.read_csv(out / "sweep_summary.csv")
    assert len(table) == 12 and len(summary) == 4
    assert {"guests.db.count", "guests.web.mode", "seed", "group.db.p99_ms"} <= set(table)
    assert (out / "plots" / "sweep-group.db.p99_ms.png").is_file()
    assert "12 runs computed, 0 read from the cache" in capsys.readouterr().out
    assert main(["sweep", str(f), "--vary", AXES[0], "--vary", AXES[1], "--replications", "3",
                 "-o", str(out)]) == 0
    assert "0 runs computed, 12 read from the cache" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_parquet(out / "sweep.parquet"), table)


def test_a_killed_sweep_resumes_with_only_the_missing_runs(tmp_path):
    f = tmp_path / "sw.yaml"
    f.write_text(SCENARIO.replace("15ms", "40ms"))
    args = [sys.executable, "-m", "analysis.cli", "sweep", str(f), "--vary",
            "guests.db.count=1,2,3,4", "--replications", "2"]
    cache = tmp_path / "killed" / "cache"
    proc = subprocess.Popen([*args, "-o", str(tmp_path / "killed")], start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(cache.glob("*.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(cache.glob("*.json")))
    assert 2 <= done < 8, "the sweep finished (or never started) before the kill"
    assert not (tmp_path / "killed" / "sweep.parquet").exists()
    again = subprocess.run([*args, "-o", str(tmp_path / "killed")], capture_output=True,
                           text=True, timeout=300)
    assert f"{8 - done} runs computed, {done} read from the cache" in again.stdout
    whole = sweep(parse_scenario(f.read_text(), str(f)),
                  factorial([parse_vary("guests.db.count=1,2,3,4")]), replications=2)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "killed" / "sweep.parquet"),
                                  whole.table)


def test_plan_on_a_shipped_scenario_agrees_with_a_brute_force_scan(tmp_path, capsys):
    """How many HVM web guests, each offered 2,000 requests/s, fit before their response
    time's p99 passes 5 ms? The plan's answer equals a scan of every count, decided the
    same way, from the same (cached) runs."""
    shipped = str(ROOT / "scenarios" / "web-consolidation.yaml")
    sets = ["--set", "duration=30ms", "--set", "guests.web.mode=hvm", "--set",
            "record.warmup=5ms", "--set", "guests.web.workload.params.arrivals.rate_per_s=2000"]
    out = tmp_path / "plan"
    assert main(["plan", shipped, *sets, "--vary", "guests.web.count", "--slo",
                 "group.web.request_p99_ms < 5", "--start", "1", "--limit", "8",
                 "--replications", "2", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    answer = int(printed.split("capacity: guests.web.count = ")[1].split()[0].rstrip(";"))
    assert (out / "plots" / "plan.png").is_file()
    s = load_scenario(shipped, sets[1::2])
    slo = [parse_slo("group.web.request_p99_ms < 5")]
    scan = sweep(s, [{"guests.web.count": str(n)} for n in range(1, 9)], 2,
                 cache_dir=out / "cache")
    holds = [judge(g, n, slo, 0.95).holds for n, g in scan.table.groupby("guests.web.count")]
    assert holds == sorted(holds, reverse=True), "p99 is not monotone in the count here"
    assert answer == sum(holds) and 1 < answer < 8
    assert scan.ran < 16  # most of the scan's runs were the plan's, from the cache


def test_slos_are_parsed_with_clear_errors():
    assert str(parse_slo("host.busy_fraction>=0.5")) == "host.busy_fraction >= 0.5"
    with pytest.raises(Exception, match="write METRIC < BOUND"):
        parse_slo("p99 below 10")


def test_a_plan_records_one_point_per_value_it_evaluated(base, tmp_path):
    p = plan(base, "guests.db.count", [parse_slo("device.ssd0.utilization < 0.3")], start=1,
             limit=8, replications=1, cache_dir=tmp_path)
    summary = p.sweep.summary()
    assert sorted(summary["guests.db.count"]) == sorted(p.verdicts)
    assert (summary["replications"] == 1).all() and p.sweep.ran == len(p.verdicts)
    fig = plan_figure(p)  # the metric per value, the SLO line, the answer marked
    ax = fig.axes[0]
    assert ax.get_xlabel() == "guests.db.count" and ax.get_ylabel() == "device.ssd0.utilization"
    labels = ax.get_legend_handles_labels()[1]
    assert "SLO device.ssd0.utilization < 0.3" in labels
    assert f"capacity guests.db.count = {p.answer}" in labels
    held = [v for v in sorted(p.verdicts) if p.verdicts[v].holds]
    assert sorted(ax.collections[0].get_offsets()[:, 0].tolist()) == held


def test_a_sweep_graph_draws_each_axis_with_one_line_per_other_value(base):
    sw = sweep(base, factorial([parse_vary(a) for a in AXES]), replications=2)
    fig = sweep_metric(sw, "group.db.p99_ms")
    count_ax, mode_ax = fig.axes[:2]
    assert count_ax.get_xlabel() == "guests.db.count"
    assert sorted(count_ax.get_legend_handles_labels()[1]) == [
        "guests.web.mode=full", "guests.web.mode=hvm"]
    summary = sw.summary()
    full = summary[summary["guests.web.mode"] == "full"].sort_values("guests.db.count")
    line = count_ax.lines[0]  # the first line: web in full mode (groups sorted)
    assert line.get_xdata().tolist() == [1, 2]
    assert line.get_ydata().tolist() == full["group.db.p99_ms.mean"].tolist()
    assert mode_ax.get_xlabel() == "guests.web.mode"
    assert [t.get_text() for t in mode_ax.get_xticklabels()] == ["hvm", "full"]


@pytest.mark.parametrize(("args", "message"), [
    (["plan", "--vary", "guests.db.count", "--slo", "host.busyfraction < 0.9"],
     "unknown metric 'host.busyfraction'; valid choices: host.busy_fraction"),
    (["plan", "--vary", "guests.db.count", "--slo", "host.busy_fraction < 0.9",
      "--confidence", "1.5"], "--confidence 1.5: a one-sided confidence must lie"),
    (["plan", "--vary", "guests.db.mode", "--slo", "host.busy_fraction < 0.9"],
     "plan searches an integer axis; the scenario has 'pv' there"),
    (["sweep", "--vary", "seed=1,2"], "seed cannot be an axis"),
    (["sweep", "--vary", "guests.db.count"], "write PATH=V1,V2"),
    (["sweep", "--vary", "guests.nope.count=1,2"], "no element 'nope' in the list"),
    (["sweep", "--vary", "guests.db.count=1", "--dask", "local:0"], "write local:N"),
    (["compare", "--modes", "native,native"], "give distinct modes"),
])
def test_sweep_and_plan_errors_are_one_line_and_status_2(args, message, tmp_path, capsys):
    f = tmp_path / "sw.yaml"
    f.write_text(SCENARIO)
    assert main([args[0], str(f), *args[1:], "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_design_files_must_be_rectangular(tmp_path, base):
    (tmp_path / "long.csv").write_text("guests.db.count\n1,2\n")
    with pytest.raises(Exception, match="long.csv:2: the row has more values"):
        read_design(tmp_path / "long.csv")
    (tmp_path / "mixed.yaml").write_text("- {guests.db.count: 1}\n- {guests.web.count: 2}\n")
    with pytest.raises(Exception, match="design point 2 sets guests.web.count"):
        sweep(base, read_design(tmp_path / "mixed.yaml"))


def test_an_axis_of_mixed_types_stays_text(base):
    sw = sweep(base, factorial([parse_vary("duration=10ms,0.012s")]))
    assert sw.table["duration"].tolist() == ["10ms", "0.012s"]


def test_a_plan_treats_a_value_the_host_cannot_hold_as_failing(base, tmp_path):
    small = base.model_copy(update={"host": base.host.model_copy(update={"memory_mb": 1024})})
    p = plan(small, "guests.db.count", [parse_slo("host.busy_fraction < 1.01")], start=1,
             replications=1, cache_dir=tmp_path)
    assert p.answer == 2  # 3 x 256 MB guests + 256 MB dom0 > 1024 MB
    assert "host.memory_mb" in p.verdicts[3].reasons[0]


def test_a_point_where_a_vcpu_stalled_fails_its_slos_whatever_its_figures():
    import pandas as pd

    from analysis.metrics import STALLED
    from analysis.plan import judge, parse_slo

    slo = [parse_slo("host.busy_fraction < 0.9")]
    fine = pd.DataFrame({"host.busy_fraction": [0.5, 0.5], STALLED: [0.0, 0.0]})
    assert judge(fine, 4, slo, 0.95).holds
    stalled = fine.assign(**{STALLED: [0.0, 1.0]})
    v = judge(stalled, 4, slo, 0.95)
    assert not v.holds and "stalled" in v.reasons[0] and "1 replication" in v.reasons[0]


@pytest.mark.parametrize("text, bound", [
    ("group.web.request_p99_ms < 50ms", 50.0), ("group.web.request_p99_ms < 0.05s", 50.0),
    ("group.web.request_p99_ms < 500us", 0.5), ("host.busy_fraction <= 80%", 0.8),
    ("group.web.mbit_s_per_guest >= 2Gbit/s", 2000.0), ("group.web.p99_ms < 10", 10.0)])
def test_an_slo_bound_may_carry_the_unit_of_its_metric(text, bound):
    assert parse_slo(text).bound == pytest.approx(bound)


def test_an_slo_bound_in_a_unit_the_metric_cannot_take_is_refused_with_the_choices():
    with pytest.raises(Exception, match=r"in ms; its bound may be in: s, ms, us, µs, ns; "
                                        r"did you mean 'ms'\?"):
        parse_slo("group.web.request_p99_ms < 5mss")
    with pytest.raises(Exception, match="in count; write its bound as a plain number"):
        parse_slo("host.stalled_vcpus < 1x")


def test_the_cache_digest_covers_all_code_a_run_s_metrics_depend_on():
    """appstats.py computes the request metrics: editing it must invalidate cached runs;
    a graph's module need not."""
    import model
    from analysis.sweep import digest_files

    root = Path(model.__file__).resolve().parents[1]
    names = {f.resolve().relative_to(root).as_posix() for f in digest_files()}
    assert {"analysis/appstats.py", "analysis/summary.py", "analysis/metrics.py",
            "model/hypervisor.py"} <= names
    assert not any(n.startswith("analysis/plots") or n == "analysis/cli.py" for n in names)
