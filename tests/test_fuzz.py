"""Fuzzing the scenario format (issue 10): documents drawn from ``pvsim schema``
(hypothesis-jsonschema) and mutations of the shipped scenarios. Each is either refused
cleanly (a :class:`PvsimError` whose message points somewhere) or, shrunk to a small
budget, runs to a summary with no negative or NaN figure whose invariants hold, quickly.

A few dozen examples by default; ``HYPOTHESIS_PROFILE=fuzz python -m pytest -m slow
tests/test_fuzz.py`` draws thousands.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from test_reliability import check_sane

from analysis.run import simulate
from model.errors import PvsimError
from model.scenario import Scenario, parse_scenario, scenario_schema

SHIPPED = sorted((Path(__file__).parent.parent / "scenarios").glob("*.yaml"))
settings.register_profile("fuzz", max_examples=3000, deadline=None,
                          suppress_health_check=list(HealthCheck))
FAST = settings(max_examples=int(os.environ.get("PVSIM_FUZZ_EXAMPLES", 30)), deadline=None,
                suppress_health_check=list(HealthCheck))
SLOW = settings(settings.get_profile("fuzz"))


def _small(s: Scenario) -> Scenario:
    """``s`` cut down to a budget a test can run: 2 ms, at most 2 replicas of 2 vCPUs
    per guest entry and 4 pCPUs (validated again: a cut may itself be refused)."""
    data = s.model_dump(mode="json")
    data["duration"] = "2ms" if s.duration > 2e-3 else data["duration"]
    data["record"]["interval"] = "1ms" if s.record.interval > 1e-3 else data["record"][
        "interval"]
    data["host"]["pcpus"] = min(s.host.pcpus, 4)
    data["driver_domain"]["vcpus"] = min(s.driver_domain.vcpus, 2)
    for g in data["guests"]:
        g["count"], g["vcpus"] = min(g["count"], 2), min(g["vcpus"], 2)
    for who in [data["driver_domain"], *data["guests"]]:
        if who["pinning"]:
            who["pinning"] = [p % data["host"]["pcpus"] for p in who["pinning"]]
    return parse_scenario(data, "fuzz (cut down)")


def refused_or_sane(doc: object) -> None:
    """Through the YAML loader where the document can be written as YAML, else as data."""
    try:
        text: object = yaml.safe_dump(doc, allow_unicode=True)
    except (yaml.YAMLError, UnicodeError):
        text = doc
    try:
        s = _small(parse_scenario(text, "fuzz.yaml"))
    except PvsimError as e:  # a clean refusal: it says where
        assert str(e).startswith(("fuzz.yaml", "fuzz (cut down)")), str(e)
        return
    t = time.perf_counter()
    r = simulate(s)
    assert time.perf_counter() - t < 60
    check_sane(r.summary)


@pytest.mark.parametrize("fast", [pytest.param(True),
                                  pytest.param(False, marks=pytest.mark.slow)])
def test_documents_drawn_from_the_schema_are_refused_or_run_sanely(fast):
    @(FAST if fast else SLOW)
    @given(from_schema(scenario_schema()))
    def check(doc):
        refused_or_sane(doc)
    check()


#: values a mutation puts in place of a leaf (of every type, and every edge)
VALUES = st.one_of(
    st.integers(-2**70, 2**70), st.sampled_from([0, -1, 1, 2**31, 2**63, 10**12]),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    st.text(max_size=12), st.sampled_from(["1e-300s", "0ms", "1e999s", "-5ms", "$\\frac{a$",
                                           "a\nb", "\ud800", "010", ".inf", "yes"]),
    st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=4),
                                                              st.integers(), max_size=2))


def _leaves(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))


@st.composite
def mutated(draw):
    base = yaml.safe_load(draw(st.sampled_from(SHIPPED)).read_text())
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _leaves(doc) if p]
        path = draw(st.sampled_from(paths))
        node = doc
        for k in path[:-1]:
            node = node[k]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(node, dict):
            del node[path[-1]]
        elif action == "add" and isinstance(node, dict):
            node[draw(st.text(min_size=1, max_size=6))] = draw(VALUES)
        elif isinstance(node[path[-1]], int | float) and draw(st.booleans()):
            # a plausible change of a number, which often stays valid: the run is tested
            node[path[-1]] = type(node[path[-1]])(node[path[-1]] * draw(
                st.sampled_from([0, 0.5, 2, 3, 10, 1000, -1])))
        else:
            node[path[-1]] = draw(VALUES)
        if not isinstance(doc, dict):
            break
    return doc


@pytest.mark.parametrize("fast", [pytest.param(True),
                                  pytest.param(False, marks=pytest.mark.slow)])
def test_mutations_of_the_shipped_scenarios_are_refused_or_run_sanely(fast):
    @(FAST if fast else SLOW)
    @given(mutated())
    def check(doc):
        refused_or_sane(doc)
    check()
