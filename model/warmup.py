"""The warm-up: what a run had counted when its warm-up ended, to be left out.

A scenario's ``record.warmup`` is left out of every statistic of the run: at that moment
(:meth:`model.host.Host.run` schedules it) a :class:`Snapshot` takes every counter the
run record is made of, and :func:`model.record.record_run` records what accrued after it:

- exact: the cycle ledger (the segment under way split at that moment, as at the end of
  the run), the devices' busy channel-time, completions, waits behind other guests, the
  I/O requests and bytes completed, context switches and timers fired;
- to within one run segment: the vCPUs' own counters (instructions, transitions, TLB
  statistics) and the driver domain's cycles on each guest's behalf, which a vCPU counts
  as it executes, ahead of the simulation's clock by at most the segment it runs.

The application requests and I/O requests are kept whole; their statistics count those
that arrived (or were issued) after the warm-up.

Examples
--------
>>> from model.host import Host
>>> from model.domain import DomainConfig
>>> from model.workloads import spin
>>> host = Host(pcpus=1)
>>> _ = host.add_guest(DomainConfig("hog", "pv"), spin())
>>> stats = host.run(seconds=0.002, warmup=0.001)
>>> snap = host.warmup
>>> snap.at * 2 == stats.elapsed, int(snap.cycles.sum()) == snap.at  # one pCPU
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Snapshot:
    """The run's counters at the end of its warm-up (``at``, cycles).

    Attributes
    ----------
    cycles : numpy.ndarray
        The cycle ledger, ``(pcpu, entity, category)``, exactly up to ``at``.
    counters : numpy.ndarray
        Each vCPU's counter vector (by uid), as :attr:`model.vcpu.VCpu.cpu`.
    behalf : dict
        Domain name -> cycles the driver domain had spent on its I/O.
    transitions : dict
        Domain name -> transitions by kind and label (as
        :meth:`model.host.RunStats.transitions`).
    io_totals : dict
        (guest, device) -> [requests, bytes] completed.
    devices : dict
        Device index -> (busy channel-cycles, completed, the contention matrix as
        ``{waiting guest: {holding guest: seconds}}``, waiting request-cycles).
    switches, timers_fired : int
    """

    at: int
    cycles: np.ndarray
    counters: np.ndarray
    behalf: dict[str, int]
    transitions: dict[str, dict[str, dict[str, int]]]
    io_totals: dict[tuple[int, int], tuple[int, int]]
    devices: dict[int, tuple[int, int, dict[int, dict[int, float]], int]]
    switches: int
    timers_fired: int

    @classmethod
    def take(cls, host) -> Snapshot:
        """The counters of ``host`` now."""
        from .host import RunStats

        hv = host.hypervisor
        cycles = hv.ledger.cycles.copy()
        for p in hv.pcpus:
            part = p.in_progress()
            if part is not None:
                cycles[p.index, part[0]] += part[1]
        stats = RunStats(host, with_liveness=False)
        io = host.io
        devices = {}
        if io is not None:
            for dev in io.devices.values():
                busy = dev.busy_cycles()
                q = dev.queue.area_at(host.env.now)
                devices[dev.index] = (busy, dev.completed, dev.contention(), q)
        return cls(
            at=int(host.env.now),
            cycles=cycles,
            counters=np.array([v.cpu for v in sorted(hv.vcpus, key=lambda v: v.uid)]),
            behalf={d.name: stats.driver_domain_cycles(d.name) for d in host.domains},
            transitions={d.name: stats.transitions(d.name) for d in host.domains},
            io_totals={} if io is None else {k: (v[0], v[1]) for k, v in
                                             io.log.totals.items()},
            devices=devices,
            switches=sum(p.switches for p in hv.pcpus),
            timers_fired=hv.timers_fired,
        )
