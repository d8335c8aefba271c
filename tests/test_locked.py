"""Locked read-modify-writes (issue 14, item 3): an SMP kernel pays for the atomics of its
memory-management paths, and Xen (always built SMP) for those of its reference counting.
A locked instruction (``Op.ATOMIC``) costs the processor's ``locked_rmw`` (about 100
cycles on NetBurst, about 20 on Nehalem: Agner Fog's tables). On one vCPU the kernel's
atomics are plain read-modify-writes (no lock prefix). The counts per PTE and per fault
are Linux 2.6.18's and Xen 3.x's (model/kernelparams.py, model/xenrefs.py)."""

from __future__ import annotations

import pytest

from model.guestos import Vma
from model.hardware import load_profile
from model.isa import KERNEL_BASE, PTE_COW, PTE_P, PTE_U, ChunkBuilder, Op, make_pte, pte_target
from model.kernelparams import KernelParams
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


def _on_a_new_tree(*ops, foreign: bool = False):
    """A body that maps a process's image into a new address space (as at boot: no
    instructions; ``foreign``: one more entry, first, to a frame the guest does not own)
    and runs ``ops`` on it."""
    def body(k, p):
        q = k.spawn()
        if foreign:
            k.mem.set_pte(q.space, 7, make_pte(int(k.mem.reservations[k.dom, 1]), PTE_P))
        b = ChunkBuilder(kernel=True)
        for o in ops:
            b.op(o, q.space)
        body.tree = leaves(k.mem.pt, k.mem.spaces[q.space, SPACE_ROOT], k.mem.ctl[CTL_NDATA])
        return [b.build()]
    return body


def _xen(body) -> int:
    return _locked("pv", body, counter="xen_locked_ops", vcpus=1)


def test_an_unpin_drops_what_the_pin_took_and_a_tree_never_pinned_costs_nothing():
    pin = _on_a_new_tree(Op.PT_PIN)
    n = _xen(pin)
    _, tables = pin.tree
    text, rw = K.text_pages, K.data_pages + K.stack_pages
    assert n == text * 1 + rw * 2 + 2 * (len(tables) + 1)  # get_page (+ get_page_type)
    assert _xen(_on_a_new_tree(Op.PT_PIN, Op.PT_UNPIN)) == 2 * n
    assert _xen(_on_a_new_tree(Op.PT_UNPIN)) == 0  # Xen refuses it without a walk


def test_a_refused_pin_drops_the_references_it_took_and_leaves_the_tree_unpinned():
    """The foreign entry comes first: only the tables' references were taken, then
    dropped; the unpin after it walks nothing."""
    refused = _on_a_new_tree(Op.PT_PIN, foreign=True)
    n = _xen(refused)
    _, tables = refused.tree
    assert n == 2 * 2 * (len(tables) + 1)
    assert _xen(_on_a_new_tree(Op.PT_PIN, Op.PT_UNPIN, foreign=True)) == n


def test_the_tables_a_pinned_tree_grows_are_referenced_and_dropped_with_it():
    """A PTE written far from the image needs three new tables: Xen types each (2), takes
    the new entry's reference (1) and makes the update's 5; the unpin drops the tables'
    and the entry's references again."""
    far = 1 << 30  # a vpn in a new L3, L2 and L1

    def grow(write: bool):
        def body(k, p):
            b = ChunkBuilder(kernel=True)
            if write:
                b.op(Op.PTE_WRITE, pte_target(p.space, far),
                     make_pte(k.alloc_frame(), PTE_P | PTE_U))
            return [b.op(Op.PT_UNPIN, p.space).build()]
        return body

    assert _xen(grow(True)) - _xen(grow(False)) == (3 * 2 + 1 + 5) + (3 * 2 + 1)


def test_a_copy_on_write_fault_that_reuses_its_page_locks_and_unlocks_it():
    vpn = 0x20000

    def body(k, p):
        p.vmas.append(Vma(vpn, 1, "anon", True))
        frame = k.alloc_frame()  # its only reference: do_wp_page reuses it
        k.mem.set_pte(p.space, vpn, make_pte(frame, PTE_P | PTE_U | PTE_COW))
        return [ChunkBuilder().store(vpn << 12).build()]

    assert _locked("native", body) == K.fault_locked + K.fault_cow_reuse_locked


def test_mmap_faults_and_munmap_zap_take_their_references():
    """lat_mmap's iteration on an SMP guest: 64 file faults (the fault's 3 and the file
    page's 5), then munmap's 2 per PTE zapped."""
    from model.lmbench import mmap_op

    def body(k, p):
        return mmap_op(k, p)()

    assert _locked("native", body) == 64 * (K.fault_locked + K.fault_file_locked) + (
        64 * K.exit_locked_per_pte)
