"""Every extension point of a scenario is a registry the schema, validation and the
builder ask (issue 11): a workload, a device kind or a scheduler registered after import
(here, from a test) is accepted by validation, shown by ``pvsim schema`` and built, and
refused again once removed. (An arbitration policy: tests/test_toy_policy.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest
from pydantic import Field

from analysis.run import simulate
from model.io.devices import DEVICE_KINDS, ServiceModel
from model.isa import Chunk, ChunkBuilder
from model.scenario import ScenarioError, parse_scenario, scenario_schema
from model.scenario.errors import NAME_PATTERN
from model.sched import SCHEDULERS, RoundRobinScheduler, SchedulerKind
from model.workload_registry import Param, registry, workload
from model.workloads import enter


@pytest.fixture
def toy_workload():
    @workload(n=Param("instructions per chunk", ge=1, le=1e9))
    def toy_burn(n: int = 1000):
        """Burn ``n``-instruction chunks of ALU work, forever."""

        def program(ctx) -> Iterator[Chunk]:
            yield enter(ctx.kernel, ctx.kernel.spawn())
            chunk = ChunkBuilder().alu(n).build()
            while True:
                yield chunk

        return program

    yield toy_burn
    registry().unregister("toy_burn")


def test_a_workload_registered_after_import_is_validated_shown_and_run(toy_workload):
    text = "name: t\nduration: 5ms\nguests: [{name: a, workload: {profile: toy_burn}}]"
    assert "toy_burn_workload" in scenario_schema()["$defs"]
    with pytest.raises(ScenarioError, match="n: 0 is out of range; valid: 1 to"):
        parse_scenario(text.replace("toy_burn}", "toy_burn, params: {n: 0}}"), "t.yaml")
    r = simulate(parse_scenario(text, "t.yaml"))
    assert r.summary["guests"]["a"]["cpu_s"]["user"] > 0.004  # of 5 ms
    assert r.summary["guests"]["a"]["instructions"] > 0
    kind = registry()["toy_burn"]
    registry().unregister("toy_burn")
    try:
        with pytest.raises(ScenarioError, match="unknown workload 'toy_burn'"):
            parse_scenario(text, "t.yaml")
        assert "toy_burn_workload" not in scenario_schema()["$defs"]
    finally:
        registry().register("toy_burn", kind)  # for the fixture to remove


class Tape(ServiceModel):
    """A tape drive: every request costs a fixed wind time."""

    params: ClassVar[dict] = {
        "wind_ms": (float, Field(10.0, gt=0, le=1e5, description="tape: wind time per request"))
    }

    def __init__(self, wind_ms: float = 10.0) -> None:
        self.wind_s = wind_ms / 1e3

    def seconds(self, req, rng) -> float:
        return self.wind_s


@pytest.fixture
def tape_kind():
    DEVICE_KINDS.register("tape", Tape)
    yield Tape
    DEVICE_KINDS.unregister("tape")


def test_a_device_kind_registered_after_import_brings_its_parameter(tape_kind):
    text = (
        "name: t\nduration: 30ms\nhost: {devices: {t0: {kind: tape, wind_ms: 4}}}\n"
        "guests: [{name: a, mode: native, workload: {profile: disk_io}, "
        "devices: [{device: t0}]}]"
    )
    defs = scenario_schema()["$defs"]
    device = defs["tape_device"]["properties"]  # its own model, with its own key
    assert device["kind"]["const"] == "tape" and device["wind_ms"]["default"] == 10.0
    assert "wind_ms" not in defs["ssd_device"]["properties"]
    assert "tape" in defs["HostSpec"]["properties"]["devices"]["patternProperties"][
        NAME_PATTERN]["discriminator"]["mapping"]
    s = parse_scenario(text, "t.yaml")
    assert s.model_dump()["host"]["devices"]["t0"]["wind_ms"] == 4.0
    r = simulate(s)
    assert len(r.requests) >= 5
    assert r.requests["service_ms"].round(9).eq(4.0).all()
    with pytest.raises(ScenarioError, match="wind_ms: 0 is out of range"):
        parse_scenario(text.replace("wind_ms: 4", "wind_ms: 0"), "t.yaml")


def test_a_scheduler_registered_after_import_is_accepted_and_built():
    SCHEDULERS.register(
        "rr_fast", SchedulerKind(RoundRobinScheduler, {"quantum_ms": "ratelimit_us"})
    )  # a toy mapping: the quantum from another field
    try:
        assert (
            "rr_fast" in scenario_schema()["$defs"]["HostSpec"]["properties"]["scheduler"]["enum"]
        )
        s = parse_scenario(
            "name: t\nduration: 5ms\nhost: {scheduler: rr_fast, ratelimit_us: "
            "2}\nguests: [{name: a, workload: {profile: spin}}]"
        )
        sched = SCHEDULERS[s.host.scheduler].from_spec(s.host)
        assert isinstance(sched, RoundRobinScheduler) and sched.quantum_ms == 2.0
    finally:
        SCHEDULERS.unregister("rr_fast")
    with pytest.raises(
        ScenarioError, match="host.scheduler: Input should be 'credit' or 'round_robin'"
    ):
        parse_scenario(
            "name: t\nhost: {scheduler: rr_fast}\nguests: [{name: a, workload: {profile: spin}}]"
        )


def test_a_workload_defined_again_replaces_itself_and_another_of_its_name_is_refused():
    """A notebook cell that defines a workload, run twice, defines the same function (same
    module, same qualified name) again: the new definition replaces the old one. A
    different function under a registered name is refused."""
    from model.errors import ConfigError

    kinds = []
    try:
        for default in (1, 2):  # the same cell, run twice, with an edit in between

            @workload(n=Param("a number", ge=0, le=10))
            def toy_again(n: int = default):
                return lambda ctx: iter(())

            kinds.append(registry()["toy_again"])
        assert kinds[0] is not kinds[1] and registry()["toy_again"].params().n == 2


        def elsewhere():  # another scope: a different function that has the same name
            @workload()
            def toy_again():
                return lambda ctx: iter(())

        with pytest.raises(ConfigError, match="workload 'toy_again' is already registered"):
            elsewhere()
    finally:
        registry().unregister("toy_again")


def test_a_scenario_still_pickles_after_another_workload_is_registered():
    """Workload models are made once per registered kind: registering another one does
    not replace the models that earlier scenarios hold, so they still pickle for a
    sweep's worker processes."""
    import pickle

    s = parse_scenario("name: t\nguests: [{name: a, workload: {profile: sleeper}}]")
    try:

        @workload()
        def toy_later():
            return lambda ctx: iter(())

        assert pickle.loads(pickle.dumps(s)) == s
    finally:
        registry().unregister("toy_later")
    assert pickle.loads(pickle.dumps(s)) == s


def test_a_subclass_of_a_registered_policy_takes_its_parameters():
    from model.io.arbitration import POLICIES, Priority

    class AgedPriority(Priority):
        """Priority, aged (a toy: the parameter is Priority's)."""

    POLICIES.register("aged_priority", AgedPriority)
    try:
        text = ("name: t\nhost: {devices: {d: {kind: ssd, arbitration: %s, priorities: "
                "{a: 3}}}}\nguests: [{name: a, workload: {profile: spin}}]")
        s = parse_scenario(text % "aged_priority", "t.yaml")
        assert s.host.devices["d"].priorities == {"a": 3}
        with pytest.raises(ScenarioError,
                           match="only used with arbitration priority or aged_priority"):
            parse_scenario(text % "fifo", "t.yaml")
    finally:
        POLICIES.unregister("aged_priority")


def test_an_instance_registered_again_from_the_same_class_replaces_itself():
    from model.errors import ConfigError
    from model.io.paths import PATHS, DirectPath

    class Mine(DirectPath):
        name = "mine"

    try:
        first = PATHS.register("mine", Mine())
        second = PATHS.register("mine", Mine())  # the notebook cell, run again
        assert PATHS["mine"] is second is not first
        with pytest.raises(ConfigError, match="already registered"):
            PATHS.register("mine", DirectPath())
    finally:
        PATHS.unregister("mine")
