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
