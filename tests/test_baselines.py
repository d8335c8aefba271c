"""Summaries of the shipped scenarios, recorded before the architecture refactor (issue
11) and compared exactly since: a refactor changes how the model is written, not what it
computes. The engine block (wall-clock figures) and the reproducibility block (versions,
platform, command line) aside, every figure must be identical.

The default suite runs each scenario for 30 ms; the slow suite for its whole duration.
After a change that is meant to change the model's figures, record them again with
``PVSIM_RECORD_BASELINES=1 python -m pytest tests/test_baselines.py -m "slow or not slow"``
and say why in the commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from analysis.reproducibility import MACHINE_BLOCKS
from analysis.run import simulate
from model.scenario import load_scenario, with_overrides

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "baselines"
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))
RECORD = os.environ.get("PVSIM_RECORD_BASELINES") == "1"


def _check(path: Path, duration: str | None) -> None:
    s = load_scenario(str(path))
    if duration is not None:
        s = with_overrides(s, [f"duration={duration}", "record.warmup=null"])  # all of it
    summary = json.loads(json.dumps(simulate(s).summary))  # as summary.json holds it
    for block in MACHINE_BLOCKS:  # the machine's and installation's, not the run's
        summary.pop(block)
    f = DATA / f"{path.stem}{'' if duration is None else '-' + duration}.json"
    if RECORD:
        f.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    assert summary == json.loads(f.read_text())


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_a_shipped_scenario_gives_its_recorded_summary_in_30_ms(path):
    _check(path, "30ms")


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_a_shipped_scenario_gives_its_recorded_summary(path):
    _check(path, None)
