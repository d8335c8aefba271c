"""The overhead of a mode over native, by mechanism (analysis/overheads.py): every cycle
attributed once, so the mechanisms add up to what pvsim bench measures."""

from __future__ import annotations

import pytest

from analysis.overheads import MECHANISMS, decomposition, mechanisms, overhead, overheads
from model.hardware import load_profile
from model.microbench import run_op

PV32 = "netburst-2.4ghz"


@pytest.mark.parametrize("op", ["fork", "page_fault", "signal_handle", "ctx_2p_16k"])
@pytest.mark.parametrize(("mode", "hardware"), [("native", PV32), ("pv", PV32), ("full", PV32),
                                                ("hvm", "netburst-3.8ghz-vt")])
def test_the_mechanisms_add_up_to_the_measured_op(op, mode, hardware):
    """The attribution is complete (it adds up to what bench measures) and sound: what
    is left by category after the operations' rows and the batches is never negative,
    so no operation is charged more than the op spent."""
    from analysis.overheads import _leftover

    assert sum(mechanisms(op, mode, hardware).values()) == pytest.approx(
        run_op(op, mode, hardware).cycles, rel=1e-9)
    assert (_leftover(op, mode, hardware) >= -1e-6).all()


def test_a_system_call_costs_pv_on_x86_32_nothing_and_binary_translation_its_emulation():
    """XenoLinux's int 0x80 reaches the guest kernel through Xen's fast trap gate: no
    overhead; the binary translator emulates the system call and its return."""
    hw = load_profile(PV32)
    assert overhead("null_syscall", "pv", PV32).by_mechanism == pytest.approx(
        dict.fromkeys(overhead("null_syscall", "pv", PV32).by_mechanism, 0.0))
    full = overhead("null_syscall", "full", PV32)
    assert set(k for k, v in full.by_mechanism.items() if v) == {"system calls"}
    # the translator's system call and return, as its rule table costs them
    assert full.overhead_us == pytest.approx(
        (run_op("null_syscall", "full", PV32).cycles
         - run_op("null_syscall", "native", PV32).cycles) / hw.freq_hz * 1e6)


def test_a_pv_fork_pays_for_validation_and_batches_and_full_for_its_traced_child_build():
    pv = overhead("fork", "pv", PV32).by_mechanism
    full = overhead("fork", "full", PV32).by_mechanism
    assert pv["other hypervisor work"] > 0 and pv["hypercall batches"] > 0  # pinning
    assert pv["Xen's reference counts"] > 0 and full["Xen's reference counts"] == 0
    assert pv["hidden faults"] == 0
    # the child is built on the tables the previous child freed, still shadowed: every
    # PTE copy is a traced write, which also fills the shadow (so no hidden faults)
    assert full["page-table updates"] > 100 * pv["page-table updates"] > 0
    assert full["hidden faults"] == 0
    assert set(MECHANISMS) <= set(pv)


def test_overheads_skip_the_modes_a_cpu_cannot_run_and_name_the_largest_first():
    rows = overheads(["fork"], PV32)
    assert [o.mode for o in rows] == ["pv", "full"]  # no VT-x: no hvm
    text = decomposition(rows[0])
    # on the P4 a locked cmpxchg costs 130 cycles: the references Xen takes and drops for
    # the child's pin, unpin and the parent's write-protection outweigh its checks
    assert text.startswith("Xen's reference counts +")
