"""Xen's reference counting of the frames a PV guest's page tables map, as locked
cmpxchgs (each the processor's ``locked_rmw``, charged as hypervisor work and counted
in ``xen_locked_ops``).

Xen, always built SMP, counts a reference and, for a writable mapping, a type
reference on the frame of every present L1 entry (Xen 3.x xen/arch/x86/mm.c:
``get_page_from_l1e``, ``put_page_from_l1e``): on pin (``alloc_l1_table``) and unpin
(``free_l1_table``), and on each ``mmu_update``, with the table page's own references
around it (``do_mmu_update``, ``mod_l1_entry``). The CPU/MMU kernel (:mod:`model.cpu`)
charges them inline for an update, and calls :func:`pin_walk` for a pin or an unpin.
"""

from __future__ import annotations

from numba import njit

from .categories import HYPERVISOR
from .isa import PTE_P, PTE_W
from .paging import CTL_NDATA, SPACE_DOM, SPACE_ROOT, leaves, pv_valid
from .vectors import B_LOCKED, B_PIN_TABLE, B_VALIDATE, CYCLES, S_XEN_LOCKED

#: Xen's locked cmpxchgs for one mmu_update of an L1 entry beside the frames' references:
#: the entry's own cmpxchg, and get_page, get_page_type, put_page_type and put_page of the
#: page-table page (do_mmu_update, mod_l1_entry)
XEN_L1_UPDATE_LOCKED = 5
#: ... and per page-table page when a tree is pinned, grown or unpinned: its type and count
#: (alloc_page_type / free_page_type)
XEN_TABLE_LOCKED = 2


@njit(cache=True, inline="always")
def xen_refs(pte):
    """The locked cmpxchgs with which Xen takes (or drops) the references an L1 entry
    holds on its frame: none if it is not present; ``get_page`` (``put_page``), and for a
    writable mapping ``get_page_type`` (``put_page_type``) too."""
    if pte & PTE_P == 0:
        return 0
    return 2 if pte & PTE_W else 1


@njit(cache=True, inline="always")
def xen_locked(cpu, base, n):
    """Charge ``n`` of Xen's locked cmpxchgs as hypervisor work; their cycles."""
    cpu[S_XEN_LOCKED] += n
    c = n * base[B_LOCKED]
    cpu[CYCLES + HYPERVISOR] += c
    return c


@njit(cache=True)
def pin_walk(pt, spaces, ctl, reservations, pt_owner, cpu, base, space, pin):
    """Xen's walk of address space ``space``'s tree on a pin (``pin``) or an unpin: per
    table, and per present entry, whose references it takes on pin (validating each; at
    an invalid one it drops those it took and fails) and drops on unpin. Charges it as
    hypervisor work; returns ``(cycles, whether the pin is accepted)``."""
    entries, tables = leaves(pt, spaces[space, SPACE_ROOT], ctl[CTL_NDATA])
    c = (tables.shape[0] + 1) * base[B_PIN_TABLE]
    refs = XEN_TABLE_LOCKED * (tables.shape[0] + 1)
    ok = True
    if pin:
        c += entries.shape[0] * base[B_VALIDATE]
    dom = spaces[space, SPACE_DOM]
    for i in range(entries.shape[0]):
        if pin and ok and not pv_valid(reservations, pt_owner, ctl, dom, entries[i, 1]):
            ok = False
        if ok:
            refs += xen_refs(entries[i, 1])
    cpu[CYCLES + HYPERVISOR] += c
    c += xen_locked(cpu, base, refs if ok else 2 * refs)
    return c, ok
