"""The response-time graphs of `analysis.plots` (split from tests/test_plots.py): a run of
key-value stores with a warm-up (two replicas and one emulated guest) for the CDF and the
decomposition, and a tiny load sweep of one of them for the hockey stick.
"""

from __future__ import annotations

import dataclasses

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection, PolyCollection

from analysis.plots import (
    graphs_for,
    hockey_stick,
    response_cdf,
    response_decomposition,
    save_all,
    save_sweep_plots,
)
from analysis.plots import response as response_module
from analysis.plots._common import fmt
from analysis.plots.colors import PART_COLORS
from analysis.plots.response import PART_WORDS
from analysis.plots.sweep import load_axis
from analysis.run import simulate
from analysis.stats import thin_tail
from analysis.sweep import Sweep, factorial, parse_vary, sweep
from analysis.tables import PART_COLUMNS
from model.app.requests import PARTS
from model.scenario import parse_scenario

from harness import legend_texts

# key-value stores with a warm-up: two pv replicas, and an hvm guest with an emulated NIC
KV = "{profile: kv_store, params: {arrivals: {kind: poisson, rate_per_s: %d}}}"
SERVED = f"""
name: served
seed: 5
duration: 40ms
hardware: nehalem-2.93ghz-ept
host: {{pcpus: 2, devices: {{nic0: {{kind: nic}}}}}}
record: {{warmup: 10ms}}
guests:
  - {{name: kv, count: 2, workload: {KV % 3000}, devices: [{{device: nic0}}]}}
  - {{name: emu, os: unmodified, mode: hvm, workload: {KV % 2000},
      devices: [{{device: nic0, path: emulated}}]}}
"""
SERVING = ["kv-0", "kv-1", "emu"]
# one of them, for a tiny load sweep
LOAD = f"""
name: load
seed: 2
duration: 30ms
hardware: nehalem-2.93ghz-ept
host: {{pcpus: 2, devices: {{nic0: {{kind: nic}}}}}}
record: {{warmup: 5ms}}
guests:
  - {{name: kv, workload: {KV % 1000}, devices: [{{device: nic0}}]}}
"""
RATE = "guests.kv.workload.params.arrivals.rate_per_s"


@pytest.fixture(scope="module")
def served():
    return simulate(parse_scenario(SERVED))


@pytest.fixture(scope="module")
def load_sweep():
    return sweep(parse_scenario(LOAD), factorial([parse_vary(f"{RATE}=1000,4000")]),
                 replications=2)


# --- application response times --------------------------------------------------------


def measured(run) -> pd.DataFrame:
    app = run.app_requests
    return app[~app["warmup"]]


def named_lines(ax) -> list:
    return [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]


def test_response_graphs_only_for_runs_that_serve_requests(served, tmp_path):
    assert list(graphs_for(served))[-2:] == ["response_cdf", "response_decomposition"]
    bare = dataclasses.replace(served, app_requests=served.app_requests.iloc[:0])
    assert not {"response_cdf", "response_decomposition"} & set(graphs_for(bare))
    for draw in (response_cdf, response_decomposition):
        assert "No application requests" in draw(bare).axes[0].texts[0].get_text()
    names = {p.name for p in save_all(served, tmp_path, dpi=40)}
    assert {"response_cdf.png", "response_decomposition.png"} <= names
    save_all(bare, tmp_path, dpi=40)  # drawn again without them: the old files go
    assert not (tmp_path / "plots" / "response_cdf.png").exists()
    assert set(PART_WORDS) == set(PARTS)  # every part is explained in the legend


def test_response_cdf_pools_replicas_and_leaves_the_warm_up_out(served):
    app = served.app_requests
    assert app["warmup"].any() and (~app["warmup"]).any()
    fig = response_cdf(served)
    (ax,) = fig.axes
    assert "after a 10.0 ms warm-up" in fig.get_suptitle()
    lines = named_lines(ax)
    assert [ln.get_label().split()[0] for ln in lines] == ["kv", "emu"]  # one per entry
    stats = served.summary["app"]["groups"]
    mine = measured(served)
    for line, group in zip(lines, ["kv", "emu"], strict=True):
        lat = np.sort(mine.loc[mine["group"] == group, "latency_ms"].to_numpy())
        np.testing.assert_allclose(line.get_xdata()[1:], lat)  # no warm-up request
        assert line.get_ydata()[-1] == 1.0
        label, n = line.get_label(), len(lat)  # answered ones: the unanswered are not drawn
        waiting = stats[group]["in_flight"]
        assert n + waiting == stats[group]["latency"]["n"] and f"{n:,} requests" in label
        assert ("unanswered" in label) == (waiting > 0)
        assert f"p99 {fmt(np.percentile(lat, 99))} ms" in label
        assert ("above it)" in label) == thin_tail(n, 0.99)
    assert "[pv, 2 guests]" in lines[0].get_label() and "[hvm]" in lines[1].get_label()
    n_emu = stats["emu"]["latency"]["n"]  # a small sample: its p99 is flagged
    assert thin_tail(n_emu, 0.99)
    assert f"(p99 of {n_emu} requests: under 10 above it)" in lines[1].get_label()
    marks = [c for c in ax.collections if isinstance(c, PathCollection)]
    want = sorted(np.percentile(mine.loc[mine["group"] == g, "latency_ms"], q)
                  for g in ("kv", "emu") for q in (50, 95, 99))
    np.testing.assert_allclose(sorted(float(c.get_offsets()[0][0]) for c in marks), want)
    assert legend_texts(fig.legends[0]) == [ln.get_label() for ln in lines]


def test_response_cdf_log_axis_and_many_guest_entries(served, monkeypatch):
    slow = served.app_requests.copy()
    slow.loc[slow["group"] == "emu", "latency_ms"] *= 300
    slow_run = dataclasses.replace(served, app_requests=slow)
    ax = response_cdf(slow_run).axes[0]
    assert ax.get_xscale() == "log" and "log scale" in ax.get_xlabel()
    assert not any("$" in t.get_text() for t in ax.get_xticklabels())
    monkeypatch.setattr(response_module, "MAX_CDF_GROUPS", 1)
    fig = response_cdf(slow_run)
    labels = legend_texts(fig.legends[0])  # the slowest named, the other grey and last
    assert labels[0].startswith("emu") and labels[1].startswith("1 other guest entry")
    grey = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("1 other")]
    assert matplotlib.colors.to_hex(grey[0].get_color()) == "#bfbfbf"


def test_response_decomposition_bars_add_up_to_each_guests_mean_response_time(served):
    fig = response_decomposition(served)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == SERVING
    guests = served.summary["guests"]
    drawn = [c for c in PART_COLUMNS if (measured(served)[c] > 0).any()]
    parts = [c.removesuffix("_ms") for c in drawn]
    assert [c.get_label() for c in ax.containers] == [p.replace("_", " ") for p in parts]
    for cont, part in zip(ax.containers, parts, strict=True):
        np.testing.assert_allclose([b.get_width() for b in cont],
                                   [guests[g]["app"]["parts_ms"][part] for g in SERVING])
        assert matplotlib.colors.to_hex(cont[0].get_facecolor()) == PART_COLORS[part]
    ends = [b.get_x() + b.get_width() for b in ax.containers[-1]]
    # the answered requests' mean (latency.mean_ms also counts the unanswered at their age)
    np.testing.assert_allclose(ends, [sum(guests[g]["app"]["parts_ms"].values()) for g in SERVING])
    legend = legend_texts(fig.legends[0])
    assert legend == [f"{p.replace('_', ' ')}: {PART_WORDS[p]}" for p in parts]
    assert "vcpu blocked" in [c.get_label() for c in ax.containers]  # the emulated NIC's


def test_response_decomposition_pools_replicas_when_guests_are_many(served, monkeypatch):
    monkeypatch.setattr(response_module, "MAX_GUEST_BARS", 2)
    ax = response_decomposition(served).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["kv (2 guests)", "emu"]
    groups = served.summary["app"]["groups"]
    ends = [b.get_x() + b.get_width() for b in ax.containers[-1]]
    np.testing.assert_allclose(ends, [sum(groups[g]["parts_ms"].values()) for g in ("kv", "emu")])
    monkeypatch.setattr(response_module, "MAX_BARS", 1)
    ax = response_decomposition(served).axes[0]
    slowest = max(groups, key=lambda g: groups[g]["latency"]["mean_ms"])
    assert [t.get_text() for t in ax.get_yticklabels()] == [slowest]
    assert ax.get_title() == "the 1 slowest of 2 guest entries"


def test_response_graphs_stay_readable_and_bounded_with_128_guests(served):
    app = measured(served).reset_index(drop=True)
    names = np.array([f"g{i:03d}" for i in range(128)], dtype=object)[app.index % 128]
    many = dataclasses.replace(served, app_requests=app.assign(guest=names, group=names))
    fig = response_cdf(many)
    w, h = fig.get_size_inches()
    assert w <= 12 and h <= 9
    assert len(named_lines(fig.axes[0])) == response_module.MAX_CDF_GROUPS + 1  # + others
    fig = response_decomposition(many)
    w, h = fig.get_size_inches()
    assert w <= 12 and h <= 16
    ax = fig.axes[0]
    assert len(ax.get_yticklabels()) == len(ax.containers[0]) == response_module.MAX_BARS
    assert ax.get_title() == "the 40 slowest of 128 guest entries"


# --- the hockey stick -------------------------------------------------------------------


def test_hockey_stick_served_and_response_time_against_the_offered_load(load_sweep):
    assert load_axis(load_sweep) == RATE
    fig = hockey_stick(load_sweep)
    served_ax, lat_ax = fig.axes
    s = load_sweep.summary().sort_values(RATE)
    (line,) = [ln for ln in served_ax.get_lines() if ln.get_label() == "kv"]
    np.testing.assert_allclose(line.get_xdata(), s["group.kv.offered_per_s.mean"])
    np.testing.assert_allclose(line.get_ydata(), s["group.kv.served_per_s.mean"])
    (diag,) = [ln for ln in served_ax.get_lines() if ln.get_label() == "served = offered"]
    np.testing.assert_allclose(diag.get_xdata(), diag.get_ydata())
    assert "requests/s per guest" in served_ax.get_xlabel()
    p99, mean = lat_ax.get_lines()
    np.testing.assert_allclose(p99.get_ydata(), s["group.kv.request_p99_ms.mean"])
    np.testing.assert_allclose(mean.get_ydata(), s["group.kv.request_mean_ms.mean"])
    assert p99.get_linestyle() == "-" and mean.get_linestyle() == "--"
    # two replications: confidence bands (and the offered load's bars)
    assert [c for c in served_ax.collections if isinstance(c, PolyCollection)]
    assert [c for c in lat_ax.collections if isinstance(c, PolyCollection)]
    assert "95% confidence bands" in fig.get_suptitle()
    assert legend_texts(lat_ax.get_legend()) == ["p99", "mean"]


def test_hockey_stick_of_a_count_axis_is_the_guest_entrys_total():
    sw = sweep(parse_scenario(LOAD), factorial([parse_vary("guests.kv.count=1,2")]))
    fig = hockey_stick(sw)
    s = sw.summary().sort_values("guests.kv.count")
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "kv"]
    np.testing.assert_allclose(line.get_xdata(),
                               s["group.kv.offered_per_s.mean"] * s["guests.kv.count"])
    assert "all of the guest entry's guests" in fig.axes[0].get_xlabel()
    assert "confidence" not in fig.get_suptitle()  # one replication: no bands


def test_save_sweep_plots_adds_the_hockey_stick_only_when_requests_were_served(load_sweep,
                                                                              tmp_path):
    names = [p.name for p in save_sweep_plots(load_sweep, tmp_path)]
    assert names[-1] == "sweep-hockey_stick.png"
    assert "sweep-group.kv.request_p99_ms.png" in names
    t = pd.DataFrame({"n": [1, 2], "point": [0, 1], "replication": 0, "seed": 5,
                      "host.busy_fraction": [0.2, 0.4]})
    batch = Sweep(t, ["n"])
    assert [p.name for p in save_sweep_plots(batch, tmp_path / "b")] == [
        "sweep-host.busy_fraction.png"]
    with pytest.raises(ValueError, match="served_per_s"):
        hockey_stick(batch)
    with pytest.raises(ValueError, match="no numeric axis"):
        hockey_stick(Sweep(load_sweep.table.assign(**{RATE: "x"}), [RATE]))

