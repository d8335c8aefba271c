"""Where a mode's overhead over native goes, mechanism by mechanism (``pvsim validate``).

For a bench op (:data:`model.microbench.OPS`, measured as lmbench defines it: its
subtraction and units included), :func:`overhead` gives the absolute cost a mode adds to
the native one and splits it by mechanism. Every cycle of an iteration is attributed
once: each sensitive operation by its count times its cost row in the mode (grouped in
:data:`MECHANISMS`: system calls, page-table updates, context and TLB switches, faults,
hidden faults, other privileged operations), the hypercall batches by their count times
the batch cost, the locked operations with which Xen counts its references to the frames
a PV guest's page tables map (their count times ``locked_rmw``), and what is left by
category: page walks, binary translation (the
emulation no operation accounts for: translating, return lookups), the rest of the
hypervisor's work (page-table pinning and validation: what no operation's row holds), and
the guest's own work (kernel and user). A
mechanism's overhead is its cycles in the mode minus its cycles natively; the
mechanisms' overheads add up to the op's.

Examples
--------
>>> o = overhead("fork", "pv", "netburst-2.4ghz")
>>> round(sum(o.by_mechanism.values())) == round(o.cycles - o.native_cycles)
True
>>> o.by_mechanism["page-table updates"] > 0
True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from model.categories import (
    EMULATION,
    HYPERVISOR,
    KERNEL,
    N_CATEGORIES,
    PAGE_WALK,
    TRANSITION,
    USER,
)
from model.costs import measure
from model.hardware import load_profile
from model.isa import N_OPS, Op
from model.microbench import OPS
from model.modes import baseline_mode, compile_mode, resolve_mode
from model.vectors import B_LOCKED, COUNTS, CYCLES, S_BATCHES, S_XEN_LOCKED

#: The sensitive operations each mechanism covers (the others: "other privileged").
MECHANISMS = {
    "system calls": (Op.SYSCALL, Op.SYSRET, Op.IRET),
    "page-table updates": (Op.PTE_WRITE, Op.PTE_CLEAR, Op.PTE_FILL, Op.PT_ALLOC, Op.PT_PIN,
                           Op.PT_UNPIN),
    "context and TLB switches": (Op.CR3_LOAD, Op.TLB_FLUSH, Op.INVLPG, Op.STACK_SWITCH),
    "faults": (Op.PAGE_FAULT, Op.EXC),
    "hidden faults": (Op.HIDDEN_FAULT,),
}
_GROUPED = {int(o) for ops in MECHANISMS.values() for o in ops}
_OTHER = tuple(o for o in range(N_OPS) if o not in _GROUPED)


@dataclass(frozen=True)
class Overhead:
    """One op in one mode against native, per iteration (per the op's unit).

    Attributes
    ----------
    op, mode, hardware : str
    cycles, native_cycles : float
        The op's cycles in the mode and natively.
    freq_hz : float
    by_mechanism : dict of str to float
        The overhead's cycles per mechanism (mode minus native); they sum to
        ``cycles - native_cycles``.
    """

    op: str
    mode: str
    hardware: str
    cycles: float
    native_cycles: float
    freq_hz: float
    by_mechanism: dict[str, float]

    @property
    def overhead_us(self) -> float:
        """The overhead in microseconds."""
        return (self.cycles - self.native_cycles) / self.freq_hz * 1e6


def _attribute(op: str, mode: str, hardware: str) -> tuple[dict[str, float], np.ndarray]:
    """One iteration of ``op`` (no subtraction, not per unit): the cycles of each
    operation group and of the batches, and what is left by category."""
    spec = OPS[op]
    hw = load_profile(hardware)
    cm = compile_mode(resolve_mode(mode, hw), hw)
    d = measure(spec.make, mode, hardware, iterations=spec.iterations,
                warm=spec.warmup).deltas.mean(axis=0)
    counts = d[COUNTS:COUNTS + N_OPS]
    out: dict[str, float] = {}
    attributed = np.zeros(N_CATEGORIES)
    for name, ops in (*MECHANISMS.items(), ("other privileged", _OTHER)):
        rows = counts[list(ops), None] * cm.cost[list(ops)]
        attributed += rows.sum(axis=0)
        out[name] = float(rows.sum())
    batches = d[S_BATCHES] * cm.batch_cost
    out["hypercall batches"] = float(batches.sum())
    rest = d[CYCLES:CYCLES + N_CATEGORIES] - attributed - batches
    xen_locked = d[S_XEN_LOCKED] * cm.base[B_LOCKED]  # charged as hypervisor work
    out["Xen's reference counts"] = float(xen_locked)
    rest[HYPERVISOR] -= xen_locked
    return out, rest


def _leftover(op: str, mode: str, hardware: str) -> np.ndarray:
    """What one iteration of ``op`` spent by category beyond its operations' rows and
    its batches (never negative when the attribution is sound)."""
    return _attribute(op, mode, hardware)[1]


def mechanisms(op: str, mode: str, hardware: str) -> dict[str, float]:
    """Cycles per iteration of ``op`` in ``mode`` by mechanism (see the module), the
    loop its definition subtracts subtracted, per its unit."""
    return dict(_mechanisms(op, mode, hardware))


@cache
def _mechanisms(op: str, mode: str, hardware: str) -> tuple[tuple[str, float], ...]:
    """:func:`mechanisms`, measured once per (op, mode, hardware): the runs are
    deterministic, and native and the subtracted loops recur across ops and modes."""
    spec = OPS[op]
    out, rest = _attribute(op, mode, hardware)
    out["page walks"] = float(rest[PAGE_WALK])
    out["binary translation"] = float(rest[EMULATION])
    out["other hypervisor work"] = float(rest[HYPERVISOR] + rest[TRANSITION])  # pinning ...
    out["guest's own work"] = float(rest[KERNEL] + rest[USER])
    out = {k: v / spec.per for k, v in out.items()}
    if spec.subtract is not None:
        base = mechanisms(spec.subtract, mode, hardware)
        out = {k: v - base[k] for k, v in out.items()}
    return tuple(out.items())


def overhead(op: str, mode: str, hardware: str) -> Overhead:
    """``op``'s overhead in ``mode`` over native (:func:`model.modes.baseline_mode`) on
    ``hardware``, by mechanism."""
    mine, native = mechanisms(op, mode, hardware), mechanisms(op, baseline_mode(), hardware)
    return Overhead(op, mode, hardware, sum(mine.values()), sum(native.values()),
                    load_profile(hardware).freq_hz,
                    {k: mine[k] - native[k] for k in mine})


def overheads(ops: list[str], hardware: str, modes: list[str] | None = None) -> list[Overhead]:
    """:func:`overhead` of each of ``ops`` in each mode (default: every registered mode
    but native) that ``hardware`` can run, op by op."""
    from model.modes import MODES

    hw = load_profile(hardware)
    names = [m for m in (modes or MODES.names()) if m != baseline_mode()]
    return [overhead(op, m, hardware) for op in ops for m in names
            if MODES[m].reason(hw) is None]


def decomposition(o: Overhead, least_us: float = 0.005) -> str:
    """The mechanisms of ``o``'s overhead, largest first, in microseconds (those under
    ``least_us`` either way left out)."""
    parts = sorted(((v, k) for k, v in o.by_mechanism.items()), key=lambda p: -abs(p[0]))
    return ", ".join(f"{k} {v / o.freq_hz * 1e6:+.2f}" for v, k in parts
                     if abs(v) / o.freq_hz * 1e6 >= least_us) or "none"
