"""The floor model of ``benchmarks/floor_model.py``: the hand-written request-level SimPy
model that ``benchmarks/host_scale.py`` measures pvsim's exact engine against.

Its numbers must be pvsim's (read here from a host pvsim builds, so a change of a path
length, a transition's cost or a device formula that the floor does not follow fails),
its I/O structure that of pvsim's run of the same scenario, and its results those of the
queueing it models: the load offered is served, and a device is busy for the arrival
rate times its service time.
"""

from __future__ import annotations

import doctest
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from model.io.requests import IORequest
from model.isa import Op
from model.record import record_run
from model.scenario import build_host

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    if name not in sys.modules:
        if str(BENCH) not in sys.path:
            sys.path.insert(0, str(BENCH))  # host_scale imports floor_model by name
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


floor = _load("floor_model")
#: the figures that measure the machine, not the model
TIMINGS = ("cpu_s", "wall_s", "us_per_event", "cpu_per_sim_s")


def _model(r: dict) -> dict:
    return {k: v for k, v in r.items() if k not in TIMINGS}


def test_the_same_seed_gives_the_same_run_and_another_seed_another():
    a, b = floor.run_floor(3, 0.03, seed=5), floor.run_floor(3, 0.03, seed=5)
    assert _model(a) == _model(b)
    c = floor.run_floor(3, 0.03, seed=6)
    assert (c["arrived"], c["events"]) != (a["arrived"], a["events"])


def test_the_offered_load_is_served():
    guests, seconds = 8, 0.25
    r = floor.run_floor(guests, seconds)
    offered = 500.0 * guests * seconds  # the scenario's rate per guest
    assert r["offered_per_s"] == 500.0 * guests
    assert abs(r["arrived"] - offered) <= 4 * math.sqrt(offered)  # Poisson: 4 sigma
    assert r["dropped"] == 0
    assert 0 <= r["arrived"] - r["served"] <= 10  # only those in flight at the end


def test_devices_and_pcpus_are_as_busy_as_rate_times_service_time():
    guests, seconds = 8, 0.5
    r = floor.run_floor(guests, seconds)
    c = floor.floor_costs(floor.host_scenario(guests))
    lam = c.rate_per_s * guests  # requests per second
    nic = lam * (c.nic_rx + sum(c.nic_tx)) / c.freq_hz / c.nic_channels
    ssd = lam * c.miss_ratio * sum(c.ssd) / c.freq_hz / c.ssd_channels
    io = c.submit + c.backend_request + c.backend_response + c.complete  # one guest I/O
    per_request = (
        c.backend_receive
        + c.complete
        + c.parse
        + len(c.packets) * io
        + c.miss_ratio * len(c.disk_reads) * io
        + (1 - c.miss_ratio) * c.cache_read
    )
    pcpu = lam * per_request / c.freq_hz / r["pcpus"]
    # 2000 requests: the counts' relative spread is about 2% (5% for the 400 misses)
    assert r["nic_utilization"] == pytest.approx(nic, rel=0.08)
    assert r["ssd_utilization"] == pytest.approx(ssd, rel=0.2)
    assert r["pcpu_utilization"] == pytest.approx(pcpu, rel=0.08)
    assert 0.02 < nic < 0.2 and 0.002 < ssd < 0.05  # (the figures are not trivial)


def test_the_numbers_are_those_of_the_host_pvsim_builds():
    s = floor.host_scenario(2)
    c = floor.floor_costs(s)
    host = build_host(s)
    hw, io = host.hw, host.io
    guest = host.domains[-1]
    att = io.attachments[(guest.name, "nic0")]
    disk = io.attachments[(guest.name, "ssd0")]
    k, p, cm, path = guest.kernel.p, io.p, guest.compiled, att.io_path
    assert (path.name, disk.io_path.name) == ("pv", "pv")
    alu, mem, f = hw.cost("alu"), hw.cost("mem"), k.kernel_mem_fraction

    def kernel(n):
        return round(n * ((1 - f) * alu + f * mem))

    def syscall(n):
        return (
            cm.row_total(Op.SYSCALL) + kernel(k.syscall_entry) + kernel(n) + cm.row_total(Op.SYSRET)
        )

    notify = int(path.notify_cost(io, att).sum())
    upcall = int(path.upcall_cost(io, att).sum())
    params = s.guests[0].workload.params
    assert c.freq_hz == hw.freq_hz == 2.93e9
    assert c.parse == syscall(k.read_null) + params.parse_instructions * alu
    assert c.cache_read == syscall(k.read_null)
    assert c.submit == (p.block_layer + p.frontend) * alu + notify
    assert c.complete == (
        cm.row_total(Op.INTERRUPT)
        + kernel(k.interrupt_handler)
        + cm.row_total(Op.IRET)
        + p.completion * alu
    )
    assert c.backend_request == path.request_work(p) * alu
    assert c.backend_response == path.response_work(p) * alu + upcall
    assert c.backend_receive == (path.response_work(p) + p.netback_rx_copy) * alu + upcall

    def service(dev, size, write):
        req = IORequest(0, guest=1, device=0, size=size, write=write, issued=0)
        return max(1, round(io.devices[dev].service.seconds(req, None) * hw.freq_hz))

    nic = io.devices["nic0"]
    assert c.packets == (params.response_bytes,) and nic.max_request_bytes >= 16384
    assert c.nic_rx == service("nic0", params.request_bytes, False)
    assert c.nic_tx == (service("nic0", params.response_bytes, True),)
    assert c.ssd == (service("ssd0", params.response_bytes, False),)
    assert (c.nic_channels, c.ssd_channels) == (nic.channels, io.devices["ssd0"].channels)
    assert (c.rate_per_s, c.workers, c.backlog, c.miss_ratio) == (
        params.arrivals.rate_per_s,
        params.workers,
        params.backlog,
        params.miss_ratio,
    )


def test_its_io_requests_are_those_of_pvsims_run():
    """pvsim's run of the same host (2 guests, 40 ms): per device and direction the same
    request sizes, and as many I/O requests per request served (within the misses'
    randomness)."""
    s = floor.host_scenario(2, overrides=["duration=40ms", "record.warmup=null"])
    c = floor.floor_costs(s)
    host = build_host(s)
    rec = record_run(host, host.run(seconds=s.duration))
    reqs, names = (
        rec.io.requests,
        dict(zip(rec.devices.id.tolist(), rec.devices.name.tolist(), strict=True)),
    )
    sizes = {}
    for dev, size, write in zip(reqs["device"], reqs["size"], reqs["write"], strict=True):
        sizes.setdefault((names[int(dev)], bool(write)), set()).add(int(size))
    p = s.guests[0].workload.params
    assert sizes == {
        ("nic0", False): {p.request_bytes},
        ("nic0", True): set(c.packets),
        ("ssd0", False): set(c.disk_reads),
    }
    served = int(rec.app.servers["served"].sum())
    r = floor.run_floor(2, 0.04)
    expected = 1 + len(c.packets) + c.miss_ratio * len(c.disk_reads)  # 2.2
    for io, n in ((rec.io.completed, served), (r["io"], r["served"])):
        assert io / n == pytest.approx(expected, abs=0.25)


def test_without_segmentation_offload_a_response_is_twelve_packets():
    c = floor.floor_costs(floor.host_scenario(2, overrides=["host.devices.nic0.tso=false"]))
    assert c.packets == (1460,) * 11 + (324,)
    r, tso = (floor.run_floor(2, 0.02, overrides=o) for o in (["host.devices.nic0.tso=false"], []))
    assert r["io"] / r["served"] == pytest.approx(12 + 1 + 0.2, abs=0.3)
    assert np.isclose(r["nic_utilization"], tso["nic_utilization"], rtol=0.1)  # same wire time


@pytest.mark.parametrize(
    "override, what",
    [
        ("guests.web.mode=hvm", "the emulated path"),
        ("host.devices.ssd0.distribution=exponential", "a formula service time"),
        ("guests.web.workload.params.arrivals={kind: closed, users: 4, think_ms: 1}", "open-loop"),
    ],
)
def test_what_it_cannot_model_is_refused(override, what):
    with pytest.raises(floor.FloorModelError, match=what.split()[-1]):
        floor.floor_costs(floor.host_scenario(2, overrides=[override]))


@pytest.mark.parametrize("name", ["floor_model", "host_scale"])
def test_the_examples_in_the_docstrings_hold(name):
    result = doctest.testmod(_load(name))
    assert result.attempted > 0 and result.failed == 0
