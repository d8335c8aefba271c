"""The Perfetto / chrome://tracing timeline of a run (``record.trace: perfetto``).

A quickstart run, shortened to 20 ms, writes ``trace.json.gz``. The tests read it as a
viewer would: first against the Trace Event Format's rules (every event placed by phase,
timestamp, process and thread; async begin/end pairs matched and nested; complete slices
of one track in time order without overlap; every track named), then against the run's
own tables: the pCPU slices add up to the schedule, each request's async slice lasts its
latency, each stage its stage time, each device's slices its service times, and the
counters are the time series. The Perfetto trace processor is not used: the ``perfetto``
package downloads its binary at run time, which this machine cannot.
"""

from __future__ import annotations

import gzip
import json
import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from analysis.cli import main
from analysis.perfetto import (
    TRACE_FILE,
    EventLog,
    TraceError,
    TraceLimits,
    trace_directory,
    trace_document,
    write_trace,
)
from analysis.resultsdir import read_marker
from analysis.run import simulate
from model.io.requests import INTERVALS
from model.scenario import ScenarioError, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
QUICK = str(ROOT / "scenarios" / "quickstart.yaml")
US = 1e-3  # the trace's resolution: a nanosecond, in microseconds
PHASES = {"X", "B", "E", "b", "e", "i", "C", "M"}


def check_structure(doc: dict) -> None:
    """The rules of the Trace Event Format that a viewer relies on (raises AssertionError)."""
    events = doc["traceEvents"]
    names: dict[tuple, str] = {}
    slices: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    stacks: dict[tuple, list[dict]] = defaultdict(list)  # B/E per thread, b/e per async id
    used_pids, used_threads = set(), set()
    for e in events:
        assert e["ph"] in PHASES, e
        assert isinstance(e["ts"], int | float) and e["ts"] >= 0, e
        assert isinstance(e["pid"], int), e
        if e["ph"] in "be":
            assert "id" in e and "cat" in e, e
        else:
            assert isinstance(e["tid"], int), e
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name", "process_sort_index",
                                 "thread_sort_index"), e
            if e["name"].endswith("_name"):
                key = (e["pid"],) if e["name"] == "process_name" else (e["pid"], e["tid"])
                names[key] = e["args"]["name"]
            continue
        used_pids.add(e["pid"])
        if e["ph"] == "X":
            assert e["dur"] >= 0, e
            slices[e["pid"], e["tid"]].append((e["ts"], e["dur"]))
            used_threads.add((e["pid"], e["tid"]))
        elif e["ph"] in "BEbe":
            key = (e["pid"], e["tid"]) if e["ph"] in "BE" else (e["pid"], e["cat"], e["id"])
            stack = stacks[key]  # [begin event, latest end of its children]
            if e["ph"] in "Bb":
                assert not stack or stack[-1][0]["ts"] <= e["ts"], e  # inside its parent
                stack.append([e, e["ts"]])
            else:
                assert stack, f"an end without a begin: {e}"
                begin, children_end = stack.pop()
                assert begin["name"] == e["name"] and children_end <= e["ts"], (begin, e)
                if stack:
                    stack[-1][1] = max(stack[-1][1], e["ts"])
        elif e["ph"] == "i":
            assert e["s"] in "tpg", e
            used_threads.add((e["pid"], e["tid"]))
        elif e["ph"] == "C":
            assert e["args"] and all(isinstance(v, int | float) for v in e["args"].values()), e
    assert not [k for k, s in stacks.items() if s], "begins without an end"
    for track, xs in slices.items():  # in time order, none overlapping the next
        starts = np.array([t for t, _ in xs])
        ends = starts + np.array([d for _, d in xs])
        assert np.all(np.diff(starts) >= 0), track
        assert np.all(starts[1:] >= ends[:-1] - US), track
    owner: dict[int, int] = {}  # a thread id belongs to one process (some viewers key
    for pid, tid in used_threads:  # threads by their id alone)
        assert owner.setdefault(tid, pid) == pid, (pid, tid)
    assert {(p,) for p in used_pids} <= set(names), "a process without a name"
    assert used_threads <= set(names), "a thread without a name"


def _load(path: Path) -> dict:
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b"  # gzip
    return json.loads(gzip.decompress(raw))


@pytest.fixture(scope="module")
def run():
    s = load_scenario(QUICK, ["duration=20ms", "record.trace=perfetto"])
    return simulate(s)


@pytest.fixture(scope="module")
def saved(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("quick") / "r"
    run.save(out)
    return out


@pytest.fixture(scope="module")
def doc(saved):
    return _load(saved / TRACE_FILE)


def _named(doc: dict, what: str) -> dict:
    return {(e["pid"],) if what == "process_name" else (e["pid"], e["tid"]): e["args"]["name"]
            for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == what}


def _pid(doc: dict, name: str) -> int:
    return next(k[0] for k, v in _named(doc, "process_name").items() if v == name)


def test_the_run_writes_a_gzipped_trace_that_follows_the_format(saved, doc):
    assert TRACE_FILE in read_marker(saved)["files"]  # in the directory's manifest
    check_structure(doc)
    phases = {e["ph"] for e in doc["traceEvents"]}
    assert {"X", "b", "e", "i", "C", "M"} <= phases


def test_the_viewer_shows_pcpus_devices_and_guests_by_name(doc):
    processes = set(_named(doc, "process_name").values())
    assert processes == {"pCPUs", "ssd0", "nic0", "dom0", "web-pv", "web-hvm"}
    threads = set(_named(doc, "thread_name").values())
    assert {"pCPU 0", "pCPU 1", "nic0", "ssd0", "web-pv.v0", "web-hvm.v0", "dom0.v0"} <= threads


def test_the_pcpu_slices_add_up_to_the_schedule_per_vcpu(run, doc):
    sched = run.schedule
    assert len(sched) > 100
    want = ((sched["end_s"] - sched["start_s"]) * 1e6).groupby(
        sched["guest"] + ".v" + sched["vcpu"].astype(str)).sum()
    pcpus = _pid(doc, "pCPUs")
    got: dict[str, float] = defaultdict(float)
    n = 0
    for e in doc["traceEvents"]:
        if e["ph"] == "X" and e["pid"] == pcpus:
            got[e["name"]] += e["dur"]
            n += 1
            assert e["args"]["guest"] == e["name"].split(".v")[0]
            assert e["args"]["mode"] == {"dom0": "pv", "web-pv": "pv", "web-hvm": "hvm"}[
                e["args"]["guest"]]
    assert n == len(sched)
    for vcpu, us in want.items():
        assert got[vcpu] == pytest.approx(us, abs=n * US)


def _async_slices(doc: dict) -> dict:
    """Request id -> [[name, begin us, end us], ...] in the order they began: the
    request's own slice first, then its stages."""
    out: dict[int, list] = defaultdict(list)
    open_: dict[int, list] = defaultdict(list)
    for e in doc["traceEvents"]:
        if e["ph"] == "b":
            s = [e["name"], e["ts"], None]
            out[e["id"]].append(s)
            open_[e["id"]].append(s)
        elif e["ph"] == "e":
            s = open_[e["id"]].pop()
            assert s[0] == e["name"]
            s[2] = e["ts"]
    return out


def test_each_request_slice_lasts_its_latency_and_its_stages_their_times(run, doc):
    req = run.requests.set_index("id")
    slices = _async_slices(doc)
    assert len(slices) == len(req) > 50
    for rid, (outer, *stages) in slices.items():
        row = req.loc[rid]
        assert outer[0] == f"{row['device']} {'write' if row['write'] else 'read'}"
        assert outer[2] - outer[1] == pytest.approx(row["latency_ms"] * 1e3, abs=2 * US)
        assert outer[1] == pytest.approx(row["issued_s"] * 1e6, abs=US)
        for name, begin, end in stages:
            assert name in INTERVALS and outer[1] <= begin <= end <= outer[2]
            assert end - begin == pytest.approx(row[f"{name}_ms"] * 1e3, abs=2 * US)
            assert end > begin  # a stage of zero length is left out
        shown = {name for name, _, _ in stages}
        assert {i for i in INTERVALS if row[f"{i}_ms"] * 1e3 > US} <= shown
        assert sum(end - begin for _, begin, end in stages) == pytest.approx(
            outer[2] - outer[1], abs=2 * US)


def test_the_device_tracks_are_the_service_intervals(run, doc):
    req = run.requests
    for dev in ("ssd0", "nic0"):
        pid = _pid(doc, dev)
        xs = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["pid"] == pid]
        mine = req[req["device"] == dev]
        assert len(xs) == len(mine) > 0
        assert sum(e["dur"] for e in xs) == pytest.approx(mine["service_ms"].sum() * 1e3,
                                                          abs=len(xs) * US)
        assert {e["name"] for e in xs} <= {"web-pv", "web-hvm"}
    def lanes(dev: str) -> set[int]:
        return {e["tid"] for e in doc["traceEvents"] if e["ph"] == "X"
                and e["pid"] == _pid(doc, dev)}

    assert len(lanes("nic0")) == 1  # one channel: one thread
    assert 1 < len(lanes("ssd0")) <= run.summary["devices"]["ssd0"]["channels"]


def test_the_counters_are_the_time_series(run, doc):
    ts = run.timeseries
    for metric, owner, pname, key in (("cpu_util", "guest", "web-pv", "cpu_util"),
                                      ("queue_length", "device", "nic0", "queue_length")):
        want = ts[(ts["metric"] == metric) & (ts[owner] == pname)]
        got = [e for e in doc["traceEvents"] if e["ph"] == "C" and e["name"] == metric
               and e["pid"] == _pid(doc, pname)]
        assert [e["ts"] for e in got] == pytest.approx(list(want["time_s"] * 1e6))
        assert [e["args"][key] for e in got] == pytest.approx(list(want["value"]), abs=1e-6)


def test_the_vcpu_events_are_instants_and_counters(run, doc):
    log = run.event_log
    instants = [e for e in doc["traceEvents"] if e["ph"] == "i"]
    assert len(instants) == len(log) == log.total > 100
    assert {e["name"] for e in instants} <= {"block", "wake", "irq", "set_timer", "timer",
                                             "timer_at_halt"}
    assert {"block", "wake", "irq"} <= {e["name"] for e in instants}
    counted = sum(v for e in doc["traceEvents"] if e["ph"] == "C" and e["name"] == "vCPU events"
                  for v in e["args"].values())
    assert counted == log.total
    assert doc["otherData"]["vcpu_events"]["total"] == log.total


def test_a_long_run_is_bounded_and_says_so(run):
    """The first requests after the warm-up, a sample of the others, the first segments
    and instants: the trace is still well formed, and its metadata says what it kept."""
    limits = TraceLimits(requests=10, sample=5, segments=40, instants=7, counter_points=1)
    doc = trace_document(run, limits)
    check_structure(doc)
    meta = doc["otherData"]
    assert meta["limits"]["requests"] == 10
    assert meta["io_requests"]["in_trace"] == 15 and meta["io_requests"]["sampled"] == 5
    assert meta["segments"]["in_trace"] == 40 and meta["segments"]["total"] == len(run.schedule)
    assert meta["vcpu_events"]["in_trace"] == 7
    ids = list(_async_slices(doc))
    first10 = run.requests.sort_values("issued_s", kind="stable")["id"].head(10).tolist()
    assert set(first10) <= set(ids) and len(ids) == 15
    assert sum(e["ph"] == "X" and e["pid"] == _pid(doc, "pCPUs")
               for e in doc["traceEvents"]) == 40
    assert sum(e["ph"] == "i" for e in doc["traceEvents"]) == 7
    assert sum(e["ph"] == "C" and e["name"] == "cpu_util" and e["pid"] == _pid(doc, "web-pv")
               for e in doc["traceEvents"]) == 1  # two intervals merged into one point


def test_the_first_requests_are_those_after_the_warm_up():
    s = load_scenario(QUICK, ["duration=20ms", "record.trace=perfetto", "record.warmup=5ms"])
    r = simulate(s)
    doc = trace_document(r, TraceLimits(requests=5, sample=0))
    issued = r.requests.set_index("id")["issued_s"]
    ids = list(_async_slices(doc))
    assert len(ids) == 5 and all(issued[i] >= 0.005 for i in ids)
    assert sorted(issued[ids]) == sorted(issued[issued >= 0.005])[:5]


def test_the_trace_is_deterministic(run, tmp_path):
    a = write_trace(run, tmp_path / "a.json.gz").read_bytes()
    b = write_trace(run, tmp_path / "b.json.gz").read_bytes()
    assert a == b
    plain = json.loads(write_trace(run, tmp_path / "c.json").read_text())  # not .gz: JSON
    assert plain == json.loads(gzip.decompress(a))


def test_the_event_log_keeps_its_first_entries_and_counts_them_all():
    log = EventLog(freq_hz=1e9, width=1000, duration_s=1e-5, keep=2, points=5)
    for t in range(0, 10_000, 500):
        log.append((t, "irq", "g.v0", None))
    assert len(log) == 2 and log.total == 20
    assert log.bin == 2000 and log.counts["irq", "g.v0"].tolist() == [4, 4, 4, 4, 4]
    again = pickle.loads(pickle.dumps(log))
    assert list(again) == list(log) and again.total == 20 and again.keep == 2
    assert again.counts["irq", "g.v0"].tolist() == [4, 4, 4, 4, 4]


# --- the scenario field ----------------------------------------------------------------------
SPIN = "name: t\nguests: [{name: a, workload: {profile: spin}}]\n"


@pytest.mark.parametrize("value, expected", [("true", True), ("false", False),
                                             ("perfetto", "perfetto")])
def test_record_trace_takes_true_false_or_perfetto(value, expected):
    assert parse_scenario(SPIN + f"record: {{trace: {value}}}\n").record.trace == expected


@pytest.mark.parametrize("value", ["chrome", "Perfetto", "1", "yes"])
def test_another_trace_value_is_refused_naming_the_choices(value):
    with pytest.raises(ScenarioError) as e:
        parse_scenario(SPIN + f"record: {{trace: {value}}}\n", "s.yaml")
    assert "s.yaml:3:17: record.trace:" in str(e.value)
    assert "valid choices: true" in str(e.value) and "false" in str(e.value) \
        and "perfetto" in str(e.value)


def test_tracing_does_not_change_the_run(run):
    """The event log only records: the same run with record.trace: true has the same
    summary (but for the scenario's hash and the engine's wall time) and tables."""
    plain = simulate(load_scenario(QUICK, ["duration=20ms", "record.trace=true"]))
    assert plain.event_log is None

    def figures(r):
        return {k: v for k, v in r.summary.items() if k not in ("engine", "scenario_hash")}

    assert figures(plain) == figures(run)
    for table in ("requests", "cpu", "timeseries", "schedule", "app_requests"):
        assert getattr(plain, table).equals(getattr(run, table)), table


def test_a_run_without_perfetto_writes_no_trace(tmp_path):
    r = simulate(load_scenario(QUICK, ["duration=5ms"]))  # the file says trace: true
    r.save(tmp_path / "r")
    assert not (tmp_path / "r" / TRACE_FILE).exists() and r.event_log is None


# --- pvsim trace DIR -------------------------------------------------------------------------
def test_pvsim_trace_writes_the_trace_of_a_results_directory(tmp_path, capsys):
    out = tmp_path / "r"
    simulate(load_scenario(QUICK, ["duration=20ms"])).save(out)  # trace: true, no trace file
    assert main(["trace", str(out)]) == 0
    assert f"wrote {out / TRACE_FILE}" in capsys.readouterr().out
    doc = _load(out / TRACE_FILE)
    check_structure(doc)
    assert TRACE_FILE in read_marker(out)["files"]
    assert doc["otherData"]["vcpu_events"]["recorded"] is False  # not in a directory
    assert not any(e["ph"] == "i" for e in doc["traceEvents"])
    assert main(["trace", str(out)]) == 2  # it would replace the trace: refused
    assert "exists" in capsys.readouterr().err
    assert main(["trace", str(out), "--force", "--max-requests", "3"]) == 0
    assert _load(out / TRACE_FILE)["otherData"]["io_requests"]["first_after_warmup"] == 3


def test_pvsim_trace_names_what_is_missing(saved, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in saved.iterdir():
        if f.name not in ("schedule.parquet", TRACE_FILE) and f.is_file():
            (broken / f.name).write_bytes(f.read_bytes())
    assert main(["trace", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pvsim: error: {broken}: pvsim trace needs schedule.parquet and "
                          "requests.parquet")
    assert "missing: schedule.parquet" in err and "Traceback" not in err
    assert not (broken / TRACE_FILE).exists()


def test_pvsim_trace_refuses_a_run_without_the_schedule(tmp_path):
    out = tmp_path / "r"
    simulate(load_scenario(QUICK, ["duration=5ms", "record.trace=false"])).save(out)
    with pytest.raises(TraceError, match="did not record the vCPU schedule"):
        trace_directory(out)
