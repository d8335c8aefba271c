"""The shipped scenarios (scenarios/*.yaml): each validates, builds, and runs reproducibly."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.reproducibility import MACHINE_BLOCKS
from analysis.run import simulate
from model.scenario import build_host, load_scenario

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))
IDS = [p.stem for p in SHIPPED]


def test_the_shipped_scenarios_are_there():
    names = set(IDS)
    assert {"quickstart", "web-consolidation", "noisy-neighbour", "driver-domain-starvation",
            "mixed-modes", "microbench"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=IDS)
def test_a_shipped_scenario_validates_and_builds(path):
    s = load_scenario(str(path))
    assert s.name == path.stem  # results directories are named after it
    host = build_host(s)
    replicas = sum(g.count for g in s.guests)
    assert len([d for d in host.domains if d.name != "dom0"]) == replicas


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=IDS)
def test_a_shipped_scenario_runs_the_same_twice_with_the_same_seed(path):
    s = load_scenario(str(path))
    runs = []
    for _ in range(2):
        summary = dict(simulate(s).summary)
        for block in MACHINE_BLOCKS:  # wall-clock figures differ between runs
            summary.pop(block)
        runs.append(summary)
    assert runs[0] == runs[1]
    assert runs[0]["sim_time_s"] == pytest.approx(s.duration)


WITH_DRIVER_DOMAIN = [p for p in SHIPPED if p.stem != "microbench"]


@pytest.mark.parametrize("path", WITH_DRIVER_DOMAIN, ids=[p.stem for p in WITH_DRIVER_DOMAIN])
def test_the_cpu_table_counts_each_guest_as_the_summary_does(path):
    """cpu.parquet summed by ``on_behalf_of`` is each guest's CPU as the summary (and the
    CLI's table) has it, the driver domain's work on its I/O included; summed by
    ``guest``, what each domain's vCPUs ran; the driver domain keeps its own work."""
    r = simulate(load_scenario(str(path), ["duration=20ms", "record.warmup=5ms"]))
    cpu, summary = r.cpu, r.summary
    counted = cpu.groupby("on_behalf_of")["seconds"].sum()
    for name, g in summary["guests"].items():
        assert counted.get(name, 0.0) == pytest.approx(sum(g["cpu_s"].values()), rel=1e-12)
        behalf = cpu[(cpu["on_behalf_of"] == name) & (cpu["guest"] != name)]["seconds"].sum()
        assert behalf == pytest.approx(g["cpu_s"].get("driver_domain", 0.0), rel=1e-12)
    dd = summary["host"]["driver_domain"]
    ran = cpu[cpu["guest"] == dd]["seconds"].sum()
    assert ran == pytest.approx(summary["host"]["driver_domain_s"], rel=1e-12)
    assert counted.get(dd, 0.0) <= ran  # its own work; the rest counts in the guests'
