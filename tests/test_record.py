"""The run record is the seam between the model and analysis: a record built by hand,
with no host and no engine behind it, gives the summary and the tables; names come from
its id tables (ids here are deliberately not positions + 1)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis.metrics import headline
from analysis.results import Results
from analysis.run import results_of, simulate
from analysis.summary import Summary, summarize
from model.domain import DomainConfig
from model.errors import PvsimError
from model.host import Host
from model.liveness import State, VcpuState
from model.record import (
    DeviceTable,
    DomainTable,
    Engine,
    IORecord,
    RecordError,
    RunRecord,
    VcpuTable,
    record_run,
)
from model.scenario import parse_scenario
from model.workloads import spin

SCENARIO = """
name: seam
seed: 5
duration: 1ms
hardware: nehalem-2.93ghz-ept
host: {pcpus: 2, devices: {ssd0: {kind: ssd}}}
driver_domain: {pinning: [0]}
guests:
  - {name: web, mode: pv, workload: {profile: disk_io, params: {size: 8192}},
     devices: [{device: ssd0}]}
  - {name: hog, mode: hvm, os: unmodified, workload: {profile: spin}}
record: {interval: 500us, trace: true}
"""
KINDS = ("hypercalls", "vm_exits", "traps", "bt_emulations", "interrupts")
DOM0, WEB, HOG, SSD = 9, 4, 2, 7  # ids, not positions
FREQ = 1e6  # 1,000 cycles: 1 ms


def _request(rid: int, t: list[int]) -> dict[str, int]:
    stages = (
        "issued",
        "ring",
        "notified",
        "backend",
        "queued",
        "service_start",
        "service_end",
        "irq",
        "response",
        "completed",
    )
    return {
        "id": rid,
        "guest": WEB,
        "device": SSD,
        "size": 4096,
        "write": rid % 2,
        **dict(zip(stages, t, strict=True)),
    }


def _record(**change) -> RunRecord:
    cycles = np.zeros((2, 4, 8), np.int64)  # (pcpu, entity = uid + 1, category)
    cycles[0, 0, 7] = 300  # pCPU 0 idle
    cycles[0, 1, [1, 6]] = 100, 200  # dom0's vCPU (uid 0): kernel, driver domain
    cycles[0, 2, [0, 1]] = 300, 100  # web's (uid 1): user, kernel
    cycles[1, 0, [2, 7]] = 50, 200  # pCPU 1: hypervisor, idle
    cycles[1, 3, [0, 3, 4]] = 600, 100, 50  # hog's (uid 2): user, transition, page walk
    rows = [
        _request(0, [100, 110, 120, 150, 160, 170, 270, 280, 290, 300]),
        _request(1, [400, 410, 420, 450, 460, 460, 560, 570, 580, 700]),
    ]
    requests = {k: np.array([r[k] for r in rows], np.int64) for k in rows[0]}
    trans = [
        (WEB, "hypercalls", "mmu_update", 5),
        (WEB, "hypercalls", "(batches issued)", 2),
        (WEB, "interrupts", "event_channel", 3),
        (HOG, "vm_exits", "IO_INSTRUCTION", 4),
        (HOG, "interrupts", "virtual_apic", 1),
    ]
    fields = dict(
        hardware="nehalem-2.93ghz-ept",
        freq_hz=FREQ,
        elapsed=1000,
        pcpus=2,
        domains=DomainTable.of([DOM0, WEB, HOG], ["dom0", "web", "hog"], ["pv", "pv", "hvm"]),
        vcpus=VcpuTable.of(
            [2, 0, 1],
            [HOG, DOM0, WEB],
            [0, 0, 0],
            ["hog.v0", "dom0.v0", "web.v0"],
            [-1, -1, -1],
            {"instructions": [4000, 1000, 2500]},
        ),
        driver_domain=DOM0,
        behalf_cycles=np.array([0, 150, 0]),
        cycles=cycles,
        transitions={
            "dom": np.array([t[0] for t in trans]),
            "kind": np.array([t[1] for t in trans], dtype=object),
            "label": np.array([t[2] for t in trans], dtype=object),
            "count": np.array([t[3] for t in trans]),
        },
        transition_kinds=KINDS,
        context_switches=7,
        timers_fired=3,
        segments=np.array(
            [[0, 1, 0, 300], [0, 1, 300, 400], [0, 0, 400, 700], [1, 2, 0, 800]], np.int64
        ),
        interval=500,  # record.interval: 500 us
        cpu_busy=np.array([[500, 300], [100, 200], [400, 0]]),  # the segments, per interval
        devices=DeviceTable(
            id=np.array([SSD]),
            name=np.array(["ssd0"], dtype=object),
            kind=np.array(["disk"], dtype=object),
            channels=np.array([1]),
            utilization=np.array([0.2]),
            completed=np.array([2]),
            queue_cycles=np.array([10]),  # one request waited from 160 to 170
            queue_area=np.array([[10, 0]]),
            contention_device=np.array([SSD]),
            waiting=np.array([WEB]),
            holding=np.array([WEB]),
            seconds=np.array([0.0]),
        ),
        io=IORecord(
            issued=3,
            completed=2,
            in_flight=1,
            in_flight_by_stage={"to_device": 0, "at_device": 1, "returning": 0},
            totals={
                "guest": np.array([WEB]),
                "device": np.array([SSD]),
                "requests": np.array([2]),
                "bytes": np.array([8192]),
            },
            attachments={
                "guest": np.array([WEB]),
                "device": np.array([SSD]),
                "path": np.array(["pv"], dtype=object),
            },
            requests=requests,
            brief={"guest": requests["guest"], "device": requests["device"],
                   "write": requests["write"],
                   "latency": requests["completed"] - requests["issued"]},
        ),
        liveness=(
            VcpuState("dom0.v0", State.IDLE, "a daemon with nothing to do", 700),
            VcpuState("web.v0", State.STALLED, "nothing will ever wake it", 500),
            VcpuState("hog.v0", State.RUNNING, "on pCPU 1"),
        ),
        engine=Engine(
            wall_s=2.0, events=100, instructions=7500, instructions_per_s=3750.0, events_per_s=50.0
        ),
    )
    return RunRecord(**(fields | change))


@pytest.fixture(scope="module")
def scenario():
    return parse_scenario(SCENARIO, "seam.yaml")


@pytest.fixture(scope="module")
def results(scenario) -> Results:
    return results_of(scenario, _record())


def test_a_hand_built_record_gives_the_summary_with_exact_figures(scenario, results):
    s = results.summary
    assert list(s) == [
        "pvsim_version",
        "scenario",
        "scenario_hash",
        "seed",
        "hardware",
        "sim_time_s",
        "warmup_s",
        "fidelity",
        "engine",
        "reproducibility",
        "host",
        "guests",
        "devices",
        "hypervisor",
        "io",
        "invariants",
    ]
    assert s["sim_time_s"] == 0.001 and s["seed"] == 5 and s["warmup_s"] == 0.0
    assert s["fidelity"] == {"level": "exact", "not_modelled": [], "bounds": []}
    assert s["host"] == {
        "pcpus": 2,
        "busy_fraction": 0.75,
        "driver_domain_s": 0.0003,
        "driver_domain": "dom0",
        "driver_domain_pinning": [0],
        "cpu_s": {  # dom0's kernel cycles count as the driver domain's: all 300 of its
            "user": 0.0009,
            "kernel": 0.0001,
            "hypervisor": 0.00005,
            "transition": 0.0001,
            "page_walk": 0.00005,
            "emulation": 0.0,
            "driver_domain": 0.0003,
            "idle": 0.0005,
        },
    }
    assert s["host"]["cpu_s"]["driver_domain"] == s["host"]["driver_domain_s"]
    assert sum(s["host"]["cpu_s"].values()) == pytest.approx(2 * s["sim_time_s"])
    web, hog = s["guests"]["web"], s["guests"]["hog"]
    # the driver domain's work for web replaces web's own (nil) driver-domain cycles
    assert web["cpu_s"] == {"user": 0.0003, "kernel": 0.0001, "driver_domain": 0.00015}
    assert hog["cpu_s"] == {"user": 0.0006, "transition": 0.0001, "page_walk": 0.00005}
    assert web["transitions"] == {
        "hypercalls": {"mmu_update": 5, "(batches issued)": 2},
        "vm_exits": {},
        "traps": {},
        "bt_emulations": {},
        "interrupts": {"event_channel": 3},
    }
    assert (web["instructions"], hog["instructions"]) == (2500, 4000)
    assert web["finished_s"] is None and web["devices"] == {"ssd0": "pv"}
    assert hog["io"] == {"requests": 0, "bytes": 0, "throughput_mbps": 0.0}  # no latency
    assert hog["devices"] == {}
    io = web["io"]
    assert (io["requests"], io["bytes"], io["throughput_mbps"]) == (2, 8192, 65.536)
    assert io["p50_ms"] == pytest.approx(0.25) and io["p99_ms"] == pytest.approx(0.299)
    assert s["devices"] == {
        "ssd0": {
            "kind": "disk",
            "channels": 1,
            "utilization": 0.2,
            "completed": 2,
            "mean_queue": 0.01,
            "contention_s": {"web": {"web": 0.0}},
        }
    }
    assert s["hypervisor"] == {
        "hypercalls": {"mmu_update": 5, "(batches issued)": 2},
        "vm_exits": {"IO_INSTRUCTION": 4},
        "traps": {},
        "bt_emulations": {},
        "interrupts": {"event_channel": 3, "virtual_apic": 1},
        "context_switches": 7,
        "timers_fired": 3,
    }
    assert s["io"] == {
        "issued": 3,
        "completed": 2,
        "in_flight": 1,
        "in_flight_by_stage": {"to_device": 0, "at_device": 1, "returning": 0},
    }
    assert s["invariants"]["stalled"] == [
        {"vcpu": "web.v0", "blocked_since_s": 0.0005, "why": "nothing will ever wake it"}
    ]
    assert s["invariants"]["vcpus_at_end"]["hog.v0"] == "running: on pCPU 1"
    assert s["engine"]["wall_s"] == 2.0
    text = json.dumps(s)  # what summary.json holds, and typed again from it
    assert Summary.from_dict(json.loads(text)) == results.typed_summary
    assert summarize(scenario, _record()).to_dict() == s


def test_a_hand_built_record_gives_the_tables(results):
    g = results.guests.set_index("guest")
    assert g.loc["dom0", "driver_domain"] and not g.loc["web", "driver_domain"]
    assert g["group"].tolist() == ["dom0", "web", "hog"]
    assert g["vcpus"].tolist() == [1, 1, 1]
    by = results.cpu.groupby("guest")["cycles"].sum()
    assert by.to_dict() == {"(hypervisor)": 550, "dom0": 300, "web": 400, "hog": 750}
    # dom0's 300 cycles: 150 on web's I/O (they count in web's CPU), 150 its own
    counted = results.cpu.groupby("on_behalf_of")["cycles"].sum()
    assert counted.to_dict() == {"(hypervisor)": 550, "dom0": 150, "web": 550, "hog": 750}
    for_web = results.cpu[results.cpu["on_behalf_of"] == "web"]
    assert set(for_web["guest"]) == {"dom0", "web"}
    sched = results.schedule  # web's two segments on pCPU 0 are one
    assert sched[["pcpu", "guest", "vcpu"]].values.tolist() == [
        [0, "web", 0],
        [0, "dom0", 0],
        [1, "hog", 0],
    ]
    assert sched["end_s"].tolist() == [0.0004, 0.0007, 0.0008]
    rq = results.requests
    assert rq["guest"].tolist() == ["web", "web"] and rq["device"].tolist() == ["ssd0"] * 2
    assert rq["path"].tolist() == ["pv", "pv"] and rq["kind"].tolist() == ["disk", "disk"]
    assert rq["latency_ms"].to_numpy() == pytest.approx([0.2, 0.3])
    assert rq["service_ms"].to_numpy() == pytest.approx([0.1, 0.1])
    ts = results.timeseries.set_index(["metric", "guest", "device", "time_s"])["value"].sort_index()
    assert ts["cpu_util", "dom0", ""].tolist() == pytest.approx([0.2, 0.4])
    assert ts["cpu_util", "hog", ""].tolist() == pytest.approx([1.0, 0.6])
    assert ts["queue_length", "", "ssd0"].tolist() == pytest.approx([0.02, 0.0])
    assert ts["device_util", "web", "ssd0"].tolist() == pytest.approx([0.28, 0.12])
    assert ts["completions_per_s", "web", "ssd0"].tolist() == pytest.approx([2000, 2000])
    m = headline(results)
    assert m["host.busy_fraction"] == 0.75 and m["host.stalled_vcpus"] == 1.0
    assert m["group.web.p99_ms"] == pytest.approx(0.299)
    assert m["device.ssd0.mean_queue"] == 0.01


def test_a_name_is_looked_up_by_id_and_an_unknown_id_is_refused(scenario):
    # web renumbered in the domain table only: its vCPU and requests still say 4
    with pytest.raises(RecordError, match="domain id 4 is not in the record's table"):
        results_of(
            scenario,
            _record(
                domains=DomainTable.of([DOM0, 5, HOG], ["dom0", "web", "hog"], ["pv", "pv", "hvm"])
            ),
        )
    with pytest.raises(RecordError, match="ledger"):
        _record(cycles=np.zeros((1, 4, 8), np.int64))


def test_the_exact_engine_records_views_of_its_segments_not_copies():
    host = Host("nehalem-2.93ghz-ept", pcpus=1, seed=1)
    host.add_guest(DomainConfig("hog", mode="hvm"), spin())
    segs = host.record_segments()
    rec = record_run(host, host.run(seconds=0.002))
    assert len(rec.segments) == len(segs) // 4 > 0
    assert np.shares_memory(rec.segments, np.frombuffer(segs, dtype=np.int64))
    assert rec.domains.name_of(rec.vcpus.dom[0]) == "hog" and rec.io is None
    assert int(rec.cycles.sum()) == rec.elapsed  # one pCPU: every cycle, once
    with pytest.raises(PvsimError, match="before run"):
        host.record_segments()


def test_a_loaded_results_directory_gives_the_same_typed_summary(tmp_path):
    r = simulate(parse_scenario(SCENARIO.replace("1ms", "5ms"), "seam.yaml"))
    back = Results.load(r.save(tmp_path / "out"))
    assert back.typed is None and back.typed_summary == r.typed_summary
    assert back.typed_summary.to_dict() == r.summary
    del back.summary["guests"]["web"]["spec"]  # as an edited or older summary.json
    back.typed = None
    with pytest.raises(PvsimError, match="no 'spec' where pvsim writes one"):
        _ = back.typed_summary
