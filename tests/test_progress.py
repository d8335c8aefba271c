"""Progress with the time left (analysis.progress): the capacity search's bound on the
values it still decides, and the bars of the API's long calls."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from analysis.plan import search
from analysis.progress import format_left, progress_bar, remaining_values
from analysis.run import simulate
from model.scenario import parse_scenario


@given(st.integers(1, 300), st.integers(0, 400), st.integers(1, 300))
def test_the_bound_holds_at_every_step_of_every_search(start, threshold, span):
    """Whatever value the SLOs fail beyond, after each value decided the search never
    decides more values than remaining_values said."""
    limit = start + span
    asked: list[int] = []

    def holds(v: int) -> bool:
        asked.append(v)
        return v <= threshold

    search(start, limit, holds)
    for i in range(1, len(asked)):
        decided = {v: v <= threshold for v in asked[:i]}
        held = [v for v, ok in decided.items() if ok]
        if not held:
            assert len(asked) == i  # the start failed: nothing more
            continue
        good = max(held)
        bad = min((v for v, ok in decided.items() if not ok and v > good), default=None)
        assert len(asked) - i <= remaining_values(good, bad, limit)


def test_the_first_bound_is_met_by_the_worst_threshold():
    """The bound is tight: some threshold makes the search decide that many more."""
    limit = 64
    worst = 0
    for threshold in range(8, 70):
        asked: list[int] = []
        search(8, limit, lambda v, t=threshold, a=asked: a.append(v) or v <= t)
        worst = max(worst, len(asked) - 1)
    assert worst == remaining_values(8, None, limit) == 8


def test_a_bar_drawn_or_not_takes_the_same_updates(capsys):
    for show in (False, True):
        with progress_bar("x", 10, "runs", show=show) as update:
            update(3)  # as if three were read from a cache at once
            update(5, "note")
            update(10)
    assert format_left(30) == "~30 s left"


def test_simulate_with_a_progress_bar_gives_the_same_results():
    s = parse_scenario("name: p\nduration: 5ms\nguests: [{name: a, workload: {profile: spin}}]")
    assert simulate(s, progress=True).equals(simulate(s), engine=False)
