"""Shadow paging's state: which guest page tables a VMM shadows, and its cache of roots.

Under shadow paging the hardware walks tables the VMM builds from the guest's. The VMM
write-protects every guest page-table page it shadows, so each guest write to one is
*traced*: it traps, and the VMM emulates it and updates the shadow (the kernel charges it
as the kind of change it makes: :data:`model.isa.Op.PTE_CLEAR`, ``PTE_FILL`` or
``PTE_WRITE``). The model keeps, for each page-table page of the pool, the domain whose
VMM shadows it (``pt_shadow``: ``dom + 1``, 0 for none), and for each address space
whether its root is in its domain's cache of shadow roots (``spaces[:, SPACE_SHADOW]``:
the stamp of its last use, 0 if not cached). A shadow *entry* is the guest PTE's
:data:`model.isa.PTE_SHADOWED` bit: a TLB miss on an entry without it is a hidden fault
that fills it.

What follows from the mechanism, not from a constant:

- **A CR3 load** of a cached root costs the mode's lookup (its ``CR3_LOAD`` row). An
  uncached one is built: each of the space's tables is shadowed
  (``shadow_new_table`` each; estimate: real VMMs shadow a table on its first use, the
  model at the root's first load), and when the domain already caches
  ``shadow_root_cache`` roots the least recently used is evicted: its tables are no
  longer traced and its shadow entries are dropped, so the next time it runs every page
  it touches takes a hidden fault again.
- **Freed page tables stay shadowed.** A guest that frees a page table does not tell
  the VMM; the page goes back to the guest's free list still write-protected, and when
  the guest reuses it (a fork's child, after the previous child exited) every write
  that builds the new tables is traced, before the new root was ever loaded.
- **Early unshadow** (``shadow_early_unshadow``, Xen's ``SHOPT_EARLY_UNSHADOW``): a
  VMM that sees two traced writes of zero in a row to the same table, with no page
  fault between, guesses a teardown and unshadows that table (``check_for_early_unshadow``
  in xen/arch/x86/mm/shadow/hvm.c: "we guess that this is a batch of changes (for
  process destruction) and unshadow the page"); the rest of the teardown's writes to it,
  and its reuse, are plain. Any other traced write, a hidden fault or a true fault
  restarts the count (the vCPU's ``R_ZEROED``). A hidden fault through an unshadowed
  table shadows it again (``shadow_new_table``): its writes are traced from then on.

Examples
--------
>>> import numpy as np
>>> from model.isa import PTE_P, PTE_W, make_pte
>>> from model.paging import Memory
>>> mem = Memory(n_data_frames=64, max_pt_pages=16, max_spaces=4)
>>> s = mem.new_space(dom=1)
>>> _ = mem.set_pte(s, 0x10, make_pte(3, PTE_P | PTE_W))
>>> shadow_root(mem.pt, mem.spaces, mem.pt_shadow, mem.ctl, s, 1, 4)  # 4 tables shadowed
(4, False)
>>> shadow_root(mem.pt, mem.spaces, mem.pt_shadow, mem.ctl, s, 1, 4)  # cached: a lookup
(-1, False)
>>> sorted(np.nonzero(mem.pt_shadow)[0].tolist()), int(mem.pt_shadow[0])  # dom 1's VMM
([0, 1, 2, 3], 2)
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .categories import HYPERVISOR
from .isa import (
    FRAME_MASK,
    PAGE_SHIFT,
    PT_ENTRIES,
    PT_INDEX_BITS,
    PT_INDEX_MASK,
    PT_LEVELS,
    PTE_P,
    PTE_SHADOWED,
    Op,
)
from .paging import CTL_NDATA, CTL_SHADOW_CLOCK, SPACE_DOM, SPACE_ROOT, SPACE_SHADOW, leaves
from .vectors import CYCLES, R_DOM, R_ZEROED, S_SHADOW_BUILT, S_SHADOW_EVICTED

_WRITE, _CLEAR, _FILL = int(Op.PTE_WRITE), int(Op.PTE_CLEAR), int(Op.PTE_FILL)


@njit(cache=True)
def _tables(pt, ctl, root):
    """The page tables of the space under ``root``, root first (:func:`model.paging.leaves`)."""
    below = leaves(pt, root, ctl[CTL_NDATA])[1]
    out = np.empty(below.shape[0] + 1, np.int64)
    out[0] = root
    out[1:] = below
    return out


@njit(cache=True)
def _drop_table(pt, pt_shadow, page):
    """The VMM stops shadowing table ``page``: writes to it are plain, and its shadow
    entries are gone (only leaves carry :data:`PTE_SHADOWED`)."""
    pt_shadow[page] = 0
    for i in range(PT_ENTRIES):
        pt[page, i] &= ~PTE_SHADOWED


@njit(cache=True)
def shadow_root(pt, spaces, pt_shadow, ctl, space, dom, capacity):
    """A CR3 load of ``space`` by domain ``dom`` under shadow paging: a cached root is
    marked used; an uncached one is built, evicting the domain's least recently used
    root when it caches ``capacity`` already (0: no bound). Returns ``(tables newly
    shadowed, whether a root was evicted)``; ``(-1, False)``: the root was cached. A
    root built of tables that are all still shadowed (reused) shadows none."""
    ctl[CTL_SHADOW_CLOCK] += 1
    if spaces[space, SPACE_SHADOW] != 0:
        spaces[space, SPACE_SHADOW] = ctl[CTL_SHADOW_CLOCK]
        return -1, False
    cached = 0
    victim = -1
    for s in range(spaces.shape[0]):
        if spaces[s, SPACE_DOM] == dom and spaces[s, SPACE_SHADOW] != 0:
            cached += 1
            if victim < 0 or spaces[s, SPACE_SHADOW] < spaces[victim, SPACE_SHADOW]:
                victim = s
    evict = cached >= capacity > 0
    if evict:
        unshadow_space(pt, spaces, pt_shadow, ctl, victim, dom)
    spaces[space, SPACE_SHADOW] = ctl[CTL_SHADOW_CLOCK]
    built = 0
    for page in _tables(pt, ctl, spaces[space, SPACE_ROOT]):
        if pt_shadow[page] != dom + 1:
            pt_shadow[page] = dom + 1
            built += 1
    return built, evict


@njit(cache=True)
def load_root(pt, spaces, pt_shadow, ctl, cpu, space, capacity, table_cost):
    """:func:`shadow_root` for the vCPU ``cpu`` loading ``space``: a root built costs
    ``table_cost`` per table shadowed (hypervisor cycles), counted with any eviction in
    the vCPU's statistics. Returns the cycles."""
    tables, evicted = shadow_root(pt, spaces, pt_shadow, ctl, space, cpu[R_DOM], capacity)
    if tables < 0:  # cached
        return 0
    c = tables * table_cost
    cpu[CYCLES + HYPERVISOR] += c
    cpu[S_SHADOW_BUILT] += 1
    cpu[S_SHADOW_EVICTED] += evicted
    return c


@njit(cache=True)
def unshadow_space(pt, spaces, pt_shadow, ctl, space, dom):
    """Drop ``space``'s shadows: its root leaves the cache, its tables are no longer
    traced and its shadow entries are gone (they refill by hidden faults)."""
    spaces[space, SPACE_SHADOW] = 0
    for page in _tables(pt, ctl, spaces[space, SPACE_ROOT]):
        if pt_shadow[page] == dom + 1:
            _drop_table(pt, pt_shadow, page)


@njit(cache=True)
def shadow_path(pt, spaces, pt_shadow, space, vpn, dom):
    """Tables just linked into a cached root on the way to ``vpn`` are shadowed (the
    guest's write of the link is traced, and the VMM starts shadowing the new table)."""
    page = spaces[space, SPACE_ROOT]
    for level in range(PT_LEVELS - 1, 0, -1):
        e = pt[page, (vpn >> (PT_INDEX_BITS * level)) & PT_INDEX_MASK]
        page = (e >> PAGE_SHIFT) & FRAME_MASK
        pt_shadow[page] = dom + 1


@njit(cache=True)
def traced_write(pt, pt_shadow, cpu, page, idx, value, early_unshadow):
    """A guest write of ``value`` to entry ``idx`` of shadowed table ``page``, which the
    VMM traps and emulates: returns ``(op, value)``, the op it is charged as (the change
    it makes: ``PTE_CLEAR``, ``PTE_FILL``, else ``PTE_WRITE``; AA06's ptemod rows) and
    the value to store (propagated to the shadow: a present entry is shadowed). With
    ``early_unshadow``, a second zero in a row to ``page`` unshadows it (see the module)."""
    old = pt[page, idx]
    kind = _WRITE
    if old & PTE_P and not value & PTE_P:
        kind = _CLEAR
    elif value & PTE_P and not old & PTE_P:
        kind = _FILL
    if value & PTE_P:
        value |= PTE_SHADOWED
    if value != 0:
        cpu[R_ZEROED] = 0
    elif cpu[R_ZEROED] != page + 1:
        cpu[R_ZEROED] = page + 1
    elif early_unshadow:
        _drop_table(pt, pt_shadow, page)
        cpu[R_ZEROED] = 0
    return kind, value
