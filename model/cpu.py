"""The CPU/MMU kernel: executes a chunk of instructions in bulk (numba).

:func:`execute` consumes instructions from ``pos`` until the chunk ends, the cycle
budget is spent, a true page fault needs the guest kernel, or a sensitive operation
needs the hypervisor at the right simulated time (HLT, yield, device I/O). Everything
else is handled inline from numeric tables compiled out of the mode's policy
(:mod:`model.modes`): each sensitive operation adds its row of cycles by category, and
its semantics (a PTE write with Xen's validation, a CR3 load, a TLB flush, a batch
flush) are applied to the machine state. Each memory access is translated through the
vCPU's TLB and, on a miss, a page walk whose length depends on the paging mode.

Hot path inline, cold paths in helpers
--------------------------------------
The loop of :func:`execute` holds what almost every instruction needs (an ALU run, a
TLB hit, a branch) and the sensitive operations, frequent in kernel code. Rare paths
are separate ``@njit`` functions, which numba never inlines (LLVM may): the TLB miss
(walk, shadow fill, fault, LRU fill: :func:`_tlb_miss`), the translation-cache miss
(:func:`model.tcache.tc_miss`), shadow paging's upkeep (:mod:`model.shadow`) and Xen's
walk of a tree it pins or unpins (:func:`model.xenrefs.pin_walk`). Such a helper has
one exit, after a last use of every array argument (``_ = cpu.shape, ...``): numba's
reference-count pruning then drops the atomic incref/decref it otherwise pays per array
per call (a miss-heavy stream was 15% slower). Tiny helpers (:func:`_charge`) are
``inline="always"``. ``benchmarks/cpu_kernel.py`` times the kernel against its copy from
before this rule (``benchmarks/_kernel_before.py``); ``tests/test_kernel.py`` compares.

Constants and packed vectors
----------------------------
PTE bits, address widths and page-table geometry are defined once, in :mod:`model.isa`;
the columns of ``spaces`` and ``ctl`` in :mod:`model.paging`; the layouts of the packed
vectors the kernel works on (``cpu``, ``tlb``, ``policy``, ``costs``, ``tc_all``) in
:mod:`model.vectors` (numba freezes module-level ints: a name costs nothing).
"""

from __future__ import annotations

from numba import njit

from .categories import EMULATION, HYPERVISOR, KERNEL, N_CATEGORIES, PAGE_WALK, USER
from .isa import (
    FIRST_SENSITIVE,
    FRAME_MASK,
    KERNEL_BASE,
    LARGE_PAGE_SHIFT,
    PAGE_SHIFT,
    PT_INDEX_BITS,
    PT_INDEX_MASK,
    PT_LEVELS,
    PTE_G,
    PTE_P,
    PTE_SHADOWED,
    PTE_W,
    VPN_BITS,
    VPN_MASK,
    Op,
)
from .paging import (
    PROTECTED,
    SPACE_DOM,
    SPACE_FLAGS,
    SPACE_ROOT,
    SPACE_SHADOW,
    pte_slot,
    pv_valid,
)
from .shadow import load_root, shadow_path, traced_write
from .tcache import tc_miss
from .vectors import (
    B_ALU,
    B_BRANCH,
    B_BT_RET,
    B_CALL,
    B_LOCKED,
    B_MEM,
    B_PT_ZERO,
    B_RET,
    B_SHADOW_TABLE,
    B_WALK,
    B_WALK_NESTED,
    COUNTS,
    CYCLES,
    DIRECT_MAP_PTE,
    FAULT_NOT_PRESENT,
    FAULT_PROTECTION,
    M_BATCH_LIMIT,
    M_BT,
    M_EARLY_UNSHADOW,
    M_PAGING,
    M_PV,
    M_SHADOW_ROOTS,
    M_SMALL_KERNEL,
    M_WALK_LEVELS,
    NESTED_STRIDE,
    PAGING_NESTED,
    PAGING_SHADOW,
    POL_BASE,
    POL_BATCH,
    POL_MODE,
    POLICY_VECTOR,
    R_CLOCK,
    R_DOM,
    R_FAULT_KIND,
    R_FAULT_VA,
    R_FAULT_WRITE,
    R_LAZY,
    R_PENDING,
    R_SPACE,
    R_TIMER,
    R_TIMER_DELAY,
    R_ZEROED,
    S_BATCHES,
    S_INSTR,
    S_LOCKED,
    S_MEM,
    S_PLAIN_PTE,
    S_PT_ALLOC,
    S_REFUSED,
    S_TLB_HIT,
    S_TLB_MISS,
    S_WALK_REFS,
    ST_BUDGET,
    ST_CHUNK_END,
    ST_FAULT,
    ST_NO_MEMORY,
    ST_STOP,
    TAG_DIRECT,
    TAG_LARGE,
    TAG_PAGE_SHIFT,
    TC_CLOCK,
    TC_STAMP,
    TLB_EMPTY,
    TLB_LRU,
    TLB_PTE,
    TLB_TAG,
)
from .xenrefs import XEN_L1_UPDATE_LOCKED, XEN_TABLE_LOCKED, pin_walk, xen_locked, xen_refs

_ALU, _LOAD, _STORE, _ATOMIC = int(Op.ALU), int(Op.LOAD), int(Op.STORE), int(Op.ATOMIC)
_BRANCH, _CALL, _RET, _CODE = int(Op.BRANCH), int(Op.CALL), int(Op.RET), int(Op.CODE)
_PTE, _CR3, _FLUSH = int(Op.PTE_WRITE), int(Op.CR3_LOAD), int(Op.TLB_FLUSH)
_INVLPG = int(Op.INVLPG)
_LAZY_B, _LAZY_E, _PT_ALLOC = int(Op.LAZY_BEGIN), int(Op.LAZY_END), int(Op.PT_ALLOC)
_PIN, _UNPIN = int(Op.PT_PIN), int(Op.PT_UNPIN)
_PF, _HIDDEN, _TIMER = int(Op.PAGE_FAULT), int(Op.HIDDEN_FAULT), int(Op.TIMER)


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
    """Invalidate the TLB; with ``keep_global`` entries marked global survive.

    Examples
    --------
    >>> from model.vectors import new_tlb
    >>> tlb = new_tlb(4, 2)
    >>> tlb[0, 0] = (2, PTE_P | PTE_G, 1)  # a global translation
    >>> tlb[1, 0] = (4, PTE_P, 1)
    >>> tlb_flush(tlb, True)
    >>> int(tlb[0, 0, TLB_TAG]), int(tlb[1, 0, TLB_TAG])
    (2, -1)
    """
    for s in range(tlb.shape[0]):
        for w in range(tlb.shape[1]):
            if not keep_global or tlb[s, w, TLB_PTE] & PTE_G == 0:
                tlb[s, w, TLB_TAG] = TLB_EMPTY


@njit(cache=True, inline="always")
def _tlb_drop(tlb, tag):
    s = (tag >> TAG_PAGE_SHIFT) % tlb.shape[0]
    for w in range(tlb.shape[1]):
        if tlb[s, w, TLB_TAG] == tag:
            tlb[s, w, TLB_TAG] = TLB_EMPTY


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
def _tlb_miss(va, write, s, tag, cpu, tlb, pt, pt_shadow, spaces, paging, small_kernel,
              levels, base, cost):
    """A memory access that missed the TLB: the cold path (see the module).

    Walks the guest's tables (not for the direct map), fills the shadow entry under
    shadow paging (a hidden fault), charges the walk (``levels`` references for a 4 KiB
    page, one fewer for a large one: the architecture's, whatever the depth of the
    model's tree), then records a true fault in ``cpu[R_FAULT_*]`` or fills a way of set
    ``s`` (an empty one, else the least recently used) with ``tag``. Returns ``(cycles,
    way)``; way -1: a fault.
    """
    used = 0
    cpu[S_TLB_MISS] += 1
    if va >= KERNEL_BASE:
        # the guest kernel's direct map, always present: large global pages (2 MiB, or
        # 4 MiB on x86-32), or (a PV kernel on x86-32) 4 KiB pages a CR3 load flushes
        value = ((va - KERNEL_BASE) >> PAGE_SHIFT) << PAGE_SHIFT | DIRECT_MAP_PTE
        if small_kernel:
            n_guest = levels
            value &= ~PTE_G
        else:
            n_guest = levels - 1
    else:
        n_guest = levels
        page = spaces[cpu[R_SPACE], SPACE_ROOT]
        value = 0
        for level in range(PT_LEVELS - 1, -1, -1):
            e = pt[page, (va >> (PAGE_SHIFT + PT_INDEX_BITS * level)) & PT_INDEX_MASK]
            if e & PTE_P == 0:
                value = -1
                break
            if level == 0:
                value = e
            else:
                page = (e >> PAGE_SHIFT) & FRAME_MASK
        if paging == PAGING_SHADOW and value > 0 and value & PTE_SHADOWED == 0:
            # hidden fault: the VMM fills the shadow entry from the guest's PTE
            used += _charge(cpu, cost, _HIDDEN)
            cpu[R_ZEROED] = 0  # a page fault: no early unshadow (model.shadow)
            value |= PTE_SHADOWED
            pt[page, (va >> PAGE_SHIFT) & PT_INDEX_MASK] = value
            if pt_shadow[page] != cpu[R_DOM] + 1:  # an unshadowed table, shadowed again
                pt_shadow[page] = cpu[R_DOM] + 1
                cpu[CYCLES + HYPERVISOR] += base[B_SHADOW_TABLE]
                used += base[B_SHADOW_TABLE]
    if paging == PAGING_NESTED:
        refs = (n_guest + 1) * NESTED_STRIDE - 1
        c = n_guest * base[B_WALK] + (refs - n_guest) * base[B_WALK_NESTED]
    else:
        refs = n_guest
        c = n_guest * base[B_WALK]
    cpu[S_WALK_REFS] += refs
    cpu[CYCLES + PAGE_WALK] += c
    used += c
    way = -1
    if va < KERNEL_BASE and (value < 0 or (write and value & PTE_W == 0)):
        cpu[R_FAULT_VA] = va
        cpu[R_FAULT_WRITE] = 1 if write else 0
        cpu[R_FAULT_KIND] = FAULT_NOT_PRESENT if value < 0 else FAULT_PROTECTION
        used += _charge(cpu, cost, _PF)
        cpu[R_ZEROED] = 0
    else:
        way = 0
        oldest = tlb[s, 0, TLB_LRU]
        for w in range(tlb.shape[1]):
            if tlb[s, w, TLB_TAG] == TLB_EMPTY:
                way = w
                break
            if tlb[s, w, TLB_LRU] < oldest:
                oldest = tlb[s, w, TLB_LRU]
                way = w
        tlb[s, way, TLB_TAG] = tag
        tlb[s, way, TLB_PTE] = value
    _ = (cpu.shape, tlb.shape, pt.shape, pt_shadow.shape, spaces.shape, base.shape,
         cost.shape)  # one exit: see the module
    return used, way


@njit(cache=True)
def execute(
    op,
    a,
    b,
    pos,
    sub,
    kernel_mode,
    budget,
    cpu,
    tlb,
    policy,
    costs,
    pt,
    pt_free,
    spaces,
    reservations,
    pt_owner,
    pt_shadow,
    ctl,
    tc_all,
):
    """Run instructions ``op/a/b[pos:]`` (``sub`` of ``op[pos]`` done) for up to ``budget`` cycles.

    Parameters
    ----------
    op, a, b, pos, sub, kernel_mode : ndarray, int, bool
        The chunk (:class:`model.isa.Chunk`), where to start, and whether it runs in
        guest kernel mode.
    budget : int
        Cycles available; the instruction that crosses it completes (ALU runs split).
    cpu, tlb, policy, costs, pt, pt_free, spaces, reservations, pt_owner, pt_shadow, ctl, tc_all
        The packed state and tables (see the module); updated in place.

    Returns
    -------
    tuple of int
        ``(pos, sub, status, used)``: where execution stopped, why (``ST_*``), and
        the cycles consumed, which were also added by category to ``cpu[CYCLES:]``.
        On ``ST_FAULT`` the faulting access is at ``pos`` (it re-executes after the
        guest's handler); on ``ST_STOP`` the sensitive instruction at ``pos`` has not
        been charged yet: the caller handles it.

    Examples
    --------
    A few ALU and memory instructions on a fresh address space, natively: the first
    touch of a page walks the four levels (x86-64), the second hits the TLB; a store to an
    unmapped page faults and stops at it.

    >>> import numpy as np
    >>> from model.hardware import load_profile
    >>> from model.isa import PTE_U, ChunkBuilder, make_pte
    >>> from model.modes import compile_mode, resolve_mode
    >>> from model.paging import Memory
    >>> from model.vectors import new_cpu_vector, new_tlb
    >>> hw = load_profile("nehalem-2.93ghz-ept")
    >>> cm = compile_mode(resolve_mode("native", hw), hw)
    >>> mem = Memory(n_data_frames=64, max_pt_pages=16, max_spaces=4)
    >>> space = mem.new_space(dom=1)
    >>> _ = mem.set_pte(space, 0x10, make_pte(3, PTE_P | PTE_W | PTE_U))
    >>> cpu, tlb = new_cpu_vector(1, space), new_tlb(64, 8)
    >>> c = ChunkBuilder().alu(100).load(0x10000).store(0x10008).alu(5).store(0x20000).build()
    >>> tc = np.zeros((2, 2), np.int64)
    >>> pos, sub, status, used = execute(c.op, c.a, c.b, 0, 0, False, 10**6, cpu, tlb,
    ...     cm.policy, cm.costs, mem.pt, mem.pt_free, mem.spaces, mem.reservations,
    ...     mem.pt_owner, mem.pt_shadow, mem.ctl, tc)
    >>> pos, status == ST_FAULT, int(cpu[R_FAULT_VA]) == 0x20000
    (4, True, True)
    >>> int(cpu[S_INSTR]), int(cpu[S_TLB_HIT]), int(cpu[S_TLB_MISS]), int(cpu[S_WALK_REFS])
    (107, 1, 2, 8)
    >>> used == 105 * hw.cost("alu") + 2 * hw.cost("mem") + 8 * hw.cost("walk_ref") + (
    ...     cm.row_total(Op.PAGE_FAULT))
    True
    """
    # unpack the packed tables (views, no copies): fewer arguments make a cheaper call
    mode = policy[POL_MODE:POL_BASE]
    base = policy[POL_BASE:POL_BATCH]
    batch_cost = policy[POL_BATCH:POLICY_VECTOR]
    cost = costs[:, :N_CATEGORIES]
    batchable = costs[:, N_CATEGORIES]
    space_dom = spaces[:, SPACE_DOM]
    space_flags = spaces[:, SPACE_FLAGS]
    tc = tc_all[:-1]
    tc_ctl = tc_all[-1]
    n = op.shape[0]
    cat = KERNEL if kernel_mode else USER
    translated = mode[M_BT] != 0 and kernel_mode
    paging = mode[M_PAGING]
    small_kernel = mode[M_SMALL_KERNEL] != 0
    levels = mode[M_WALK_LEVELS]
    # the direct map's TLB tags: per large page (2 MiB; 4 MiB under two-level 32-bit
    # paging, whose tables hold 1024 entries), or per 4 KiB page (a PV kernel on x86-32)
    kernel_shift = PAGE_SHIFT if small_kernel else (
        LARGE_PAGE_SHIFT + 1 if levels == 2 else LARGE_PAGE_SHIFT)
    kernel_tag = TAG_DIRECT if small_kernel else TAG_DIRECT | TAG_LARGE
    set_mask = tlb.shape[0] - 1  # the number of sets is a power of two
    ways = tlb.shape[1]
    alu = base[B_ALU]
    mem = base[B_MEM]
    # hot counters live in locals and are written back once, after the loop
    clock = cpu[R_CLOCK]
    n_instr = 0
    n_hit = 0
    n_mem = 0
    n_locked = 0
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
            c = left * alu
            if c > budget - used or alu <= 0:  # it does not fit: up to crossing the budget
                take = (budget - used + alu - 1) // alu
                if take > left:
                    take = left
                c = take * alu
            else:
                take = left
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
        if o == _LOAD or o == _STORE or o == _ATOMIC:
            va = a[pos]
            write = o != _LOAD
            if va >= KERNEL_BASE:
                tag = ((va - KERNEL_BASE) >> kernel_shift) << TAG_PAGE_SHIFT | kernel_tag
            else:
                tag = (va >> PAGE_SHIFT) << TAG_PAGE_SHIFT
            s = (tag >> TAG_PAGE_SHIFT) & set_mask
            hit = -1
            for w in range(ways):
                if tlb[s, w, TLB_TAG] == tag:
                    hit = w
                    break
            if hit >= 0 and write and tlb[s, hit, TLB_PTE] & PTE_W == 0:
                # a write through a read-only translation re-walks and faults
                tlb[s, hit, TLB_TAG] = TLB_EMPTY
                hit = -1
            if hit >= 0:
                n_hit += 1
            else:
                c, hit = _tlb_miss(va, write, s, tag, cpu, tlb, pt, pt_shadow, spaces, paging,
                                   small_kernel, levels, base, cost)
                used += c
                if hit < 0:
                    status = ST_FAULT
                    break
            clock += 1
            tlb[s, hit, TLB_LRU] = clock
            if o == _ATOMIC:  # a locked read-modify-write costs the processor's locked_rmw
                ord_cycles += base[B_LOCKED]
                used += base[B_LOCKED]
                n_locked += 1
            else:
                ord_cycles += mem
                used += mem
            n_instr += 1
            n_mem += 1
            pos += 1
            continue
        if o < FIRST_SENSITIVE:
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
                    tc_ctl[TC_CLOCK] += 1
                    if tc[routine, TC_STAMP] == 0:
                        used += tc_miss(tc, tc_ctl, routine, b[pos], base, cpu)
                    tc[routine, TC_STAMP] = tc_ctl[TC_CLOCK]
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
            space = a[pos] >> VPN_BITS if o == _PTE else a[pos]
            if space_dom[space] != cpu[R_DOM]:
                # another domain's address space: refused (Xen: -EPERM; under hvm and full
                # a guest cannot even name another guest's tables)
                cpu[S_REFUSED] += 1
                pos += 1
                continue
        if o == _PTE:
            space = a[pos] >> VPN_BITS
            vpn = a[pos] & VPN_MASK
            value = b[pos]
            pinned = space_flags[space] & PROTECTED != 0
            if (
                pinned
                and mode[M_PV] != 0
                and not pv_valid(reservations, pt_owner, ctl, cpu[R_DOM], value)
            ):
                # Xen refuses the update (mmu_update returns -EPERM); nothing is written
                used += _hypercall_entry(cpu, cost, batch_cost, batchable, mode, o)
                cpu[S_REFUSED] += 1
                pos += 1
                continue
            pslot, pidx, nalloc = pte_slot(pt, spaces, pt_owner, ctl, pt_free, space, vpn, True)
            if pslot < 0:
                status = ST_NO_MEMORY
                break
            guarded = watched = pinned
            if paging == PAGING_SHADOW:
                # traced: a table this domain's VMM shadows (model.shadow), maybe one the
                # guest freed and reused; new tables of a cached root are shadowed too
                watched = spaces[space, SPACE_SHADOW] != 0
                if nalloc and watched:
                    shadow_path(pt, spaces, pt_shadow, space, vpn, space_dom[space])
                guarded = pt_shadow[pslot] == space_dom[space] + 1
            for _ in range(nalloc):
                cpu[S_PT_ALLOC] += 1
                if watched:
                    used += _hypercall_entry(cpu, cost, batch_cost, batchable, mode, _PT_ALLOC)
                    if mode[M_PV] != 0:  # Xen types the new table and takes its reference
                        used += xen_locked(cpu, base, XEN_TABLE_LOCKED)
                else:
                    cpu[CYCLES + KERNEL] += base[B_PT_ZERO]
                    used += base[B_PT_ZERO]
            if guarded:
                kind = o
                if paging == PAGING_SHADOW:
                    kind, value = traced_write(pt, pt_shadow, cpu, pslot, pidx, value,
                                               mode[M_EARLY_UNSHADOW])
                used += _hypercall_entry(cpu, cost, batch_cost, batchable, mode, kind)
                if mode[M_PV] != 0:  # mmu_update's references (model.xenrefs)
                    refs = xen_refs(value) + xen_refs(pt[pslot, pidx]) + XEN_L1_UPDATE_LOCKED
                    used += xen_locked(cpu, base, refs)
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
            if mode[M_PV] != 0 and (o == _PIN or space_flags[space] & PROTECTED != 0):
                # Xen walks the whole tree (model.xenrefs); the unpin of a tree that is
                # not pinned fails without walking it
                c, ok = pin_walk(pt, spaces, ctl, reservations, pt_owner, cpu, base, space,
                                 o == _PIN)
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
                used += load_root(pt, spaces, pt_shadow, ctl, cpu, space, mode[M_SHADOW_ROOTS],
                                  base[B_SHADOW_TABLE])
            tlb_flush(tlb, True)
        elif o == _FLUSH:
            tlb_flush(tlb, True)
        elif o == _INVLPG:
            _tlb_drop(tlb, a[pos] << TAG_PAGE_SHIFT)
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
    cpu[S_LOCKED] += n_locked
    cpu[CYCLES + cat] += ord_cycles
    return pos, sub, status, used


__all__ = ["execute", "tlb_flush"]
