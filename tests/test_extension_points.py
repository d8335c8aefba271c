"""An I/O path defined outside the package: one class, one registration, and a scenario
file that uses it runs with its stages (issue 11: adding a path touches nothing else)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.run import simulate
from model.hardware import load_profile
from model.io.paths import PATHS, DirectPath
from model.modes import MODES
from model.scenario import ScenarioError, parse_scenario, scenario_schema

DELAY = 30_000  # cycles: 10 us at 3 GHz


class DelayedPath(DirectPath):
    """The guest's driver programs the device, but every request reaches it a fixed
    time later (an interposer in the way, say)."""

    name = "delayed"

    def on_submit(self, io, att, vcpu, req):
        req.stamp("ring", io.env.now)
        io.env.timeout(DELAY).callbacks.append(lambda _ev: att.device.submit(req))
        return None, False


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
        match=r"path: Input should be .*'vhost' \(got "
        r"'delayed'\)",
    ):
        parse_scenario(scenario("delayed"), "ext.yaml")
