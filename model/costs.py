"""Operation costs measured on the exact engine: what the fast fidelity level replays.

:func:`measure` runs an operation on one guest alone on one pCPU of the exact engine, as
``pvsim bench`` runs its ops (:mod:`model.microbench`): ``make(kernel, process)`` gives an
*iteration*, a callable that returns the operation's chunks. ``warm`` iterations run
first (the TLB, the translation cache and the shadows reach their steady state), then
``iterations`` are measured one at a time, each as the difference of the vCPU's whole
vector (:mod:`model.vectors`: cycles by category, instructions, TLB statistics, counts
per op). With ``cold=True`` the TLB is flushed before each measured iteration, as a world
switch to a vCPU without tagged TLB entries leaves it: the cost of the operation when
another vCPU ran just before.

The :class:`Cost` keeps every iteration: :meth:`Cost.mean` is a :class:`model.vcpu.Burst`
of the mean, :meth:`Cost.sample` one measured iteration drawn from a random stream (the
variation the exact engine shows, as a distribution rather than a constant).

Examples
--------
>>> from model.microbench import OPS
>>> c = measure(OPS["null_syscall"].make, "pv", "netburst-3.8ghz-vt", iterations=4)
>>> c.cycles.shape, bool((c.cycles == c.cycles[0]).all())  # warm: every iteration alike
((4, 8), True)
>>> c.mean().total == int(c.cycles[0].sum())
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .categories import N_CATEGORIES, NAMES
from .domain import DomainConfig
from .errors import PvsimError
from .guestos import GuestKernel, Process
from .hardware import DEFAULT_PROFILE, load_profile
from .host import Host, WorkloadContext
from .isa import Chunk
from .vcpu import Burst
from .vectors import COUNTS, CYCLES, IS_COUNTER
from .workloads import enter

__all__ = ["Cost", "measure"]

Iteration = Callable[[], Iterator[Chunk]]


@dataclass(frozen=True, eq=False)
class Cost:
    """An operation's measured iterations (see the module).

    Attributes
    ----------
    mode, hardware : str
    cold : bool
        Whether each iteration started with a flushed TLB.
    deltas : numpy.ndarray
        ``(iterations, CPU_VECTOR)``: what each iteration added to the vCPU's vector
        (registers zeroed).
    """

    mode: str
    hardware: str
    cold: bool
    deltas: np.ndarray

    @property
    def cycles(self) -> np.ndarray:
        """``(iterations, categories)``: each iteration's cycles by category."""
        return self.deltas[:, CYCLES : CYCLES + N_CATEGORIES]

    def breakdown(self) -> dict[str, float]:
        """The mean cycles by category (categories with none left out)."""
        mean = self.cycles.mean(axis=0)
        return {NAMES[i]: float(v) for i, v in enumerate(mean) if v}

    def mean(self) -> Burst:
        """A burst of the mean iteration (each entry rounded to a whole count)."""
        return Burst(np.rint(self.deltas.mean(axis=0)).astype(np.int64))

    def sample(self, rng: np.random.Generator) -> Burst:
        """A burst of one measured iteration, drawn uniformly with ``rng``."""
        return Burst(self.deltas[rng.integers(len(self.deltas))])


def measure(
    make: Callable[[GuestKernel, Process], Iteration],
    mode: str,
    hardware: str = DEFAULT_PROFILE,
    *,
    iterations: int = 20,
    warm: int = 5,
    cold: bool = False,
    seed: int = 0,
) -> Cost:
    """Measure an operation on the exact engine (see the module).

    Parameters
    ----------
    make : callable
        ``make(kernel, process)``: the operation's iteration, as :data:`model.microbench.OPS`
        gives them (``OPS[op].make``).
    mode, hardware : str
        The virtualization mode and hardware profile.
    iterations, warm : int
        Iterations measured, and run before measuring.
    cold : bool
        Flush the TLB before each measured iteration.
    seed : int
        The measuring host's seed.

    Returns
    -------
    Cost
    """
    if iterations < 1 or warm < 0:
        raise PvsimError(f"measure: iterations >= 1 and warm >= 0 (got {iterations}, {warm})")
    hw = load_profile(hardware)
    snaps: list[np.ndarray] = []

    def program(ctx: WorkloadContext) -> Iterator[Chunk]:
        k, v = ctx.kernel, ctx.vcpu
        p = k.spawn()
        iteration = make(k, p)
        yield enter(k, p)
        for _ in range(warm):
            yield from iteration()
        for _ in range(iterations):
            if cold:
                v.flush_tlb()
            snaps.append(v.cpu.copy())  # the program runs on: the vector as of here
            yield from iteration()
        snaps.append(v.cpu.copy())

    host = Host(hw, pcpus=1, seed=seed, memory_mb=1024)
    host.add_guest(DomainConfig("measure", mode=mode, memory_mb=512), program)
    host.run()
    deltas = np.diff(np.array(snaps), axis=0)
    deltas[:, :COUNTS] = np.where(IS_COUNTER, deltas[:, :COUNTS], 0)  # registers zeroed
    return Cost(mode, hw.name, cold, deltas)

