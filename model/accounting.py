"""Cycle accounting: every cycle of every physical CPU, attributed to an entity and a category.

Entity 0 of each pCPU is the hypervisor itself (idle time and work on nobody's
behalf); entity ``uid + 1`` is vCPU ``uid``. The conservation invariant: per
pCPU, the cycles of all entities and categories sum to the elapsed time.
"""

from __future__ import annotations

import numpy as np

from .categories import IDLE, N_CATEGORIES, NAMES
from .errors import InvariantError


class Ledger:
    """Cycles by (pCPU, entity, category).

    Examples
    --------
    >>> led = Ledger(n_pcpus=1, n_vcpus=1)
    >>> led.add_idle(0, 40); led.add(0, 0, np.array([60, 0, 0, 0, 0, 0, 0, 0]))
    >>> led.check(100)
    >>> int(led.by_category()[0])
    60
    """

    def __init__(self, n_pcpus: int, n_vcpus: int) -> None:
        self._buf = np.zeros((n_pcpus, n_vcpus + 1, N_CATEGORIES), np.int64)
        #: (pCPU, entity, category) -> cycles: a view of the entities in use
        self.cycles = self._buf
        self._rows = self._views()

    def grow(self, n_vcpus: int) -> None:
        """Make room for ``n_vcpus`` vCPUs in all (the buffer doubles: adding vCPUs one by
        one costs linear time)."""
        need = n_vcpus + 1
        if need > self._buf.shape[1]:
            buf = np.zeros((self._buf.shape[0], max(need, 2 * self._buf.shape[1]),
                            N_CATEGORIES), np.int64)
            buf[:, :self.cycles.shape[1]] = self.cycles
            self._buf = buf
        if need > self.cycles.shape[1]:
            self.cycles = self._buf[:, :need]
            self._rows = self._views()

    def _views(self) -> list[list[np.ndarray]]:
        """A view of each (pCPU, entity) row: adding to one is twice as fast as indexing."""
        return [list(per_cpu) for per_cpu in self.cycles]

    def add(self, pcpu: int, vcpu_uid: int, breakdown: np.ndarray) -> None:
        row = self._rows[pcpu][vcpu_uid + 1]
        row += breakdown

    def add_idle(self, pcpu: int, cycles: int) -> None:
        self.cycles[pcpu, 0, IDLE] += cycles

    def check(self, elapsed: int) -> None:
        """Raise :class:`InvariantError` unless each pCPU's cycles sum to ``elapsed``."""
        per_cpu = self.cycles.sum(axis=(1, 2))
        bad = np.nonzero(per_cpu != elapsed)[0]
        if bad.size:
            raise InvariantError(
                f"cycle conservation violated on pCPU {int(bad[0])}: accounted "
                f"{int(per_cpu[bad[0]])} cycles, elapsed {elapsed}")

    def by_category(self) -> np.ndarray:
        return self.cycles.sum(axis=(0, 1))

    def vcpu(self, uid: int) -> np.ndarray:
        """Cycles by category that vCPU ``uid`` consumed, summed over pCPUs."""
        return self.cycles[:, uid + 1].sum(axis=0)

    def as_dict(self, row: np.ndarray) -> dict[str, int]:
        return {NAMES[i]: int(row[i]) for i in range(N_CATEGORIES)}


def split(breakdown: np.ndarray, part: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``breakdown`` into a share summing exactly to ``part`` and the rest.

    Examples
    --------
    >>> a, b = split(np.array([3, 1, 0, 0, 0, 0, 0, 0]), 2)
    >>> int(a.sum()), int(b.sum())
    (2, 2)
    """
    total = int(breakdown.sum())
    if part >= total:
        return breakdown.copy(), np.zeros_like(breakdown)
    done = breakdown * part // max(total, 1)
    short = part - int(done.sum())
    order = np.argsort(-(breakdown - done), kind="stable")
    for i in order[:short]:
        done[i] += 1
    return done, breakdown - done
