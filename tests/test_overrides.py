"""``--set dotted.path=value``: any field, lists by element name, checked like the file."""

from __future__ import annotations

import pytest

from analysis.cli import main
from model.errors import PvsimError
from model.scenario import parse_scenario, with_overrides

BASE = """
name: o
duration: 20ms
host:
  devices: {ssd0: {kind: ssd}}
guests:
  - {name: web, workload: {profile: disk_io}, devices: [{device: ssd0}]}
  - {name: batch, mode: hvm, os: unmodified, workload: {profile: spin}}
"""


def test_overrides_reach_any_field_and_lists_by_name():
    s = parse_scenario(BASE, "o.yaml", ["guests.web.count=8", "duration=2s",
                                        "host.devices.ssd0.arbitration=weighted_fair",
                                        "guests.batch.mode=full", "record.trace=true",
                                        "guests.web.devices.ssd0.path=passthrough",
                                        "guests.1.vcpus=2", "driver_domain.pinning=[0]"])
    web, batch = s.guests
    assert web.count == 8 and s.duration == 2.0 and batch.mode == "full" and batch.vcpus == 2
    assert s.host.devices["ssd0"].arbitration == "weighted_fair" and s.record.trace
    assert web.devices[0].path == "passthrough" and s.driver_domain.pinning == [0]


def test_overriding_a_validated_scenario_gives_the_same_as_overriding_the_file():
    s = parse_scenario(BASE, "o.yaml")
    assert with_overrides(s, ["guests.web.count=3"]) == parse_scenario(
        BASE, "o.yaml", ["guests.web.count=3"])


@pytest.mark.parametrize(("sets", "message"), [
    (["guests.nope.count=2"], "--set guests.nope: no element 'nope' in the list; valid "
                              "choices: web, batch"),
    (["guests.web.count=-1"], "--set guests.web.count=-1: guests[0].count: -1 is out of "
                              "range; valid: 1 to 1,024"),
    (["duration=5"], "--set duration=5: duration: 5 is not a duration"),
    (["guests.web.cuont=5"], "--set guests.web.cuont=5: guests[0].cuont: unknown key 'cuont'"),
    (["count"], "--set 'count': write dotted.path=value"),
    (["name.first=x"], "--set name.first: name is a value ('o'), not a mapping or list"),
    (["guests.web.mode=[pv"], "the value is not valid YAML"),
])
def test_a_bad_override_is_named_in_the_error(sets, message, tmp_path, capsys):
    with pytest.raises(PvsimError, match=None) as err:
        parse_scenario(BASE, "o.yaml", sets)
    assert message in str(err.value)
    f = tmp_path / "o.yaml"
    f.write_text(BASE)
    assert main(["run", str(f), "--set", sets[0], "-o", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().err


def test_the_python_api_takes_a_dict_of_paths_and_keywords_validated():
    """with_overrides(s, {"guests.web.count": 8}, duration="50ms"): Python values, the
    same paths as --set, validated like a file (an error names the override)."""
    from model.scenario import ScenarioError, parse_scenario, with_overrides

    s = parse_scenario("name: t\nguests: [{name: web, workload: {profile: spin}}]")
    t = with_overrides(s, {"guests.web.count": 8, "guests.web.mode": "hvm"}, seed=4,
                       duration="50ms")
    assert (t.guests[0].count, t.guests[0].mode, t.seed, t.duration) == (8, "hvm", 4, 0.05)
    assert s.guests[0].count == 1  # the original is unchanged
    assert with_overrides(s, {"guests.web.count": 8}) == with_overrides(
        s, ["guests.web.count=8"])
    with pytest.raises(ScenarioError, match=r"guests.web.count=0: guests\[0\].count"):
        with_overrides(s, {"guests.web.count": 0})
