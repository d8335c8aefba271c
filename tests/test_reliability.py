"""Every reproducer of the reliability report (issue 10), kept in tests/data/reliability/:
each bad input is refused cleanly (exit status 2, one ``pvsim: error:`` line naming the
file, line, key path and what is valid, no traceback, quickly), each valid one runs to a
sane result (no negative or NaN figure, every vCPU accounted for)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from analysis.cli import main

DATA = Path(__file__).parent / "data" / "reliability"

#: reproducer -> facts its refusal must state (None: a valid input, which must run)
EXPECTED = {
    "caps_inf_hangs.yaml": [":16:11: host.devices.disk0.caps.backup[0]", "finite"],
    "caps_nan_hangs.yaml": [":16:11: host.devices.disk0.caps.backup[0]", "finite"],
    "diskio_negative_size_negative_throughput.yaml": [
        "guests[0].workload.params.size: -4096 is out of range; valid: 1 to 67,108,864 "
        "(bytes per request)"],
    "net_tx_mtu_0_negative_bytes.yaml": [
        "guests[0].workload.params.mtu: 0 is out of range; valid: 576 to 9,000"],
    "spin_run_length_1_1us.yaml": ["params.run_length: 1 is out of range; valid: 1,024 to"],
    "spin_run_length_2_1us.yaml": ["params.run_length: 2 is out of range"],
    "spin_run_length_10_1us.yaml": ["params.run_length: 10 is out of range"],
    "spin_run_length_100_1us.yaml": ["params.run_length: 100 is out of range"],
    "timeslice_1e-9ms_hangs.yaml": [":8:17: host.timeslice_ms: 1e-09 is out of range; "
                                    "valid: 0.01 to 1,000"],
    "vcpus64_count64_refused_at_runtime_after_85s.yaml": [
        "guests[0].memory_mb: 16 MB cannot hold what the guest needs", "at least 43 MB"],
    "saturate_native_qd1e6_hdd_1s.yaml": [
        "guests[0].workload.params.queue_depth: 1000000 is out of range; valid: 1 to 4,096"],
    "device_completed_vs_guest_completed.yaml": ["params.queue_depth: 1000000 is out of range"],
    "device_name_mathtext_traceback.yaml": [":13:7: host.devices.$\\frac{a$",
                                            "a device name"],
    "yaml_deep_nesting.yaml": ["64"],
    "yaml_nested_maps_2000.yaml": ["64"],
    "yaml_huge_int_5000_digits.yaml": ["digits"],
    "yaml_recursive_alias.yaml": ["recursive"],
    "yaml_recursive_alias_map.yaml": ["recursive"],
    "sweep_design_yaml_deep.yaml": [],  # a design, not a scenario: refused as one
    # valid inputs
    "timer_lost_wakeup_sleeper_hvm.yaml": None,
    "timer_lost_wakeup_web_server_hvm_2000rps.yaml": None,
    "memory_host_1e6_uses_2.3GB_rss.yaml": None,
    "cli_spin.yaml": None,
    "cli_tiny.yaml": None,
    "default_outdir_same_second.yaml": None,
    "kill_run_bigreq.yaml": None,
    "scenario_name_300_chars_default_outdir.yaml": None,
    "sweep_cache_scenario.yaml": None,
    "summary_in_flight_mismatch.yaml": None,
}
#: long valid runs, shortened here (the slow test runs them whole)
SHORTER = {"timer_lost_wakeup_web_server_hvm_2000rps.yaml": "200ms",
           "kill_run_bigreq.yaml": "30ms"}


def test_every_reproducer_is_covered():
    assert sorted(p.name for p in DATA.glob("*.yaml")) == sorted(EXPECTED)


def _figures(node, path=""):
    """Every number of a summary, with its key path."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _figures(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _figures(v, f"{path}[{i}]")
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield path, node


def check_sane(summary: dict) -> None:
    """No negative or NaN figure, request conservation as stated, nobody stalled."""
    for where, x in _figures(summary):
        assert not math.isnan(x) and x >= 0, f"{where} = {x}"
    io = summary["io"]
    if io is not None:
        assert io["issued"] == io["completed"] + io["in_flight"]
    assert summary["invariants"]["stalled"] == []


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e is not None))
def test_a_bad_reproducer_is_refused_in_one_line(name, capsys, tmp_path):
    argv = ["run", str(DATA / name), "-o", str(tmp_path / "out")]
    if name.startswith("sweep_design"):
        argv = ["sweep", str(DATA / "cli_spin.yaml"), "--design", str(DATA / name), "-o",
                str(tmp_path / "out")]
    t = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - t < 5
    err = capsys.readouterr().err
    assert err.startswith(f"pvsim: error: {DATA / name}")
    assert err.count("pvsim: error:") == 1 and "Traceback" not in err
    for fact in EXPECTED[name]:
        assert fact in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e is None))
def test_a_valid_reproducer_runs_to_a_sane_result(name, tmp_path):
    out = tmp_path / "out"
    argv = ["run", str(DATA / name), "-o", str(out)]
    if name in SHORTER:
        argv += ["--set", f"duration={SHORTER[name]}"]
    assert main(argv) == 0
    check_sane(json.loads((out / "summary.json").read_text()))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHORTER))
def test_a_long_valid_reproducer_runs_whole(name, tmp_path):
    out = tmp_path / "out"
    assert main(["run", str(DATA / name), "-o", str(out)]) == 0
    check_sane(json.loads((out / "summary.json").read_text()))


def test_a_terabyte_host_costs_what_its_guests_touch():
    """The reproducer's 1 TB host, and the same with 8 GB: the memory a run allocates
    (numpy's arrays included, which tracemalloc sees) does not grow with the configured
    size (before, 2 KB per MB: 2 GB more for the terabyte)."""
    import tracemalloc

    from model.scenario import build_host, load_scenario, with_overrides

    def peak(memory_mb: int) -> int:
        s = with_overrides(load_scenario(str(DATA / "memory_host_1e6_uses_2.3GB_rss.yaml")),
                           [f"host.memory_mb={memory_mb}", "duration=2ms"])
        tracemalloc.start()
        try:
            build_host(s).run(seconds=s.duration)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    small, big = peak(8192), peak(1_000_000)
    assert big < 1.05 * small
