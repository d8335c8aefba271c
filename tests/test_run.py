"""`pvsim run`: a scenario file in, a summary table and a results directory out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from analysis.cli import main

ROOT = Path(__file__).resolve().parents[1]
QUICK = str(ROOT / "scenarios" / "quickstart.yaml")


def test_run_writes_the_results_directory(tmp_path, capsys):
    assert main(["run", QUICK, "-o", str(tmp_path / "r")]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["scenario"] == "quickstart" and summary["hardware"] == "nehalem-2.93ghz-ept"
    assert set(summary["guests"]) == {"web-pv", "web-hvm"}
    pv, hvm = summary["guests"]["web-pv"], summary["guests"]["web-hvm"]
    assert pv["io"]["requests"] > 100 and hvm["io"]["requests"] > 100
    assert pv["cpu_s"]["driver_domain"] > 0
    hv = summary["hypervisor"]  # host-wide: every guest's transitions summed
    assert hv["hypercalls"]["event_channel_op"] == pv["transitions"]["hypercalls"][
        "event_channel_op"]
    assert hv["vm_exits"]["HLT"] == hvm["transitions"]["vm_exits"]["HLT"] > 0
    assert summary["io"]["issued"] == summary["io"]["completed"] + summary["io"]["in_flight"]
    resolved = (tmp_path / "r" / "scenario.resolved.yaml").read_text()
    assert "timeslice_ms: 30.0" in resolved  # defaults written out
    assert "duration: 0.2s" in resolved  # and it reads back as the same scenario
    for table in ("requests", "cpu", "timeseries", "schedule", "guests"):
        assert (tmp_path / "r" / f"{table}.parquet").is_file()
    assert not list((tmp_path / "r").glob(".*.tmp"))  # no temporary file left behind
    assert "web-pv" in capsys.readouterr().out


def test_same_scenario_and_seed_give_the_same_summary(tmp_path):
    runs = []
    for k in range(2):
        assert main(["run", QUICK, "-o", str(tmp_path / str(k))]) == 0
        s = json.loads((tmp_path / str(k) / "summary.json").read_text())
        assert s.pop("engine")["wall_s"] > 0  # the machine's blocks differ between runs:
        assert s.pop("reproducibility")["command"][-1] == str(tmp_path / str(k))  # -o DIR
        runs.append(s)
    assert runs[0] == runs[1]


def test_a_broken_scenario_exits_2_with_one_clear_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nguests:\n  - {name: a, mode: pv, os: unmodified, "
                   "workload: {profile: spin}}\n")
    r = subprocess.run([sys.executable, "-m", "analysis.cli", "run", str(bad)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert f"{bad}:3:21: guests[0].mode: an unmodified OS cannot run in pv mode" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_seed_override_is_recorded_in_the_resolved_scenario(tmp_path):
    assert main(["run", QUICK, "--seed", "7", "--set", "duration=20ms", "--set",
                 "record.trace=false", "-o", str(tmp_path / "r")]) == 0
    assert "seed: 7" in (tmp_path / "r" / "scenario.resolved.yaml").read_text()
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["seed"] == 7


def test_rewriting_a_results_directory_leaves_no_stale_plot(tmp_path):
    out = str(tmp_path / "r")
    assert main(["run", QUICK, "--set", "duration=20ms", "-o", out]) == 0
    assert (tmp_path / "r" / "plots" / "schedule_timeline.png").is_file()
    assert main(["run", QUICK, "--set", "duration=20ms", "--set", "record.trace=false",
                 "-o", out]) == 0
    assert not (tmp_path / "r" / "plots" / "schedule_timeline.png").exists()


def test_an_unwritable_output_is_one_line_and_status_2(capsys):
    assert main(["run", QUICK, "--set", "duration=5ms", "-o", "/dev/null/x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pvsim: error: /dev/null/x") and "Traceback" not in err


def test_plot_redraws_a_results_directory(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", QUICK, "--set", "duration=20ms", "-o", str(out)]) == 0
    drawn = sorted(p.name for p in (out / "plots").glob("*.png"))
    for p in (out / "plots").glob("*.png"):
        p.unlink()
    assert main(["plot", str(out)]) == 0
    assert sorted(p.name for p in (out / "plots").glob("*.png")) == drawn
    assert main(["plot", str(tmp_path)]) == 2
    assert "not a results directory" in capsys.readouterr().err


def test_schema_is_the_json_schema_of_scenario_files(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "pvsim scenario" and "guests" in schema["required"]
    assert schema["properties"]["duration"]["type"] == "string"  # "2s", with its unit
    guest = schema["$defs"]["GuestSpec"]["properties"]
    assert guest["mode"]["enum"] == ["native", "pv", "full", "hvm"]
