"""Adding an arbitration policy from outside the package (issue 11): one class, declaring
its per-guest parameter, and one registration. A scenario then names it and gives the
parameter by guest name; validation, ``pvsim schema``, the builder (names resolved to
domain ids) and the run all take it without another edit.
"""

from __future__ import annotations

from typing import ClassVar

import pytest

from analysis.run import simulate
from model.errors import ConfigError, UnknownNameError
from model.io.arbitration import POLICIES, PerGuest
from model.io.devices import DEVICE_KINDS
from model.scenario import build_host
from model.scenario.device_specs import kind_model
from model.scenario.format import DeviceSpec, ScenarioError, parse_scenario, scenario_schema

from toys import Rank


@pytest.fixture
def rank_policy():
    POLICIES.register("rank", Rank)
    yield Rank
    POLICIES.unregister("rank")


def _scenario(arbitration: str, extra: str = "") -> str:
    guest = (
        "{{name: {}, mode: native, workload: {{profile: disk_io, params: {{queue_depth: "
        "16}}}}, devices: [{{device: disk0}}]}}"
    )
    return (
        f"name: toy\nduration: 20ms\nhost:\n  devices:\n    disk0: {{kind: ssd, "
        f"arbitration: {arbitration}{extra}}}\nguests:\n  - {guest.format('a')}\n"
        f"  - {guest.format('b')}\n"
    )


def _waits(r) -> dict[str, tuple[int, float]]:
    """Per guest: requests completed, and their mean wait in the device's queue (ms)."""
    req = r.requests
    return {
        g: (len(rows), float(rows["device_wait_ms"].mean())) for g, rows in req.groupby("guest")
    }


def test_a_registered_toy_policy_with_a_per_guest_parameter_runs_from_a_scenario(rank_policy):
    s = parse_scenario(_scenario("rank", ", ranks: {b: -1}"), "toy.yaml")
    assert s.host.devices["disk0"].ranks == {"b": -1}
    policy = build_host(s).io.devices["disk0"].policy
    assert isinstance(policy, Rank) and policy.ranks == {2: -1}  # b is domain 2
    ranked = _waits(simulate(s))
    fair = _waits(simulate(parse_scenario(_scenario("fifo"), "toy.yaml")))
    # FIFO: the two guests share the disk about evenly
    assert abs(fair["a"][0] - fair["b"][0]) <= 0.2 * fair["b"][0]
    # rank: b's requests always go first: a is starved once b's queue has built up, and
    # b's requests wait less in the device queue than under FIFO
    assert ranked["b"][0] > 10 * ranked["a"][0]
    assert ranked["b"][1] < fair["b"][1] / 2


def test_the_toy_policy_shows_in_the_schema_and_its_parameter_is_checked(rank_policy):
    defs = scenario_schema()["$defs"]
    for kind in DEVICE_KINDS:  # every kind of device may be arbitrated by it
        device = defs[f"{kind}_device"]["properties"]
        assert "rank" in device["arbitration"]["enum"]
        assert device["ranks"]["description"].startswith("guest name -> rank")
    with pytest.raises(
        ScenarioError,
        match=r"toy.yaml:5:54: host.devices.disk0.ranks.c: "
        "unknown guest 'c'; valid choices: a, b",
    ):
        parse_scenario(_scenario("rank", ", ranks: {c: 1}"), "toy.yaml")
    with pytest.raises(
        ScenarioError,
        match="host.devices.disk0.ranks: only used with "
        r"arbitration rank \(this device has fifo\)",
    ):
        parse_scenario(_scenario("fifo", ", ranks: {a: 1}"), "toy.yaml")
    with pytest.raises(ScenarioError, match="ranks.a: Input should be a valid integer"):
        parse_scenario(_scenario("rank", ", ranks: {a: x}"), "toy.yaml")


def test_an_unregistered_policy_and_its_parameter_are_refused_again(rank_policy):
    POLICIES.unregister("rank")
    try:
        assert "ranks" not in DeviceSpec.model_fields
        assert "ranks" not in kind_model("ssd").model_fields
        assert (
            "rank"
            not in scenario_schema()["$defs"]["ssd_device"]["properties"]["arbitration"]["enum"]
        )
        with pytest.raises(
            ScenarioError,
            match="host.devices.disk0.arbitration: Input "
            "should be 'fifo', 'round_robin', 'weighted_fair' or 'priority'",
        ):
            parse_scenario(_scenario("rank"), "toy.yaml")
        with pytest.raises(ScenarioError, match="unknown key 'ranks'"):
            parse_scenario(_scenario("fifo", ", ranks: {a: 1}"), "toy.yaml")
    finally:
        POLICIES.register("rank", Rank)  # for the fixture to remove


def test_a_policy_whose_parameter_clashes_with_another_is_refused():
    class Clash(Rank):
        params: ClassVar[dict] = {"priorities": PerGuest(float, "another meaning")}

    with pytest.raises(ConfigError, match="declares the device field 'priorities'"):
        POLICIES.register("clash", Clash)
    with pytest.raises(UnknownNameError):
        POLICIES["clash"]  # noqa: B018 (refused: not registered)
    assert parse_scenario(_scenario("priority", ", priorities: {a: 1}")).host.devices[
        "disk0"
    ].priorities == {"a": 1}
