"""vCPU runstates: how long each vCPU has been running, runnable, blocked or offline.

As Xen's ``struct vcpu_runstate_info`` (``xen/include/public/vcpu.h``, kept by
``vcpu_runstate_change`` in ``xen/common/sched/core.c``), each vCPU is in one of four
states at every moment of simulated time, and the time spent in each is kept:

``running``   current on a pCPU (executing, or paying cycles it ran ahead)
``runnable``  wants to run but waits for a pCPU: the *steal time* its neighbours cause
``blocked``   halted, waiting for an interrupt
``offline``   not started yet, or its workload ended

The four times always add up to the time since 0, so the time of any interval splits
exactly into the four (:meth:`Runstate.at` gives them at any moment). The hypervisor
changes the state (:mod:`model.hypervisor`); the application level reads it to
decompose a request's latency (:mod:`model.app.server`).

Examples
--------
>>> r = Runstate()
>>> r.enter(RUNNABLE, 10); r.enter(RUNNING, 25); r.enter(BLOCKED, 60)
>>> r.at(100)  # running, runnable, blocked, offline
(35, 15, 40, 10)
"""

from __future__ import annotations

RUNNING, RUNNABLE, BLOCKED, OFFLINE = 0, 1, 2, 3
#: State names, indexed by state.
NAMES = ("running", "runnable", "blocked", "offline")


class Runstate:
    """The runstate of one vCPU: its state, since when, and the time spent in each."""

    __slots__ = ("state", "since", "_times")

    def __init__(self) -> None:
        self.state = OFFLINE
        self.since = 0
        self._times = [0, 0, 0, 0]

    def enter(self, state: int, now: int) -> None:
        """The vCPU is in ``state`` from ``now`` on (cycles)."""
        self._times[self.state] += now - self.since
        self.state, self.since = state, now

    def at(self, now: int) -> tuple[int, int, int, int]:
        """Cycles spent running, runnable, blocked and offline from 0 to ``now`` (at or
        after the last change)."""
        t = list(self._times)
        t[self.state] += now - self.since
        return t[0], t[1], t[2], t[3]
