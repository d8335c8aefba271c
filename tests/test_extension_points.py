"""An I/O path and a virtualization mode defined outside the package: one class and one
registration each, and a scenario file that uses it is validated, runs and is compared
(issue 11: adding a path or a mode touches nothing else)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.compare import compare
from analysis.plots.colors import MODE_COLORS
from analysis.run import simulate
from model.hardware import load_profile
from model.io.paths import PATHS
from model.modes import MODES, Paravirtual
from model.scenario import ScenarioError, parse_scenario, scenario_schema

from toys import DELAY, DelayedPath


@pytest.fixture
def delayed():
    PATHS.register("delayed", DelayedPath())
    yield PATHS["delayed"]
    if "delayed" in PATHS:
        PATHS.unregister("delayed")


def scenario(path: str, mode: str = "hvm") -> str:
    return f"""
name: ext
seed: 3
duration: 20ms
hardware: skylake-3.0ghz-ept
host:
  pcpus: 2
  devices:
    ssd0: {{kind: ssd}}
guests:
  - name: g
    os: unmodified
    mode: {mode}
    workload: {{profile: disk_io}}
    devices: [{{device: ssd0, path: {path}}}]
"""


def test_a_path_registered_outside_the_package_is_used_by_a_scenario(delayed):
    assert "delayed" in MODES["hvm"].paths() and "delayed" not in MODES["native"].paths()
    enum = scenario_schema()["$defs"]["AttachmentSpec"]["properties"]["path"]["anyOf"][0]
    assert enum["enum"][-1] == "delayed"  # the schema lists it
    s = parse_scenario(scenario("delayed"), "ext.yaml")
    assert not s.needs_driver_domain
    r = simulate(s)
    assert r.summary["guests"]["g"]["devices"] == {"ssd0": "delayed"}
    req = r.requests
    assert len(req) > 20 and set(req["path"]) == {"delayed"}
    freq = load_profile(s.hardware).freq_hz
    # every request waited exactly DELAY between the driver and the device's queue
    assert (req["to_device_ms"].to_numpy() == np.int64(DELAY) / freq * 1e3).all()
    direct = simulate(parse_scenario(scenario("direct"), "ext.yaml")).requests
    assert (direct["to_device_ms"] == 0).all()  # the stage is the new path's own


def test_a_path_is_refused_once_unregistered_and_by_a_mode_it_does_not_serve(delayed):
    with pytest.raises(ScenarioError, match="a native guest drives its devices directly"):
        parse_scenario(scenario("delayed", mode="native"), "ext.yaml")
    PATHS.unregister("delayed")
    with pytest.raises(
        ScenarioError,
        match=r"path: Input should be .*'hosted' \(got "
        r"'delayed'\)",
    ):
        parse_scenario(scenario("delayed"), "ext.yaml")


class PvhMode(Paravirtual):
    """A toy PVH: a pv kernel (hypercalls, split drivers) in a VT-x container."""

    name, summary, color = "pvh", "pv in a VT-x container", "#9467bd"
    needs_vtx = True


@pytest.fixture
def pvh():
    MODES.register("pvh", PvhMode())
    yield MODES["pvh"]
    MODES.unregister("pvh")


def test_a_mode_registered_outside_the_package_is_validated_run_and_compared(pvh):
    assert pvh.paths() == ("direct", "passthrough", "pv", "emulated", "virtio", "vhost")
    assert pvh.reason(load_profile("netburst-2.4ghz")) == (
        "pvh needs VT-x, which netburst-2.4ghz lacks"
    )
    with pytest.raises(ScenarioError, match="an unmodified OS cannot run in pvh mode"):
        parse_scenario(scenario("pv", mode="pvh"), "ext.yaml")  # os: unmodified
    assert "pvh" in scenario_schema()["$defs"]["GuestSpec"]["properties"]["mode"]["enum"]
    s = parse_scenario(
        scenario("pv", mode="pvh").replace("os: unmodified", "os: modified"), "ext.yaml"
    )
    assert s.needs_driver_domain  # its default and chosen path, pv, is served in dom0
    c = compare(s, ["native", "pvh"])
    assert set(c.table["mode"]) == {"native", "pvh"} and not c.skipped
    g = c.runs["pvh"].summary["guests"]["g"]
    assert g["mode"] == "pvh" and g["devices"] == {"ssd0": "pv"}
    assert g["transitions"]["hypercalls"]["event_channel_op"] > 0  # split-driver kicks
    assert MODE_COLORS["pvh"] == "#9467bd"


def test_a_scenario_uses_a_policy_and_a_path_both_defined_outside_the_package(delayed):
    """The acceptance test of issue 11: an arbitration policy (tests/toys.py: Rank, with a
    per-guest parameter) and an I/O path (DelayedPath), one class each, registered, and
    one scenario that names both. Guest b outranks a at the shared SSD, and both reach
    it through the delayed path."""
    from model.io.arbitration import POLICIES

    from toys import Rank

    POLICIES.register("rank", Rank)
    try:
        text = """
name: both
seed: 5
duration: 20ms
hardware: skylake-3.0ghz-ept
host:
  pcpus: 2
  devices:
    ssd0: {kind: ssd, arbitration: rank, ranks: {b: -1}}
guests:
  - name: a
    os: unmodified
    mode: hvm
    workload: {profile: disk_io, params: {queue_depth: 16}}
    devices: [{device: ssd0, path: delayed}]
  - name: b
    os: unmodified
    mode: hvm
    workload: {profile: disk_io, params: {queue_depth: 16}}
    devices: [{device: ssd0, path: delayed}]
"""
        freq = load_profile("skylake-3.0ghz-ept").freq_hz
        served = {}
        for policy in ("rank, ranks: {b: -1}", "fifo"):
            req = simulate(parse_scenario(text.replace("rank, ranks: {b: -1}", policy))).requests
            assert set(req["path"]) == {"delayed"}
            assert (req["to_device_ms"].to_numpy() == np.int64(DELAY) / freq * 1e3).all()
            served[policy.split(",")[0]] = req.groupby("guest").size()
        assert served["rank"]["b"] > 10 * served["rank"]["a"]  # b outranks a: it is served
        assert served["fifo"]["b"] < 2 * served["fifo"]["a"]  # fifo: about evenly
    finally:
        POLICIES.unregister("rank")


def test_a_sweep_in_worker_processes_refuses_a_component_they_would_not_know(delayed):
    """Worker processes start from pvsim's own modules: a path registered here would be
    unknown there, so a parallel sweep that names it is refused at once, clearly (it
    failed in every worker before); inline (jobs=1) it runs."""
    from analysis.sweep import Runner, sweep
    from model.errors import ConfigError

    s = parse_scenario(scenario("delayed").replace("20ms", "2ms"), "ext.yaml")
    with Runner(jobs=2) as runner, pytest.raises(
        ConfigError, match=r"uses I/O path 'delayed' \(from toys\), registered in this "
        r"process only.*jobs=1"
    ):
        list(runner.run([(s, 1, None)]))
    assert sweep(s, [{}], replications=1, jobs=1).ran == 1
