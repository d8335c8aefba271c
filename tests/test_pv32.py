"""Xen PV on x86-32 (issue 14, item 6): a PV kernel may not use global or large pages, so
its direct map's TLB entries go with every CR3 load; a context switch tells Xen the
next kernel stack (stack_switch) in the multicall that switches the page tables; and
(item 3) the architecture itself: a walk reads two levels, and int 0x80 enters the kernel
as a fault does."""

from __future__ import annotations

import pytest

from model.hardware import load_profile
from model.isa import KERNEL_BASE, ChunkBuilder, Op
from model.vectors import COUNTS

from harness import P4, measure

PV32 = "netburst-2.4ghz"  # x86-32, no VT-x: the XEN03 testbed


def _kernel_access_across_a_switch(again: bool):
    """A kernel load, a CR3 load to another (pinned) address space, and (``again``) the
    same kernel load."""
    def body(k, p):
        other = k.spawn()
        b = ChunkBuilder(kernel=True).load(KERNEL_BASE + 0x1000).op(Op.PT_PIN, other.space)
        b.op(Op.CR3_LOAD, other.space)
        if again:
            b.load(KERNEL_BASE + 0x1000)
        return [b.build()]
    return body


@pytest.mark.parametrize(("mode", "hardware", "lost"), [
    ("pv", PV32, 1),  # 4 KiB, not global: refilled after the switch
    ("native", PV32, 0),  # Linux's direct map: global 2/4 MiB pages
    ("pv", P4, 0),  # x86-64: the model keeps the direct map's entries
])
def test_a_pv_kernel_on_x86_32_loses_its_tlb_entries_on_a_switch(mode, hardware, lost):
    once = measure(mode, _kernel_access_across_a_switch(False), hardware=hardware)
    twice = measure(mode, _kernel_access_across_a_switch(True), hardware=hardware)
    assert twice.counter("tlb_misses") - once.counter("tlb_misses") == lost


def test_the_direct_map_is_walked_in_4_kib_pages_by_a_pv_kernel_on_x86_32():
    b = ChunkBuilder(kernel=True).load(KERNEL_BASE + 0x1000).load(KERNEL_BASE + 0x2000).build()
    pv = measure("pv", lambda k, p: [b], hardware=PV32)
    native = measure("native", lambda k, p: [b], hardware=PV32)
    assert native.counter("tlb_misses") == 1  # one large page
    assert pv.counter("tlb_misses") == 2  # two small ones, each a full walk


def test_an_x86_32_walk_reads_two_levels_and_one_for_a_large_page():
    """32-bit paging without PAE: a page directory and a page table (a 4 MiB page's walk
    ends at the directory), whatever the depth of the model's own tree; on x86-64 the
    same accesses read four levels and three."""
    user = ChunkBuilder().load(0x10000 << 12).load(0x10001 << 12).build()  # two data pages
    kernel = ChunkBuilder(kernel=True).load(KERNEL_BASE + 0x1000).build()
    for hardware, levels in ((PV32, 2), (P4, 4)):
        hw = load_profile(hardware)
        m = measure("native", lambda k, p: [user, kernel], hardware=hardware)
        assert (m.counter("tlb_misses"), m.counter("walk_refs")) == (3, 3 * levels - 1)
        assert m.by_category["page_walk"] == (3 * levels - 1) * hw.cost("walk_ref")
        pv = measure("pv", lambda k, p: [kernel], hardware=hardware)
        assert pv.counter("walk_refs") == (levels if hardware == PV32 else levels - 1)


def test_an_x86_32_large_page_covers_4_mib():
    """Without PAE a page-directory entry maps 4 MiB: two kernel accesses 3 MiB apart
    share one TLB entry on x86-32, and take two on x86-64 (2 MiB pages)."""
    b = ChunkBuilder(kernel=True).load(KERNEL_BASE).load(KERNEL_BASE + (3 << 20)).build()
    assert measure("native", lambda k, p: [b], hardware=PV32).counter("tlb_misses") == 1
    assert measure("native", lambda k, p: [b], hardware=P4).counter("tlb_misses") == 2


def test_int_0x80_enters_the_kernel_as_a_fault_and_a_hypercall_do():
    """On x86-32 a system call (int 0x80), a PV hypercall (int 0x82) and a fault's
    delivery go through an IDT gate alike: one cost, AA06's divzero (exception + iret +
    a short handler, 889 cycles on the P4)."""
    hw = load_profile(PV32)
    assert hw.cost("syscall_insn") == hw.cost("exception")  # int 0x82 is exception by rule
    m = measure("native", lambda k, p: [ChunkBuilder().op(Op.SYSCALL).build(),
                                        ChunkBuilder(kernel=True).op(Op.SYSRET).build()],
                hardware=PV32)
    assert m.by_category == {"kernel": hw.cost("exception") + hw.cost("sysret_insn")}


def test_a_context_switch_batches_the_stack_switch_with_the_new_page_tables():
    """switch_to under PV: stack_switch and mmuext_op (NEW_BASEPTR) in one multicall, the
    only batch the switch issues; natively the TSS store is part of the switch's
    instructions, with no cycles or transition of its own."""
    from model.host import RunStats

    def body(switch: bool):
        def run(k, p):
            other = k.spawn()
            return [k.pin(other), *(k.switch_to(other) if switch else ())]
        return run

    def figures(mode: str, switch: bool):
        m = measure(mode, body(switch), hardware=PV32)
        return m, RunStats(m.host).transitions("t")["hypercalls"]

    pv, calls = figures("pv", True)
    _, before = figures("pv", False)
    assert int(pv.vcpu.cpu[COUNTS + Op.STACK_SWITCH]) == 1 and calls["stack_switch"] == 1
    assert calls["(batches issued)"] - before.get("(batches issued)", 0) == 1
    native, none = figures("native", True)
    assert int(native.vcpu.cpu[COUNTS + Op.STACK_SWITCH]) == 1 and not none
