"""The floor: a minimal hand-written SimPy model of the web-consolidation host at request
granularity, to tell what a pure request-level SimPy model of the same host costs.

pvsim simulates every instruction, segment and I/O action; a model written by hand at the
granularity of requests is the least a SimPy model of the same host can cost. The
benchmark ``benchmarks/host_scale.py`` runs both and reports the engine's time over this
floor's (issue 13). Adapted from ``../shared/perf/floor_model.py`` (the reference used
for the issue's figures: closed loop, twelve MTU segments per response), brought in step
with pvsim's run of ``scenarios/web-consolidation.yaml``.

What it models, per guest (all its numbers read from pvsim, :func:`floor_costs`):

- **Arrivals**: the scenario's open-loop source (``arrivals.gaps`` of pvsim's own
  arrival model: Poisson at ``rate_per_s`` per guest), at the same cycle-rounded times.
- **Receive**: the request's packet (``request_bytes``) through the NIC (a
  ``simpy.Resource`` of the device's channels, pvsim's service formula), then the
  driver domain's backend (its answer, the copy into the guest's buffer and the
  event-channel upcall), then the guest's interrupt (delivery, handler, iret, completion).
  It joins the accept queue, or is dropped past ``backlog`` waiting requests.
- **Workers**: ``workers`` worker processes take requests from the accept queue: a
  ``read`` system call and ``parse_instructions`` of user code; with probability
  ``miss_ratio`` the file (``response_bytes``, one request: pvsim's largest disk read is
  128 KiB) from the SSD, else a second ``read`` from the page cache; then the response,
  cut into packets of the NIC's largest request (one 16 KiB packet with segmentation
  offload, which the NIC sends as 12 frames).
- **Each guest-issued I/O** (the SSD read, each packet sent): guest submit (block layer,
  frontend, event-channel notification), the backend's request work, the device, the
  backend's answer and upcall, the guest's completion handling: pvsim's ``pv`` split
  driver path (:class:`model.io.paths.SplitDriverPath`).
- **CPU**: bursts of cycles as timeouts while holding a pCPU (one ``simpy.Resource`` of
  ``pcpus``); the driver domain's vCPUs are ``dom0_vcpus`` backend processes taking its
  work from a ``simpy.Store`` (each backend burst holds a pCPU as well).

I/O stages are counted as pvsim counts completed I/O requests (``IORecord.completed``):
each received packet, each SSD read, each packet sent (2.2 per request here), so events
per I/O compare like with like.

Simplifications (where the floor is coarser than pvsim):

- A guest's CPU bursts need only a pCPU: its vCPU is not a resource (two of its workers
  may run at once; at 500 requests per second a guest's vCPU is a few percent busy), and
  no pCPU scheduler (credit, boost, slices) orders them: the pCPU queue is FIFO.
- Instructions cost ``alu`` cycles (user code and I/O software) or the kernel's mix of
  ``alu`` and ``mem`` (guest kernel routines): no TLB misses, page walks or caches.
- Transitions cost their mode's rows as pvsim compiles them (system call and its return,
  interrupt delivery and iret, the event-channel hypercall); but halts, wake-ups, world
  switches, timers and the guest's context switches between workers are left out.
- Every submission notifies the backend and every answer notifies the guest (pvsim's rings
  suppress some notifications); the backend takes one item at a time (no batches), and a
  NIC interrupt brings one packet (pvsim takes all that are there, as NAPI does).
- Only the ``pv`` path, open-loop arrivals and devices whose modeled service time is a
  formula of the request (ssd, nvme, nic with ``distribution: modeled``): anything else
  raises :class:`FloorModelError`.

Usage: ``python benchmarks/floor_model.py GUESTS [--seconds 0.2] [--pcpus 16]
[--dom0-vcpus 4] [--seed 1] [--set KEY=VALUE ...]`` prints one JSON line.

Examples
--------
>>> r = run_floor(2, 0.01)
>>> r["model"], r["guests"], r["served"] > 0, r["io"] >= 2 * r["served"]
('floor', 2, True, True)
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import simpy

from model.app.workloads import _MAX_READ as MAX_READ  # a request's largest disk read
from model.errors import PvsimError
from model.hardware import load_profile
from model.io.paths import PATHS, SplitDriverPath
from model.io.requests import IORequest
from model.io.service import DEVICE_KINDS, NicService, SsdService
from model.io.system import IOParams
from model.isa import Op
from model.kernelparams import KernelParams
from model.modes import compile_mode, is_modified, resolve_mode
from model.scenario import Scenario, load_scenario

#: The scenario the floor models (its I/O structure follows pvsim's run of it).
SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "web-consolidation.yaml"


class CountingEnvironment(simpy.Environment):
    """SimPy's own environment (its own event loop: the floor is plain SimPy, whatever
    pvsim's :class:`model.clock.Environment` does to go faster), counting the events it
    schedules as pvsim's does (``scheduled``)."""

    def __init__(self) -> None:
        super().__init__()
        self.scheduled = 0

    def schedule(self, event, priority=simpy.events.NORMAL, delay=0) -> None:
        self.scheduled += 1
        super().schedule(event, priority, delay)


class FloorModelError(PvsimError):
    """A scenario the floor model cannot represent (not the pv path, a closed loop, ...)."""


@dataclass(frozen=True)
class FloorCosts:
    """Every number the floor uses, read from pvsim (cycles unless named otherwise).

    Attributes
    ----------
    freq_hz : float
        The hardware profile's clock.
    parse : int
        A request's ``read`` system call and its parsing (user code).
    cache_read : int
        The ``read`` system call of a page-cache hit.
    submit : int
        The guest's submission of one I/O: block layer, frontend, notification.
    complete : int
        The guest's handling of one answer: interrupt delivery, handler, iret, completion.
    backend_request, backend_response : int
        The driver domain's work for a request taken from the ring, and for its answer
        (with the upcall that notifies the guest).
    backend_receive : int
        The driver domain's work for a packet received (answer, copy, upcall).
    nic_rx : int
        The NIC's service time of a request's packet.
    nic_tx, ssd : tuple of int
        The service times of the response's packets, and of the reads of a miss.
    nic_channels, ssd_channels : int
    rate_per_s : float
        The offered rate per guest (the source's mean).
    workers, backlog : int
    miss_ratio : float
    packets : tuple of int
        The response's packets (bytes).
    disk_reads : tuple of int
        The reads of a miss (bytes).
    """

    freq_hz: float
    parse: int
    cache_read: int
    submit: int
    complete: int
    backend_request: int
    backend_response: int
    backend_receive: int
    nic_rx: int
    nic_tx: tuple[int, ...]
    ssd: tuple[int, ...]
    nic_channels: int
    ssd_channels: int
    rate_per_s: float
    workers: int
    backlog: int
    miss_ratio: float
    packets: tuple[int, ...]
    disk_reads: tuple[int, ...]


def _pieces(size: int, step: int) -> tuple[int, ...]:
    """``size`` bytes cut into pieces of at most ``step`` (as pvsim's ``_send``)."""
    left, out = max(size, 1), []
    while left > 0:
        out.append(min(left, step))
        left -= out[-1]
    return tuple(out)


def _service_cycles(model, size: int, write: bool, freq: float) -> int:
    """pvsim's service time of one request, in cycles as its ``Device`` rounds it."""
    req = IORequest(0, guest=1, device=0, size=size, write=write, issued=0)
    return max(1, int(round(model.seconds(req, None) * freq)))


def floor_costs(s: Scenario) -> FloorCosts:
    """The floor's numbers for scenario ``s`` (its first guest entry), from pvsim: the
    hardware profile, the mode's compiled transition costs, the I/O path's and guest
    kernel's path lengths, the devices' service models and the workload's parameters.

    Raises
    ------
    FloorModelError
        If the floor cannot represent ``s``.

    Examples
    --------
    >>> c = floor_costs(load_scenario(str(SCENARIO)))
    >>> c.packets, c.disk_reads, round(c.freq_hz / 1e9, 2)
    ((16384,), (16384,), 2.93)
    """
    g = s.guests[0]
    p = g.workload.params
    if g.workload.profile != "web_server":
        raise FloorModelError(
            f"the floor models the web_server workload, not {g.workload.profile!r}"
        )
    if not p.arrivals.open:
        raise FloorModelError("the floor models open-loop arrivals only")
    hw = load_profile(s.hardware)
    mode = resolve_mode(g.mode, hw, modified_os=is_modified(g.os))
    devices = {}
    for a in g.devices:
        spec = s.host.devices[a.device]
        path = a.path or mode.kind.default_path
        if not isinstance(PATHS[path], SplitDriverPath):
            raise FloorModelError(f"the floor models the pv split driver, not the {path} path")
        model = DEVICE_KINDS[spec.kind].from_spec(spec)
        if spec.distribution != "modeled" or not isinstance(model, NicService | SsdService):
            raise FloorModelError(
                f"device {a.device}: the floor needs a formula service time "
                "(ssd, nvme or nic, distribution modeled)"
            )
        devices.setdefault(model.device_class, model)
    nic, ssd = devices["nic"], devices["disk"]
    cm = compile_mode(mode, hw)
    io, k, path = IOParams(), KernelParams(), PATHS["pv"]
    alu, mem = hw.cost("alu"), hw.cost("mem")

    def kernel(n: int) -> int:  # a guest-kernel routine: its mix of ALU and memory ops
        return int(round(n * ((1 - k.kernel_mem_fraction) * alu + k.kernel_mem_fraction * mem)))

    def syscall(n: int) -> int:
        return (
            cm.row_total(Op.SYSCALL) + kernel(k.syscall_entry) + kernel(n) + cm.row_total(Op.SYSRET)
        )

    # an event-channel send (model.io.system.IOSystem.send_cost): both notifications
    evtchn = hw.cost("hypercall_entry") + hw.cost("evtchn_send") + hw.cost("hypercall_exit")
    freq = hw.freq_hz
    size = p.response_bytes
    packets = _pieces(size, nic.max_request_bytes)
    reads = _pieces(size, MAX_READ)
    return FloorCosts(
        freq_hz=freq,
        parse=syscall(k.read_null) + p.parse_instructions * alu,
        cache_read=syscall(k.read_null),
        submit=(io.block_layer + io.frontend) * alu + evtchn,
        complete=(
            cm.row_total(Op.INTERRUPT)
            + kernel(k.interrupt_handler)
            + cm.row_total(Op.IRET)
            + io.completion * alu
        ),
        backend_request=path.request_work(io) * alu,
        backend_response=path.response_work(io) * alu + evtchn,
        backend_receive=(path.response_work(io) + io.netback_rx_copy) * alu + evtchn,
        nic_rx=_service_cycles(nic, p.request_bytes, False, freq),
        nic_tx=tuple(_service_cycles(nic, n, True, freq) for n in packets),
        ssd=tuple(_service_cycles(ssd, n, False, freq) for n in reads),
        nic_channels=nic.channels,
        ssd_channels=ssd.channels,
        rate_per_s=float(p.arrivals.mean_rate_per_s()),
        workers=p.workers,
        backlog=p.backlog,
        miss_ratio=p.miss_ratio,
        packets=packets,
        disk_reads=reads,
    )


_REQUEST, _ANSWER = 0, 1


class _Floor:
    """The floor's host: pCPUs, devices, the driver domain's backends and the guests."""

    def __init__(
        self, c: FloorCosts, s: Scenario, guests: int, pcpus: int, dom0_vcpus: int, seed: int
    ) -> None:
        env = self.env = CountingEnvironment()
        self.c = c
        self.pcpus = simpy.Resource(env, capacity=pcpus)
        self.nic = simpy.Resource(env, capacity=c.nic_channels)
        self.ssd = simpy.Resource(env, capacity=c.ssd_channels)
        self.backend_q = simpy.Store(env)
        self.busy = {self.nic: 0, self.ssd: 0}  # channel-cycles served
        self.cpu_cycles = 0
        self.io = self.arrived = self.dropped = self.served = 0
        self.latency: list[int] = []
        arrivals = s.guests[0].workload.params.arrivals
        for _ in range(dom0_vcpus):
            env.process(self._backend())
        for g in range(guests):
            accept = simpy.Store(env)
            env.process(self._arrivals(arrivals, accept, np.random.default_rng([seed, g, 0])))
            rng = np.random.default_rng([seed, g, 1])  # the guest's workers share a stream
            for _ in range(c.workers):
                env.process(self._worker(accept, rng))

    # --- CPU, devices, the driver domain -----------------------------------------------
    def _cpu(self, cycles: int) -> Generator:
        """A burst of ``cycles`` on a pCPU."""
        with self.pcpus.request() as r:
            yield r
            yield self.env.timeout(cycles)
        self.cpu_cycles += cycles

    def _device(self, res: simpy.Resource, cycles: int) -> Generator:
        with res.request() as r:
            yield r
            yield self.env.timeout(cycles)
        self.busy[res] += cycles

    def _backend(self) -> Generator:
        """One driver-domain vCPU: takes work from the store, one item at a time."""
        c = self.c
        while True:
            kind, res, cycles, answer, done = yield self.backend_q.get()
            if kind == _REQUEST:  # from a ring: hand it to the device
                yield from self._cpu(c.backend_request)
                self.env.process(self._served(res, cycles, answer, done))
            else:  # a device's completion: answer the guest (upcall)
                yield from self._cpu(answer)
                done.succeed()

    def _served(self, res: simpy.Resource, cycles: int, answer: int, done: simpy.Event):
        yield from self._device(res, cycles)
        self.backend_q.put((_ANSWER, None, 0, answer, done))

    def _io(self, res: simpy.Resource, cycles: int) -> simpy.Event:
        """Publish one request for the backend (after the guest's submission burst): the
        event that succeeds when its answer reaches the guest."""
        done = self.env.event()
        self.backend_q.put((_REQUEST, res, cycles, self.c.backend_response, done))
        return done

    # --- a guest -----------------------------------------------------------------------
    def _arrivals(self, arrivals, accept: simpy.Store, rng) -> Generator:
        env, freq, t = self.env, self.c.freq_hz, 0.0
        for gap, _kind, _size in arrivals.gaps(rng):  # pvsim's own source
            t += gap
            yield env.timeout(max(int(round(t * freq)) - env.now, 0))
            self.arrived += 1
            env.process(self._receive(accept, env.now))

    def _receive(self, accept: simpy.Store, t0: int) -> Generator:
        """A request's packet: NIC, backend (copy, upcall), the guest's interrupt."""
        c = self.c
        yield from self._device(self.nic, c.nic_rx)
        done = self.env.event()
        self.backend_q.put((_ANSWER, None, 0, c.backend_receive, done))
        yield done
        yield from self._cpu(c.complete)
        self.io += 1
        if len(accept.items) >= c.backlog:
            self.dropped += 1
        else:
            accept.put(t0)

    def _worker(self, accept: simpy.Store, rng) -> Generator:
        c, env = self.c, self.env
        send = len(c.packets) * c.submit
        while True:
            t0 = yield accept.get()
            if rng.random() < c.miss_ratio:  # the file from the SSD, read by read
                before = c.parse
                for cycles in c.ssd:
                    yield from self._cpu(before + c.submit)
                    yield self._io(self.ssd, cycles)
                    self.io += 1
                    before = c.complete
                yield from self._cpu(c.complete + send)
            else:
                yield from self._cpu(c.parse + c.cache_read + send)
            pending = [self._io(self.nic, cycles) for cycles in c.nic_tx]
            yield pending[0] if len(pending) == 1 else simpy.AllOf(env, pending)
            yield from self._cpu(len(pending) * c.complete)
            self.io += len(pending)
            self.served += 1
            self.latency.append(env.now - t0)


def run_floor(
    guests: int,
    sim_s: float,
    pcpus: int = 16,
    dom0_vcpus: int = 4,
    seed: int = 1,
    overrides: Sequence[str] = (),
    scenario: str | Path = SCENARIO,
) -> dict:
    """Run the floor model of ``guests`` web guests for ``sim_s`` simulated seconds.

    Parameters
    ----------
    guests, pcpus, dom0_vcpus : int
        The host: web guests, pCPUs, the driver domain's vCPUs.
    sim_s : float
        Simulated seconds.
    seed : int
        Every random stream derives from it: the same seed gives the same result.
    overrides : sequence of str
        ``--set`` overrides of the scenario (``host.devices.nic0.tso=false``, ...).
    scenario : str or Path
        The scenario file whose first guest entry is modeled.

    Returns
    -------
    dict
        ``cpu_s`` and ``wall_s`` (process and wall time of ``env.run`` alone),
        ``events`` (scheduled, as pvsim's engine counts them), ``io`` (completed I/O
        requests: packets received, disk reads, packets sent), ``arrived``, ``dropped``,
        ``served``, their rates and ratios, the devices' and pCPUs' utilization and the
        response time (arrival of the request's packet to the completion of its last
        packet sent) of the requests served.

    Examples
    --------
    >>> a, b = run_floor(2, 0.01, seed=3), run_floor(2, 0.01, seed=3)
    >>> a["events"] == b["events"] and a["served"] == b["served"]
    True
    """
    s = host_scenario(guests, pcpus, dom0_vcpus, overrides, scenario)
    c = floor_costs(s)
    f = _Floor(c, s, guests, pcpus, dom0_vcpus, seed)
    until = int(round(sim_s * c.freq_hz))
    t0, w0 = time.process_time(), time.perf_counter()
    f.env.run(until=until)
    cpu_s, wall_s = time.process_time() - t0, time.perf_counter() - w0
    events = f.env.scheduled
    lat = np.asarray(f.latency, np.float64) / c.freq_hz * 1e3
    io = max(f.io, 1)
    return {
        "model": "floor",
        "guests": guests,
        "sim_s": sim_s,
        "pcpus": pcpus,
        "dom0_vcpus": dom0_vcpus,
        "seed": seed,
        "cpu_s": round(cpu_s, 4),
        "wall_s": round(wall_s, 4),
        "events": events,
        "io": f.io,
        "arrived": f.arrived,
        "dropped": f.dropped,
        "served": f.served,
        "offered_per_s": c.rate_per_s * guests,
        "served_per_s": round(f.served / sim_s, 1),
        "events_per_io": round(events / io, 3),
        "us_per_event": round(cpu_s / max(events, 1) * 1e6, 3),
        "cpu_per_sim_s": round(cpu_s / sim_s, 4),
        "nic_utilization": round(f.busy[f.nic] / (until * c.nic_channels), 6),
        "ssd_utilization": round(f.busy[f.ssd] / (until * c.ssd_channels), 6),
        "pcpu_utilization": round(f.cpu_cycles / (until * pcpus), 6),
        "response_mean_ms": round(float(lat.mean()), 5) if lat.size else None,
        "response_p50_ms": round(float(np.percentile(lat, 50)), 5) if lat.size else None,
        "response_p99_ms": round(float(np.percentile(lat, 99)), 5) if lat.size else None,
        "costs": asdict(c),
    }


def host_scenario(
    guests: int,
    pcpus: int = 16,
    dom0_vcpus: int = 4,
    overrides: Sequence[str] = (),
    scenario: str | Path = SCENARIO,
) -> Scenario:
    """``scenario`` on the host of the benchmark: ``guests`` replicas of its first guest
    entry, ``pcpus`` pCPUs, ``dom0_vcpus`` driver-domain vCPUs and the memory they need
    (at least the scenario's), then ``overrides``.

    Examples
    --------
    >>> s = host_scenario(64)
    >>> s.guests[0].count, s.host.pcpus, s.driver_domain.vcpus, s.host.memory_mb
    (64, 16, 4, 16640)
    """
    base = load_scenario(str(scenario))
    g, dd = base.guests[0], base.driver_domain
    memory = max(base.host.memory_mb, guests * g.memory_mb + dd.memory_mb)
    return load_scenario(
        str(scenario),
        [
            f"guests.{g.name}.count={guests}",
            f"host.pcpus={pcpus}",
            f"driver_domain.vcpus={dom0_vcpus}",
            f"host.memory_mb={memory}",
            *overrides,
        ],
    )


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="The floor model of the web host (one JSON line).")
    ap.add_argument("guests", type=int)
    ap.add_argument("--seconds", type=float, default=0.2, help="simulated seconds")
    ap.add_argument("--pcpus", type=int, default=16)
    ap.add_argument("--dom0-vcpus", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--set", nargs="*", default=[], help="scenario overrides KEY=VALUE")
    a = ap.parse_args(argv)
    r = run_floor(a.guests, a.seconds, a.pcpus, a.dom0_vcpus, a.seed, a.set)
    r.pop("costs")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
