"""The Python API raises pvsim's own exception types (issue 10, L4), with the messages the
command line gives: the bad calls of the reliability report (api_results.txt)."""

from __future__ import annotations

import pytest

from analysis.run import simulate
from model.errors import PvsimError
from model.scenario import Scenario, parse_scenario, with_overrides

TEXT = "name: t\nduration: 1ms\nguests: [{name: a, workload: {profile: spin}}]\n"
DATA = {"name": "t", "duration": "1ms", "guests": [{"name": "a", "workload": {"profile": "spin"}}]}


def _bad(count=1, **workload):
    return {**DATA, "guests": [{"name": "a", "count": count,
                                "workload": {"profile": "disk_io", "params": workload}}]}


def test_simulate_takes_a_scenario_or_a_mapping():
    assert simulate(DATA).summary["guests"]["a"]["mode"] == "pv"


BAD_CALLS = {
    "simulate(dict) bad count": (lambda: simulate({**DATA, "guests": [{
        "name": "a", "count": 0, "workload": {"profile": "spin"}}]}), "guests[0].count: 0 is out"),
    "simulate(None)": (lambda: simulate(None), "simulate() takes a Scenario"),
    "simulate(yaml text)": (lambda: simulate(TEXT), "parse_scenario(text)"),
    "Scenario(**dict) bad count": (lambda: Scenario(**{**DATA, "guests": [{
        "name": "a", "count": 0, "workload": {"profile": "spin"}}]}), "guests[0].count"),
    "Scenario.model_validate bad duration": (
        lambda: Scenario.model_validate({**DATA, "duration": "soon"}), "'soon' is not a duration"),
    "Scenario.model_validate bad params": (
        lambda: Scenario.model_validate({**DATA, "guests": [{"name": "a", "workload": {
            "profile": "spin", "params": {"run_length": -1}}}]}), "run_length: -1 is out of range"),
    "parse_scenario(None)": (lambda: parse_scenario(None), "a scenario is YAML text"),
    "parse_scenario(int)": (lambda: parse_scenario(3), "a scenario is YAML text"),
    "parse_scenario(bytes invalid utf8)": (lambda: parse_scenario(b"\xff"), "not a text file"),
    "simulate(seed=-1)": (lambda: simulate(DATA, seed=-1), "seed: -1 is out of range"),
    "simulate(seed=1.5)": (lambda: simulate(DATA, seed=1.5), "seed: Input should be a valid "
                                                             "integer"),
    "simulate(seed='x')": (lambda: simulate(DATA, seed="x"), "seed"),
    "model_copy seed=-3": (lambda: parse_scenario(TEXT).model_copy(update={"seed": -3}),
                           "seed: -3 is out of range"),
    "model_copy count=0": (lambda: parse_scenario(TEXT).model_copy(update={"guests": [
        {"name": "a", "count": 0, "workload": {"profile": "spin"}}]}),
        "guests[0].count: 0 is out of range"),
    "model_copy duration=-1": (lambda: parse_scenario(TEXT).model_copy(
        update={"duration": -1.0}), "duration"),
    "model_copy duration=nan": (lambda: parse_scenario(TEXT).model_copy(
        update={"duration": float("nan")}), "duration"),
    "with_overrides bad path": (lambda: with_overrides(parse_scenario(TEXT), ["guests.zz=1"]),
                                "no element 'zz'"),
    "with_overrides deep": (lambda: with_overrides(parse_scenario(TEXT),
                                                   ["guests=" + "[" * 3000 + "]" * 3000]),
                            "64"),
    "params queue_depth=0": (lambda: simulate(_bad(queue_depth=0)), "queue_depth: 0 is out"),
    "params rate_per_s=0": (lambda: simulate({**DATA, "guests": [{"name": "a", "workload": {
        "profile": "web_server", "params": {"arrivals": {"kind": "poisson", "rate_per_s": 0}}}}
    ]}), "rate_per_s: 0 is out"),
    "params requests=1.5": (lambda: simulate(_bad(requests=1.5)), "requests: Input should be "
                                                                  "a valid integer"),
    "params think_us=1e20": (lambda: simulate(_bad(think_us=1e20)), "think_us: 1e+20 is out"),
}


@pytest.mark.parametrize("call", sorted(BAD_CALLS))
def test_a_bad_call_raises_a_pvsim_error_saying_what_is_wrong(call):
    fn, fact = BAD_CALLS[call]
    with pytest.raises(PvsimError) as err:
        fn()
    assert fact in str(err.value)


def test_an_api_error_is_worded_once_as_the_command_line_words_it():
    from model.scenario import ScenarioError

    bad = {**DATA, "seed": -1}
    expected = ("seed: -1 is out of range; valid: 0 to 18,446,744,073,709,551,615 (the "
                "run's seed)")
    for call, source in ((lambda: Scenario.model_validate(bad), "Scenario.model_validate"),
                         (lambda: Scenario(**bad), "Scenario(...)"),
                         (lambda: simulate(bad), "simulate(...)")):
        with pytest.raises(ScenarioError) as err:
            call()
        assert str(err.value) == f"{source}: {expected}"


def test_a_workload_called_from_python_checks_its_parameters():
    from model.app.workloads import web_server
    from model.workloads import cpu_bound

    with pytest.raises(PvsimError, match=r"^workload web_server: workers: 0 is out of "
                                         r"range; valid: 1 to 4,096 \(worker processes, "
                                         r"shared out over the vCPUs \(default 8\)\)$"):
        web_server(None, None, workers=0)
    with pytest.raises(PvsimError, match="chunk_mem_ops"):
        cpu_bound(chunk_mem_ops=10**10)
