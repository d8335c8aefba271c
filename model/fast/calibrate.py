"""The fast level's costs, measured on the exact engine and cached on disk.

For each guest entry the fast level runs, one *calibration run* of the exact engine
measures what its requests cost: the entry's guest alone (one replica) on a host with a
pCPU for each of its vCPUs and of the driver domain's (nobody waits for a pCPU: the warm
costs), the same hardware, devices, driver domain, mode, paths and workload, at the same
offered load, for :data:`REQUESTS` requests after a warm-up. From it, in cycles by
category (:mod:`model.categories`):

- ``stretches``: the CPU work of each *stretch* of every request measured (between its
  worker taking it or resuming and blocking or finishing: the server's own accounting,
  :meth:`model.app.server.Server.close_stretch`), by number of stretches (a web request
  that misses the page cache has three, a hit two). The fast level replays one measured
  request drawn at random: the variation is the exact engine's.
- ``per_io``: the guest's CPU outside its stretches (interrupts, the network stack's
  handling of packets received, context switches between workers, halts), per I/O
  request answered to it.
- ``dom0_unit``: the driver domain's CPU (on the guest's behalf and its own), per unit
  of backend work, the units being the path's instruction counts: a request taken from
  a ring (``request_work``), an answer (``response_work``), a packet received (an
  answer and ``netback_rx_copy``).
- ``rates``: what the run counted per request served (the guest's transitions by kind
  and label, its vCPU counters, timers) and per I/O request (the driver domain's).

A calibration is keyed by a digest of the model's code (every ``.py`` and profile file
of :mod:`model`), the calibration scenario and the seed: a change to either measures
again. Entries live in ``$PVSIM_CACHE/fast`` (default ``~/.cache/pvsim/fast``), one
``.npz`` per key.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..app.requests import PART
from ..categories import N_CATEGORIES
from ..errors import PvsimError
from ..hardware import load_profile
from ..io.paths import PATHS, EmulatedPath
from ..io.system import IOParams
from ..modes import is_modified

#: Requests measured by a calibration run (after its warm-up).
REQUESTS = 1500
#: The calibration run's seed (costs belong to a configuration, not to a run's seed).
SEED = 0
_MODEL = Path(__file__).resolve().parents[1]


class CalibrationError(PvsimError):
    """A calibration run measured too little to give a cost."""


@dataclass(frozen=True, eq=False)
class GuestCosts:
    """What a guest entry's requests cost (see the module).

    Attributes
    ----------
    stretches : dict of int to numpy.ndarray
        Stretches per request -> ``(requests, stretches, categories + 1)``: every measured
        request with that many stretches, each stretch's cycles by category and then its
        cycles after the submission of the I/O it ends waiting for (0 for the last).
    per_io : numpy.ndarray
        ``(categories,)`` float: the guest's CPU outside stretches, per I/O answered to it.
    dom0_unit : numpy.ndarray
        ``(categories,)`` float: the driver domain's CPU per instruction of backend work.
    dom0_behalf : float
        The fraction of it on the guest's behalf (the rest is the driver domain's own).
    stages : dict of str to numpy.ndarray
        ``CLASS:read`` or ``CLASS:write`` -> the median stage durations of the guest's I/O
        (:data:`STAGE_NAMES`, cycles): what of the bursts lies on a request's path.
    cold, dom0_cold : numpy.ndarray
        ``(categories,)`` float: the extra cycles of the guest's vCPU, and of a driver
        domain's, after a world switch to it (the TLB refilled, where the mode flushes
        it), beyond the switch's own cost.
    guest_rates : dict of str to float
        Per request served: ``transition:KIND:LABEL`` and ``counter:NAME`` of the guest.
    dom0_rates : dict of str to float
        Per I/O request: the driver domain's, the same keys.
    requests : int
        Requests measured.
    trip : float
        The mean time the guest's vCPU waits for the device model to answer one
        register access of an emulated device (0: it has none), cycles.
    """

    stretches: dict[int, np.ndarray]
    per_io: np.ndarray
    dom0_unit: np.ndarray
    dom0_behalf: float
    cold: np.ndarray
    dom0_cold: np.ndarray
    stages: dict[str, np.ndarray]
    guest_rates: dict[str, float]
    dom0_rates: dict[str, float]
    requests: int
    trip: float = 0.0

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        meta = {"guest_rates": self.guest_rates, "dom0_rates": self.dom0_rates,
                "requests": self.requests, "dom0_behalf": self.dom0_behalf,
                "trip": self.trip}
        np.savez(buf, per_io=self.per_io, dom0_unit=self.dom0_unit, cold=self.cold,
                 dom0_cold=self.dom0_cold,
                 **{f"stage:{k}": v for k, v in self.stages.items()},
                 meta=np.array(json.dumps(meta)),
                 **{f"s{k}": v for k, v in self.stretches.items()})
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> GuestCosts:
        with np.load(io.BytesIO(data)) as z:
            meta = json.loads(str(z["meta"]))
            return cls({int(k[1:]): z[k] for k in z.files if k[0] == "s" and k[1:].isdigit()},
                       z["per_io"], z["dom0_unit"], meta["dom0_behalf"], z["cold"],
                       z["dom0_cold"],
                       {k[6:]: z[k] for k in z.files if k.startswith("stage:")},
                       meta["guest_rates"], meta["dom0_rates"],
                       meta["requests"], meta["trip"])


@functools.cache
def model_digest() -> str:
    """SHA-256 of the model's code and profiles (what a calibration depends on)."""
    h = hashlib.sha256()
    for f in sorted([*_MODEL.rglob("*.py"), *_MODEL.rglob("*.yaml")]):
        h.update(f.relative_to(_MODEL).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def cache_dir() -> Path:
    """Where calibrations are kept: ``$PVSIM_CACHE/fast``, or ``~/.cache/pvsim/fast``."""
    root = os.environ.get("PVSIM_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "pvsim") / "fast"


def calibration_scenario(s, index: int, cold: bool = False):
    """The exact run that measures guest entry ``s.guests[index]`` (see the module): its
    vCPUs pinned each to a pCPU of its own, the driver domain's to others (no world
    switch); with ``cold``, everything on one pCPU (a world switch each time the guest's
    vCPU runs after the driver domain's, or without a driver domain after a second
    replica's)."""
    g = s.guests[index]
    rate = g.workload.params.arrivals.mean_rate_per_s() or 0.0
    measured = min(max(REQUESTS / rate, 0.05), 20.0) if rate > 0 else 1.0
    dd = s.driver_domain.vcpus if s.needs_driver_domain else 0
    n = 1 if cold else g.vcpus + dd
    mine = [0] if cold else list(range(g.vcpus))  # the pCPUs each side may run on
    theirs = [0] if cold else list(range(g.vcpus, g.vcpus + dd))
    return s.model_copy(update={
        "name": "calibrate-cold" if cold else "calibrate",  # a name shared, for the cache
        "seed": SEED,
        "fidelity": "exact",
        "duration": measured * 1.25,
        "guests": [g.model_copy(update={  # a source without a limit: enough requests
            "name": "guest", "count": 2 if cold and not dd else 1, "pinning": mine,
            "workload": g.workload.model_copy(update={
                "params": g.workload.params.model_copy(update={"requests": None})})})],
        "host": s.host.model_copy(update={"pcpus": n}),
        "driver_domain": s.driver_domain.model_copy(update={"pinning": theirs or None}),
        "record": s.record.model_copy(update={"requests": True, "trace": False,
                                              "warmup": measured * 0.25}),
    })


def _key(c) -> str:
    """The cache key of calibration scenario ``c``: the model's code and the scenario's
    identity (a trace by its content, an attachment's path resolved)."""
    data = json.dumps([model_digest(), c.identity()], sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:32]


def costs_of(s, index: int) -> GuestCosts:
    """The costs of guest entry ``s.guests[index]``: from the cache, or measured (and
    cached)."""
    path = cache_dir() / f"{_key(calibration_scenario(s, index))}.npz"
    if path.is_file():
        try:
            return GuestCosts.from_bytes(path.read_bytes())
        except (OSError, ValueError, KeyError):
            pass  # damaged: measured again and overwritten
    costs = measure(s, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(costs.to_bytes())
    tmp.replace(path)
    return costs


def backend_units(path: str, p: IOParams, inbound: bool, write: bool) -> tuple[int, int, int]:
    """The driver domain's work for one I/O request on ``path``, in instructions:
    (taking it from the ring, or emulating its submission's register accesses and
    starting it; answering it, a packet received with a copy; emulating the accesses of
    the guest's interrupt handler to the device's status)."""
    io_path = PATHS[path]
    if not io_path.via_driver_domain:
        return 0, 0, 0
    answer = io_path.response_work(p) + (p.netback_rx_copy if inbound else 0)
    if isinstance(io_path, EmulatedPath):
        take = io_path.device_model_accesses(p) * p.device_model_access + p.device_model_request
        return (0 if inbound else take), answer, p.status_accesses * p.device_model_access
    return (0 if inbound else io_path.request_work(p)), answer, 0


@dataclass
class _Run:
    """One calibration run of the exact engine: the guest's and driver domain's cycles
    by category, its requests, I/O requests and backend work (instructions), and the
    world switches into each side's vCPUs."""

    guest: np.ndarray
    dd: np.ndarray
    requests: list
    n_io: int
    units: int
    trip: float
    behalf: float
    switches_in: tuple[int, int]
    guest_rates: dict[str, float]
    dd_rates: dict[str, float]
    stages: dict[str, np.ndarray]


def _calibration_run(c, entry: str) -> _Run:
    from ..record import record_run
    from ..scenario import build_host
    from ..vectors import STAT_NAMES

    host = build_host(c)
    host.enable_app().log.calibrating = True
    host.record_segments()
    stats = host.run(seconds=c.duration, warmup=c.record.warmup)
    rec = record_run(host, stats)
    io_ = host.io
    dd = io_.driver_domain
    dom = next(d for d in host.domains if d is not dd)  # (the first replica)
    reqs = [r for r in host.app.log.calibrated if r.guest == dom.dom]
    if len(reqs) < 50:
        raise CalibrationError(f"guest entry {entry!r}: its calibration run served "
                               f"{len(reqs)} requests in {c.duration:g} s; the fast level "
                               "needs at least 50 (a rate of 2.5 requests/s or more); run it "
                               "with fidelity: exact")
    b = rec.io.brief
    mine = b["guest"] == dom.dom
    units = trips = 0
    for a in io_.attachments.values():
        for write in (False, True):
            n = int((mine & (b["device"] == a.device.index) & (b["write"] == write)).sum())
            inbound = a.device.network and not write  # a packet received
            units += n * sum(backend_units(a.path, io_.p, inbound, write))
            if isinstance(PATHS[a.path], EmulatedPath):  # its accesses, and the handler's
                trips += n * ((0 if inbound else PATHS[a.path].device_model_accesses(io_.p))
                              + io_.p.status_accesses)
    blocked = sum(q.parts[PART["vcpu_blocked"]] for q in reqs)
    stages = _stages(rec, dom.dom, reqs)
    cycles = lambda d: (sum(rec.vcpu_cycles(v.uid) for v in d.vcpus).astype(np.float64)  # noqa: E731
                        if d is not None else np.zeros(N_CATEGORIES))
    dd_cycles = cycles(dd)
    n_io = int(mine.sum())
    return _Run(
        cycles(dom), dd_cycles, reqs, n_io, units, blocked / trips if trips else 0.0,
        float(rec.behalf_cycles[rec.domains.row_of(dom.dom)]) / max(dd_cycles.sum(), 1),
        _switches_in(rec, [{v.uid for v in dom.vcpus},
                           {v.uid for v in dd.vcpus} if dd is not None else set()]),
        _rates(rec, dom, [v.uid for v in dom.vcpus], len(reqs), STAT_NAMES),
        _rates(rec, dd, [v.uid for v in dd.vcpus], max(n_io, 1), STAT_NAMES) if dd else {},
        stages)


#: The stage durations a calibration measures, per device class and direction (the
#: medians, cycles): the frontend's work after the request is issued (``submit``: issued
#: to ring), the backend's until the device has it (``to_device``: notified to queued;
#: ``wake``: notified to backend), its answer (``answer``: service end to response), the
#: guest's until it takes the answer (``take``: response to completed) and then until its
#: worker runs again (``resume``).
STAGE_NAMES = ("submit", "wake", "to_device", "answer", "take", "resume")


def stage_key(cls: str, write: bool) -> str:
    """The key of :attr:`GuestCosts.stages` for I/O of device class ``cls`` that way.

    Examples
    --------
    >>> stage_key("nic", False), stage_key("disk", True)
    ('nic:read', 'disk:write')
    """
    return f"{cls}:{'write' if write else 'read'}"


def _stages(rec, dom: int, reqs) -> dict[str, np.ndarray]:
    """The median stage durations (:data:`STAGE_NAMES`) of guest ``dom``'s I/O, keyed
    ``CLASS:read`` or ``CLASS:write``; ``resume`` is derived, the same for all: the median
    run queue part of a request less its packet's take, per wait, less a wait's take."""
    r = rec.io.requests
    kinds = dict(zip(rec.devices.id.tolist(), rec.devices.kind.tolist(), strict=True))
    mine = (r["guest"] == dom) & (r["issued"] >= rec.start)
    # the median: the path itself, without the waits behind other work some requests had
    mean = lambda a: float(np.median(a)) if len(a) else 0.0  # noqa: E731
    out = {}
    for dev in np.unique(r["device"][mine]):
        for write in (0, 1):
            m = mine & (r["device"] == dev) & (r["write"] == write)
            if m.any():
                out[stage_key(kinds[int(dev)], bool(write))] = np.array([
                    mean(r["ring"][m] - r["issued"][m]),
                    mean(r["backend"][m] - r["notified"][m]),
                    mean(r["queued"][m] - r["notified"][m]),
                    mean(r["response"][m] - r["service_end"][m]),
                    mean(r["completed"][m] - r["response"][m]), 0.0])
    # the guest's run queue part: the take of each answer and then the worker's resume
    packet = stage_key("nic", False)  # a request's own packet: not a wait's answer
    takes = [v[4] for k, v in out.items() if k != packet]
    waits = np.array([len(q.stretches) - 1 for q in reqs], dtype=np.float64)
    runq = np.array([q.parts[PART["run_queue"]] for q in reqs], dtype=np.float64)
    rx = out.get(packet)
    resume = (np.median(runq) - (rx[4] if rx is not None else 0.0)) / max(waits.mean(), 1e-9) \
        - (np.mean(takes) if takes else 0.0)
    for v in out.values():
        v[5] = max(resume, 0.0)
    return out


def _switches_in(rec, sides: list[set[int]]) -> tuple[int, ...]:
    """World switches (a pCPU running another vCPU than the one it ran last) into each
    side's vCPUs, in the measured period."""
    seg = rec.segments
    seg = seg[np.lexsort((seg[:, 2], seg[:, 0]))]
    new = np.ones(len(seg), bool)
    new[1:] = (seg[1:, 0] != seg[:-1, 0]) | (seg[1:, 1] != seg[:-1, 1])
    new &= seg[:, 2] >= rec.start
    return tuple(int((new & np.isin(seg[:, 1], list(side))).sum()) for side in sides)


def measure(s, index: int) -> GuestCosts:
    """Measure guest entry ``s.guests[index]`` on the exact engine (see the module)."""
    name = s.guests[index].name
    warm = _calibration_run(calibration_scenario(s, index), name)
    cold = _calibration_run(calibration_scenario(s, index, cold=True), name)
    by_n: dict[int, list] = {}
    for r in warm.requests:
        by_n.setdefault(len(r.stretches), []).append(r.stretches)
    stretches = {n: np.array(v, dtype=np.int64) for n, v in by_n.items()}
    inside = sum(v[:, :, :N_CATEGORIES].sum(axis=(0, 1))
                 for v in stretches.values()).astype(np.float64)
    per_io = np.maximum(warm.guest - inside, 0) / max(warm.n_io, 1)
    dom0_unit = warm.dd / max(warm.units, 1)
    # the cold run's extra cycles, per world switch into each side, beyond the switch's
    # own cost (which the fast level charges as it counts the switches)
    hw = load_profile(s.hardware)
    g = s.guests[index]
    extra = []
    for side, (w, c, ws) in enumerate((
            (warm.guest, cold.guest, world_switch(g.mode, hw, is_modified(g.os))),
            (warm.dd, cold.dd, world_switch(s.driver_domain.mode, hw)))):
        n_warm, n_cold = ((len(warm.requests), len(cold.requests)) if side == 0
                          else (max(warm.units, 1), max(cold.units, 1)))
        more = c - w * (n_cold / n_warm) - cold.switches_in[side] * ws
        extra.append(np.maximum(more, 0) / max(cold.switches_in[side], 1))
    return GuestCosts(stretches, per_io, dom0_unit, warm.behalf, extra[0], extra[1],
                      warm.stages, warm.guest_rates, warm.dd_rates, len(warm.requests),
                      warm.trip)


def world_switch(mode: str, hw, modified_os: bool = True) -> np.ndarray:
    """What the exact engine charges a vCPU of ``mode`` for a world switch to it (float)."""
    from ..modes import compile_mode, resolve_mode

    return compile_mode(resolve_mode(mode, hw, modified_os=modified_os),
                        hw).world_switch.astype(np.float64)


def _rates(rec, dom, uids: list[int], per: int, stat_names) -> dict[str, float]:
    out: dict[str, float] = {}
    t = rec.transitions
    for i in np.nonzero(t["dom"] == dom.dom)[0]:
        key = f"transition:{t['kind'][i]}:{t['label'][i]}"
        out[key] = out.get(key, 0.0) + int(t["count"][i]) / per
    rows = rec.vcpus.rows_of(np.array(uids))
    for name in stat_names.values():
        out[f"counter:{name}"] = float(rec.vcpus.counters[name][rows].sum()) / per
    return out
