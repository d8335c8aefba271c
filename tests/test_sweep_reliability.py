"""Sweeps and plans on bad input and in bad conditions (issue 10: H6, H7, M7, M9).

Each reproducer of /work/shared/reliability (copied to tests/data/reliability/ under its
own name) is a test here: a clean refusal (status 2, one ``pvsim: error:`` line naming
the file) or a sane result.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from analysis import cache as run_cache
from analysis import design as design_module
from analysis.cli import main
from analysis.plan import parse_slo, plan
from analysis.plots import plan_figure
from analysis.sweep import factorial, parse_vary, read_design, run_key, sweep
from model.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data" / "reliability"
SPIN = str(DATA / "cli_spin.yaml")


def refused(capsys, argv: list[str], *expected: str) -> str:
    """Run the CLI; it must exit 2 with exactly one ``pvsim: error:`` line containing
    every ``expected`` text, and no traceback."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pvsim: error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    for text in expected:
        assert text in lines[0]
    return lines[0]


# --- M9: design files and --vary ------------------------------------------------------

@pytest.mark.parametrize(("design", "expected"), [
    ("sweep_design_csv_latin1.csv", [":2:1: not UTF-8 text: byte 0xe9 at offset 15",
                                     "a design is a UTF-8 text file"]),
    ("sweep_design_csv_duplicate_header.csv",
     [":1: column 2 of the header repeats 'guests.a.count' (column 1)"]),
    ("sweep_design_yaml_deep.yaml", []),  # the loader's own depth message, or ours
])
def test_a_bad_design_file_is_refused_naming_it(design, expected, tmp_path, capsys):
    path = str(DATA / design)
    refused(capsys, ["sweep", SPIN, "--design", path, "-o", str(tmp_path / "o")], path,
            *expected)
    assert not (tmp_path / "o").exists()


def test_a_binary_file_or_a_device_is_refused_as_a_design(tmp_path, capsys):
    if Path("/bin/ls").is_file():
        refused(capsys, ["sweep", SPIN, "--design", "/bin/ls", "-o", str(tmp_path / "o")],
                "/bin/ls:1:", "not a text file: a NUL byte at offset")
    for special in ("/dev/zero", str(tmp_path)):
        refused(capsys, ["sweep", SPIN, "--design", special, "-o", str(tmp_path / "o")],
                f"{special}: not a regular file; a design is")


def test_a_design_over_the_size_limit_is_refused_before_reading(tmp_path, capsys,
                                                                  monkeypatch):
    f = tmp_path / "big.csv"
    f.write_text("guests.a.count\n" + "1\n" * 100)
    monkeypatch.setattr(design_module, "MAX_DESIGN_BYTES", 64)
    refused(capsys, ["sweep", SPIN, "--design", str(f), "-o", str(tmp_path / "o")],
            f"{f}: 215 bytes; a design file has at most 64 bytes")


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("empty.csv", "", "the design is empty"),
    ("blank.csv", "\n\n", "the design is empty"),
    ("header.csv", "guests.a.count\n", "the design has a header but no points"),
    ("short.csv", "guests.a.count,duration\n1,5ms\n2\n",
     ":3: the row has fewer values (1) than the header's 2 paths"),
    ("nameless.csv", "guests.a.count,\n1,2\n", ":1: column 2 of the header has no path"),
    ("quote.csv", 'guests.a.count\n"1\n', "not valid CSV"),
    ("empty.yaml", "# nothing\n", "the design is empty"),
    ("map.yaml", "guests.a.count: 1\n", "a design is a non-empty list of mappings"),
    ("scalars.yaml", "- 1\n- 2\n", ":1:3: design point 1 is 1; each point is a mapping"),
    ("emptypoint.yaml", "- {guests.a.count: 1}\n- {}\n", ":2:3: design point 2 is empty"),
    ("twice.yaml", "- {1: a, '1': b}\n", "design point 1 sets 1 twice"),
    ("mixed.yaml", "- {guests.a.count: 1}\n- {duration: 5ms}\n",
     ":2:3: design point 2 sets duration; every point must set the same paths"),
    ("syntax.yaml", "- {guests.a.count: [1\n", "YAML syntax error"),
])
def test_malformed_designs_are_refused_with_file_and_line(name, text, expected, tmp_path,
                                                          capsys):
    f = tmp_path / name
    f.write_text(text)
    refused(capsys, ["sweep", SPIN, "--design", str(f), "-o", str(tmp_path / "o")],
            str(f), expected)


def test_a_csv_design_with_a_byte_order_mark_and_blank_lines_is_read(tmp_path):
    f = tmp_path / "excel.csv"
    f.write_bytes(b"\xef\xbb\xbfguests.a.count , duration\r\n1, 5ms\r\n\r\n2,5ms\r\n")
    assert read_design(f) == [{"guests.a.count": "1", "duration": "5ms"},
                              {"guests.a.count": "2", "duration": "5ms"}]


def test_the_same_path_in_two_vary_options_is_refused(tmp_path, capsys):
    refused(capsys, ["sweep", SPIN, "--vary", "guests.a.count=1,2", "--vary",
                     "guests.a.count=3,4", "-o", str(tmp_path / "o")],
            "--vary guests.a.count given twice; put all values in one: "
            "--vary guests.a.count=1,2,3,4")
    refused(capsys, ["sweep", SPIN, "--vary", "guests.a.count=1,2,1", "-o",
                     str(tmp_path / "o")], "the value '1' is given twice")
    assert not (tmp_path / "o").exists()


# The command run with its peak memory written at exit: VmHWM is the process's own (a
# child's ru_maxrss also counts the parent it was forked from, here all of pytest).
_MEASURED = """
import atexit, re, runpy, sys
out = sys.argv.pop(1)
def peak():
    kb = re.search(r"VmHWM:\\s*(\\d+)", open("/proc/self/status").read()).group(1)
    open(out, "w").write(kb)
atexit.register(peak)
sys.argv[0] = "pvsim"
runpy.run_module("analysis.cli", run_name="__main__")
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_a_refusal_takes_under_5_s_and_300_mb(tmp_path, capsys):
    """The refusal itself is timed in this process; the peak memory of a whole fresh
    ``pvsim`` process (whose imports take about 2 s of CPU) is measured there."""
    for design in (str(DATA / "sweep_design_yaml_deep.yaml"), "/dev/zero", "/bin/ls",
                   str(DATA / "sweep_design_csv_latin1.csv")):
        if not Path(design).exists():
            continue
        args = ["sweep", SPIN, "--design", design, "-o", str(tmp_path / "o")]
        t = time.perf_counter()
        refused(capsys, args, design)
        assert time.perf_counter() - t < 5  # the deep YAML: ~1 s to reach RecursionError
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _MEASURED, str(tmp_path / "kb"), *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        wall = time.perf_counter() - t
        assert proc.returncode == 2 and proc.stderr.count("pvsim: error:") == 1, proc.stderr
        assert "Traceback" not in proc.stderr and design in proc.stderr
        peak_mb = int((tmp_path / "kb").read_text()) / 1024
        assert peak_mb < 300 and wall < 20, (peak_mb, wall)  # wall: the machine is shared


# --- H6: the sweep cache ---------------------------------------------------------------

def _edit(f: Path, metric: str, value: object) -> None:
    doc = json.loads(f.read_text())
    doc["metrics"][metric] = value
    f.write_text(json.dumps(doc))


DAMAGE = {
    "garbage": lambda f: f.write_text("{not json"),
    "empty": lambda f: f.write_text(""),
    "list": lambda f: f.write_text("[]"),
    "old format": lambda f: f.write_text(json.dumps(json.loads(f.read_text())["metrics"])),
    "edited value": lambda f: _edit(f, "host.busy_fraction", 42),
    "a string value": lambda f: _edit(f, "host.busy_fraction", "0.5"),
    "a huge int": lambda f: f.write_text(f.read_text().replace(
        '"host.busy_fraction": ', '"host.busy_fraction": 1' + "0" * 400 + ", \"x\": ")),
    "wrong digest": lambda f: f.write_text(f.read_text().replace('"digest": "',
                                                                 '"digest": "0')),
    "truncated": lambda f: f.write_text(f.read_text()[:40]),
    "not UTF-8": lambda f: f.write_bytes(b"\xff\xfe{}"),
    "a FIFO": lambda f: (f.unlink(), os.mkfifo(f)),
}


@pytest.fixture(scope="module")
def spin():
    return load_scenario(SPIN, ["duration=3ms"])


@pytest.fixture(scope="module")
def clean(spin, tmp_path_factory):
    d = tmp_path_factory.mktemp("clean")
    sw = sweep(spin, factorial([parse_vary("guests.a.count=1,2")]), 2, cache_dir=d)
    return sw, d


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_cache_entry_is_recomputed_and_counted(kind, spin, clean, tmp_path):
    reference, d = clean
    cache = tmp_path / "cache"
    shutil.copytree(d, cache)
    entries = sorted(cache.glob("*.json"))
    assert len(entries) == 4
    for f in entries[:3]:
        DAMAGE[kind](f)
    points = factorial([parse_vary("guests.a.count=1,2")])
    sw = sweep(spin, points, 2, cache_dir=cache)
    assert (sw.recomputed, sw.ran, sw.cached) == (3, 3, 1)
    assert set(sw.damaged) == {f.name for f in entries[:3]}
    pd.testing.assert_frame_equal(sw.table, reference.table)
    again = sweep(spin, points, 2, cache_dir=cache)  # the entries were rewritten whole
    assert (again.recomputed, again.ran, again.cached) == (0, 0, 4)
    pd.testing.assert_frame_equal(again.table, reference.table)


def test_an_entry_copied_under_another_runs_name_is_damaged(spin, clean, tmp_path):
    reference, d = clean
    cache = tmp_path / "cache"
    shutil.copytree(d, cache)
    a, b = sorted(cache.glob("*.json"))[:2]
    shutil.copyfile(a, b)
    sw = sweep(spin, factorial([parse_vary("guests.a.count=1,2")]), 2, cache_dir=cache)
    assert sw.damaged == {b.name: f"it is the entry of another run ({a.stem!r})"}
    pd.testing.assert_frame_equal(sw.table, reference.table)


def test_pool_workers_rewrite_damaged_entries(spin, clean, tmp_path):
    reference, d = clean
    cache = tmp_path / "cache"
    shutil.copytree(d, cache)
    for f in sorted(cache.glob("*.json"))[:2]:
        f.write_text("[]")
    points = factorial([parse_vary("guests.a.count=1,2")])
    sw = sweep(spin, points, 2, jobs=2, cache_dir=cache)
    assert (sw.recomputed, sw.ran) == (2, 2)
    pd.testing.assert_frame_equal(sw.table, reference.table)
    assert all(run_cache.read_entry(f).metrics for f in cache.glob("*.json"))


def test_an_entry_holds_the_metrics_as_the_run_gave_them(spin, tmp_path):
    sw = sweep(spin, [{"guests.a.count": "2"}], 1, cache_dir=tmp_path)
    seed = int(sw.table["seed"][0])
    key = run_key(load_scenario(SPIN, ["duration=3ms", "guests.a.count=2"]), seed)
    doc = json.loads((tmp_path / f"{key}.json").read_text())
    assert doc["format"] == run_cache.FORMAT and doc["key"] == key
    assert doc["metrics"] == {m: sw.table[m][0] for m in sw.metrics}
    assert len(doc["digest"]) == 64


def test_an_entry_that_cannot_be_rewritten_is_one_error_naming_it(tmp_path, capsys):
    args = ["sweep", SPIN, "--set", "duration=3ms", "--vary", "guests.a.count=1,2", "-o",
            str(tmp_path / "s")]
    assert main(args) == 0
    f = sorted((tmp_path / "s" / "cache").glob("*.json"))[0]
    f.unlink()
    (f / "x").mkdir(parents=True)  # a directory where the entry goes
    capsys.readouterr()
    refused(capsys, args, f"{f}: cannot write this cache entry (Is a directory)")


def test_the_command_reports_damaged_entries(tmp_path, capsys):
    """F-FAULT-2: a garbage entry used to crash the second sweep."""
    scenario = str(DATA / "sweep_cache_scenario.yaml")
    args = ["sweep", scenario, "--vary", "guests.web.count=1,2", "-o", str(tmp_path / "swc")]
    assert main(args) == 0
    first = pd.read_parquet(tmp_path / "swc" / "sweep.parquet")
    capsys.readouterr()
    f = sorted((tmp_path / "swc" / "cache").glob("*.json"))[0]
    f.write_text("{not json")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"1 cache entry was damaged and recomputed (such as {f}: it is not valid JSON" in \
        " ".join(out.split())
    assert "1 runs computed, 1 read from the cache" in out
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "swc" / "sweep.parquet"), first)


# --- H7: a plan that reaches values which are not valid scenarios ----------------------

@pytest.mark.parametrize("slo", ["host.busy_fraction <= 1", "host.busy_fraction < 1e999"])
def test_a_plan_whose_slo_always_holds_stops_at_the_largest_valid_value(slo, tmp_path,
                                                                        capsys):
    """F-CLI-7: the plan graph crashed (KeyError) on the values the host cannot hold."""
    out = tmp_path / "plan"
    assert main(["plan", SPIN, "--set", "duration=2ms", "--vary", "guests.a.count", "--slo",
                 slo, "--replications", "1", "-o", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    # 16 MB guests on a 4096 MB host: 256 fit, 257 do not
    assert ("capacity: guests.a.count = 256 (the largest valid value: 257 is not a valid "
            "scenario)") in printed
    assert (out / "plots" / "plan.png").is_file() and (out / "sweep.parquet").is_file()


def test_a_plan_that_always_holds_stops_at_its_limit(tmp_path, capsys):
    assert main(["plan", SPIN, "--set", "duration=2ms", "--vary", "guests.a.count", "--slo",
                 "host.busy_fraction < 1e999", "--replications", "1", "--limit", "6", "-o",
                 str(tmp_path / "plan")]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "capacity: guests.a.count = 6 (the search limit 6; the SLOs may hold beyond)" \
        in printed


def test_the_plan_graph_marks_values_that_are_not_valid_scenarios(spin, tmp_path):
    p = plan(spin, "guests.a.count", [parse_slo("host.busy_fraction < 1e999")], start=64,
             replications=1, cache_dir=tmp_path)
    assert (p.answer, p.stop) == (256, "invalid")
    invalid = sorted(v for v, x in p.verdicts.items() if not x.valid)
    assert invalid[0] == 257 and all(not p.verdicts[v].holds for v in invalid)
    ax = plan_figure(p).axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert "not a valid scenario" in labels and "capacity guests.a.count = 256" in labels
    ticks = next(ln for ln in ax.lines if ln.get_label() == "not a valid scenario")
    assert sorted(ticks.get_xdata().tolist()) == invalid
    assert sorted(ax.collections[0].get_offsets()[:, 0].tolist()) == [64, 128, 256]
    assert len(ax.collections[1].get_offsets()) == 0  # nothing that ran failed


def test_a_plan_starting_at_a_value_that_is_not_valid_is_refused(tmp_path, capsys):
    refused(capsys, ["plan", SPIN, "--vary", "guests.a.count", "--slo",
                     "host.busy_fraction <= 1", "--start", "300", "-o", str(tmp_path / "p")],
            "host.memory_mb")


# --- M7: pool workers die with the sweep -----------------------------------------------

def _descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            out.update(kids)
            todo.extend(kids)
    return out


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan may wait a while to be reaped)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return fields[fields.rfind(b")") + 2:][:1] not in (b"Z", b"X")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_pool_workers_die_when_the_sweep_is_killed(tmp_path):
    """M7: after SIGKILL of ``pvsim sweep --jobs 2``, its workers kept computing (each
    run here would take half a minute), and idle ones waited for work forever."""
    proc = subprocess.Popen([sys.executable, "-m", "analysis.cli", "sweep", SPIN, "--set",
                             "duration=900s", "--vary", "guests.a.count=1,2", "--jobs", "2",
                             "-o", str(tmp_path / "o")], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: set[int] = set()
    try:
        deadline = time.time() + 30
        workers: set[int] = set()
        while time.time() < deadline and len(workers) < 2:
            assert proc.poll() is None, "the sweep ended before its workers started"
            seen |= _descendants(proc.pid)
            kids = {int(c) for c in Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
                    .read_text().split()}
            workers = {w for k in kids for w in _descendants(k)}  # the fork server's
            time.sleep(0.1)
        assert len(workers) >= 2, "the workers never started"
        time.sleep(1.0)  # let them get into their runs
        seen |= _descendants(proc.pid)
        proc.kill()
        proc.wait()
        deadline = time.time() + 5
        while time.time() < deadline and any(_running(p) for p in seen):
            time.sleep(0.1)
        assert not [p for p in seen if _running(p)], "processes outlived the sweep"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in seen:  # only the processes this test started
            if _running(p):
                os.kill(p, signal.SIGKILL)


def test_each_plan_panel_marks_its_own_slo(spin, tmp_path):
    """Two SLOs: busy_fraction < 1e999 always holds, stalled_vcpus < 0.5 too, but
    busy_fraction <= 0.5 fails once the spinning guests outnumber half the pCPUs. In the
    always-held SLO's panel those points are hollow (held here; the point failed the other
    SLO), never a red cross; in the failing SLO's panel they are crosses."""
    slos = [parse_slo("host.busy_fraction < 1e999"), parse_slo("host.busy_fraction <= 0.5")]
    p = plan(spin, "guests.a.count", slos, start=1, limit=4, replications=1, cache_dir=tmp_path)
    failed = sorted(v for v, x in p.verdicts.items() if x.valid and not x.holds)
    assert failed  # the second SLO failed somewhere
    fig = plan_figure(p)
    first, second = fig.axes[0], fig.axes[1]

    def points(ax, label):
        handles, labels = ax.get_legend_handles_labels()
        h = dict(zip(labels, handles, strict=True)).get(label)
        return [] if h is None else sorted(h.get_offsets()[:, 0].tolist())

    assert points(first, "fails") == []
    assert points(first, "holds; the point fails another\nSLO (or stalled)") == failed
    assert points(second, "fails") == failed
    assert all(float(t).is_integer() for t in first.get_xticks())  # an integer axis
