"""The scheduler interface the hypervisor's pCPUs call.

A scheduler decides which runnable vCPU each physical CPU runs next and for how
long. The pCPU calls :meth:`Scheduler.pick` at every scheduling point (the end
of a time slice, a block or yield, or a reschedule request) and reports how
long the vCPU ran with :meth:`Scheduler.ran`; the hypervisor reports wake-ups
and blocks. A scheduler asks a pCPU to reschedule now with ``host.kick(pcpu)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..hypervisor import Hypervisor, PCpu
    from ..vcpu import VCpu


class Scheduler(ABC):
    """Base class of vCPU scheduling policies.

    A policy keeps what it knows of each vCPU in its own record (:meth:`new_record`,
    :meth:`record`), never on the vCPU.

    Examples
    --------
    >>> from model.host import Host
    >>> from model.domain import DomainConfig
    >>> from model.workloads import spin
    >>> from model.sched import CreditScheduler
    >>> host = Host(pcpus=1, scheduler=CreditScheduler())
    >>> v = host.add_guest(DomainConfig("g", "pv"), spin()).vcpus[0]
    >>> host.hypervisor.scheduler.record(v).processor
    0
    """

    name = "base"

    def attach(self, host: Hypervisor) -> None:
        """Called once with the hypervisor before the run (start periodic processes here)."""
        self.host = host
        self.env = host.env
        self.ms = host.hw.freq_hz / 1000.0  # cycles per millisecond
        #: the scheduler's own record of each vCPU (:meth:`new_record`), in the order added
        self._records: dict[VCpu, object] = {}

    def add(self, vcpu: VCpu) -> None:
        """A new vCPU (not yet runnable): the scheduler makes its record of it."""
        self._records[vcpu] = self.new_record(vcpu)

    def new_record(self, vcpu: VCpu) -> object:
        """The scheduler's per-vCPU state for a new ``vcpu`` (None: a policy without any).
        Only the scheduler reads or writes it; nothing is kept on the vCPU."""
        return None

    def record(self, vcpu: VCpu) -> object:
        """The scheduler's record of ``vcpu`` (for tests and inspection)."""
        return self._records[vcpu]

    @abstractmethod
    def wake(self, vcpu: VCpu) -> None:
        """``vcpu`` became runnable (started, or woken from a block)."""

    @abstractmethod
    def sleep(self, vcpu: VCpu) -> None:
        """``vcpu`` blocked, or finished its workload."""

    @abstractmethod
    def pick(self, pcpu: PCpu) -> tuple[VCpu | None, int]:
        """The vCPU ``pcpu`` runs next (None = idle) and its time slice in cycles."""

    @abstractmethod
    def ran(self, vcpu: VCpu, pcpu: PCpu, cycles: int) -> None:
        """``vcpu`` ran ``cycles`` on ``pcpu`` since it was last reported."""

    def yield_(self, vcpu: VCpu) -> None:  # noqa: B027 - optional hook
        """``vcpu`` gave up the CPU voluntarily (it stays runnable)."""

    def allowed(self, vcpu: VCpu, pcpu: PCpu) -> bool:
        aff = vcpu.domain.config.affinity
        return aff is None or pcpu.index in aff
