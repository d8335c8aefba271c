"""TLB hits and misses, walk lengths per paging mode, shadow fills, PV validation, batching."""

from __future__ import annotations

import numpy as np

from model.cpu import tlb_flush
from model.hardware import load_profile
from model.isa import PTE_P, PTE_U, PTE_W, ChunkBuilder, Op, make_pte, pte_target
from model.paging import Memory

from harness import NEHALEM, P4, measure

DATA = 0x10000  # first data page of a spawned process (resident, writable)


def loads(*vpns: int):
    b = ChunkBuilder()
    for vpn in vpns:
        b.load(vpn << 12)
    return b.build()


def test_native_walk_is_four_references_then_hits():
    hw = load_profile(NEHALEM)
    m = measure("native", lambda k, p: [loads(DATA, DATA, DATA + 1)], hardware=NEHALEM)
    assert (m.counter("tlb_misses"), m.counter("tlb_hits"), m.counter("walk_refs")) == (2, 1, 8)
    assert m.by_category == {"user": 3 * hw.cost("mem"), "page_walk": 8 * hw.cost("walk_ref")}


def test_nested_walk_is_two_dimensional_24_references():
    hw = load_profile(NEHALEM)
    m = measure("hvm", lambda k, p: [loads(DATA)], hardware=NEHALEM)
    assert m.counter("walk_refs") == 24  # (4 + 1) x (4 + 1) - 1 (BH08)
    assert m.by_category["page_walk"] == 4 * hw.cost("walk_ref") + 20 * hw.cost("walk_ref_nested")


def test_kernel_direct_map_uses_large_pages_three_level_walk():
    from model.isa import KERNEL_BASE

    b = ChunkBuilder(kernel=True).load(KERNEL_BASE + 0x1000).load(KERNEL_BASE + 0x2000).build()
    m = measure("native", lambda k, p: [b], hardware=NEHALEM)
    assert (m.counter("tlb_misses"), m.counter("walk_refs")) == (1, 3)  # one 2 MiB entry
    m = measure("hvm", lambda k, p: [b], hardware=NEHALEM)
    assert m.counter("walk_refs") == 19  # (3 + 1) x (4 + 1) - 1


def test_shadow_paging_fills_each_shadow_entry_once_via_a_hidden_fault():
    hw = load_profile(P4)
    m = measure("hvm", lambda k, p: [loads(DATA, DATA + 1)], hardware=P4)
    fill = hw.cost("vmexit") + hw.cost("shadow_fill") + hw.cost("vmentry")
    assert m.counter("walk_refs") == 8
    assert m.total == 2 * fill + 2 * hw.cost("mem") + 8 * hw.cost("walk_ref")
    # the shadow entries survive a TLB flush: the second pass misses the TLB but needs no fill
    m2 = measure("hvm", lambda k, p: [loads(DATA, DATA + 1),
                                       ChunkBuilder(kernel=True).op(Op.TLB_FLUSH).build(),
                                       loads(DATA, DATA + 1)], hardware=P4)
    flush = hw.cost("vmexit") + hw.cost("shadow_resync") + hw.cost("vmentry")
    assert m2.total == m.total + flush + 2 * hw.cost("mem") + 8 * hw.cost("walk_ref")


def test_tlb_is_lru_within_a_set():
    mem = Memory(64, 16, 4)
    s = mem.new_space(1)
    for vpn in range(3):
        mem.set_pte(s, vpn, make_pte(vpn, PTE_P | PTE_W | PTE_U))
    from model.modes import compile_mode, resolve_mode
    from model.vectors import new_cpu_vector, new_tlb

    hw = load_profile(P4)
    cm = compile_mode(resolve_mode("native", hw), hw)
    cpu, tlb = new_cpu_vector(1, s), new_tlb(1, 2)  # one set, two ways
    c = loads(0, 1, 0, 2, 0, 1)  # 2 evicts 1 (least recently used), so the last 1 misses
    from model.cpu import execute
    from model.vectors import S_TLB_HIT, S_TLB_MISS

    execute(c.op, c.a, c.b, 0, 0, False, 10**9, cpu, tlb, cm.policy, cm.costs, mem.pt,
            mem.pt_free, mem.spaces, mem.reservations, mem.pt_owner, mem.pt_shadow, mem.ctl,
            np.zeros((33, 2), np.int64))
    assert (cpu[S_TLB_MISS], cpu[S_TLB_HIT]) == (4, 2)
    tlb_flush(tlb, keep_global=False)
    assert (tlb[:, :, 0] == -1).all()


def test_cr3_load_flushes_all_but_global_entries():
    from model.isa import KERNEL_BASE

    def body(k, p):
        return [ChunkBuilder(kernel=True).load(KERNEL_BASE).load(DATA << 12)
                .op(Op.CR3_LOAD, p.space).load(KERNEL_BASE).load(DATA << 12).build()]
    m = measure("native", body, hardware=NEHALEM)
    assert (m.counter("tlb_misses"), m.counter("tlb_hits")) == (3, 1)


# --- Xen PV direct paging ---------------------------------------------------------------

def test_pv_refuses_mapping_a_frame_the_guest_does_not_own():
    def body(k, p):
        foreign = int(k.mem.reservations[k.dom, 1])  # just past the guest's reservation
        assert k.mem.owner(foreign) != k.dom
        return [ChunkBuilder(kernel=True).op(Op.PTE_WRITE, pte_target(p.space, 0x20000),
                                             make_pte(foreign, PTE_P | PTE_W | PTE_U)).build()]
    m = measure("pv", body)
    assert m.counter("pv_refused") == 1
    mem = m.host.memory
    proc = next(iter(m.host.domains[0].kernel.procs.values()))
    assert mem.lookup(proc.space, 0x20000) == 0  # nothing was written
    native = measure("native", body)  # without a hypervisor nothing checks
    assert native.counter("pv_refused") == 0


def test_pv_page_table_pages_stay_read_only_to_the_guest():
    def body(k, p):
        pt_frame = k.mem.table_frames(p.space)[0]  # the process's own L4 table
        return [ChunkBuilder(kernel=True)
                .op(Op.PTE_WRITE, pte_target(p.space, 0x20000), make_pte(pt_frame, PTE_P | PTE_W))
                .op(Op.PTE_WRITE, pte_target(p.space, 0x20001), make_pte(pt_frame, PTE_P))
                .build()]
    m = measure("pv", body)
    assert m.counter("pv_refused") == 1  # writable mapping refused, read-only one accepted


def test_pv_pin_validates_every_entry_and_fails_on_a_foreign_frame():
    def body(k, p):
        child = k.mem.new_space(k.dom)
        foreign = int(k.mem.reservations[k.dom, 1])  # not the guest's
        k.mem.set_pte(child, 7, make_pte(foreign, PTE_P))
        return [ChunkBuilder(kernel=True).op(Op.PT_PIN, child).build()]
    m = measure("pv", body)
    assert m.counter("pv_refused") == 1


def test_batching_n_updates_in_one_mmu_update_pay_one_transition():
    hw = load_profile(P4)

    def updates(n):
        def body(k, p):
            b = ChunkBuilder(kernel=True).op(Op.LAZY_BEGIN)
            for i in range(n):
                value = k.mem.lookup(p.space, DATA + i) & ~(1 << 52)
                b.op(Op.PTE_WRITE, pte_target(p.space, DATA + i), value)
            return [b.op(Op.LAZY_END).build()]
        return measure("pv", body)
    # each rewrites a writable entry: Xen takes the new frame's two references (get_page,
    # get_page_type), drops the old one's two and makes 5 more locked operations
    entry = hw.cost("pv_validate_pte") + (2 + 2 + 5) * hw.cost("locked_rmw")
    batch = hw.cost("hypercall_entry") + hw.cost("hypercall_dispatch") + hw.cost("hypercall_exit")
    base = updates(0).counter("hypercall_batches")  # entering the process: pin + CR3 load
    assert updates(0).total == 0
    assert updates(10).total == 10 * entry + batch
    assert updates(10).counter("hypercall_batches") == base + 1
    # the Linux multicall buffer holds 32 entries: 40 updates need two hypercalls
    assert updates(40).total == 40 * entry + 2 * batch
    assert updates(40).counter("hypercall_batches") == base + 2


def test_fork_under_pv_batches_its_page_table_updates():
    from model.microbench import run_op

    pv = run_op("fork", "pv", P4)
    native = run_op("fork", "native", P4)
    assert pv.breakdown["hypervisor"] > 0 and "hypervisor" not in native.breakdown


def test_plain_stores_to_unwatched_tables_are_not_counted_as_hypercalls():
    from model.host import RunStats

    def body(k, p):
        child = yield from k.fork(p)
        del child
    for mode, kind, label in (("pv", "hypercalls", "mmu_update"),
                              ("full", "bt_emulations", "traced_write")):
        m = measure(mode, body)
        parent_writable = 168  # data + stack pages: write-protected through the hypervisor
        assert RunStats(m.host).transitions("t")[kind][label] == parent_writable
        assert m.counter("plain_pte_writes") == 232  # the unpinned child's copies


def test_a_guest_cannot_touch_another_guests_address_space():
    from model.domain import DomainConfig
    from model.host import Host
    from model.workloads import enter

    host = Host(P4, pcpus=1)
    victim = host.add_guest(DomainConfig("victim", "pv"))
    space = victim.kernel.spawn().space
    before = host.memory.lookup(space, DATA)

    def attacker(ctx):
        k = ctx.kernel
        yield enter(k, k.spawn())
        yield (ChunkBuilder(kernel=True).op(Op.PTE_WRITE, pte_target(space, DATA), 0)
               .op(Op.CR3_LOAD, space).op(Op.PT_UNPIN, space).build())

    evil = host.add_guest(DomainConfig("evil", "pv"), attacker)
    host.run()
    assert host.memory.lookup(space, DATA) == before
    from model.vectors import S_REFUSED

    assert int(evil.vcpus[0].cpu[S_REFUSED]) == 3
