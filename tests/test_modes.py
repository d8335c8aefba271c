"""Each mode's handling of each sensitive operation, as exact cycle counts.

A tiny kernel-mode stream holding one sensitive instruction runs in a guest;
the cycles it costs must equal the sum of the profile costs that the mode's
policy table names (AA06's Pentium 4, where hvm means VT-x with shadow paging).
"""

from __future__ import annotations

import pytest

from model.errors import UnknownNameError, UnsupportedModeError
from model.hardware import load_profile
from model.isa import ChunkBuilder, Op, make_pte, pte_target
from model.modes import resolve_mode

from harness import NEHALEM, P4, measure

# Expected cost of one instruction, as the costs named in the policy table. "batch" is a
# PV hypercall's own transition: entry + dispatch + exit, paid once per (batch of) call(s).
BATCH = ("hypercall_entry", "hypercall_dispatch", "hypercall_exit")
EXPECTED = {
    "native": {
        Op.SYSCALL: ("syscall_insn",), Op.SYSRET: ("sysret_insn",), Op.IRET: ("iret_insn",),
        Op.CR3_LOAD: ("cr3_load",), Op.TLB_FLUSH: ("cr3_load",), Op.INVLPG: ("invlpg",),
        Op.PIO: ("port_io",), Op.MMIO: ("mmio_uncached",), Op.CLI: ("cli",), Op.STI: ("cli",),
        Op.CPUID: ("cpuid",), Op.RDTSC: ("rdtsc",), Op.EXC: ("exception",),
        Op.CR8_WRITE: ("cr8_write",), Op.TIMER: ("apic_timer_write",),
    },
    "pv": {
        Op.SYSCALL: ("syscall_insn", "pv_bounce", "cr3_load", "iret_insn"),
        Op.SYSRET: ("hypercall_entry", "pv_iret", "cr3_load", "iret_insn"),
        Op.IRET: ("hypercall_entry", "pv_iret", "cr3_load", "iret_insn"),
        Op.CR3_LOAD: ("pv_new_baseptr", "cr3_load", *BATCH),
        Op.TLB_FLUSH: ("cr3_load", *BATCH), Op.INVLPG: ("invlpg", *BATCH),
        Op.PIO: ("exception", "xen_priv_op_emulate", "iret_insn"),
        Op.MMIO: ("exception", "xen_priv_op_emulate", "iret_insn"),
        Op.CPUID: ("exception", "xen_priv_op_emulate", "iret_insn"),
        Op.CLI: ("mem",), Op.STI: ("mem",), Op.CR8_WRITE: ("mem",), Op.RDTSC: ("rdtsc",),
        Op.EXC: ("exception", "pv_bounce", "iret_insn"),
        Op.TIMER: ("hypercall_entry", "pv_set_timer", "hypercall_exit"),
    },
    "full": {
        Op.SYSCALL: ("exception", "bt_syscall_emulate"), Op.SYSRET: ("bt_callout",),
        Op.IRET: ("bt_callout",), Op.CR3_LOAD: ("bt_callout", "shadow_cr3_switch"),
        Op.TLB_FLUSH: ("bt_callout", "shadow_resync"), Op.INVLPG: ("bt_callout", "shadow_invlpg"),
        Op.PIO: ("bt_in_tc_emulate",), Op.MMIO: ("bt_callout",), Op.CLI: ("bt_cli",),
        Op.STI: ("bt_cli",), Op.CPUID: ("bt_callout",), Op.RDTSC: ("bt_rdtsc_tc",),
        Op.EXC: ("exception", "bt_reflect"), Op.CR8_WRITE: ("bt_cr8",),
        Op.TIMER: ("bt_callout", "vapic_timer"),
    },
    "hvm": {
        Op.SYSCALL: ("syscall_insn",), Op.SYSRET: ("sysret_insn",), Op.IRET: ("iret_insn",),
        Op.CR3_LOAD: ("vmexit", "shadow_cr3_switch", "vmentry"),
        Op.TLB_FLUSH: ("vmexit", "shadow_resync", "vmentry"),
        Op.INVLPG: ("vmexit", "shadow_invlpg", "vmentry"),
        Op.PIO: ("vmexit", "io_emulate", "vmentry"), Op.MMIO: ("vmexit", "mmio_emulate", "vmentry"),
        Op.CLI: ("cli",), Op.STI: ("cli",), Op.CPUID: ("vmexit", "cpuid_emulate", "vmentry"),
        Op.RDTSC: ("rdtsc",), Op.EXC: ("exception",), Op.CR8_WRITE: ("cr8_write_tpr_shadow",),
        Op.TIMER: ("vmexit", "vapic_timer", "vmentry"),
    },
}
CASES = [(mode, op) for mode, table in EXPECTED.items() for op in table]


def _operand(op: Op, proc) -> int:
    if op == Op.CR3_LOAD:
        return proc.space
    if op == Op.TIMER:
        return 10**9  # far in the future: the timer never fires during the test
    return 0


@pytest.mark.parametrize(("mode", "op"), CASES, ids=[f"{m}-{o.name}" for m, o in CASES])
def test_sensitive_operation_costs_what_the_policy_names(mode, op):
    hw = load_profile(P4)
    m = measure(mode, lambda k, p: [ChunkBuilder(kernel=True).op(op, _operand(op, p)).build()])
    assert m.total == sum(hw.cost(name) for name in EXPECTED[mode][op])


@pytest.mark.parametrize(("mode", "costs"), [
    ("native", ("mem",)),
    # mmu_update of one entry, outside a lazy region; the entry is writable: Xen takes the
    # new frame's 2 references, drops the old one's 2, and makes 5 more locked operations
    ("pv", ("pv_validate_pte", *BATCH, *["locked_rmw"] * 9)),
    ("full", ("bt_traced_write",)),
    ("hvm", ("vmexit", "shadow_emulate_write", "vmentry")),
])
def test_pte_write_to_live_page_tables(mode, costs):
    """AA06's ptemod: rewriting a PTE of the running address space, unchanged."""
    hw = load_profile(P4)

    def body(k, p):
        value = k.mem.lookup(p.space, 0x10000) & ~(1 << 52)
        return [ChunkBuilder(kernel=True).op(Op.PTE_WRITE, pte_target(p.space, 0x10000), value)
                .build()]
    assert measure(mode, body).total == sum(hw.cost(c) for c in costs)


def test_nested_paging_takes_no_exit_for_page_table_writes_or_cr3():
    hw = load_profile(NEHALEM)

    def body(k, p):
        value = k.mem.lookup(p.space, 0x10000) & ~(1 << 52)
        return [ChunkBuilder(kernel=True).op(Op.PTE_WRITE, pte_target(p.space, 0x10000), value)
                .op(Op.CR3_LOAD, p.space).op(Op.INVLPG, 0x10000).build()]
    m = measure("hvm", body, hardware=NEHALEM)
    assert m.by_category == {"kernel": hw.cost("mem") + hw.cost("cr3_load") + hw.cost("invlpg")}


def test_writes_to_tables_the_hypervisor_does_not_watch_are_plain_stores():
    """A child's tables before they are pinned (PV) or first loaded (shadow)."""
    def body(k, p):
        space = k.mem.new_space(k.dom)
        frame = k.alloc_frame()
        return [ChunkBuilder(kernel=True).op(Op.PTE_WRITE, pte_target(space, 5),
                                             make_pte(frame, 0x7)).build()]
    for mode in ("pv", "full", "hvm"):
        m = measure(mode, body)
        # one store, plus three page-table pages allocated and zeroed (L3, L2, L1)
        assert m.total == 1 + 3 * load_profile(P4).cost("pt_page_zero"), mode


def test_hvm_exits_are_counted_by_reason():
    from model.host import RunStats

    m = measure("hvm", lambda k, p: [ChunkBuilder(kernel=True).op(Op.CPUID).op(Op.PIO, 0x80)
                                     .op(Op.CPUID).build()])
    exits = RunStats(m.host).transitions("t")["vm_exits"]
    assert exits["CPUID"] == 2 and exits["IO_INSTRUCTION"] == 1


def test_unmodified_os_in_pv_is_refused_naming_the_alternatives():
    with pytest.raises(UnsupportedModeError, match="use full .* or hvm"):
        resolve_mode("pv", load_profile(P4), modified_os=False)


def test_hvm_needs_vtx():
    with pytest.raises(UnsupportedModeError, match="VT-x"):
        resolve_mode("hvm", load_profile("netburst-2.4ghz"))


def test_unknown_mode_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="native, pv, full, hvm"):
        resolve_mode("paravirt", load_profile(P4))
