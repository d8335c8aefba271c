"""``pvsim diff A B``: two runs, compares or sweeps side by side, metric by metric."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.cli import main
from analysis.diff import diff
from analysis.results import Results
from analysis.resultsdir import staged
from analysis.run import simulate
from analysis.stats import welch
from analysis.sweep import factorial, parse_vary, sweep
from model.scenario import parse_scenario, with_overrides

# a web server (random arrivals) and a disk reader share an SSD; runs of a few ms
SCENARIO = """
name: df
seed: 5
duration: 10ms
hardware: nehalem-2.93ghz-ept
host: {pcpus: 2, devices: {ssd0: {kind: ssd}, nic0: {kind: nic}}}
driver_domain: {pinning: [0]}
guests:
  - {name: web, mode: pv, workload: {profile: web_server, params: {arrivals: {kind: poisson,
     rate_per_s: 2000}}}, devices: [{device: ssd0}, {device: nic0}]}
  - {name: db, mode: pv, workload: {profile: disk_io, params: {size: 8192, think_us: 200}},
     devices: [{device: ssd0}]}
"""


@pytest.fixture(scope="module")
def base():
    return parse_scenario(SCENARIO, "df.yaml")


@pytest.fixture(scope="module")
def runs(base, tmp_path_factory) -> tuple[Path, Path]:
    """The scenario with the web guest in pv (A) and in hvm (B), saved."""
    d = tmp_path_factory.mktemp("runs")
    a = simulate(base).save(d / "pv")
    b = simulate(with_overrides(base, ["guests.web.mode=hvm"])).save(d / "hvm")
    return a, b


@pytest.fixture(scope="module")
def sweeps(base, tmp_path_factory) -> tuple[Path, Path]:
    """Two sweeps over the db's mode, 4 replications each, at 1500 and 3000 requests/s."""
    d = tmp_path_factory.mktemp("sweeps")
    out = []
    for rate in (1500, 3000):
        s = with_overrides(base, ["duration=50ms",
                                  f"guests.web.workload.params.arrivals.rate_per_s={rate}"])
        out.append(sweep(s, factorial([parse_vary("guests.db.mode=pv,hvm")]), 4)
                   .save(d / f"rate{rate}"))
    return out[0], out[1]


def at(summary: dict, path: str) -> float | None:
    """The figure at a dotted path of summary.json (None if absent)."""
    node = summary
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def test_two_runs_show_each_changed_figure_read_from_both_summaries(runs):
    a, b = runs
    sa, sb = (json.loads((p / "summary.json").read_text()) for p in runs)
    d = diff(a, b)
    assert d.kind == "run" and len(d.points) == 1
    p = d.points[0]
    assert p.inputs == [("guests.web.mode", "pv", "hvm"),  # what differs in the input:
                        ("guests.web.devices.0.path", "pv", "emulated"),  # and the paths
                        ("guests.web.devices.1.path", "pv", "emulated")]  # it implies
    by_name = {c.name: c for c in p.changes}
    for c in p.changes:
        if ".contention_s." in c.name or c.name.startswith("invariants."):
            continue  # (summed; counted)
        count = ".transitions." in c.name or c.name.startswith("hypervisor.")
        for side, s in ((c.a, sa), (c.b, sb)):
            want = at(s, c.name)
            assert side == (0.0 if want is None and count else want), c.name
        assert c.identical == (c.a == c.b)
    # the mode's own mechanisms: hypercalls in pv, VM exits in hvm (0 where unlisted)
    calls = by_name["guests.web.transitions.hypercalls.iret"]
    assert calls.a > 0 and calls.b == 0 and calls.relative == -1.0
    exits = [c for n, c in by_name.items() if n.startswith("guests.web.transitions.vm_exits.")]
    assert exits and all(c.a == 0 and c.b > 0 and c.relative == math.inf for c in exits)
    hv = by_name["guests.web.cpu_s.hypervisor"]
    assert hv.change == pytest.approx(sb["guests"]["web"]["cpu_s"]["hypervisor"]
                                      - sa["guests"]["web"]["cpu_s"]["hypervisor"])
    assert hv.relative == pytest.approx(hv.change / hv.a)
    # a device's wait is summed over the guests waited behind
    wait = by_name["devices.nic0.contention_s.web"]
    assert wait.a == pytest.approx(sum(sa["devices"]["nic0"]["contention_s"]["web"].values()))
    assert by_name["host.pcpus"].identical and not by_name["host.busy_fraction"].identical
    assert "engine.wall_s" not in by_name  # how long the run took is not a result
    # the largest relative change first; identical ones last
    sizes = [abs(c.relative) for c in p.changed]
    assert sizes == sorted(sizes, reverse=True)
    assert p.changes[len(p.changed):] == [c for c in p.changes if c.identical]


def test_the_command_prints_the_changes_and_writes_every_metric_as_json(runs, tmp_path,
                                                                         capsys):
    a, b = runs
    f = tmp_path / "diff.json"
    assert main(["diff", str(a), str(b), "--json", str(f)]) == 1  # like diff(1): they differ
    out = capsys.readouterr().out
    assert "input: guests.web.mode: 'pv' -> 'hvm'" in out
    assert "iret" in out and "only in" not in out
    assert "single runs: no replications, so no significance test" in out
    doc = json.loads(f.read_text())
    changes = {c["name"]: c for c in doc["points"][0]["changes"]}
    assert doc["kind"] == "run" and changes == {c.name: c.as_dict()
                                                for c in diff(a, b).points[0].changes}
    assert changes["host.pcpus"]["identical"] and changes["host.pcpus"]["change"] == 0
    vm_exit = next(c for n, c in changes.items() if ".vm_exits." in n)
    assert vm_exit["relative"] is None and vm_exit["a"] == 0  # from 0: no finite ratio


def test_a_directory_against_itself_shows_no_change(runs, sweeps, capsys):
    for p in (runs[0], sweeps[0]):
        d = diff(p, p)
        assert d.identical and not any(pt.changed for pt in d.points)
        assert all(c.identical and c.change == 0 for pt in d.points for c in pt.changes)
        assert main(["diff", str(p), str(p)]) == 0
        out = capsys.readouterr().out
        assert "no metric differs" in out and "B - A" not in out
    assert main(["diff", str(runs[0]), str(runs[0]), "--all"]) == 0
    assert "host" in capsys.readouterr().out  # --all shows the identical metrics


def t_tail_by_quadrature(t: float, df: float) -> float:
    """P(|T| > |t|) for Student's t, integrating its density (x = |t| / u, Simpson's rule),
    independent of analysis.stats."""
    u = np.linspace(1e-12, 1.0, 200_001)
    x = abs(t) / u
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    f = c * (1 + x * x / df) ** (-(df + 1) / 2) * abs(t) / (u * u)
    h = u[1] - u[0]
    return 2 * h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())


def test_sweeps_with_replications_say_whether_each_change_is_significant(sweeps):
    """The verdict is Welch's test on the replications stored in sweep.parquet."""
    a, b = sweeps
    ta, tb = (pd.read_parquet(p / "sweep.parquet") for p in sweeps)
    d = diff(a, b)
    assert d.kind == "sweep" and [p.point for p in d.points] == [
        {"guests.db.mode": "pv"}, {"guests.db.mode": "hvm"}]
    verdicts = []
    for p in d.points:
        for c in p.changes:
            x = ta.loc[ta["guests.db.mode"] == p.point["guests.db.mode"], c.name].dropna()
            y = tb.loc[tb["guests.db.mode"] == p.point["guests.db.mode"], c.name].dropna()
            assert (c.n_a, c.n_b) == (4, 4) and c.a == pytest.approx(x.mean())
            vx, vy = x.var(ddof=1) / 4, y.var(ddof=1) / 4
            if c.identical or vx + vy == 0:
                continue
            t = (x.mean() - y.mean()) / math.sqrt(vx + vy)
            df = (vx + vy) ** 2 / (vx ** 2 / 3 + vy ** 2 / 3)
            p_hand = t_tail_by_quadrature(t, df)
            assert welch(x.tolist(), y.tolist())[:2] == pytest.approx((t, df))
            assert c.p_value == pytest.approx(p_hand, rel=1e-6, abs=1e-12), c.name
            assert c.significant == (p_hand < 0.05)
            verdicts.append(c.significant)
    assert True in verdicts and False in verdicts  # this pair of sweeps has both
    offered = next(c for c in d.points[0].changes if c.name == "group.web.offered_per_s")
    assert offered.significant and offered.b > offered.a  # twice the rate, clearly
    # significant changes are listed first
    ranks = [{True: 0, False: 1}[c.significant] for c in d.points[0].changed]
    assert ranks == sorted(ranks)


def test_the_command_on_sweeps_shows_the_test(sweeps, tmp_path, capsys):
    f = tmp_path / "d.json"
    assert main(["diff", str(sweeps[0]), str(sweeps[1]), "--json", str(f)]) == 1
    out = capsys.readouterr().out
    assert "at guests.db.mode=pv" in out and "significant" in out
    assert "Welch's two-sided t-test on the replications, p < 0.05" in out
    doc = json.loads(f.read_text())
    assert doc["points"][0]["point"] == {"guests.db.mode": "pv"}
    assert all(c["p_value"] is not None for p in doc["points"] for c in p["changes"])


def test_sweeps_are_matched_by_their_varied_values(sweeps, base, tmp_path, capsys):
    """A point only one sweep has is named; one replication gives no verdict."""
    one = sweep(base, factorial([parse_vary("guests.db.mode=hvm")])).save(tmp_path / "one")
    d = diff(sweeps[0], one)
    assert [p.point for p in d.points] == [{"guests.db.mode": "hvm"}]
    assert d.only_a == [{"guests.db.mode": "pv"}] and d.only_b == []
    assert all(c.p_value is None and c.significant is None and (c.n_a, c.n_b) == (4, 1)
               for c in d.points[0].changes)
    assert main(["diff", str(sweeps[0]), str(one)]) == 1
    out = capsys.readouterr().out
    assert "only in A: guests.db.mode=pv" in out and "no significance test" in out


def test_another_count_of_a_guest_entry_is_the_same_shape(runs, base, tmp_path):
    """Its replicas show as only in one side, after the metrics both sides have."""
    two = simulate(with_overrides(base, ["guests.db.count=2"])).save(tmp_path / "two")
    p = diff(runs[0], two).points[0]
    assert p.inputs == [("guests.db.count", 1, 2)]
    one_sided = [c for c in p.changed if c.relative is None]
    assert {c.subject for c in one_sided} >= {"guest db", "guest db-0", "guest db-1"}
    new = [c for c in p.changes if c.name.startswith(("guests.db-",
                                                      "devices.ssd0.contention_s.db-"))]
    assert new and all(c.a is None for c in new)  # no count of 0 made up for A
    assert p.changed[-len(one_sided):] == one_sided


def test_compares_are_matched_mode_by_mode(runs, tmp_path):
    a, b = runs
    dirs = []
    for name, modes in (("one", {"pv": a}), ("two", {"pv": a, "hvm": b})):
        with staged(tmp_path / name, kind="compare") as st:
            for m, src in modes.items():
                Results.load(src).write_files(st.path / m)
        dirs.append(st.dest)
    d = diff(*dirs)
    assert d.kind == "compare" and [p.point for p in d.points] == [{"mode": "pv"}]
    assert d.only_b == [{"mode": "hvm"}] and not d.points[0].changed and not d.identical


def error(capsys, *args: str) -> str:
    """Run ``pvsim diff ARGS``: exit status 2 and one line on stderr, returned."""
    assert main(["diff", *map(str, args)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_errors_are_one_line_with_status_2(runs, sweeps, base, tmp_path, capsys):
    a, b = runs
    assert "nowhere: no such directory" in error(capsys, tmp_path / "nowhere", a)
    (tmp_path / "empty").mkdir()
    assert "not a pvsim results directory" in error(capsys, a, tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("mine")
    assert "notes.txt: not a directory" in error(capsys, tmp_path / "notes.txt", a)
    assert f"{a} is a run directory and {sweeps[0]} a sweep directory" in error(
        capsys, a, sweeps[0])
    alone = simulate(parse_scenario(SCENARIO.split("  - {name: db")[0], "alone.yaml")
                     ).save(tmp_path / "alone")
    assert "different shapes: guest entries differ (only in A: db)" in error(capsys, a, alone)
    other = sweep(base, factorial([parse_vary("guests.web.count=1")])).save(tmp_path / "sw")
    assert "A varies guests.db.mode; B varies guests.web.count" in error(capsys, sweeps[0],
                                                                         other)
    assert "confidence must be between 0 and 1" in error(capsys, a, b, "--confidence", "1.5")
    bad = tmp_path / "bad-sweep"
    bad.mkdir()
    (bad / "sweep.parquet").write_text("not parquet")
    assert "not a readable Parquet file" in error(capsys, bad, sweeps[0])
