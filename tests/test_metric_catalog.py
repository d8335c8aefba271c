"""The catalogue of headline metrics: the names a run has are the ones it lists, and
``pvsim plan --help`` shows every one of them with its unit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from analysis.metric_catalog import METRICS, SCOPES, STALLED, WHEN, describe, kind
from analysis.metrics import headline, metric_names
from analysis.run import simulate
from model.scenario import load_scenario, with_overrides

QUICK = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml"


def test_a_run_has_exactly_the_metrics_the_catalogue_lists_for_its_scenario():
    s = with_overrides(load_scenario(str(QUICK)), ["duration=30ms", "record.trace=false",
                                                    "guests.web-pv.count=2"])
    names = metric_names(s)  # known before the run
    assert set(headline(simulate(s))) == set(names) and len(set(names)) == len(names)
    assert {"guest.web-pv-1.request_p99_ms", "group.web-pv.request_p99_ms",
            "group.web-pv.mbit_s_per_guest", "device.nic0.mean_queue", STALLED} <= set(names)


def test_every_kind_has_a_scope_a_unit_a_meaning_and_a_known_condition():
    assert len({(k.scope, k.name) for k in METRICS}) == len(METRICS)
    for k in METRICS:
        assert k.scope in SCOPES and k.when in WHEN and k.unit and k.meaning
    assert kind("host", "stalled_vcpus").named() == STALLED
    assert kind("device", "utilization").named("ssd0") == "device.ssd0.utilization"


def test_plan_help_lists_every_metric_with_its_unit():
    r = subprocess.run([sys.executable, "-m", "analysis.cli", "plan", "--help"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and describe() in r.stdout
    rows = {line.split()[0]: line.split()[1] for line in r.stdout.splitlines()
            if line.startswith("  ") and line.split()[0].count(".") >= 1
            and line.split()[0].startswith(SCOPES)}
    assert rows == {k.pattern: k.unit for k in METRICS}
    assert all(len(line) <= 79 for line in describe().splitlines())
