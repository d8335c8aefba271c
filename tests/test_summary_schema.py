"""The documented schema of summary.json (``pvsim schema --summary``) against real
summaries: every key a run writes is documented, and every documented key is written."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from analysis import summary_schema
from analysis.cli import main
from analysis.run import simulate
from analysis.summary import Stalled, Summary
from analysis.summary_schema import SummarySchemaError, describe, keys
from model.scenario import load_scenario, parse_scenario, with_overrides

QUICK = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml"
NO_DEVICES = "name: t\nduration: 5ms\nguests: [{name: a, workload: {profile: spin}}]\n"
UNITS = {"s", "ms", "fraction", "count", "bytes", "Mbit/s", "1/s", "requests", "index",
         "integer", "text", "version", ""}


def leaves(d: object, at: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
    """(path, value) of every value of a summary; an empty object or list, or null, is a
    value; a list of objects is entered as ``NAME[]``."""
    if isinstance(d, dict) and d:
        for k, v in d.items():
            yield from leaves(v, (*at, k))
    elif isinstance(d, list) and d and all(isinstance(x, dict) for x in d):
        for x in d:
            yield from leaves(x, (*at[:-1], at[-1] + "[]"))
    else:
        yield at, d


def matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return len(pattern) == len(path) and all(
        p == q or (p.startswith("<") and p.endswith(">")) for p, q in zip(pattern, path,
                                                                          strict=True))


def documented(summary: dict) -> tuple[list[str], set[str]]:
    """The keys of ``summary`` that no documented key matches, and the documented keys
    (not blocks) that ``summary`` has."""
    ks = [(tuple(k.path.split(".")), k) for k in keys()]
    undocumented, seen = [], set()
    for path, value in leaves(summary):
        exact = [k for pat, k in ks if matches(pat, path)]
        seen |= {k.path for k in exact}
        empty = value is None or value == {} or value == []
        if not (exact and (empty or not exact[0].block)) and not (
                empty and any(matches(pat[:len(path)], path) for pat, _ in ks)):
            undocumented.append(".".join(path))
    return undocumented, seen


@pytest.fixture(scope="module")
def quickstart() -> dict:
    s = with_overrides(load_scenario(str(QUICK)), ["duration=30ms", "record.trace=false"])
    return simulate(s).summary


def test_every_key_of_a_quickstart_summary_is_documented_and_no_other(quickstart):
    undocumented, seen = documented(quickstart)
    assert undocumented == []
    values = {k.path for k in keys() if not k.block}
    # a sound run stalls nothing: the stalled vCPUs' keys are checked below
    assert values - seen == {"invariants.stalled[].vcpu", "invariants.stalled[].blocked_since_s",
                             "invariants.stalled[].why"}


def test_a_stalled_vcpu_and_a_host_without_devices_are_documented_too(quickstart):
    typed = Summary.from_dict(quickstart)
    stalled = dataclasses.replace(typed, invariants=dataclasses.replace(
        typed.invariants, stalled=[Stalled("web-pv.v0", 0.01, "nothing will ever wake it")]))
    undocumented, seen = documented(stalled.to_dict())
    assert undocumented == [] and "invariants.stalled[].why" in seen
    plain = simulate(parse_scenario(NO_DEVICES)).summary  # io null; no io, app, devices
    assert plain["io"] is None and documented(plain)[0] == []


def test_every_key_has_a_unit_and_a_meaning_and_blocks_have_keys_under_them():
    ks = keys()
    assert len({k.path for k in ks}) == len(ks)
    for k in ks:
        assert k.unit in UNITS and k.meaning, k
        if k.block:
            assert any(o.path.startswith((k.path + ".", k.path + "[]")) for o in ks), k
    assert [k.path for k in ks][:3] == ["pvsim_version", "scenario", "scenario_hash"]


def test_a_field_added_to_the_summary_without_documentation_is_an_error(monkeypatch):
    docs = dict(summary_schema.DOCS)
    docs[Summary] = {k: v for k, v in docs[Summary].items() if k != "warmup_s"}
    monkeypatch.setattr(summary_schema, "DOCS", docs)
    with pytest.raises(SummarySchemaError, match=r"Summary: undocumented fields \['warmup_s'\]"):
        keys()


def test_pvsim_schema_summary_prints_every_key_with_its_unit(capsys):
    assert main(["schema", "--summary"]) == 0
    out = capsys.readouterr().out
    assert out == describe() + "\n"
    for k in keys():
        assert k.path in out
    row = next(line for line in out.splitlines() if line.startswith("host.busy_fraction "))
    assert row.split()[1] == "fraction"
