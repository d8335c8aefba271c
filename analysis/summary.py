"""The typed summary of a run: what ``summary.json`` holds, built from the run record.

:func:`summarize` builds a :class:`Summary` from a scenario (the run's input) and its
:class:`model.record.RunRecord` (the run's output) alone: it never sees a live host, so a
record from any engine gives a summary. :meth:`Summary.to_dict` is exactly
``summary.json`` (its keys in their order, and its values); :meth:`Summary.from_dict`
reads one back.

The choice for :class:`analysis.results.Results`: ``Results.summary`` stays the plain
dict that ``summary.json`` serializes (the public API: notebooks, plots, the CLI and
``compare`` read it, and a results directory loads back to the same dict), and the typed
object is ``Results.typed_summary``, the one the run built or, for results read from a
directory, parsed from the dict on first use. Code that computes from a summary
(:mod:`analysis.metrics`) reads the typed one.

Examples
--------
>>> from model.scenario import parse_scenario
>>> from analysis.run import simulate
>>> r = simulate(parse_scenario("name: t\\nduration: 10ms\\nguests: [{name: a, "
...                             "workload: {profile: spin}}]"))
>>> t = r.typed_summary
>>> t.guests["a"].mode, t.host.busy_fraction, t.to_dict() == r.summary  # 1 hog, 2 pCPUs
('pv', 0.5, True)
>>> Summary.from_dict(r.summary) == t
True
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model import __version__
from model.categories import DRIVER_DOMAIN, NAMES
from model.fidelity import FAST
from model.io.service import direction
from model.record import RunRecord
from model.scenario import Scenario, guest_names

from .appstats import AppSummary, app_summary
from .reproducibility import Reproducibility, reproducibility

#: What every run checks at its end (cycle and request conservation raise if broken);
#: at the fast level, whose idle time is the rest of each pCPU's and whose requests are
#: conserved by construction, that no pCPU ran bursts for longer than the run.
CHECKED = ("cycle conservation", "request conservation", "liveness")
CHECKED_FAST = ("no pCPU ran two bursts at once", "liveness")


def scenario_hash(s: Scenario) -> str:
    """A stable hash of the resolved scenario (every default filled in)."""
    text = json.dumps(s.identity(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Latency:
    """Request latency percentiles, milliseconds."""

    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @classmethod
    def of(cls, ms: np.ndarray) -> Latency | None:
        """The percentiles of latencies ``ms`` (None if there are none)."""
        if len(ms) == 0:
            return None
        p = np.percentile(ms, [50, 95, 99])
        return cls(float(ms.mean()), float(p[0]), float(p[1]), float(p[2]))


@dataclass
class Stream:
    """The completed I/O requests of one device and direction of a guest (``ssd0:read``,
    ``nic0:send``: no dot, so that a dotted path of summary.json names one): how many,
    and their latency."""

    requests: int
    latency: Latency

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, **vars(self.latency)}

    @classmethod
    def from_dict(cls, d: dict) -> Stream:
        return cls(d["requests"], Latency(d["mean_ms"], d["p50_ms"], d["p95_ms"], d["p99_ms"]))


@dataclass
class GuestIO:
    """A guest's completed I/O: requests, bytes, throughput and (when requests are
    kept and some completed) latency, pooled and per stream: per device and direction,
    since a pooled percentile mixes requests as unlike as a received packet and a disk
    read."""

    requests: int
    bytes: int
    throughput_mbps: float
    latency: Latency | None = None
    streams: dict[str, Stream] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "requests": self.requests,
            "bytes": self.bytes,
            "throughput_mbps": self.throughput_mbps,
        }
        out |= vars(self.latency) if self.latency is not None else {}
        if self.streams:
            out["streams"] = {k: v.to_dict() for k, v in self.streams.items()}
        return out

    @classmethod
    def from_dict(cls, d: dict) -> GuestIO:
        lat = (
            Latency(d["mean_ms"], d["p50_ms"], d["p95_ms"], d["p99_ms"])
            if ("mean_ms" in d)
            else None
        )
        streams = {k: Stream.from_dict(v) for k, v in d.get("streams", {}).items()}
        return cls(d["requests"], d["bytes"], d["throughput_mbps"], lat, streams)


@dataclass
class GuestSummary:
    """One guest (a replica of a scenario's guest entry, ``spec``)."""

    spec: str
    mode: str
    cpu_s: dict[str, float]
    transitions: dict[str, dict[str, int]]
    instructions: int
    finished_s: float | None
    devices: dict[str, str]
    io: GuestIO | None = None
    app: AppSummary | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "spec": self.spec,
            "mode": self.mode,
            "cpu_s": self.cpu_s,
            "transitions": self.transitions,
            "instructions": self.instructions,
            "finished_s": self.finished_s,
            "devices": self.devices,
        }
        if self.io is not None:
            out["io"] = self.io.to_dict()
        if self.app is not None:
            out["app"] = self.app.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict) -> GuestSummary:
        return cls(
            d["spec"],
            d["mode"],
            d["cpu_s"],
            d["transitions"],
            d["instructions"],
            d["finished_s"],
            d["devices"],
            GuestIO.from_dict(d["io"]) if "io" in d else None,
            AppSummary.from_dict(d["app"]) if "app" in d else None,
        )


@dataclass
class DeviceSummary:
    """One shared device: utilization, requests served, mean queue length, and the
    seconds each guest waited behind each other (``contention_s[waiting][holding]``)."""

    kind: str
    channels: int
    utilization: float
    completed: int
    mean_queue: float
    contention_s: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, d: dict) -> DeviceSummary:
        return cls(
            d["kind"],
            d["channels"],
            d["utilization"],
            d["completed"],
            d["mean_queue"],
            d["contention_s"],
        )


@dataclass
class EngineSummary:
    """What the run cost the machine that ran it (differs between runs of one seed)."""

    wall_s: float
    events: int
    instructions: int
    instructions_per_s: float
    events_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class HostSummary:
    """The host: its pCPUs and how busy they were, the driver domain, and every cycle
    by category (seconds), the driver domain's all in its category: ``cpu_s`` sums to
    pCPUs x the run, and ``cpu_s["driver_domain"]`` is ``driver_domain_s`` (of which the
    guests' ``cpu_s["driver_domain"]`` is the part on their behalf)."""

    pcpus: int
    busy_fraction: float
    driver_domain_s: float
    driver_domain: str | None
    driver_domain_pinning: list[int] | None
    cpu_s: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class HypervisorSummary:
    """Every guest's transitions summed, by kind and label (most frequent first), and
    the scheduler's activity; serialized as one mapping, the kinds first."""

    transitions: dict[str, dict[str, int]]
    context_switches: int
    timers_fired: int

    def to_dict(self) -> dict[str, Any]:
        return self.transitions | {
            "context_switches": self.context_switches,
            "timers_fired": self.timers_fired,
        }

    @classmethod
    def from_dict(cls, d: dict) -> HypervisorSummary:
        kinds = {k: v for k, v in d.items() if k not in ("context_switches", "timers_fired")}
        return cls(kinds, d["context_switches"], d["timers_fired"])


@dataclass
class IOSummary:
    """Request conservation: ``issued = completed + in_flight``."""

    issued: int
    completed: int
    in_flight: int
    in_flight_by_stage: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class AppOverview:
    """The application level of a run: the warm-up excluded from its statistics and, per
    guest entry that serves requests, its replicas' requests pooled."""

    warmup_s: float
    groups: dict[str, AppSummary]

    def to_dict(self) -> dict[str, Any]:
        return {"warmup_s": self.warmup_s,
                "groups": {n: g.to_dict() for n, g in self.groups.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> AppOverview:
        return cls(d["warmup_s"], {n: AppSummary.from_dict(g) for n, g in d["groups"].items()})


@dataclass
class Stalled:
    """A vCPU blocked at the end with nothing that will ever wake it."""

    vcpu: str
    blocked_since_s: float
    why: str


@dataclass
class Invariants:
    """What the run checked, the stalled vCPUs, and every vCPU's state at the end
    (``"state: why"``)."""

    checked: list[str]
    stalled: list[Stalled]
    vcpus_at_end: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": list(self.checked),
            "stalled": [vars(s) for s in self.stalled],
            "vcpus_at_end": self.vcpus_at_end,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Invariants:
        return cls(list(d["checked"]), [Stalled(**s) for s in d["stalled"]], d["vcpus_at_end"])


@dataclass
class FidelitySummary:
    """Which engine made the run (``level``, :mod:`model.fidelity`) and, for the fast
    level, what it does not model and its bounds against the exact level
    (:data:`model.fast.NOT_MODELLED`, :data:`model.fast.BOUNDS`)."""

    level: str
    not_modelled: list[str]
    bounds: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "not_modelled": list(self.not_modelled),
                "bounds": list(self.bounds)}

    @classmethod
    def of(cls, level: str) -> FidelitySummary:
        if level == FAST:
            from model.fast import BOUNDS, NOT_MODELLED

            return cls(level, list(NOT_MODELLED), list(BOUNDS))
        return cls(level, [], [])


@dataclass
class Summary:
    """The headline figures of a run (``summary.json``): see the module docstring.

    ``engine`` and ``reproducibility`` describe the machine and installation that made the
    run (:data:`analysis.reproducibility.MACHINE_BLOCKS`); ``reproducibility`` is None in a
    ``summary.json`` written before pvsim recorded it.
    """

    pvsim_version: str
    scenario: str
    scenario_hash: str
    seed: int
    hardware: str
    sim_time_s: float
    warmup_s: float
    engine: EngineSummary
    reproducibility: Reproducibility | None
    host: HostSummary
    guests: dict[str, GuestSummary]
    devices: dict[str, DeviceSummary]
    hypervisor: HypervisorSummary
    io: IOSummary | None
    invariants: Invariants
    app: AppOverview | None = None
    fidelity: FidelitySummary | None = None  # None in a summary.json written before it

    def to_dict(self) -> dict[str, Any]:
        """``summary.json`` as a dict (keys in the file's order)."""
        return {
            "pvsim_version": self.pvsim_version,
            "scenario": self.scenario,
            "scenario_hash": self.scenario_hash,
            "seed": self.seed,
            "hardware": self.hardware,
            "sim_time_s": self.sim_time_s,
            "warmup_s": self.warmup_s,
            **({} if self.fidelity is None else {"fidelity": self.fidelity.to_dict()}),
            "engine": self.engine.to_dict(),
            **({} if self.reproducibility is None
               else {"reproducibility": self.reproducibility.to_dict()}),
            "host": self.host.to_dict(),
            "guests": {n: g.to_dict() for n, g in self.guests.items()},
            "devices": {n: d.to_dict() for n, d in self.devices.items()},
            "hypervisor": self.hypervisor.to_dict(),
            "io": None if self.io is None else self.io.to_dict(),
            "invariants": self.invariants.to_dict(),
        } | ({} if self.app is None else {"app": self.app.to_dict()})

    @classmethod
    def from_dict(cls, d: dict) -> Summary:
        """The typed summary of a ``summary.json`` read back."""
        return cls(
            d["pvsim_version"],
            d["scenario"],
            d["scenario_hash"],
            d["seed"],
            d["hardware"],
            d["sim_time_s"],
            d["warmup_s"],
            EngineSummary(**d["engine"]),
            Reproducibility.from_dict(d["reproducibility"]) if "reproducibility" in d else None,
            HostSummary(**d["host"]),
            {n: GuestSummary.from_dict(g) for n, g in d["guests"].items()},
            {n: DeviceSummary.from_dict(v) for n, v in d["devices"].items()},
            HypervisorSummary.from_dict(d["hypervisor"]),
            None if d["io"] is None else IOSummary(**d["io"]),
            Invariants.from_dict(d["invariants"]),
            AppOverview.from_dict(d["app"]) if "app" in d else None,
            FidelitySummary(**d["fidelity"]) if "fidelity" in d else None,
        )


# --- from a record ------------------------------------------------------------------------
def summarize(s: Scenario, rec: RunRecord) -> Summary:
    """The summary of the run of scenario ``s`` that ``rec`` records."""
    freq = rec.freq_hz
    guests = {name: _guest(s, rec, name, i) for name, i in guest_names(s)}
    warmup = s.record.warmup or 0.0
    groups = {}
    for g in s.guests:
        a = app_summary(rec, [rec.domains.id_of(n) for n, i in guest_names(s)
                              if s.guests[i].name == g.name], warmup)
        if a is not None:
            groups[g.name] = a
    dd = rec.driver_domain
    ledger = rec.cycles.sum(axis=(0, 1))
    if dd is not None:  # the driver domain's own cycles, whatever it ran, are its category
        own = rec.domain_cycles(dd)
        ledger = ledger - own
        ledger[DRIVER_DOMAIN] += own.sum()
    eng = rec.engine
    return Summary(
        pvsim_version=__version__,
        scenario=s.name,
        scenario_hash=scenario_hash(s),
        seed=s.seed,
        hardware=s.hardware,
        sim_time_s=rec.elapsed / freq,
        warmup_s=rec.start / freq,
        engine=EngineSummary(
            eng.wall_s, eng.events, eng.instructions, eng.instructions_per_s, eng.events_per_s
        ),
        reproducibility=reproducibility(rec.fidelity),
        host=HostSummary(
            pcpus=s.host.pcpus,
            busy_fraction=rec.busy_fraction(),
            driver_domain_s=float(ledger[DRIVER_DOMAIN]) / freq,
            driver_domain=None if dd is None else rec.domains.name_of(dd),
            driver_domain_pinning=s.driver_domain.pinning if dd is not None else None,
            cpu_s={NAMES[i]: float(ledger[i]) / freq for i in range(len(NAMES))},
        ),
        guests=guests,
        devices=_devices(rec),
        hypervisor=_hypervisor(rec, guests),
        io=None
        if rec.io is None
        else IOSummary(
            rec.io.issued, rec.io.completed, rec.io.in_flight, dict(rec.io.in_flight_by_stage)
        ),
        invariants=Invariants(
            list(CHECKED_FAST if rec.fidelity == FAST else CHECKED),
            [Stalled(v.vcpu, v.blocked_since / freq, v.why) for v in rec.stalled],
            {v.vcpu: f"{v.state.value}: {v.why}" for v in rec.liveness},
        ),
        app=AppOverview(warmup, groups) if groups else None,
        fidelity=FidelitySummary.of(rec.fidelity),
    )


def _guest(s: Scenario, rec: RunRecord, name: str, i: int) -> GuestSummary:
    freq = rec.freq_hz
    dom = rec.domains.id_of(name)
    row = rec.domains.row_of(dom)
    cycles = {NAMES[k]: int(c) for k, c in enumerate(rec.domain_cycles(dom))}
    behalf = int(rec.behalf_cycles[row])
    if behalf:
        cycles["driver_domain"] = behalf
    vc = rec.vcpus
    mine = vc.rows_of(vc.of_domain(dom))
    done = vc.finished_at[mine]
    io = rec.io
    devices = {}
    if io is not None:
        at = io.attachments
        for d, path in zip(
            at["device"][at["guest"] == dom], at["path"][at["guest"] == dom], strict=True
        ):
            devices[rec.devices.name_of(d)] = path
    entry = GuestSummary(
        spec=s.guests[i].name,
        mode=s.guests[i].mode,
        cpu_s={k: v / freq for k, v in cycles.items() if v and k != "idle"},
        transitions=_transitions(rec, dom),
        instructions=int(vc.counters["instructions"][mine].sum()),
        finished_s=None if (done < 0).any() or not len(done) else int(done.max()) / freq,
        devices=devices,
        app=app_summary(rec, [dom], s.record.warmup or 0.0),
    )
    if io is not None:
        t = io.totals
        mine_t = t["guest"] == dom
        n, nbytes = int(t["requests"][mine_t].sum()), int(t["bytes"][mine_t].sum())
        entry.io = GuestIO(n, nbytes, nbytes * 8 / (rec.measured / freq) / 1e6)
        c = io.brief
        sel = c["guest"] == dom
        ms = c["latency"] / freq * 1e3
        entry.io.latency = Latency.of(ms[sel])
        entry.io.streams = _streams(rec, c, sel, ms)
    return entry


def _streams(rec: RunRecord, c: dict, sel: np.ndarray, ms: np.ndarray) -> dict[str, Stream]:
    """The selected requests' latency per device and direction, devices in the record's
    order, reads (receives) before writes (sends)."""
    out = {}
    dv = rec.devices
    for k in range(len(dv)):
        mine = sel & (c["device"] == dv.id[k])
        for write in (False, True):
            these = ms[mine & ((c["write"] != 0) == write)]
            if len(these):
                key = f"{dv.name[k]}:{direction(str(dv.kind[k]), write)}"
                out[key] = Stream(len(these), Latency.of(these))
    return out


def _transitions(rec: RunRecord, dom: int) -> dict[str, dict[str, int]]:
    """Domain ``dom``'s transitions by kind and label, in the order they were counted."""
    t = rec.transitions
    out: dict[str, dict[str, int]] = {kind: {} for kind in rec.transition_kinds}
    for i in np.nonzero(t["dom"] == dom)[0]:
        counts = out.setdefault(str(t["kind"][i]), {})
        label = str(t["label"][i])
        counts[label] = counts.get(label, 0) + int(t["count"][i])
    return out


def _devices(rec: RunRecord) -> dict[str, DeviceSummary]:
    dv = rec.devices
    out = {}
    for k in range(len(dv)):
        dev = int(dv.id[k])
        contention: dict[str, dict[str, float]] = {}
        waiting, holding, seconds = dv.contention(dev)
        for a, b, w in zip(
            rec.domains.names_of(waiting).tolist(),
            rec.domains.names_of(holding).tolist(),
            seconds.tolist(),
            strict=True,
        ):
            contention.setdefault(a, {})[b] = w
        out[str(dv.name[k])] = DeviceSummary(
            kind=str(dv.kind[k]),
            channels=int(dv.channels[k]),
            utilization=float(dv.utilization[k]),
            completed=int(dv.completed[k]),
            mean_queue=float(dv.queue_cycles[k] / max(rec.measured, 1)),
            contention_s=contention,
        )
    return out


def _hypervisor(rec: RunRecord, guests: dict[str, GuestSummary]) -> HypervisorSummary:
    """Host-wide transition counts (every guest's, summed) and scheduler activity."""
    out: dict[str, dict[str, int]] = {}
    for g in guests.values():
        for kind, counts in g.transitions.items():
            agg = out.setdefault(kind, {})
            for label, n in counts.items():
                agg[label] = agg.get(label, 0) + n
    out = {k: dict(sorted(v.items(), key=lambda kv: -kv[1])) for k, v in out.items()}
    return HypervisorSummary(out, rec.context_switches, rec.timers_fired)
