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
    assert rel["db", "io_p99_ms", "hvm"] == pytest.approx(v["db", "io_p99_ms", "native"]
                                                          / v["db", "io_p99_ms", "hvm"])
    assert rel["win", "instructions_per_s", "hvm"] == pytest.approx(
        v["win", "instructions_per_s", "hvm"] / v["win", "instructions_per_s", "native"])
    # the emulated disk costs an hvm database latency
    assert rel["db", "io_p50_ms", "hvm"] < rel["db", "io_p50_ms", "pv"]


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
