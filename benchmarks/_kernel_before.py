"""Reference copy of the CPU/MMU kernel as it was before issue 11 (do not edit).

Copied verbatim from ``model/cpu.py`` (everything above ``new_cpu_vector``) and the
compiled helpers of ``model/paging.py`` it calls (``alloc_pt``, ``pte_slot``,
``pv_valid``, ``leaves``, with their constants) at commit
aeb5fb60931b8ce30928e0cf2b50e37e600aaef0; only the relative imports were made
absolute. ``benchmarks/cpu_kernel.py`` times it against the current kernel in the
same process, and ``tests/test_kernel.py`` checks both give identical results, so
that the refactor of the kernel (issue 11, item 5) is measured, not remembered.
The packed-vector layouts (``R_*``, ``S_*``, ``POL_*`` ...) are those of the
current kernel: both read the same vectors.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from model.categories import EMULATION, HYPERVISOR, KERNEL, N_CATEGORIES, PAGE_WALK, USER
from model.isa import FIRST_SENSITIVE, KERNEL_BASE, N_OPS, Op

# fmt: off
# --- from model/paging.py -----------------------------------------------------------
PTE_P = 0x1
PTE_W = 0x2
PTE_U = 0x4
FRAME_MASK = (1 << 40) - 1
PROTECTED = 1

# ctl slots
CTL_NDATA = 0  # number of data frames
CTL_FREE_TOP = 1  # entries on the page-table free stack
CTL_PT_USED = 2  # page-table pages in use (high-water is CTL_PT_NEXT)
CTL_PT_NEXT = 3  # bump pointer into the pool


@njit(cache=True)
def alloc_pt(pt, pt_free, pt_owner, ctl, dom):
    """Take a zeroed page-table page from the pool for domain ``dom``; -1 if full."""
    if ctl[CTL_FREE_TOP] > 0:
        ctl[CTL_FREE_TOP] -= 1
        page = pt_free[ctl[CTL_FREE_TOP]]
    elif ctl[CTL_PT_NEXT] < pt.shape[0]:
        page = ctl[CTL_PT_NEXT]
        ctl[CTL_PT_NEXT] += 1
    else:
        return -1
    pt[page, :] = 0
    pt_owner[page] = dom
    ctl[CTL_PT_USED] += 1
    return page


@njit(cache=True)
def pte_slot(pt, spaces, pt_owner, ctl, pt_free, space, vpn, create):
    """Locate the leaf entry of ``vpn``: returns (page, index, tables allocated).

    With ``create`` missing intermediate tables are allocated; otherwise a
    missing one gives page -1.
    """
    page = spaces[space, 0]
    allocated = 0
    for level in range(3, 0, -1):
        idx = (vpn >> (9 * level)) & 511
        e = pt[page, idx]
        if e & PTE_P == 0:
            if not create:
                return -1, 0, allocated
            new = alloc_pt(pt, pt_free, pt_owner, ctl, spaces[space, 1])
            if new < 0:
                return -2, 0, allocated
            pt[page, idx] = (new << 12) | PTE_P | PTE_W | PTE_U
            allocated += 1
            page = new
        else:
            page = (e >> 12) & FRAME_MASK
    return page, vpn & 511, allocated


@njit(cache=True)
def pv_valid(reservations, pt_owner, ctl, dom, value):
    """Xen's check of one L1 entry: a guest maps only frames it owns, and
    page-table pages only read-only."""
    if value & PTE_P == 0:
        return True
    mfn = (value >> 12) & FRAME_MASK
    page = mfn - ctl[CTL_NDATA]
    if page >= 0:  # a page-table page
        return page < pt_owner.shape[0] and pt_owner[page] == dom and value & PTE_W == 0
    return 0 <= dom < reservations.shape[0] and reservations[dom, 0] <= mfn < reservations[dom, 1]


@njit(cache=True)
def leaves(pt, root, ndata):
    """All present leaf entries under ``root`` as an (n, 2) array of (vpn, pte),
    and the pool indexes of the non-root tables."""
    n = 0
    n_tables = 0
    for sweep in range(2):
        if sweep == 1:
            out = np.zeros((n, 2), np.int64)
            tables = np.zeros(n_tables, np.int64)
            n = 0
            n_tables = 0
        for i4 in range(512):
            e4 = pt[root, i4]
            if e4 & PTE_P == 0:
                continue
            t3 = (e4 >> 12) & FRAME_MASK
            if sweep == 1:
                tables[n_tables] = t3
            n_tables += 1
            for i3 in range(512):
                e3 = pt[t3, i3]
                if e3 & PTE_P == 0:
                    continue
                t2 = (e3 >> 12) & FRAME_MASK
                if sweep == 1:
                    tables[n_tables] = t2
                n_tables += 1
                for i2 in range(512):
                    e2 = pt[t2, i2]
                    if e2 & PTE_P == 0:
                        continue
                    t1 = (e2 >> 12) & FRAME_MASK
                    if sweep == 1:
                        tables[n_tables] = t1
                    n_tables += 1
                    for i1 in range(512):
                        e1 = pt[t1, i1]
                        if e1 & PTE_P == 0:
                            continue
                        if sweep == 1:
                            out[n, 0] = (((i4 << 9 | i3) << 9 | i2) << 9) | i1
                            out[n, 1] = e1
                        n += 1
    return out, tables


# --- from model/cpu.py --------------------------------------------------------------
# --- per-vCPU vector layout -------------------------------------------------------------
R_SPACE, R_CLOCK, R_LAZY, R_PENDING, R_DOM = 0, 1, 2, 3, 4
R_FAULT_VA, R_FAULT_WRITE, R_FAULT_KIND = 5, 6, 7
S_INSTR, S_TLB_HIT, S_TLB_MISS, S_WALK_REFS, S_BATCHES, S_REFUSED = 8, 9, 10, 11, 12, 13
S_TC_MISS, S_TC_TRANSLATED, S_MEM, S_PT_ALLOC = 14, 15, 16, 17
R_TIMER = 18  # a one-shot timer programmed in this call: cycles after the call began; -1 none
R_TIMER_DELAY = 19  # ... and its delay
S_PLAIN_PTE = 20  # PTE writes to tables nobody watches (plain stores, no hypercall or trap)
COUNTS = 24
CYCLES = COUNTS + N_OPS
CPU_VECTOR = CYCLES + N_CATEGORIES
STAT_NAMES = {
    S_INSTR: "instructions", S_TLB_HIT: "tlb_hits", S_TLB_MISS: "tlb_misses",
    S_WALK_REFS: "walk_refs", S_BATCHES: "hypercall_batches", S_REFUSED: "pv_refused",
    S_TC_MISS: "tc_misses", S_TC_TRANSLATED: "tc_translated_insns", S_MEM: "mem_accesses",
    S_PT_ALLOC: "pt_pages_allocated", S_PLAIN_PTE: "plain_pte_writes",
}  # fmt: skip

FAULT_NOT_PRESENT, FAULT_PROTECTION = 1, 2

# --- mode vector layout -----------------------------------------------------------------
M_PAGING, M_BT, M_PV, M_BATCH_LIMIT = 0, 1, 2, 3
PAGING_DIRECT, PAGING_SHADOW, PAGING_NESTED = 0, 1, 2
MODE_VECTOR = 4

# --- base cost vector layout ------------------------------------------------------------
B_ALU, B_MEM, B_BRANCH, B_CALL, B_RET, B_WALK, B_WALK_NESTED = 0, 1, 2, 3, 4, 5, 6
B_BT_RET, B_BT_TRANSLATE, B_PIN_TABLE, B_VALIDATE, B_TC_CAPACITY, B_PT_ZERO = 7, 8, 9, 10, 11, 12
BASE_VECTOR = 13

# --- the packed policy vector: mode flags, base costs, cost of one hypercall batch --------
POL_MODE = 0
POL_BASE = MODE_VECTOR
POL_BATCH = POL_BASE + BASE_VECTOR
POLICY_VECTOR = POL_BATCH + N_CATEGORIES

# --- status ------------------------------------------------------------------------------
ST_CHUNK_END, ST_BUDGET, ST_FAULT, ST_STOP, ST_NO_MEMORY = 0, 1, 2, 3, 4

_ALU, _LOAD, _STORE, _BRANCH, _CALL, _RET, _CODE = 0, 1, 2, 3, 4, 5, 6
_PTE, _CR3, _FLUSH, _INVLPG = int(Op.PTE_WRITE), int(Op.CR3_LOAD), int(Op.TLB_FLUSH), int(
    Op.INVLPG
)
_LAZY_B, _LAZY_E, _PT_ALLOC = int(Op.LAZY_BEGIN), int(Op.LAZY_END), int(Op.PT_ALLOC)
_PIN, _UNPIN = int(Op.PT_PIN), int(Op.PT_UNPIN)
_PF, _HIDDEN, _TIMER = int(Op.PAGE_FAULT), int(Op.HIDDEN_FAULT), int(Op.TIMER)
_PTE_G = 0x100
_PTE_SHADOWED = 1 << 52
_TAG_LARGE = 1 << 62
_SENS = FIRST_SENSITIVE
_KBASE = KERNEL_BASE


@njit(cache=True, inline="always")
def _charge(cpu, cost, o):
    total = 0
    for c in range(N_CATEGORIES):
        v = cost[o, c]
        cpu[CYCLES + c] += v
        total += v
    cpu[COUNTS + o] += 1
    return total


@njit(cache=True, inline="always")
def _charge_batch(cpu, batch_cost):
    total = 0
    for c in range(batch_cost.shape[0]):
        cpu[CYCLES + c] += batch_cost[c]
        total += batch_cost[c]
    cpu[S_BATCHES] += 1
    return total


@njit(cache=True)
def tlb_flush(tlb, keep_global):
    """Invalidate the TLB; with ``keep_global`` entries marked global survive."""
    for s in range(tlb.shape[0]):
        for w in range(tlb.shape[1]):
            if not keep_global or tlb[s, w, 1] & _PTE_G == 0:
                tlb[s, w, 0] = -1


@njit(cache=True, inline="always")
def _tlb_drop(tlb, tag):
    s = (tag >> 1) % tlb.shape[0]
    for w in range(tlb.shape[1]):
        if tlb[s, w, 0] == tag:
            tlb[s, w, 0] = -1


@njit(cache=True, inline="always")
def _hypercall_entry(cpu, cost, batch_cost, batchable, mode, o):
    """Charge one (possibly batched) hypercall entry of op ``o``."""
    used = _charge(cpu, cost, o)
    if batchable[o]:
        if cpu[R_LAZY]:
            cpu[R_PENDING] += 1
            if cpu[R_PENDING] >= mode[M_BATCH_LIMIT]:
                used += _charge_batch(cpu, batch_cost)
                cpu[R_PENDING] = 0
        else:
            used += _charge_batch(cpu, batch_cost)
    return used


@njit(cache=True)
def execute(op, a, b, pos, sub, kernel_mode, budget, cpu, tlb, policy, costs, pt, pt_free,
            spaces, reservations, pt_owner, ctl, tc_all):
    """Run instructions ``op/a/b[pos:]`` (``sub`` of ``op[pos]`` done) for up to ``budget`` cycles.

    Returns ``(pos, sub, status, used)``: where execution stopped, why (``ST_*``),
    and the cycles consumed, which were also added by category to
    ``cpu[CYCLES:]``. On ``ST_FAULT`` the faulting access is at ``pos`` (it
    re-executes after the guest's handler); on ``ST_STOP`` the sensitive
    instruction at ``pos`` has not been charged yet: the caller handles it.
    """
    # unpack the packed tables (views, no copies): fewer arguments make a cheaper call
    mode = policy[POL_MODE:POL_BASE]
    base = policy[POL_BASE:POL_BATCH]
    batch_cost = policy[POL_BATCH:POLICY_VECTOR]
    cost = costs[:, :N_CATEGORIES]
    batchable = costs[:, N_CATEGORIES]
    space_dom = spaces[:, 1]
    space_flags = spaces[:, 2]
    tc = tc_all[:-1]
    tc_ctl = tc_all[-1]
    n = op.shape[0]
    cat = KERNEL if kernel_mode else USER
    translated = mode[M_BT] != 0 and kernel_mode
    paging = mode[M_PAGING]
    set_mask = tlb.shape[0] - 1  # the number of sets is a power of two
    ways = tlb.shape[1]
    alu = base[B_ALU]
    mem = base[B_MEM]
    # hot counters live in locals and are written back once, after the loop
    clock = cpu[R_CLOCK]
    n_instr = 0
    n_hit = 0
    n_mem = 0
    ord_cycles = 0
    used = 0
    status = ST_CHUNK_END
    while pos < n:
        if used >= budget:
            status = ST_BUDGET
            break
        o = op[pos]
        if o == _ALU:
            left = a[pos] - sub
            room = (budget - used + alu - 1) // alu
            take = left if left <= room else room
            c = take * alu
            ord_cycles += c
            used += c
            n_instr += take
            if take < left:
                sub += take
                status = ST_BUDGET
                break
            sub = 0
            pos += 1
            continue
        if o == _LOAD or o == _STORE:
            va = a[pos]
            write = o == _STORE
            if va >= _KBASE:
                tag = (((va - _KBASE) >> 21) << 1) | 1 | _TAG_LARGE
            else:
                tag = (va >> 12) << 1
            s = (tag >> 1) & set_mask
            hit = -1
            for w in range(ways):
                if tlb[s, w, 0] == tag:
                    hit = w
                    break
            if hit >= 0 and write and tlb[s, hit, 1] & 2 == 0:
                # a write through a read-only translation re-walks and faults
                tlb[s, hit, 0] = -1
                hit = -1
            if hit >= 0:
                n_hit += 1
            else:
                cpu[S_TLB_MISS] += 1
                if va >= _KBASE:
                    # the guest kernel's direct map: 2 MiB global pages, always present
                    n_guest = 3
                    value = ((va - _KBASE) >> 12) << 12 | 0x103
                else:
                    n_guest = 4
                    space = cpu[R_SPACE]
                    page = spaces[space, 0]
                    value = 0
                    for level in range(3, -1, -1):
                        e = pt[page, (va >> (12 + 9 * level)) & 511]
                        if e & 1 == 0:
                            value = -1
                            break
                        if level == 0:
                            value = e
                        else:
                            page = (e >> 12) & FRAME_MASK
                    if paging == PAGING_SHADOW and value > 0 and value & _PTE_SHADOWED == 0:
                        # hidden fault: the VMM fills the shadow entry from the guest's PTE
                        used += _charge(cpu, cost, _HIDDEN)
                        value |= _PTE_SHADOWED
                        pt[page, (va >> 12) & 511] = value
                if paging == PAGING_NESTED:
                    refs = (n_guest + 1) * 5 - 1
                    c = n_guest * base[B_WALK] + (refs - n_guest) * base[B_WALK_NESTED]
                else:
                    refs = n_guest
                    c = n_guest * base[B_WALK]
                cpu[S_WALK_REFS] += refs
                cpu[CYCLES + PAGE_WALK] += c
                used += c
                if va < _KBASE and (value < 0 or (write and value & 2 == 0)):
                    cpu[R_FAULT_VA] = va
                    cpu[R_FAULT_WRITE] = 1 if write else 0
                    cpu[R_FAULT_KIND] = FAULT_NOT_PRESENT if value < 0 else FAULT_PROTECTION
                    used += _charge(cpu, cost, _PF)
                    status = ST_FAULT
                    break
                victim = 0
                oldest = tlb[s, 0, 2]
                for w in range(ways):
                    if tlb[s, w, 0] == -1:
                        victim = w
                        break
                    if tlb[s, w, 2] < oldest:
                        oldest = tlb[s, w, 2]
                        victim = w
                hit = victim
                tlb[s, hit, 0] = tag
                tlb[s, hit, 1] = value
            clock += 1
            tlb[s, hit, 2] = clock
            ord_cycles += mem
            used += mem
            n_instr += 1
            n_mem += 1
            pos += 1
            continue
        if o < _SENS:
            c = 0
            if o == _BRANCH:
                c = base[B_BRANCH]
            elif o == _CALL:
                c = base[B_CALL]
            elif o == _RET:
                c = base[B_RET]
                if translated:
                    cpu[CYCLES + EMULATION] += base[B_BT_RET]
                    used += base[B_BT_RET]
            elif o == _CODE:
                if translated:
                    routine = a[pos]
                    tc_ctl[1] += 1
                    if tc[routine, 0] == 0:
                        size = b[pos]
                        while tc_ctl[0] + size > base[B_TC_CAPACITY] and tc_ctl[0] > 0:
                            victim = -1
                            for r in range(tc.shape[0]):
                                if tc[r, 0] != 0 and (victim < 0 or tc[r, 0] < tc[victim, 0]):
                                    victim = r
                            tc_ctl[0] -= tc[victim, 1]
                            tc[victim, 0] = 0
                        tc[routine, 1] = size
                        tc_ctl[0] += size
                        t = size * base[B_BT_TRANSLATE]
                        cpu[CYCLES + EMULATION] += t
                        used += t
                        cpu[S_TC_MISS] += 1
                        cpu[S_TC_TRANSLATED] += size
                    tc[routine, 0] = tc_ctl[1]
                pos += 1
                continue
            cpu[CYCLES + cat] += c
            used += c
            cpu[S_INSTR] += 1
            pos += 1
            continue
        # --- sensitive operations: batchable[o] is -1 (stop), 0 (inline) or 1 (batchable)
        if batchable[o] < 0:
            status = ST_STOP
            break
        cpu[S_INSTR] += 1
        if o == _PTE or o == _PIN or o == _UNPIN or o == _CR3:
            space = a[pos] >> 36 if o == _PTE else a[pos]
            if space_dom[space] != cpu[R_DOM]:
                # another domain's address space: refused (Xen: -EPERM; under hvm and full
                # a guest cannot even name another guest's tables)
                cpu[S_REFUSED] += 1
                pos += 1
                continue
        if o == _PTE:
            space = a[pos] >> 36
            vpn = a[pos] & ((1 << 36) - 1)
            value = b[pos]
            guarded = space_flags[space] & PROTECTED != 0
            if guarded and mode[M_PV] != 0 and not pv_valid(reservations, pt_owner, ctl,
                                                            cpu[R_DOM], value):
                # Xen refuses the update (mmu_update returns -EPERM); nothing is written
                used += _hypercall_entry(cpu, cost, batch_cost, batchable, mode, o)
                cpu[S_REFUSED] += 1
                pos += 1
                continue
            pslot, pidx, nalloc = pte_slot(pt, spaces, pt_owner, ctl, pt_free, space, vpn,
                                           True)
            if pslot < 0:
                status = ST_NO_MEMORY
                break
            for _ in range(nalloc):
                cpu[S_PT_ALLOC] += 1
                if guarded:
                    used += _hypercall_entry(cpu, cost, batch_cost, batchable, mode, _PT_ALLOC)
                else:
                    cpu[CYCLES + KERNEL] += base[B_PT_ZERO]
                    used += base[B_PT_ZERO]
            if guarded:
                used += _hypercall_entry(cpu, cost, batch_cost, batchable, mode, o)
                if paging == PAGING_SHADOW:
                    value = value | _PTE_SHADOWED  # the emulated write propagates to the shadow
            else:
                cpu[CYCLES + KERNEL] += base[B_MEM]
                used += base[B_MEM]
                cpu[S_PLAIN_PTE] += 1
            pt[pslot, pidx] = value
            pos += 1
            continue
        if o == _PIN or o == _UNPIN:
            space = a[pos]
            used += _hypercall_entry(cpu, cost, batch_cost, batchable, mode, o)
            if mode[M_PV] != 0:
                # Xen walks the whole tree: per table, and on pin per present entry
                entries, tables = leaves(pt, spaces[space, 0], ctl[0])
                c = (tables.shape[0] + 1) * base[B_PIN_TABLE]
                ok = True
                if o == _PIN:
                    c += entries.shape[0] * base[B_VALIDATE]
                    for i in range(entries.shape[0]):
                        if not pv_valid(reservations, pt_owner, ctl, space_dom[space],
                                        entries[i, 1]):
                            ok = False
                cpu[CYCLES + HYPERVISOR] += c
                used += c
                if not ok:
                    cpu[S_REFUSED] += 1  # the pin fails with -EINVAL; the tables stay unpinned
                elif o == _PIN:
                    space_flags[space] |= PROTECTED
            if o == _UNPIN:
                space_flags[space] &= ~PROTECTED
            pos += 1
            continue
        used += _hypercall_entry(cpu, cost, batch_cost, batchable, mode, o)
        if o == _TIMER:
            cpu[R_TIMER] = used  # the caller arms it: the deadline is in its time
            cpu[R_TIMER_DELAY] = a[pos]
        elif o == _CR3:
            space = a[pos]
            cpu[R_SPACE] = space
            if paging == PAGING_SHADOW:
                space_flags[space] |= PROTECTED
            tlb_flush(tlb, True)
        elif o == _FLUSH:
            tlb_flush(tlb, True)
        elif o == _INVLPG:
            _tlb_drop(tlb, a[pos] << 1)
        elif o == _LAZY_B:
            cpu[R_LAZY] = 1
        elif o == _LAZY_E:
            cpu[R_LAZY] = 0
            if cpu[R_PENDING] > 0:
                used += _charge_batch(cpu, batch_cost)
                cpu[R_PENDING] = 0
        pos += 1
    cpu[R_CLOCK] = clock
    cpu[S_INSTR] += n_instr
    cpu[S_TLB_HIT] += n_hit
    cpu[S_MEM] += n_mem
    cpu[CYCLES + cat] += ord_cycles
    return pos, sub, status, used
# fmt: on
