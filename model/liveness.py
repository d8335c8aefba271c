"""Liveness: what every vCPU is doing or waiting for, and which can never run again.

A stalled guest must never look like an overloaded one: both serve fewer requests. So
at the end of every run (and at any moment, for tests) :func:`liveness` says of each
started vCPU what it does and why:

``running``, ``runnable``  on a pCPU, or waiting for one
``finished``               its workload ended
``waiting``                blocked, and something will wake it: its one-shot timer (armed,
                           with an event that fires at or before the deadline) or I/O in
                           flight (the I/O system answers, as a wake source)
``idle``                   blocked with nothing left to do (a backend with no work)
``stalled``                blocked, and nothing will ever wake it

A ``stalled`` vCPU is reported in the run's summary (``invariants.stalled``) and by the
command line.

Examples
--------
>>> from model.host import Host
>>> from model.domain import DomainConfig
>>> from model.workloads import sleeper
>>> host = Host("nehalem-2.93ghz-ept", pcpus=1)
>>> _ = host.add_guest(DomainConfig("s", "hvm"), sleeper(work_us=10, sleep_us=100))
>>> _ = host.run(seconds=0.001)
>>> [(v.vcpu, v.state.value) for v in liveness(host.hypervisor)]
[('s.v0', 'waiting')]
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .hypervisor import Hypervisor
    from .vcpu import VCpu


class State(StrEnum):
    """What a vCPU is doing at a moment (see the module docstring)."""

    RUNNING = "running"
    RUNNABLE = "runnable"
    FINISHED = "finished"
    WAITING = "waiting"
    IDLE = "idle"
    STALLED = "stalled"


@dataclass(frozen=True)
class VcpuState:
    """One vCPU's state, why, and since when it has been blocked (cycles; None if not)."""

    vcpu: str
    state: State
    why: str
    blocked_since: int | None = None


def _own(hv: Hypervisor, v: VCpu) -> tuple[State, str] | None:
    """What the vCPU's own state says of a block: its timer, or a contradiction."""
    now, freq = hv.env.now, hv.hw.freq_hz
    if v.ioreq is not None:  # the device model's answer resumes it (model.io: waits)
        return None
    if v.pending_irqs:
        return State.STALLED, "an interrupt is pending but the vCPU is blocked"
    timer = v.timer
    if timer.deferred is not None:
        return State.STALLED, (
            "its timer was programmed in a part of a segment that will never run (it blocked first)"
        )
    deadline = timer.deadline
    if deadline is None:
        return None
    if timer.stranded(now):
        return State.STALLED, (
            f"its timer is armed for {deadline / freq:.9f} s but no event will fire it"
        )
    return State.WAITING, f"its timer, due at {deadline / freq:.9f} s"


def liveness(hv: Hypervisor) -> list[VcpuState]:
    """The state of every started vCPU of ``hv``, in creation order."""
    blocked = [v for v in hv.vcpus if v.started and not v.done and not v.runnable]
    why = {v: _own(hv, v) for v in blocked}
    rest = [v for v in blocked if why[v] is None]
    for source in hv.wake_sources:  # each asked once, about those it may concern
        for v, answer in source.waits(rest).items():
            why[v] = why[v] or answer
    out = []
    for v in hv.vcpus:
        if not v.started:
            continue
        if v.done:
            out.append(VcpuState(v.name, State.FINISHED, "its workload ended"))
        elif v.runnable:
            on = v.pcpu
            out.append(
                VcpuState(
                    v.name,
                    State.RUNNING if on is not None else State.RUNNABLE,
                    f"on pCPU {on.index}" if on is not None else "waiting for a pCPU",
                )
            )
        else:
            state, reason = why[v] or (
                (State.IDLE, "a daemon with nothing to do")
                if v.daemon
                else (
                    State.STALLED,
                    "no timer armed and no I/O in flight: nothing will ever wake it",
                )
            )
            out.append(VcpuState(v.name, state, reason, v.blocked_at))
    return out


def stalled(hv: Hypervisor) -> list[VcpuState]:
    """The vCPUs of ``hv`` that are blocked with nothing that will ever wake them."""
    return [s for s in liveness(hv) if s.state is State.STALLED]
