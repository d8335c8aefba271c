"""Scenario files: the format (:mod:`.format`), its safe YAML loader (:mod:`.yamlsafe`),
``--set`` overrides (:mod:`.overrides`), cross-field checks and error messages
(:mod:`.checks`, :mod:`.errors`), and the builder that turns a validated scenario into a
ready-to-run host (:mod:`.build`).

Examples
--------
>>> from model.scenario import parse_scenario, build_host
>>> s = parse_scenario("name: t\\nguests: [{name: a, count: 2, workload: {profile: spin}}]")
>>> [d.name for d in build_host(s).domains]
['a-0', 'a-1']
"""

from .build import build_host, guest_names
from .errors import ScenarioError
from .format import (
    Scenario,
    load_scenario,
    parse_duration,
    parse_scenario,
    scenario_schema,
    with_overrides,
)
from .overrides import OverrideError
from .yamlsafe import YamlError

__all__ = [
    "OverrideError",
    "Scenario",
    "ScenarioError",
    "YamlError",
    "build_host",
    "guest_names",
    "load_scenario",
    "parse_duration",
    "parse_scenario",
    "scenario_schema",
    "with_overrides",
]
