"""The clock (model.clock): moving time forward without an event is an optimization only."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.run import simulate
from model.clock import Environment
from model.microbench import run_op
from model.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("scenario, overrides", [
    ("noisy-neighbour", ["duration=40ms", "record.warmup=10ms", "record.trace=true"]),
    ("web-consolidation", ["duration=30ms", "record.warmup=5ms", "record.trace=perfetto"]),
    ("kv-latency", ["duration=40ms"]),
])
def test_without_advance_a_run_is_the_same_but_for_its_event_count(scenario, overrides,
                                                                    monkeypatch):
    """Environment.advance (a segment ends without a SimPy timeout when nothing is due
    before its end): the same scenario with it disabled gives the same summary (engine
    and machine blocks aside), tables and hypervisor event log, with more events; a
    warm-up snapshot and the trace's event log included."""
    s = load_scenario(str(ROOT / "scenarios" / f"{scenario}.yaml"), overrides)
    fast = simulate(s)
    monkeypatch.setattr(Environment, "advance", lambda self, to: False)
    slow = simulate(s)
    assert fast.equals(slow, engine=False)
    if fast.event_log is not None:
        assert list(fast.event_log) == list(slow.event_log)
    assert fast.summary["engine"]["events"] < slow.summary["engine"]["events"]


def test_without_advance_a_run_without_a_time_limit_ends_the_same(monkeypatch):
    """pvsim bench's ops run until their workload ends (no time limit)."""
    fast = run_op("fork", "pv")
    monkeypatch.setattr(Environment, "advance", lambda self, to: False)
    assert run_op("fork", "pv") == fast


def test_advance_refuses_to_move_back_or_past_a_due_event():
    env = Environment()
    env.timeout(10)
    assert env.advance(5) and env.now == 5
    assert not env.advance(10) and env.now == 5  # the timeout at 10 runs first
    with pytest.raises(ValueError, match="back"):
        env.advance(3)
