"""``pvsim compare``: every guest in each mode, relative to native, impossible pairs named."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.cli import main
from analysis.compare import compare, in_mode
from model.scenario import parse_scenario

SCENARIO = """
name: cmp
duration: 30ms
hardware: nehalem-2.93ghz-ept
host: {pcpus: 2, devices: {ssd0: {kind: ssd}}}
guests:
  - {name: db, mode: pv, workload: {profile: disk_io, params: {size: 8192, think_us: 70}},
     devices: [{device: ssd0}]}
  - {name: win, os: unmodified, mode: hvm, workload: {profile: cpu_bound},
     devices: [{device: ssd0, path: virtio}]}
"""


@pytest.fixture(scope="module")
def result():
    return compare(parse_scenario(SCENARIO, "cmp.yaml"), ["native", "pv", "hvm"])


def test_each_mode_moves_every_guest_that_can_run_in_it(result):
    pv, kept = in_mode(parse_scenario(SCENARIO), "pv")
    assert [g.mode for g in pv.guests] == ["pv", "hvm"]
    assert kept == [("win", "an unmodified OS cannot run in pv mode")]
    native, _ = in_mode(parse_scenario(SCENARIO), "native")
    assert [a.path for g in native.guests for a in g.devices] == [None, None]  # virtio dropped
    assert {g["mode"] for g in result.runs["hvm"].summary["guests"].values()} == {"hvm"}
    assert result.skipped == [("win", "pv", "an unmodified OS cannot run in pv mode")]


def test_relative_performance_is_one_for_native_and_oriented_higher_is_better(result):
    t = result.table
    assert (t.loc[t["mode"] == "native", "relative"] == 1.0).all()
    assert t[(t["subject"] == "win") & (t["mode"] == "pv")].empty
    v = t.set_index(["subject", "metric", "mode"])["value"]
    rel = t.set_index(["subject", "metric", "mode"])["relative"]
    p99 = "io_p99_ms[ssd0:read]"  # I/O latency per stream: a device and a direction
    assert rel["db", p99, "hvm"] == pytest.approx(v["db", p99, "native"] / v["db", p99, "hvm"])
    assert rel["win", "instructions_per_s", "hvm"] == pytest.approx(
        v["win", "instructions_per_s", "hvm"] / v["win", "instructions_per_s", "native"])
    # the emulated disk costs an hvm database latency
    p50 = "io_p50_ms[ssd0:read]"
    assert rel["db", p50, "hvm"] < rel["db", p50, "pv"]
    streams = {m for m in t.loc[t["subject"] == "db", "metric"] if "[" in m}
    assert streams == {"io_p50_ms[ssd0:read]", "io_p99_ms[ssd0:read]"}  # disk_io only reads


def test_a_stream_is_a_device_and_a_direction_so_unlike_requests_are_not_pooled():
    """A web server's received packets take microseconds, its sent responses and disk
    reads a hundred times more: each is its own stream, with its own percentiles, and
    the pooled figures stay in the summary for what they are."""
    from analysis.run import simulate
    from model.scenario import load_scenario

    r = simulate(load_scenario("scenarios/quickstart.yaml",
                               ["duration=30ms", "record.warmup=5ms"]))
    io = r.summary["guests"]["web-pv"]["io"]
    assert set(io["streams"]) == {"ssd0:read", "nic0:receive", "nic0:send"}
    rq = r.requests
    after = rq[(rq["guest"] == "web-pv") & (rq["issued_s"] >= 0.005)]  # the warm-up left out
    assert 0 < len(after) < (rq["guest"] == "web-pv").sum()
    assert sum(s["requests"] for s in io["streams"].values()) == len(after)
    assert io["streams"]["nic0:send"]["p50_ms"] == pytest.approx(
        after.loc[after["write"] & (after["kind"] == "nic"), "latency_ms"].median())
    rx, tx = io["streams"]["nic0:receive"], io["streams"]["nic0:send"]
    assert rx["p50_ms"] < tx["p50_ms"] / 10


def test_the_command_writes_a_table_and_one_results_directory_per_mode(tmp_path, capsys):
    f = tmp_path / "cmp.yaml"
    f.write_text(SCENARIO)
    assert main(["compare", str(f), "--modes", "native,pv", "-o", str(tmp_path / "c"),
                 "--set", "duration=10ms"]) == 0
    out = capsys.readouterr().out
    assert "not reported: win in pv: an unmodified OS cannot run in pv mode" in out
    table = pd.read_csv(tmp_path / "c" / "compare.csv")
    assert set(table["mode"]) == {"native", "pv"}
    assert (tmp_path / "c" / "pv" / "summary.json").is_file()
    assert main(["compare", str(f), "--modes", "native,paravirt"]) == 2
