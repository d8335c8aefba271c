"""The graphs of `analysis.plots`, drawn from small real runs: what each one shows.

One run (two guests sharing an SSD and a NIC behind dom0, traced) serves most tests;
the mode comparisons add the same guests natively and under PV; the response-time graphs
have a run of key-value stores with a warm-up (two replicas and one emulated guest), and
the hockey stick a tiny load sweep of one of them.
"""

from __future__ import annotations

import dataclasses

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.image import AxesImage

from analysis.compare import compare
from analysis.plots import (
    contention_heatmap,
    cpu_breakdown,
    cpu_breakdown_by_mode,
    device_timeline,
    graphs_for,
    guest_colors,
    latency_cdf,
    latency_stages,
    relative_performance,
    save_all,
    schedule_timeline,
    topology,
    topology_graph,
)
from analysis.plots.colors import DRIVER_DOMAIN_COLOR
from analysis.plots.latency import use_log_scale
from analysis.results import STAGE_COLUMNS
from analysis.run import simulate
from model.scenario import parse_scenario

from harness import legend_texts

WEB = ("workload: {profile: web_server, params: {requests: 40, "
       "arrivals: {kind: poisson, rate_per_s: 1000}}}")
TINY = f"""
name: tiny
seed: 3
duration: 60ms
hardware: nehalem-2.93ghz-ept
host:
  pcpus: 2
  devices:
    ssd0: {{kind: ssd}}
    nic0: {{kind: nic}}
driver_domain: {{vcpus: 1, pinning: [0]}}
guests:
  - {{name: alpha, mode: pv, {WEB}, devices: [{{device: ssd0}}, {{device: nic0}}]}}
  - {{name: beta, os: unmodified, mode: hvm, {WEB},
      devices: [{{device: ssd0}}, {{device: nic0, path: vhost}}]}}
record: {{trace: true, interval: 5ms}}
"""
# two modified guests, for `pvsim compare` in native and pv
DEVS = "devices: [{device: ssd0}, {device: nic0}]"
SAME_MODE = f"""
name: tiny
seed: 3
duration: 30ms
hardware: nehalem-2.93ghz-ept
host: {{pcpus: 2, devices: {{ssd0: {{kind: ssd}}, nic0: {{kind: nic}}}}}}
guests:
  - {{name: alpha, {WEB}, {DEVS}}}
  - {{name: beta, {WEB}, {DEVS}}}
"""
GUESTS = ["alpha", "beta"]
DEVICES = ["ssd0", "nic0"]


@pytest.fixture(scope="module")
def r():
    return simulate(parse_scenario(TINY))


@pytest.fixture(scope="module")
def comparison():
    return compare(parse_scenario(SAME_MODE), ["native", "pv"])


@pytest.fixture(scope="module")
def by_mode(comparison):
    return comparison.runs


# --- colours ---------------------------------------------------------------------------


def test_guest_colors_are_stable_sorted_and_dom0_is_grey():
    a = guest_colors(["web-1", "dom0", "web-0"])
    b = guest_colors(["web-0", "web-1"])
    assert a["web-0"] == b["web-0"] and a["web-1"] == b["web-1"]
    assert a["web-0"] == "#1f77b4" and a["dom0"] == DRIVER_DOMAIN_COLOR
    many = guest_colors([f"g{i:02d}" for i in range(15)])
    assert len(set(many.values())) == 15  # GUEST_PALETTE past nine guests, no repeats
    assert DRIVER_DOMAIN_COLOR not in many.values()


def test_a_guest_has_the_same_colour_in_every_graph(r):
    want = guest_colors([*GUESTS, "dom0"])
    cdf = latency_cdf(r).axes[0]
    assert {ln.get_label().split()[0]: matplotlib.colors.to_hex(ln.get_color())
            for ln in cdf.get_lines()} == {g: want[g] for g in GUESTS}
    sched = schedule_timeline(r).axes[0]
    for c in sched.collections:
        guest = c.get_label().split("/")[0]
        assert matplotlib.colors.to_hex(c.get_facecolor()[0]) == want[guest]
    util = device_timeline(r).axes[0]
    for c in util.collections:
        assert matplotlib.colors.to_hex(c.get_facecolor()[0]) == want[c.get_label()]


# --- latency ---------------------------------------------------------------------------


def test_latency_cdf_one_panel_per_device_one_line_per_guest(r):
    fig = latency_cdf(r)
    assert len(fig.axes) == 2
    req = r.requests
    for ax, dev in zip(fig.axes, DEVICES, strict=True):
        mine = req[req["device"] == dev]
        users = [g for g in GUESTS if (mine["guest"] == g).any()]
        assert ax.get_title().startswith(f"{dev} (")
        assert f"{len(mine)} requests" in ax.get_title()
        assert "latency (ms" in ax.get_xlabel() and "fraction" in ax.get_ylabel()
        lines = ax.get_lines()
        assert len(lines) == len(users) == 2
        for line, g in zip(lines, users, strict=True):
            lat = np.sort(mine.loc[mine["guest"] == g, "latency_ms"].to_numpy())
            np.testing.assert_allclose(line.get_xdata()[1:], lat)
            np.testing.assert_allclose(line.get_ydata()[-1], 1.0)
        # the guests' legend, below the panel, names each guest and its percentiles
        texts = legend_texts(ax.get_legend())
        assert [t.split()[0] for t in texts] == users
        assert all("p50" in t and "p95" in t and "p99" in t for t in texts)
        # percentile markers: p50, p95 and p99 per guest, on the curve
        marks = [c for c in ax.collections if isinstance(c, PathCollection)]
        assert len(marks) == 3 * len(users)
        got = sorted(float(c.get_offsets()[0][0]) for c in marks)
        want = sorted(np.percentile(mine.loc[mine["guest"] == g, "latency_ms"], q)
                      for g in users for q in (50, 95, 99))
        np.testing.assert_allclose(got, want)


def test_latency_axis_turns_logarithmic_past_one_and_a_half_decades(r):
    assert not use_log_scale(np.array([0.1, 0.5, 3.0]))
    assert use_log_scale(np.array([0.01, 0.02, 5.0]))
    assert latency_cdf(r).axes[0].get_xscale() == "linear"
    slow = r.requests.copy()
    beta = slow["guest"] == "beta"
    slow.loc[beta, "latency_ms"] *= 300  # beta now three decades slower than alpha
    fig = latency_cdf(dataclasses.replace(r, requests=slow))
    assert all(ax.get_xscale() == "log" for ax in fig.axes)
    assert "log scale" in fig.axes[0].get_xlabel()
    # plain numbers: mathtext is off in the graphs, so the default labels would be raw TeX
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks and not any("$" in t for t in ticks)
    assert {float(t) for t in ticks} <= {m * 10.0**k for k in range(-6, 7) for m in (1, 2, 5)}


def test_latency_stages_bars_are_the_mean_of_each_stage_in_pipeline_order(r):
    fig = latency_stages(r)
    assert [ax.get_title() for ax in fig.axes] == ["ssd0 (disk)", "nic0 (nic)"]
    req = r.requests
    # a request's stages add up to its latency
    np.testing.assert_allclose(req[list(STAGE_COLUMNS)].sum(axis=1), req["latency_ms"])
    drawn = [c for c in STAGE_COLUMNS if (req[c] > 0).any()]
    legend = legend_texts(fig.legends[0])
    assert legend == [c.removesuffix("_ms").replace("_", " ") for c in drawn]
    for ax, dev in zip(fig.axes, DEVICES, strict=True):
        assert ax.get_xlabel() == "mean time per request (ms)"
        assert [t.get_text() for t in ax.get_yticklabels()] == GUESTS
        assert [c.get_label() for c in ax.containers] == legend
        mine = req[req["device"] == dev]
        means = mine.groupby("guest")[drawn].mean().reindex(GUESTS)
        widths = np.array([[b.get_width() for b in c] for c in ax.containers]).T
        np.testing.assert_allclose(widths, means.to_numpy())
        ends = [b.get_x() + b.get_width() for b in ax.containers[-1]]
        np.testing.assert_allclose(
            ends, mine.groupby("guest")["latency_ms"].mean().reindex(GUESTS))


# --- devices ---------------------------------------------------------------------------


def test_device_timeline_has_utilization_and_queue_rows_per_device(r):
    fig = device_timeline(r)
    assert len(fig.axes) == 2 * len(DEVICES)
    ts = r.timeseries
    assert legend_texts(fig.legends[0]) == GUESTS
    for k, dev in enumerate(DEVICES):
        util, queue = fig.axes[2 * k], fig.axes[2 * k + 1]
        head = util.get_title(loc="left")
        assert head.startswith(f"{dev} (") and "utilization by guest" in head
        assert "channels busy" in util.get_ylabel()
        polys = [c for c in util.collections if isinstance(c, PolyCollection)]
        assert [p.get_label() for p in polys] == GUESTS
        assert queue.get_ylabel().startswith("queue length")
        assert queue.get_title(loc="left").startswith(f"{dev}: requests waiting")
        q = ts[(ts["metric"] == "queue_length") & (ts["device"] == dev)].sort_values("time_s")
        (line,) = queue.get_lines()
        np.testing.assert_allclose(line.get_ydata()[:-1], q["value"])
        np.testing.assert_allclose(line.get_xdata()[:-1], q["time_s"] * 1e3)  # ms
    assert fig.axes[-1].get_xlabel() == "simulated time (ms)"


def test_contention_heatmap_shows_the_contention_matrix(r):
    """Interference in the heatmap (the diagonal hatched and masked), each guest's wait
    behind its own requests in the bar beside it."""
    fig = contention_heatmap(r)
    heat = [ax for ax in fig.axes if ax.images]
    own = [ax for ax in fig.axes if ax.get_title().startswith("behind its own")]
    assert len(heat) == len(own) == len(DEVICES)
    for ax, mine, dev in zip(heat, own, DEVICES, strict=True):
        m = r.contention(dev)
        (img,) = [i for i in ax.images if isinstance(i, AxesImage)]
        drawn = img.get_array()
        assert drawn.mask.tolist() == np.eye(len(m), dtype=bool).tolist()  # own: apart
        off = ~np.eye(len(m), dtype=bool)
        scale = {"(s)": 1, "(ms)": 1e3, "(µs)": 1e6}[mine.get_xlabel().split()[-1]]
        np.testing.assert_allclose(drawn.data[off], scale * m.to_numpy()[off])
        np.testing.assert_allclose([b.get_width() for b in mine.patches],
                                   scale * np.diag(m.to_numpy()))
        assert [t.get_text() for t in ax.get_yticklabels()] == list(m.index) == GUESTS
        assert [t.get_text() for t in ax.get_xticklabels()] == list(m.columns)
        assert len(ax.texts) == m.size - len(m)  # every cell annotated but the diagonal
        assert ax.get_ylabel().startswith("waiting") and ax.get_xlabel().startswith("holding")
    nic = heat[1]
    assert r.contention("nic0").to_numpy().sum() > 0  # the NIC is shared enough to queue
    assert "in all" in nic.get_title(loc="left")
    assert any(a.get_ylabel().startswith("wait behind others (") for a in fig.axes)  # bar


# --- CPU -------------------------------------------------------------------------------


def test_cpu_breakdown_bar_heights_are_the_breakdown(r):
    fig = cpu_breakdown(r)
    ax, share = fig.axes[:2]
    bd = r.cpu_breakdown()
    assert ax.get_ylabel() == "CPU time (ms)" and "share" in share.get_ylabel()
    assert [t.get_text() for t in share.get_xticklabels()] == GUESTS
    drawn = [c for c in bd.columns if (bd[c] > 0).any()]
    assert [c.get_label() for c in ax.containers] == [c.replace("_", " ") for c in drawn]
    assert legend_texts(ax.get_legend()) == [c.replace("_", " ") for c in drawn][::-1]
    assert "driver domain" in legend_texts(ax.get_legend())
    for cont, cat in zip(ax.containers, drawn, strict=True):
        np.testing.assert_allclose([b.get_height() for b in cont], 1e3 * bd[cat].to_numpy())
    for cont, cat in zip(share.containers, drawn, strict=True):
        np.testing.assert_allclose([b.get_height() for b in cont],
                                   100 * bd[cat] / bd.sum(axis=1))
    for top, total in ((ax.containers[-1], 1e3 * bd.sum(axis=1)),
                       (share.containers[-1], [100.0] * len(bd))):
        np.testing.assert_allclose([b.get_y() + b.get_height() for b in top], total)


def test_cpu_breakdown_by_mode_one_group_per_mode(by_mode):
    fig = cpu_breakdown_by_mode(by_mode)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == GUESTS * 2
    assert {"native", "pv"} <= {t.get_text() for t in ax.texts}
    frames = [r.cpu_breakdown() for r in by_mode.values()]
    drawn = [c for c in frames[0].columns if any((f[c] > 0).any() for f in frames)]
    assert len(ax.containers) == len(drawn) * len(by_mode)
    heights = {}
    for cont in ax.containers:
        for b in cont:
            heights[round(b.get_x() + b.get_width() / 2, 6)] = (
                heights.get(round(b.get_x() + b.get_width() / 2, 6), 0) + b.get_height())
    want = np.concatenate([1e3 * f.sum(axis=1).to_numpy() for f in frames])
    np.testing.assert_allclose([heights[k] for k in sorted(heights)], want)
    native = frames[0]
    assert native["hypervisor"].sum() == 0 and frames[1]["hypervisor"].sum() > 0


# --- relative performance ----------------------------------------------------------------


def test_relative_performance_grouped_bars_and_a_line_at_one(comparison):
    t = comparison.table  # what `pvsim compare` computes: higher is better, native = 1
    fig = relative_performance(t)
    metrics = list(dict.fromkeys(t["metric"]))
    assert [ax.get_title() for ax in fig.axes] == metrics
    for ax, metric in zip(fig.axes, metrics, strict=True):
        assert "higher is better" in ax.get_ylabel()
        assert [c.get_label() for c in ax.containers] == ["pv"]  # native is the line
        want = t[(t["metric"] == metric) & (t["mode"] == "pv")]["relative"].to_numpy()
        np.testing.assert_allclose([b.get_height() for b in ax.containers[0]], want)
        assert [x.get_text() for x in ax.get_xticklabels()] == GUESTS
        (one,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert list(one.get_ydata()) == [1.0, 1.0]
    assert legend_texts(fig.legends[0]) == ["native = 1.0", "pv"]
    assert "native / value" in fig.get_supxlabel()  # the convention, stated


def test_relative_performance_of_benchmark_operations():
    bench = pd.DataFrame({"subject": ["fork", "fork", "exec", "exec"], "metric": "latency",
                          "mode": ["hvm", "pv", "hvm", "pv"], "relative": [0.5, 0.8, 0.6, 0.9]})
    (ax,) = relative_performance(bench, title="bench").axes
    assert [c.get_label() for c in ax.containers] == ["pv", "hvm"]  # modes in their order
    assert [float(b.get_height()) for b in ax.containers[1]] == [0.5, 0.6]
    with pytest.raises(ValueError, match="relative"):
        relative_performance(bench.drop(columns="relative"))


# --- topology --------------------------------------------------------------------------


def test_topology_graph_weights_edges_by_traffic(r):
    g = topology_graph(r)
    layers = {}
    for n, d in g.nodes(data=True):
        layers.setdefault(d["layer"], []).append(n)
    assert layers["pcpu"] == ["pCPU 0", "pCPU 1"]
    assert sorted(layers["domain"]) == ["alpha", "beta", "dom0"]
    assert sorted(layers["vcpu"]) == ["alpha/v0", "beta/v0", "dom0/v0"]
    assert layers["device"] == DEVICES
    # alpha: pv split drivers; beta: an emulated disk and vhost, all in dom0
    assert sorted(layers["backend"]) == ["device model\nssd0", "pv backend\nnic0",
                                         "pv backend\nssd0", "vhost\nnic0"]
    cpu = r.cpu[(r.cpu["guest"] != "(hypervisor)") & (r.cpu["category"] != "idle")]
    sec = cpu.groupby(["guest", "vcpu", "pcpu"])["seconds"].sum()
    runs = {(u, v): d["seconds"] for u, v, d in g.edges(data=True) if d["kind"] == "runs_on"}
    assert runs == pytest.approx({(f"{a}/v{b}", f"pCPU {p}"): s
                                  for (a, b, p), s in sec.items() if s > 0})
    moved = r.requests.groupby(["guest", "device"])["size"].sum()
    assert g.edges["alpha", "pv backend\nnic0"]["bytes"] == moved["alpha", "nic0"]
    assert g.edges["beta", "vhost\nnic0"]["bytes"] == moved["beta", "nic0"]
    assert g.edges["pv backend\nssd0", "ssd0"]["bytes"] == moved["alpha", "ssd0"]
    # deterministic positions: one row per layer
    assert {d["pos"][1] for n, d in g.nodes(data=True) if d["layer"] == "vcpu"} == {3.0}


def test_topology_direct_paths_go_straight_to_the_device(by_mode):
    g = topology_graph(by_mode["native"])
    assert not [n for n, d in g.nodes(data=True) if d["layer"] == "backend"]
    assert g.has_edge("alpha", "ssd0") and g.edges["alpha", "ssd0"]["path"] == "direct"


def test_topology_figure_draws_every_node_and_traffic_widths(r):
    fig = topology(r)
    (ax,) = fig.axes
    g = topology_graph(r)
    texts = {t.get_text() for t in ax.texts}
    assert {d["label"] for _, d in g.nodes(data=True)} <= texts
    assert any(t.startswith("pCPU 0\n") and "busy" in t for t in texts)
    owns, runs_on, io = [c for c in ax.collections if isinstance(c, LineCollection)]
    sec = [d["seconds"] for _, _, d in g.edges(data=True) if d["kind"] == "runs_on"]
    widths = runs_on.get_linewidths()
    assert np.argmax(widths) == np.argmax(sec) and len(widths) == len(sec)
    assert "line width proportional to" in fig.legends[0].get_title().get_text()
    assert "host topology" in fig.get_suptitle()


# --- schedule --------------------------------------------------------------------------


def test_schedule_timeline_shows_the_first_50_ms_by_pcpu(r):
    fig = schedule_timeline(r)
    (ax,) = fig.axes
    assert "first 50.0 ms of 60.0 ms" in fig.get_suptitle()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["pCPU 0", "pCPU 1"]
    assert ax.get_xlabel() == "simulated time (ms)" and ax.get_xlim() == (0, 50.0)
    s = r.schedule
    s = s[s["start_s"] < 0.05]
    want = (np.minimum(s["end_s"], 0.05) - s["start_s"]).groupby(
        [s["guest"], s["vcpu"], s["pcpu"]]).sum()
    got = {}
    for c in ax.collections:
        key = (c.get_label(), round(float(np.mean([p.vertices[:, 1].mean()
                                                   for p in c.get_paths()]))))
        got[key] = sum(np.ptp(p.vertices[:, 0]) for p in c.get_paths()) / 1e3
    assert got == pytest.approx({(f"{g}/v{v}", p): w for (g, v, p), w in want.items()})
    labels = legend_texts(ax.get_legend())
    assert [lab.split()[0] for lab in labels] == ["alpha/v0", "beta/v0", "dom0/v0"]


def test_schedule_timeline_window_and_untraced_runs(r):
    fig = schedule_timeline(r, window=(0.01, 0.02))
    assert "10.0 to 20.0 ms of 60.0 ms" in fig.get_suptitle()
    assert fig.axes[0].get_xlim() == (0, 10.0)
    untraced = dataclasses.replace(r, schedule=r.schedule.iloc[:0])
    fig = schedule_timeline(untraced)
    assert "record.trace: true" in fig.axes[0].texts[0].get_text()
    with pytest.raises(ValueError, match="not after"):
        schedule_timeline(r, window=(0.02, 0.01))


# --- saving ----------------------------------------------------------------------------


def test_save_all_writes_every_applicable_graph_atomically(r, tmp_path):
    paths = save_all(r, tmp_path, dpi=50)
    assert [p.name for p in paths] == [
        "cpu_breakdown.png", "topology.png", "device_timeline.png", "contention_heatmap.png",
        "latency_cdf.png", "latency_stages.png", "response_cdf.png",
        "response_decomposition.png", "schedule_timeline.png"]
    for p in paths:
        assert p.parent == tmp_path / "plots"
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(q.name for q in (tmp_path / "plots").iterdir()) == sorted(
        p.name for p in paths)  # no temporary files left behind


def test_save_all_skips_what_does_not_apply(tmp_path):
    bare = simulate(parse_scenario("name: bare\nduration: 5ms\n"
                                   "guests: [{name: a, workload: {profile: spin}}]"))
    assert list(graphs_for(bare)) == ["cpu_breakdown", "topology"]
    assert [p.name for p in save_all(bare, tmp_path)] == ["cpu_breakdown.png", "topology.png"]
    assert "no devices" in latency_cdf(bare).axes[0].texts[0].get_text()
    assert "no devices" in device_timeline(bare).axes[0].texts[0].get_text()


def test_text_with_dollars_is_drawn_as_text_not_tex(tmp_path):
    """Names are restricted, but no user string reaches matplotlib as mathtext: a broken
    TeX fragment in a title draws as it is."""
    from analysis.plots import save_figure
    from analysis.plots._common import message_figure

    fig = message_figure(r"$\frac{a$", "an unbalanced $ and ^ and _")
    save_figure(fig, tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 0
