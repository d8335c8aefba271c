"""Locked read-modify-writes (issue 14, item 3): an SMP kernel pays for the atomics of its
memory-management paths, and Xen (always built SMP) for those of its reference counting.
A locked instruction (``Op.ATOMIC``) costs the processor's ``locked_rmw`` (about 100
cycles on NetBurst, about 20 on Nehalem: Agner Fog's tables). On one vCPU the kernel's
atomics are plain read-modify-writes (no lock prefix). The counts per PTE and per fault
are Linux 2.6.18's and Xen 3.x's (model/guestos.py KernelParams, model/cpu.py)."""

from __future__ import annotations

import pytest

from model.guestos import KernelParams, Vma
from model.hardware import load_profile
from model.isa import KERNEL_BASE, ChunkBuilder
from model.paging import CTL_NDATA, SPACE_ROOT, leaves

from harness import measure

PV32 = "netburst-2.4ghz"
NHM = "nehalem-2.93ghz-ept"
K = KernelParams()


def _locked(mode: str, body, hardware: str = PV32, counter: str = "locked_ops",
            vcpus: int = 2) -> int:
    """Locked operations ``body`` made (the guest's own, or Xen's on its behalf with
    ``counter="xen_locked_ops"``) on a guest of ``vcpus``: the vCPU's count with it,
    minus without it."""
    def count(b) -> int:
        return measure(mode, b, hardware=hardware, vcpus=vcpus).counter(counter)
    return count(body) - count(lambda k, p: [])


@pytest.mark.parametrize("hardware", [PV32, NHM])
def test_a_locked_instruction_costs_the_processors_locked_rmw(hardware):
    hw = load_profile(hardware)
    va = KERNEL_BASE + 0x1000
    b = ChunkBuilder(kernel=True).load(va).atomic(va).store(va).build()
    m = measure("native", lambda k, p: [b], hardware=hardware)  # (a stream's own ATOMIC)
    assert m.by_category["kernel"] == 2 * hw.cost("mem") + hw.cost("locked_rmw")
    assert m.counter("locked_ops") == 1


def _forked(k, p):
    entries = len(k.mem.present(p.space))
    child = yield from k.fork(p)
    _forked.seen = (entries, child, k)


def test_fork_takes_its_references_on_every_page_the_parent_maps():
    """Natively, copy_one_pte's get_page and page_dup_rmap for each present PTE: locked
    in an SMP guest; plain stores, as many, on one vCPU."""
    n = _locked("native", _forked)
    entries, _, _ = _forked.seen
    assert entries == K.text_pages + K.data_pages + K.stack_pages
    assert n == K.fork_locked_per_pte * entries
    assert _locked("native", _forked, vcpus=1) == 0

    def accesses(vcpus: int) -> int:
        return measure("native", _forked, hardware=PV32, vcpus=vcpus).counter("mem_accesses")
    assert accesses(1) == accesses(2)


def test_xen_counts_the_references_of_the_forks_updates_and_of_the_childs_pin():
    """Under PV Xen adds its own: each write-protecting mmu_update of the parent's writable
    entries takes a reference on the frame read-only (1), drops the writable one (2) and
    makes 5 more (the entry's cmpxchg, the table page's references); the pin of the
    child's tree takes one per present (read-only) entry and 2 per table."""
    xen = _locked("pv", _forked, counter="xen_locked_ops")
    entries, child, k = _forked.seen
    writable = K.data_pages + K.stack_pages
    _, tables = leaves(k.mem.pt, k.mem.spaces[child.space, SPACE_ROOT], k.mem.ctl[CTL_NDATA])
    assert xen == writable * (1 + 2 + 5) + entries + 2 * (len(tables) + 1)
    assert _locked("pv", _forked, counter="xen_locked_ops", vcpus=1) == xen  # Xen is SMP
    assert _locked("pv", _forked) == K.fork_locked_per_pte * entries  # the guest's, as native
    hw = load_profile(PV32)
    assert _locked("native", _forked, counter="xen_locked_ops") == 0
    m = measure("pv", _forked, hardware=PV32, vcpus=2)
    assert m.by_category["hypervisor"] >= xen * hw.cost("locked_rmw")


@pytest.mark.parametrize(("kind", "expect"), [
    ("anon", K.fault_locked + K.fault_anon_locked),
    ("file", K.fault_locked + K.fault_file_locked),
])
def test_a_page_fault_takes_its_paths_locks_and_references(kind, expect):
    vpn = 0x20000

    def body(k, p):
        p.vmas.append(Vma(vpn, 1, kind, kind == "anon", 7))
        b = ChunkBuilder()
        b.store(vpn << 12) if kind == "anon" else b.load(vpn << 12)
        return [b.build()]

    assert _locked("native", body) == expect


def test_a_copy_on_write_fault_after_fork_takes_do_wp_pages_eleven():
    def body(k, p):
        yield from _forked(k, p)
        yield ChunkBuilder().store(p.vmas[1].start << 12).build()

    entries = K.text_pages + K.data_pages + K.stack_pages
    assert _locked("native", body) == (K.fork_locked_per_pte * entries + K.fault_locked
                                       + K.fault_cow_locked)
