"""The graphs of runs with many guests: a fixed size, a guest's own queueing apart from
interference, replicas pooled by guest entry, colours that stay readable.

Two short real runs of the same host (10 ms; under a second each): 64 guests in four
guest entries (40 pv web servers, 20 hvm ones, a database, 3 backups), and the same
entries with one guest each. Where exact figures are needed a hand-built contention
matrix replaces the run's.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.plots import contention_heatmap, cpu_breakdown, graphs_for, topology_graph
from analysis.plots.colors import (
    DRIVER_DOMAIN_COLOR,
    GUEST_PALETTE,
    color_distance,
    guest_colors,
    relative_luminance,
    run_colors,
)
from analysis.plots.contention import FIGURE_WIDTH, MAX_TICKS, PANEL_HEIGHT, contention_view
from analysis.plots.groups import entries, entry_colors, entry_of, rows_for
from analysis.plots.latency import latency_stages
from analysis.run import simulate
from model.scenario import parse_scenario

WEB = "workload: {profile: web_server, params: {arrivals: {kind: poisson, rate_per_s: 2000}, "
WEB += "miss_ratio: 0.5}}, devices: [{device: ssd0}, {device: nic0}]"
HOST = """
name: many
seed: 2
duration: 10ms
hardware: nehalem-2.93ghz-ept
host: {pcpus: 8, memory_mb: 65536, devices: {ssd0: {kind: ssd}, nic0: {kind: nic}}}
driver_domain: {vcpus: 2}
guests:
  - {name: web, count: %d, memory_mb: 128, %s}
  - {name: app, count: %d, mode: hvm, memory_mb: 128, %s}
  - {name: db, memory_mb: 128, workload: {profile: oltp_db},
     devices: [{device: ssd0}, {device: nic0}]}
  - {name: backup, count: %d, memory_mb: 128,
     workload: {profile: disk_io, params: {queue_depth: 8}}, devices: [{device: ssd0}]}
"""
DEVICES = ["ssd0", "nic0"]


def run(web: int, app: int, backup: int):
    return simulate(parse_scenario(HOST % (web, WEB, app, WEB, backup)))


@pytest.fixture(scope="module")
def many():
    return run(40, 20, 3)


@pytest.fixture(scope="module")
def few():
    return run(1, 1, 1)


def with_contention(r, device: str, m: pd.DataFrame):
    """``r`` with ``m`` (rows wait behind columns, seconds) as ``device``'s contention."""
    summary = copy.deepcopy(r.summary)
    summary["devices"][device]["contention_s"] = {
        w: {h: float(m.loc[w, h]) for h in m.columns} for w in m.index}
    return dataclasses.replace(r, summary=summary)


def members(r, guests) -> dict[str, list[str]]:
    return entries(r, guests)


# --- the contention heatmap ------------------------------------------------------------


def test_the_heatmap_is_as_large_for_4_guests_as_for_64(few, many):
    assert len(few.guest_names) == 4 and len(many.guest_names) == 64
    small, large = contention_heatmap(few), contention_heatmap(many)
    want = (FIGURE_WIDTH, PANEL_HEIGHT * len(DEVICES) + 0.8)
    assert tuple(small.get_size_inches()) == tuple(large.get_size_inches()) == want
    for fig, r in ((small, few), (large, many)):
        for ax, dev in zip([a for a in fig.axes if a.images], DEVICES, strict=True):
            v = contention_view(r, dev)
            n = len(v.interference)
            assert len(ax.get_yticklabels()) <= MAX_TICKS
            if r is few:  # every cell but the diagonal carries its number
                assert len(ax.texts) == n * n - n
            else:  # pooled by guest entry: 4 rows, or fewer where an entry used no device
                assert v.grouped and n <= 4 < v.guests
                assert [t.get_text() for t in ax.get_yticklabels()] == list(v.labels.values())
                assert "web (" in v.labels["web"] and " guests)" in v.labels["web"]


def test_a_guest_behind_its_own_requests_is_drawn_apart(few):
    for dev in DEVICES:
        m = few.contention(dev)
        v = contention_view(few, dev)
        assert not v.grouped
        np.testing.assert_array_equal(v.own.to_numpy(), np.diag(m.to_numpy()))
        inter = v.interference.to_numpy()
        assert np.isnan(np.diag(inter)).all()  # not interference: left out
        off = ~np.eye(len(m), dtype=bool)
        np.testing.assert_array_equal(inter[off], m.to_numpy()[off])


def test_top_pairs_are_the_largest_waits_between_distinct_guests(few):
    guests = few.contention("nic0").index.tolist()  # web, app, db (backup has no NIC)
    web, app, db = guests
    m = pd.DataFrame(0.0, index=guests, columns=guests)
    m.loc[web, web] = 9.0  # the largest, but a guest behind itself: not a pair
    m.loc[app, web], m.loc[web, app], m.loc[db, web], m.loc[app, db] = 0.3, 0.5, 0.1, 0.2
    r = with_contention(few, "nic0", m)
    v = contention_view(r, "nic0", top=3)
    assert v.pairs.to_dict("list") == {"waiting": [web, app, app],
                                       "holding": [app, web, db],
                                       "seconds": [0.5, 0.3, 0.2]}
    assert v.interfering_pairs == 4
    assert v.own[web] == 9.0 and np.isnan(v.interference.loc[web, web])
    fig = contention_heatmap(r)
    pairs = [a for a in fig.axes if "guest pairs" in a.get_title()][-1]  # nic0's
    assert [t.get_text() for t in pairs.get_yticklabels()] == [
        f"{web} behind {app}", f"{app} behind {web}", f"{app} behind {db}", f"{db} behind {web}"]
    assert [b.get_width() for b in pairs.patches] == pytest.approx([0.5, 0.3, 0.2, 0.1])
    assert pairs.get_xlabel() == "wait (s)"  # one unit per device: web's 9 s behind itself


def test_pooling_by_guest_entry_keeps_every_second(many):
    rng = np.random.default_rng(7)
    guests = many.contention("nic0").index.tolist()
    m = pd.DataFrame(rng.uniform(0, 1e-3, (len(guests), len(guests))), index=guests,
                     columns=guests)
    v = contention_view(with_contention(many, "nic0", m), "nic0")
    groups = members(many, guests)
    assert list(v.interference.index) == list(groups) and v.grouped
    a = m.to_numpy()
    assert np.nansum(v.interference.to_numpy()) + v.own.sum() == pytest.approx(a.sum())
    for w, h in itertools.product(groups, groups):
        block = m.loc[groups[w], groups[h]].to_numpy()
        if w == h:  # an entry's replicas behind one another, each behind itself apart
            want = block.sum() - np.trace(block) if len(groups[w]) > 1 else np.nan
            assert v.own[w] == pytest.approx(np.trace(block))
        else:
            want = block.sum()
        assert v.interference.loc[w, h] == pytest.approx(want, nan_ok=True)


def test_replicas_of_a_single_entry_keep_one_row_each(many):
    one = many.guests.assign(group=np.where(many.guests["driver_domain"], "dom0", "web"))
    r = dataclasses.replace(many, guests=one)
    v = contention_view(r, "nic0")
    m = r.contention("nic0")
    assert not v.grouped and list(v.interference.index) == list(m.index) and len(m) > 40
    (ax,) = [a for a in contention_heatmap(r).axes if a.images][1:]
    assert not ax.texts  # no number in 60-odd x 60-odd cells
    assert len(ax.get_yticklabels()) <= MAX_TICKS


# --- the other graphs ------------------------------------------------------------------


def test_cpu_breakdown_draws_a_guest_entry_as_the_mean_of_its_replicas(many):
    fig = cpu_breakdown(many)
    ax, share = fig.axes[:2]
    bd = many.cpu_breakdown()
    groups = members(many, bd.index)
    assert [t.get_text() for t in share.get_xticklabels()] == [
        "web (40 guests)", "app (20 guests)", "db", "backup (3 guests)"]
    bars = [c for c in ax.containers if c.__class__.__name__ == "BarContainer"]
    top = bars[-1]  # the last category stacked: its tops are the bar totals
    means = [1e3 * bd.loc[g].sum(axis=1).mean() for g in groups.values()]
    np.testing.assert_allclose([b.get_y() + b.get_height() for b in top], means)
    (whiskers,) = [c for c in ax.containers if c.__class__.__name__ == "ErrorbarContainer"]
    ends = whiskers.lines[2][0].get_segments()  # one per pooled entry: web, app, backup
    lo_hi = [(1e3 * bd.loc[g].sum(axis=1).min(), 1e3 * bd.loc[g].sum(axis=1).max())
             for g in groups.values() if len(g) > 1]
    np.testing.assert_allclose([(s[0][1], s[1][1]) for s in ends], lo_hi)
    assert fig.get_size_inches()[0] < 10  # not one bar per guest (86 in at 64 guests)


def test_topology_draws_a_guest_entry_as_one_node(many):
    g = topology_graph(many)
    domains = [n for n, d in g.nodes(data=True) if d["layer"] == "domain"]
    assert domains == ["web", "app", "db", "backup", "dom0"]
    assert len(g.nodes["web"]["members"]) == 40 and g.nodes["web"]["label"].startswith(
        "web (40 guests)\n")
    cpu = many.cpu[(many.cpu["guest"].isin(g.nodes["web"]["members"]))
                   & (many.cpu["category"] != "idle")]
    ran = sum(d["seconds"] for u, _, d in g.edges(data=True) if u == "web/vcpus")
    assert ran == pytest.approx(cpu["seconds"].sum())
    moved = many.requests.groupby("guest")["size"].sum()
    io_bytes = sum(d["bytes"] for u, _, d in g.edges(data=True)
                   if u == "web" and d["kind"] == "io")
    assert io_bytes == pytest.approx(moved.reindex(g.nodes["web"]["members"]).sum())
    capped = topology_graph(many, max_guests=2)  # web, then the other 24 in one node
    assert [n for n, d in capped.nodes(data=True) if d["layer"] == "domain"] == [
        "web", "+24 more guests", "dom0"]
    total = {k: sum(d.get("seconds", 0) + d.get("bytes", 0) for *_, d in x.edges(data=True))
             for k, x in (("all", g), ("capped", capped))}
    assert total["capped"] == pytest.approx(total["all"])  # nothing lost, only pooled


def test_every_graph_of_64_guests_is_of_bounded_size_and_lays_out(many):
    drawn = graphs_for(many)
    assert {"cpu_breakdown", "topology", "contention_heatmap", "latency_stages"} <= set(drawn)
    for name, draw in drawn.items():
        fig = draw(many)
        w, h = fig.get_size_inches()
        assert w <= 18 and h <= 12, name
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "constrained_layout not applied" among them
            fig.savefig(io.BytesIO(), format="png", dpi=30)


# --- colours ---------------------------------------------------------------------------


def test_the_guest_palette_is_saturated_and_distinguishable():
    assert len(set(GUEST_PALETTE)) == 18
    for c in GUEST_PALETTE:
        contrast = 1.05 / (relative_luminance(c) + 0.05)  # against white (WCAG)
        assert contrast >= 2.0, c  # tab20's pale half: 1.3 to 1.7
        assert color_distance(c, DRIVER_DOMAIN_COLOR) > 25, c
    closest = min(color_distance(a, b) for a, b in itertools.combinations(GUEST_PALETTE, 2))
    assert closest > 25  # 2.3 is just noticeable
    assert relative_luminance("#aec7e8") > 0.48  # tab20's pale blue would not pass


def test_colours_follow_names_with_numbers_by_value():
    names = [f"web-{i}" for i in range(18)]
    c = guest_colors(reversed(names))
    assert [c[n] for n in names] == list(GUEST_PALETTE)  # web-2 before web-10
    assert guest_colors(names[:4]) == {n: GUEST_PALETTE[i] for i, n in enumerate(names[:4])}


def test_a_guest_entry_has_one_colour_in_every_graph(many):
    want = entry_colors(many)
    assert len(set(want.values())) == len(want)  # four entries, four colours
    rows = rows_for(many)
    assert {row.key: row.color for row in rows} == want
    cpu = cpu_breakdown(many).axes[1].get_xticklabels()
    stages = latency_stages(many).axes[1].get_yticklabels()  # nic0
    heat = [a for a in contention_heatmap(many).axes if a.images][1].get_yticklabels()
    of = entry_of(many)

    def entry(label: str) -> str:  # "web (39 guests)": the replicas a graph has data for
        name = label.split(" (")[0]
        return of.get(name, name)

    for labels in (cpu, stages, heat):
        assert labels and all(t.get_color() == want[entry(t.get_text())] for t in labels)
    assert run_colors(many)["web-0"] == want["web"]  # its first replica's
