"""A host: hardware, machine memory, a hypervisor with its scheduler, and guests.

Examples
--------
>>> from model.host import Host
>>> from model.domain import DomainConfig
>>> from model.workloads import spin
>>> host = Host("nehalem-2.93ghz-ept", pcpus=1, seed=1)
>>> dom = host.add_guest(DomainConfig("hog", mode="hvm"), spin())
>>> stats = host.run(seconds=0.05)
>>> round(stats.busy_fraction(), 2)
1.0
"""

from __future__ import annotations

import time
import zlib
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .categories import NAMES
from .clock import Environment, run_to
from .domain import Domain, DomainConfig
from .errors import ConfigError, PvsimError
from .hardware import DEFAULT_PROFILE, HardwareProfile, load_profile
from .hypervisor import Hypervisor
from .isa import Chunk, Op
from .liveness import State, VcpuState, liveness
from .paging import FRAMES_PER_MB, Memory
from .rules import TRANSITION_KINDS, transition_of
from .sched import Scheduler, make_scheduler
from .vcpu import Marker, VCpu
from .vectors import COUNTS, S_INSTR, STAT_NAMES


def entity_rng(seed: int, name: str, index: int) -> np.random.Generator:
    """The random stream of entity (``name``, ``index``) of a run seeded ``seed``
    (:meth:`Host.rng`; the fast level derives its streams the same way).

    Examples
    --------
    >>> float(entity_rng(1, "g", 0).random()) == float(entity_rng(1, "g", 0).random())
    True
    """
    key = (zlib.crc32(name.encode()), index)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True)
class WorkloadContext:
    """What a workload sees: its guest kernel, vCPU, random stream and hardware, and the
    host (a server asks it for its application system, :meth:`Host.enable_app`)."""

    kernel: object
    vcpu: VCpu
    rng: np.random.Generator
    hw: HardwareProfile
    host: Host | None = None


Workload = Callable[[WorkloadContext], Iterator[Chunk | Marker]]


class Host:
    """A virtualized server.

    Parameters
    ----------
    hardware : str or HardwareProfile
        A profile name (see :func:`model.hardware.profile_names`).
    pcpus : int
        Physical CPUs.
    scheduler : str or Scheduler
        ``credit`` (default) or ``round_robin``, or a scheduler instance.
    memory_mb : int
        Machine memory for guests.
    seed : int
        The run's seed; every vCPU derives its own stream from it.
    max_pt_pages : int
        Capacity of the page-table pool.
    max_spaces : int
        Address spaces that may be live at once (processes, and each guest's own).
    max_domains : int
        Domain ids are below this (guests and the driver domain, from 1).
    """

    def __init__(
        self,
        hardware: str | HardwareProfile = DEFAULT_PROFILE,
        pcpus: int = 1,
        scheduler: str | Scheduler = "credit",
        memory_mb: int = 2048,
        seed: int = 0,
        max_pt_pages: int = 8192,
        max_spaces: int = 4096,
        max_domains: int = 4096,
    ) -> None:
        if pcpus < 1:
            raise ConfigError(f"pcpus {pcpus} must be >= 1")
        self.hw = hardware if isinstance(hardware, HardwareProfile) else load_profile(hardware)
        self.seed = seed
        self.env = Environment()
        self.memory = Memory(
            n_data_frames=memory_mb * FRAMES_PER_MB,
            max_pt_pages=max_pt_pages,
            max_spaces=max_spaces,
            max_domains=max_domains,
        )
        sched = make_scheduler(scheduler) if isinstance(scheduler, str) else scheduler
        self.hypervisor = Hypervisor(self.env, self.hw, pcpus, sched)
        self.domains: list[Domain] = []
        self.io = None  # the I/O system, once devices are added (model.io.system.IOSystem)
        #: the time series' interval, cycles (0: not recorded; :meth:`record_series`)
        self.series_width = 0
        self.app = None  # the servers, once a guest serves requests (model.app.system)
        #: the counters when the warm-up ended (model.warmup.Snapshot), if the run has one
        self.warmup = None
        self._next_frame = 0
        self._wall = 0.0
        self._ran = False

    def add_guest(self, config: DomainConfig, workload: Workload | None = None) -> Domain:
        """Create a guest domain; each vCPU runs ``workload`` (if given) from time 0."""
        if any(d.name == config.name for d in self.domains):
            raise ConfigError(f"duplicate guest name {config.name!r}")
        frames_needed = config.memory_mb * FRAMES_PER_MB
        if self._next_frame + frames_needed > self.memory.n_data_frames:
            raise ConfigError(
                f"guest {config.name!r} needs {config.memory_mb} MB but the host has only "
                f"{(self.memory.n_data_frames - self._next_frame) // FRAMES_PER_MB} MB left"
            )
        dom = Domain(
            config,
            len(self.domains) + 1,
            self.hw,
            self.memory,
            self._next_frame,
            len(self.hypervisor.vcpus),
        )
        self._next_frame += frames_needed
        self.domains.append(dom)
        for v in dom.vcpus:
            self.hypervisor.add_vcpu(v)
            if workload is not None:
                self.start(v, workload)
        return dom

    def rng(self, name: str, index: int) -> np.random.Generator:
        """The random stream of entity (``name``, ``index``): independent of creation order."""
        return entity_rng(self.seed, name, index)

    def start(self, vcpu: VCpu, workload: Workload, daemon: bool = False) -> None:
        """Run ``workload`` on ``vcpu``. A ``daemon`` (a driver domain's backend) runs
        forever and is not waited for by :meth:`run` without a time limit."""
        ctx = WorkloadContext(
            vcpu.domain.kernel, vcpu, self.rng(vcpu.domain.name, vcpu.index), self.hw, self
        )
        vcpu.start(iter(workload(ctx)))
        self.hypervisor.start(vcpu, daemon)

    def record_segments(self) -> array:
        """Record the run segments (which vCPU ran on which pCPU, from when to when:
        :attr:`model.hypervisor.Hypervisor.segments`, 32 bytes each); before :meth:`run`.

        Examples
        --------
        >>> host = Host(pcpus=1)
        >>> len(host.record_segments())
        0
        """
        if self._ran:
            raise PvsimError(
                "record_segments() comes before run(): the segments of a run "
                "that has started are not all there"
            )
        return self.hypervisor.record_segments()

    def record_series(self, interval_s: float) -> int:
        """Accumulate the time series (each vCPU's busy cycles, each device's queue
        length integrated over time) per interval of ``interval_s`` seconds as the run
        goes, so that they cost memory per interval, not per segment; before :meth:`run`.
        Returns the interval in cycles.

        Examples
        --------
        >>> host = Host(pcpus=1)
        >>> host.record_series(0.01) == round(0.01 * host.hw.freq_hz)
        True
        """
        if self._ran:
            raise PvsimError(
                "record_series() comes before run(): the time series of a run that has "
                "started would miss its beginning"
            )
        width = self.series_width = max(1, int(round(interval_s * self.hw.freq_hz)))
        self.hypervisor.record_busy(width)
        if self.io is not None:
            self.io.record_queues(width)
        return width

    def run(
        self,
        seconds: float | None = None,
        cycles: int | None = None,
        progress: Callable[[float], None] | None = None,
        warmup: float | None = None,
    ) -> RunStats:
        """Run until ``seconds`` (or ``cycles``) of simulated time, or until every
        vCPU has finished its workload (daemons aside); then settle the books and check
        cycle conservation. With a time limit, ``progress`` is called with the fraction of
        simulated time done, a hundred times over the run. After ``warmup`` seconds the
        counters are taken (:attr:`warmup`, :mod:`model.warmup`), to be left out."""
        if self._ran:
            raise PvsimError("a Host runs once: build a new one for another run")
        self._ran = True
        limit = (
            cycles
            if cycles is not None
            else (int(seconds * self.hw.freq_hz) if seconds is not None else None)
        )
        t = time.perf_counter()
        if limit is not None:
            self.hypervisor.horizon = limit
        if warmup:
            from .warmup import Snapshot

            end = int(round(warmup * self.hw.freq_hz))
            if self.io is not None:  # the request statistics start there
                self.io.log.start = end
            if self.app is not None:
                self.app.log.start = end
            at = self.env.timeout(end)
            at.callbacks.append(lambda _e: setattr(self, "warmup", Snapshot.take(self)))
        if limit is None:
            done = self.env.event()
            self.hypervisor.on_all_finished = done
            self.env.run(until=done)
        else:
            run_to(self.env, limit, progress)
        self._wall += time.perf_counter() - t
        self.hypervisor.settle()
        if self.io is not None:
            self.io.check()
        return RunStats(self)

    def enable_app(self):
        """Create the host's application system (servers and their request log), once."""
        from .app.system import AppSystem

        if self.app is None:
            self.app = AppSystem(self)
        return self.app

    def enable_io(self, params=None, keep_requests: bool = True):
        """Create the host's I/O system (devices, paths, the driver domain's backends)."""
        from .io.system import IOSystem

        if self.io is None:
            self.io = IOSystem(self, params, keep_requests)
        return self.io


class RunStats:
    """Figures of a finished run: cycles by category, operation counts, engine rates."""

    def __init__(self, host: Host, with_liveness: bool = True) -> None:
        self.host = host
        self.hw = host.hw
        self.elapsed = int(host.env.now)
        self.ledger = host.hypervisor.ledger
        self.wall_s = host._wall
        self.events = host.env.scheduled  # events scheduled in the run
        #: every vCPU's state at the end of the run (model.liveness)
        self.liveness = liveness(host.hypervisor) if with_liveness else []

    @property
    def stalled(self) -> list[VcpuState]:
        """vCPUs blocked at the end with nothing that will ever wake them."""
        return [s for s in self.liveness if s.state is State.STALLED]

    def busy_fraction(self) -> float:
        idle = int(self.ledger.cycles[:, 0, NAMES.index("idle")].sum())
        n = self.ledger.cycles.shape[0]
        return 1.0 - idle / max(self.elapsed * n, 1)

    def domain_cycles(self, name: str) -> dict[str, int]:
        """Cycles by category consumed on behalf of guest ``name`` (all its vCPUs)."""
        dom = self._dom(name)
        total = sum(self.ledger.vcpu(v.uid) for v in dom.vcpus)
        return self.ledger.as_dict(total)

    def driver_domain_cycles(self, name: str) -> int:
        """Cycles the driver domain's vCPUs spent on behalf of guest ``name``'s I/O."""
        io = self.host.io
        if io is None or io.driver_domain is None:
            return 0
        dom = self._dom(name).dom
        return sum(v.behalf_cycles.get(dom, 0) for v in io.driver_domain.vcpus)

    def _dom(self, name: str) -> Domain:
        for d in self.host.domains:
            if d.name == name:
                return d
        raise ConfigError(f"no guest named {name!r}")

    def counters(self, name: str) -> dict[str, int]:
        """TLB, walk, batching and instruction counters of guest ``name``."""
        dom = self._dom(name)
        return {label: int(sum(v.cpu[i] for v in dom.vcpus)) for i, label in STAT_NAMES.items()}

    def transitions(self, name: str) -> dict[str, dict[str, int]]:
        """Hypercalls by type, VM exits by reason, traps and emulations of guest ``name``.

        Keys: ``hypercalls``, ``vm_exits``, ``traps``, ``bt_emulations``, ``interrupts``
        (virtual interrupts delivered, by mechanism; an EOI exit without APICv is part of
        an interrupt's cost, not counted as an exit here).
        """
        dom = self._dom(name)
        out: dict[str, dict[str, int]] = {kind: {} for kind in TRANSITION_KINDS.values()}
        for op, rule in dom.mode.rules.items():
            n = int(sum(v.cpu[COUNTS + op] for v in dom.vcpus))
            what = transition_of(rule)
            if n and what:
                out[what[0]][what[1]] = out[what[0]].get(what[1], 0) + n
        if self.host.io is not None:  # device accesses, kicks and notifications
            for (who, kind, label), n in self.host.io.transitions.items():
                if who == name:
                    out[kind][label] = out[kind].get(label, 0) + n
        if dom.mode.pv:
            batches = self.counters(name)["hypercall_batches"]
            if batches:
                out["hypercalls"]["(batches issued)"] = batches
        return out

    def finished_s(self, name: str) -> float | None:
        """When guest ``name``'s workload finished on its last vCPU (seconds), or None if
        it was still running when the run ended."""
        done = self.host.hypervisor.finished_at
        vcpus = self._dom(name).vcpus
        if not all(v.name in done for v in vcpus):
            return None
        return max(done[v.name] for v in vcpus) / self.hw.freq_hz

    def op_count(self, name: str, op: Op) -> int:
        return int(sum(v.cpu[COUNTS + op] for v in self._dom(name).vcpus))

    def engine(self) -> dict[str, float]:
        """Wall seconds, events and instructions simulated, and their rates."""
        instr = sum(int(v.cpu[S_INSTR]) for v in self.host.hypervisor.vcpus)
        wall = max(self.wall_s, 1e-9)
        return {
            "wall_s": self.wall_s,
            "events": self.events,
            "instructions": instr,
            "instructions_per_s": instr / wall,
            "events_per_s": self.events / wall,
            "sim_time_s": self.elapsed / self.hw.freq_hz,
        }
