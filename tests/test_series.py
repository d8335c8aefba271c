"""Time series accumulated as the run goes (model.series) equal the sums over the
recorded spans that the tables once computed afterwards."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.run import simulate
from analysis.tables import bin_edges, busy_until
from model.scenario import parse_scenario
from model.series import Bins, Level

spans = st.lists(
    st.tuples(st.integers(0, 1000), st.integers(0, 60)).map(lambda t: (t[0], t[0] + t[1])),
    max_size=30,
)


@given(spans, st.integers(1, 200))
@settings(max_examples=200, deadline=None)
def test_bins_are_the_overlap_of_the_spans_with_each_interval(spans, width):
    b = Bins(width)
    for t0, t1 in spans:
        b.add(t0, t1)
    edges = bin_edges(1100, width)
    starts = np.array([s for s, _ in spans], np.int64)
    ends = np.array([e for _, e in spans], np.int64)
    expect = sum(
        (np.diff(busy_until(starts[i : i + 1], ends[i : i + 1], edges)) for i in range(len(spans))),
        np.zeros(len(edges) - 1, np.int64),
    )
    assert b.values(len(edges) - 1).tolist() == expect.tolist()


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 5), st.booleans()), max_size=20),
       st.integers(1, 40))
@settings(max_examples=300, deadline=None)
def test_a_level_integrates_its_step_function(steps, width):
    """Per interval too, whether or not it is read (advanced) on the way: it writes an
    interval's amount once a change falls past the interval's end."""
    q = Level(Bins(width))
    t, f = 0, [0] * 2000  # the step function, cycle by cycle
    for dt, v, read in steps:
        t += dt
        q.set(t, v)
        f[t:] = [v] * (2000 - t)
        if read:
            q.advance(t)
            n = -(-t // width)
            assert q.bins.values(n).tolist() == [sum(f[k * width : min((k + 1) * width, t)])
                                                 for k in range(n)]
    q.advance(2000)
    assert q.area_at(2000) == sum(f)
    n = -(-2000 // width)
    assert q.bins.values(n).tolist() == [sum(f[k * width : (k + 1) * width]) for k in range(n)]


def test_the_cpu_series_equals_the_segments_overlap_with_each_interval():
    s = parse_scenario(
        "name: t\nduration: 7ms\nrecord: {interval: 1ms, trace: true}\n"
        "host: {pcpus: 1}\nguests: [{name: a, count: 2, workload: {profile: spin}}]",
        "t.yaml",
    )
    r = simulate(s)
    ts = r.timeseries[r.timeseries.metric == "cpu_util"]
    freq = 2.93e9
    edges = bin_edges(round(0.007 * freq), round(0.001 * freq))
    for guest, rows in r.schedule.groupby("guest"):
        busy = np.diff(busy_until(
            np.round(rows.start_s.to_numpy() * freq).astype(np.int64),
            np.round(rows.end_s.to_numpy() * freq).astype(np.int64),
            edges,
        ))
        got = ts[ts.guest == guest].sort_values("time_s").value.to_numpy()
        assert np.allclose(got, busy / np.diff(edges), atol=1e-9)
        assert len(got) == 7 and got.sum() > 0
