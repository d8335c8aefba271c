"""The :class:`model.record.RunRecord` of a fast-level run (:mod:`model.fast.host` says
where each figure comes from)."""

from __future__ import annotations

import numpy as np

from ..app.requests import app_record_of
from ..categories import IDLE
from ..errors import InvariantError
from ..fidelity import FAST
from ..io.requests import STAGES
from ..liveness import State, VcpuState
from ..record import Engine, IORecord, RunRecord, VcpuTable, device_table
from ..rules import TRANSITION_KINDS
from ..vectors import STAT_NAMES

_QUEUED, _SERVICE_END = STAGES.index("queued"), STAGES.index("service_end")


def _spread(total: int, n: int) -> list[int]:
    """``total`` over ``n`` vCPUs, the remainder to the first ones."""
    return [total // n + (1 if i < total % n else 0) for i in range(n)]


def record_fast(h) -> RunRecord:
    """The record of fast-level host ``h`` after its run."""
    eng, now, start, snap = h.engine, int(h.env.now), h.start, h._snap
    cpus = sorted(eng.cpus, key=lambda c: c.uid)
    row = {c.uid: i for i, c in enumerate(cpus)}
    # requests served and I/O requests completed in the measured period, per guest
    brief = h.app_log.brief()
    io_brief = h.io_log.brief()
    served = {g.dom: int(((brief["guest"] == g.dom) & (brief["end"] >= start)).sum())
              for g in h.guests}
    ios = {g.dom: int((io_brief["guest"] == g.dom).sum()) for g in h.guests}
    counters = {name: [0] * len(cpus) for name in STAT_NAMES.values()}
    trans: dict[tuple[int, str, str], int] = {}

    def charge(dom: int, owners: list, rates: dict[str, float], n: int) -> None:
        for key, rate in rates.items():
            what, rest = key.split(":", 1)
            count = int(round(rate * n))
            if what == "counter":
                for c, k in zip(owners, _spread(count, len(owners)), strict=True):
                    counters[rest][row[c.uid]] += k
            elif count:
                kind, label = rest.split(":", 1)
                trans[dom, kind, label] = trans.get((dom, kind, label), 0) + count

    for g in h.guests:
        charge(g.dom, g.cpus, g.book.costs.guest_rates, served[g.dom])
        if h.dd_cpus:
            charge(h.dd_dom, h.dd_cpus, g.book.costs.dom0_rates, ios[g.dom])
    cycles = eng.ledger() - (snap["ledger"] if snap else 0)
    measured = now - start
    busy = cycles.sum(axis=(1, 2))
    if (busy > measured).any():  # conservation: a pCPU runs one burst at a time
        p = int(np.argmax(busy - measured))
        raise InvariantError(f"pCPU {p} ran {int(busy[p])} cycles of bursts in "
                             f"{measured} cycles")
    cycles[:, 0, IDLE] += measured - busy
    if h.issued != h.io_log.completed + len(h.live):
        raise InvariantError(f"{h.issued} I/O requests issued, {h.io_log.completed} "
                             f"completed and {len(h.live)} in flight")
    behalf0 = snap["behalf"] if snap else {}
    doms = h.domains
    behalf = [eng.behalf.get(int(d), 0) - behalf0.get(int(d), 0) for d in doms.dom]
    totals0 = snap["totals"] if snap else {}
    totals = [(k, (v[0] - totals0.get(k, (0, 0))[0], v[1] - totals0.get(k, (0, 0))[1]))
              for k, v in h.io_log.totals.items()]
    atts = [(g.dom, d.index, g.paths[cls]) for g in h.guests for cls, d in g.devices.items()]
    stages = {"to_device": 0, "at_device": 0, "returning": 0}
    for r in h.live.values():
        stages["returning" if r.t[_SERVICE_END] >= 0 else "at_device" if r.t[_QUEUED] >= 0
               else "to_device"] += 1
    intervals = -(-now // h.width) if h.width else 0
    wall = max(h._wall, 1e-9)
    unfinished = {g.dom: [] for g in h.guests}
    for r in h.in_flight.values():
        unfinished[r.guest].append(r.arrival)
    return RunRecord(
        hardware=h.hw.name,
        freq_hz=h.freq,
        elapsed=now,
        pcpus=len(eng.last_on),
        domains=doms,
        vcpus=VcpuTable.of([c.uid for c in cpus], [c.dom for c in cpus],
                           [int(c.name.rsplit(".v", 1)[1]) for c in cpus],
                           [c.name for c in cpus], [-1] * len(cpus), counters),
        driver_domain=h.dd_dom,
        behalf_cycles=np.array(behalf, dtype=np.int64),
        cycles=cycles,
        transitions={
            "dom": np.array([k[0] for k in trans], dtype=np.int64),
            "kind": np.array([k[1] for k in trans], dtype=object),
            "label": np.array([k[2] for k in trans], dtype=object),
            "count": np.array(list(trans.values()), dtype=np.int64),
        },
        transition_kinds=tuple(TRANSITION_KINDS.values()),
        context_switches=eng.switches - (snap["switches"] if snap else 0),
        timers_fired=0,
        segments=None if eng.segments is None
        else np.frombuffer(eng.segments, dtype=np.int64).reshape(-1, 4),
        devices=device_table(list(h.devices.values()), now, start,
                             snap["devices"] if snap else {}, intervals),
        io=IORecord(
            issued=h.issued,
            completed=h.io_log.completed,
            in_flight=len(h.live),
            in_flight_by_stage=stages,
            totals={"guest": np.array([k[0] for k, _ in totals], dtype=np.int64),
                    "device": np.array([k[1] for k, _ in totals], dtype=np.int64),
                    "requests": np.array([v[0] for _, v in totals], dtype=np.int64),
                    "bytes": np.array([v[1] for _, v in totals], dtype=np.int64)},
            attachments={"guest": np.array([a[0] for a in atts], dtype=np.int64),
                         "device": np.array([a[1] for a in atts], dtype=np.int64),
                         "path": np.array([a[2] for a in atts], dtype=object)},
            requests=h.io_log.columns() if h.io_log.keep else None,
            brief=io_brief,
        ),
        liveness=tuple(_state(h, c) for c in cpus),
        engine=Engine(wall_s=h._wall, events=h.env.scheduled, instructions=0,  # none run
                      instructions_per_s=0.0, events_per_s=h.env.scheduled / wall),
        app=app_record_of(h.app_log, unfinished),
        interval=h.width,
        cpu_busy=np.array([c.busy.bins.values(intervals) for c in cpus],
                          dtype=np.int64).reshape(len(cpus), intervals),
        start=start,
        fidelity=FAST,
    )


def _state(h, c) -> VcpuState:
    if c.state == 2:
        return VcpuState(c.name, State.RUNNING, f"on pCPU {c.pcpu}")
    if c.state == 1:
        return VcpuState(c.name, State.RUNNABLE, "waiting for a pCPU")
    if c.held:
        return VcpuState(c.name, State.WAITING, "the device model's answer to an emulated "
                         "register access", c.since)
    if c.dom == h.dd_dom:
        return VcpuState(c.name, State.IDLE, "a daemon with nothing to do")
    server = next(s for s in h.servers if c in s.guest.cpus)
    if server.queue and server.idle:
        return VcpuState(c.name, State.STALLED, f"{len(server.queue)} requests wait in the "
                         "accept queue while workers wait in accept", c.since)
    if any(w.req is not None and w.cpu is c for w in server.workers):
        return VcpuState(c.name, State.WAITING, "its workers' I/O", c.since)
    n = server.guest.requests
    if n is None or server.sent < n:
        return VcpuState(c.name, State.WAITING, "the next request to arrive", c.since)
    return VcpuState(c.name, State.IDLE, "its request source has sent its last request", c.since)
