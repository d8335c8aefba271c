"""Round robin: one global FIFO of runnable vCPUs and a fixed quantum.

No weights, caps or boosts: the baseline that shows what the credit scheduler's
policies buy. A waking vCPU goes to the tail; an idle pCPU is kicked.
"""

from __future__ import annotations

from collections import deque

from .base import Scheduler


class RoundRobinScheduler(Scheduler):
    """Round-robin scheduling with a ``quantum_ms`` time slice.

    Examples
    --------
    >>> RoundRobinScheduler(quantum_ms=5).quantum_ms
    5
    """

    name = "round_robin"

    def __init__(self, quantum_ms: float = 30.0) -> None:
        self.quantum_ms = quantum_ms
        self.queue: deque = deque()

    def wake(self, vcpu) -> None:
        if vcpu not in self.queue and vcpu.pcpu is None:
            self.queue.append(vcpu)
        for p in self.host.pcpus:
            if p.current is None and self.allowed(vcpu, p):
                self.host.kick(p)
                break

    def sleep(self, vcpu) -> None:
        if vcpu in self.queue:
            self.queue.remove(vcpu)

    def yield_(self, vcpu) -> None:
        pass

    def pick(self, pcpu):
        cur = pcpu.current
        if cur is not None and cur.runnable:
            self.queue.append(cur)
        for v in self.queue:
            if self.allowed(v, pcpu):
                self.queue.remove(v)
                pcpu.stint_start = self.env.now
                return v, int(self.quantum_ms * self.ms)
        return None, 0

    def ran(self, vcpu, pcpu, cycles) -> None:
        pass
