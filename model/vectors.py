"""The packed vectors the CPU/MMU kernel (:mod:`model.cpu`) works on: their layouts, and
the allocation of the per-vCPU ones. The modes (:mod:`model.modes`) fill the per-mode
vectors, the vCPU (:mod:`model.vcpu`) owns the per-vCPU ones, and the kernel reads and
writes them all.

PTE bits, address widths and page-table geometry (``PTE_*``, ``PAGE_SHIFT``,
``VPN_BITS``, ``FRAME_MASK``, ``PT_*``, ``KERNEL_BASE``) are defined once, in
:mod:`model.isa`; the columns of ``spaces`` and ``ctl`` in :mod:`model.paging`; the
layouts below, here (numba freezes module-level ints: a name costs nothing, and
:mod:`model.cpu` imports them).

- ``cpu`` (per vCPU, :data:`CPU_VECTOR`): registers ``R_*`` and counters ``S_*``,
  then from :data:`COUNTS` a count per op, from :data:`CYCLES` cycles per category, then
  counters added later (:data:`S_LOCKED`, :data:`S_XEN_LOCKED`).
- ``tlb`` (per vCPU, sets x ways x ``TLB_TAG, TLB_PTE, TLB_LRU``): a tag is
  ``vpn << TAG_PAGE_SHIFT``, or ``page << TAG_PAGE_SHIFT | TAG_DIRECT | TAG_LARGE``
  (``page << TAG_PAGE_SHIFT | TAG_DIRECT``: a 4 KiB page of it, :data:`M_SMALL_KERNEL`)
  for a large page (2 MiB; 4 MiB on x86-32) of the kernel's direct map; its set
  ``(tag >> TAG_PAGE_SHIFT) & (sets - 1)``; the stamp of the last use comes from
  ``cpu[R_CLOCK]``.
- ``policy`` (per mode): mode flags ``M_*``, base costs ``B_*``, cycles by category
  of one hypercall batch, from :data:`POL_MODE`, :data:`POL_BASE`, :data:`POL_BATCH`.
- ``costs`` (per mode, ``N_OPS x N_CATEGORIES + 1``): an op's cycles by category,
  then -1 (it stops the kernel), 0 (it runs inline) or 1 (batchable).
- ``tc_all`` (per domain): a row per kernel routine (``TC_STAMP``, ``TC_SIZE``), then
  the cache's ``TC_USED``, ``TC_CLOCK``.
"""

from __future__ import annotations

import numpy as np

from .categories import N_CATEGORIES
from .isa import N_OPS, PT_LEVELS, PTE_G, PTE_P, PTE_W

# --- per-vCPU vector layout -------------------------------------------------------------
R_SPACE, R_CLOCK, R_LAZY, R_PENDING, R_DOM = 0, 1, 2, 3, 4
R_FAULT_VA, R_FAULT_WRITE, R_FAULT_KIND = 5, 6, 7
S_INSTR, S_TLB_HIT, S_TLB_MISS, S_WALK_REFS, S_BATCHES, S_REFUSED = 8, 9, 10, 11, 12, 13
S_TC_MISS, S_TC_TRANSLATED, S_MEM, S_PT_ALLOC = 14, 15, 16, 17
R_TIMER = 18  # a one-shot timer programmed in this call: cycles after the call began; -1 none
R_TIMER_DELAY = 19  # ... and its delay
S_PLAIN_PTE = 20  # PTE writes to tables nobody watches (plain stores, no hypercall or trap)
S_SHADOW_BUILT, S_SHADOW_EVICTED = 21, 22  # shadow roots built on a CR3 load, and evicted
R_ZEROED = 23  # shadow paging: 1 + the table a traced write last wrote a zero to (0: none)
COUNTS = 24
CYCLES = COUNTS + N_OPS
#: counters added after the cycles (the layout up to them is the one the kernel's reference
#: copy, benchmarks/_kernel_before.py, writes): locked read-modify-writes, the guest's own
#: (Op.ATOMIC) and Xen's on its behalf (the references of PV page-table updates and pins)
S_LOCKED = CYCLES + N_CATEGORIES
S_XEN_LOCKED = S_LOCKED + 1
CPU_VECTOR = S_XEN_LOCKED + 1
STAT_NAMES = {
    S_INSTR: "instructions", S_TLB_HIT: "tlb_hits", S_TLB_MISS: "tlb_misses",
    S_WALK_REFS: "walk_refs", S_BATCHES: "hypercall_batches", S_REFUSED: "pv_refused",
    S_TC_MISS: "tc_misses", S_TC_TRANSLATED: "tc_translated_insns", S_MEM: "mem_accesses",
    S_PT_ALLOC: "pt_pages_allocated", S_PLAIN_PTE: "plain_pte_writes",
    S_SHADOW_BUILT: "shadow_roots_built", S_SHADOW_EVICTED: "shadow_roots_evicted",
    S_LOCKED: "locked_ops", S_XEN_LOCKED: "xen_locked_ops",
}  # fmt: skip
#: Which entries before :data:`COUNTS` are counters (:data:`STAT_NAMES`); the others are
#: registers (what a cost delta leaves alone: :class:`model.vcpu.Burst`, :mod:`model.costs`).
IS_COUNTER = np.isin(np.arange(COUNTS), list(STAT_NAMES))

FAULT_NOT_PRESENT, FAULT_PROTECTION = 1, 2

# --- TLB layout: (sets, ways, [tag, pte, lru stamp]) -----------------------------------
TLB_TAG, TLB_PTE, TLB_LRU = 0, 1, 2
TLB_EMPTY = -1  # the tag of an invalid entry
TAG_PAGE_SHIFT = 1  # a tag is the page number shifted past the direct-map bit
TAG_DIRECT = 1  # bit 0: an entry of the kernel's direct map
TAG_LARGE = 1 << 62  # ... which maps a large page (2 MiB; 4 MiB on x86-32)
DIRECT_MAP_PTE = PTE_G | PTE_W | PTE_P  # the flags of a direct-map translation
NESTED_STRIDE = PT_LEVELS + 1  # a nested walk of n guest levels: (n + 1) * 5 - 1 refs

# --- mode vector layout -----------------------------------------------------------------
M_PAGING, M_BT, M_PV, M_BATCH_LIMIT = 0, 1, 2, 3
#: 1: the guest kernel's direct map is in 4 KiB pages that are not global, so a CR3 load
#: loses its TLB entries (a PV kernel on x86-32, :func:`model.modes.compile_mode`)
M_SMALL_KERNEL = 4
#: shadow paging: how many roots a domain's shadow cache holds (0: no bound), and whether
#: the VMM unshadows a table written two zeros in a row (early unshadow, :mod:`model.shadow`)
M_SHADOW_ROOTS, M_EARLY_UNSHADOW = 5, 6
#: the levels a hardware walk of a 4 KiB translation reads (the architecture's paging mode,
#: :attr:`model.hardware.HardwareProfile.walk_levels`); a large page's walk ends a level
#: earlier. The model's page-table tree always has ``PT_LEVELS``: this is what is charged.
M_WALK_LEVELS = 7
PAGING_DIRECT, PAGING_SHADOW, PAGING_NESTED = 0, 1, 2
MODE_VECTOR = 8

# --- base cost vector layout ------------------------------------------------------------
B_ALU, B_MEM, B_BRANCH, B_CALL, B_RET, B_WALK, B_WALK_NESTED = 0, 1, 2, 3, 4, 5, 6
B_BT_RET, B_BT_TRANSLATE, B_PIN_TABLE, B_VALIDATE, B_TC_CAPACITY, B_PT_ZERO = 7, 8, 9, 10, 11, 12
B_SHADOW_TABLE = 13  # shadowing one guest table when a root is built
B_LOCKED = 14  # a locked read-modify-write (Op.ATOMIC; Xen's cmpxchgs): locked_rmw
BASE_VECTOR = 15

# --- the packed policy vector: mode flags, base costs, cost of one hypercall batch --------
POL_MODE = 0
POL_BASE = MODE_VECTOR
POL_BATCH = POL_BASE + BASE_VECTOR
POLICY_VECTOR = POL_BATCH + N_CATEGORIES

# --- the translation cache: a row per routine, then the control row --------------------
TC_STAMP, TC_SIZE = 0, 1  # per routine: its last use (0: not translated), its size
TC_USED, TC_CLOCK = 0, 1

# --- status ------------------------------------------------------------------------------
ST_CHUNK_END, ST_BUDGET, ST_FAULT, ST_STOP, ST_NO_MEMORY = 0, 1, 2, 3, 4


def new_cpu_vector(dom: int, space: int) -> np.ndarray:
    """A zeroed per-vCPU vector for domain ``dom`` starting in address space ``space``.

    Examples
    --------
    >>> cpu = new_cpu_vector(dom=1, space=0)
    >>> cpu.shape == (CPU_VECTOR,), int(cpu[R_DOM]), int(cpu[R_TIMER])
    (True, 1, -1)
    """
    cpu = np.zeros(CPU_VECTOR, np.int64)
    cpu[R_DOM] = dom
    cpu[R_TIMER] = -1
    cpu[R_SPACE] = space
    return cpu


def new_tlb(sets: int, ways: int) -> np.ndarray:
    """An empty TLB: (sets, ways, [tag, pte, lru stamp]).

    Examples
    --------
    >>> tlb = new_tlb(64, 8)
    >>> tlb.shape, bool((tlb[:, :, TLB_TAG] == TLB_EMPTY).all())
    ((64, 8, 3), True)
    """
    tlb = np.zeros((sets, ways, 3), np.int64)
    tlb[:, :, TLB_TAG] = TLB_EMPTY
    return tlb
