"""Shadow paging's mechanisms on tiny hand-written streams (model.shadow, model.cpu).

Each test runs chunks straight on the CPU/MMU kernel of a P4 (shadow paging only) with
the cache size and the unshadow policy it states, and asserts exact counts: hidden
faults, traced writes by kind, roots built and evicted, plain stores.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from model.cpu import execute
from model.hardware import load_profile
from model.isa import PTE_P, PTE_U, PTE_W, ChunkBuilder, Op, make_pte, pte_target
from model.modes import compile_mode, resolve_mode
from model.paging import Memory
from model.vectors import (
    COUNTS,
    M_EARLY_UNSHADOW,
    M_SHADOW_ROOTS,
    POL_MODE,
    R_DOM,
    S_PLAIN_PTE,
    S_SHADOW_BUILT,
    S_SHADOW_EVICTED,
    ST_CHUNK_END,
    new_cpu_vector,
    new_tlb,
)

from harness import P4

DATA = 0x10000
PAGE = make_pte(7, PTE_P | PTE_W | PTE_U)


def _machine(mode: str = "hvm", roots: int = 0, early_unshadow: int = 0) -> SimpleNamespace:
    """One vCPU of domain 1 on a P4, its shadow cache holding ``roots`` roots (0: no
    bound) and its VMM unshadowing at teardown or not."""
    hw = load_profile(P4)
    cm = compile_mode(resolve_mode(mode, hw, modified_os=False), hw)
    policy = cm.policy.copy()
    policy[POL_MODE + M_SHADOW_ROOTS] = roots
    policy[POL_MODE + M_EARLY_UNSHADOW] = early_unshadow
    mem = Memory(n_data_frames=256, max_pt_pages=64, max_spaces=8, max_domains=4)
    mem.reserve(1, first=0, count=128)
    mem.reserve(2, first=128, count=128)
    cpu, tlb, tc = new_cpu_vector(1, 0), new_tlb(1, 64), np.zeros((2, 2), np.int64)

    def run(chunk, dom: int = 1) -> int:
        cpu[R_DOM] = dom
        pos, _, status, used = execute(
            chunk.op, chunk.a, chunk.b, 0, 0, True, 10**9, cpu, tlb, policy, cm.costs,
            mem.pt, mem.pt_free, mem.spaces, mem.reservations, mem.pt_owner, mem.pt_shadow,
            mem.ctl, tc)
        assert status == ST_CHUNK_END
        return used

    def count(what) -> int:
        return int(cpu[COUNTS + what] if isinstance(what, Op) else cpu[what])

    return SimpleNamespace(hw=hw, cm=cm, mem=mem, run=run, count=count)


def _space(mem: Memory, pages: int, dom: int = 1) -> int:
    s = mem.new_space(dom)
    for i in range(pages):
        mem.set_pte(s, DATA + i, PAGE)
    return s


def _switch_and_touch(space: int, pages: int):
    b = ChunkBuilder(kernel=True).op(Op.CR3_LOAD, space)
    for i in range(pages):
        b.load((DATA + i) << 12)
    return b.build()


def _writes(space: int, value: int, pages: int, first: int = 0):
    b = ChunkBuilder(kernel=True)
    for i in range(first, first + pages):
        b.op(Op.PTE_WRITE, pte_target(space, DATA + i), value)
    return b.build()


def test_a_cr3_switch_evicts_the_least_recently_used_root_which_refills_by_hidden_faults():
    m = _machine(roots=2)
    a, b, c = _space(m.mem, 3), _space(m.mem, 2), _space(m.mem, 1)
    steps = [  # (space, pages touched, hidden faults then, roots evicted then)
        (a, 3, 3, 0),  # built; every entry filled once
        (b, 2, 5, 0),
        (c, 1, 6, 1),  # the cache holds two roots: a, the least recently used, goes
        (a, 3, 9, 2),  # a is built again, evicting b, and all its entries refill
        (c, 1, 9, 2),  # cached: its entries are still there
        (b, 2, 11, 3),  # evicts a (c was used after it)
    ]
    for space, pages, hidden, evicted in steps:
        m.run(_switch_and_touch(space, pages))
        assert (m.count(Op.HIDDEN_FAULT), m.count(S_SHADOW_EVICTED)) == (hidden, evicted)
    assert m.count(S_SHADOW_BUILT) == 5
    # a's tables are no longer traced: a write to them is a plain store
    m.run(_writes(a, PAGE, 1))
    assert (m.count(S_PLAIN_PTE), m.count(Op.PTE_WRITE)) == (1, 0)


def test_without_a_bound_no_root_is_evicted():
    m = _machine(roots=0)
    spaces = [_space(m.mem, 1) for _ in range(5)]
    for s in spaces * 2:
        m.run(_switch_and_touch(s, 1))
    assert (m.count(S_SHADOW_BUILT), m.count(S_SHADOW_EVICTED)) == (5, 0)
    assert m.count(Op.HIDDEN_FAULT) == 5


@pytest.mark.parametrize(("mode", "rows"), [
    ("hvm", ("shadow_emulate_write", "shadow_emulate_clear", "shadow_emulate_fill")),
    ("full", ("bt_traced_write", "bt_trace_clear", "bt_trace_fill")),
])
def test_a_traced_write_costs_the_row_of_the_change_it_makes(mode, rows):
    m = _machine(mode)
    a = _space(m.mem, 2)
    m.run(_switch_and_touch(a, 0))
    read_only = make_pte(7, PTE_P | PTE_U)
    changes = [(read_only, Op.PTE_WRITE), (0, Op.PTE_CLEAR), (PAGE, Op.PTE_FILL)]
    for (value, kind), row in zip(changes, rows, strict=True):
        used = m.run(_writes(a, value, 1))
        assert used == m.cm.row_total(kind)
        assert row in {name for _, name in m.cm.mode.rules[kind].steps}
    assert [m.count(k) for _, k in changes] == [1, 1, 1]
    if mode == "hvm":  # AA06's ptemod rows on the P4: unchanged, P->NP, NP->P
        assert [m.cm.row_total(k) for _, k in changes] == [12733, 9154, 17020]


def test_a_forks_child_is_built_on_freed_tables_that_stay_traced():
    m = _machine(early_unshadow=0)  # AA06's VMware VMMs: no teardown detection
    n = 5
    parent = _space(m.mem, n)
    m.run(_switch_and_touch(parent, 0))
    child = m.mem.new_space(1)  # fresh tables, never loaded: its build is plain
    m.run(_writes(child, PAGE, n))
    assert (m.count(S_PLAIN_PTE), m.count(Op.PTE_FILL)) == (n, 0)
    m.run(_switch_and_touch(child, n))  # the child runs: its tables are shadowed
    m.run(_switch_and_touch(parent, 0))
    m.run(_writes(child, 0, n))  # exit_mmap clears every entry: each traced
    assert m.count(Op.PTE_CLEAR) == n
    m.mem.free_space(child)
    # the next fork's child reuses the freed tables (the pool is a stack): the VMM never
    # learnt they were freed, so the child's whole build is traced, before its root was
    # ever loaded
    again = m.mem.new_space(1)
    m.run(_writes(again, PAGE, n))
    assert (m.count(Op.PTE_FILL), m.count(S_PLAIN_PTE)) == (n, n)


def test_early_unshadow_drops_a_table_written_two_zeros_in_a_row():
    n = 6
    m = _machine(early_unshadow=1)  # Xen's SHOPT_EARLY_UNSHADOW
    a = _space(m.mem, n)
    m.run(_switch_and_touch(a, n))
    leaf = m.mem.table_frames(a)[-1] - m.mem.n_data_frames
    # a zero, a non-zero (the count restarts), then zeros: the second in a row unshadows
    m.run(_writes(a, 0, 1))
    m.run(_writes(a, PAGE, 1))
    m.run(_writes(a, 0, n))
    assert (m.count(Op.PTE_CLEAR), m.count(Op.PTE_FILL), m.count(S_PLAIN_PTE)) == (3, 1, n - 2)
    assert m.mem.pt_shadow[leaf] == 0
    # a page fault between two zeros restarts the count too
    b = _space(m.mem, n)
    m.run(_switch_and_touch(b, 1))
    m.run(_writes(b, 0, 1))
    m.run(ChunkBuilder(kernel=True).load((DATA + 1) << 12).build())  # a hidden fault
    m.run(_writes(b, 0, 2, first=2))
    assert m.count(Op.PTE_CLEAR) == 3 + 3  # without the fault: 3 + 2
    without = _machine(early_unshadow=0)
    c = _space(without.mem, n)
    without.run(_switch_and_touch(c, 0))
    without.run(_writes(c, 0, n))
    assert (without.count(Op.PTE_CLEAR), without.count(S_PLAIN_PTE)) == (n, 0)


def test_tables_another_domains_vmm_shadowed_are_not_traced_for_this_one():
    m = _machine()
    a = _space(m.mem, 1)
    m.run(_switch_and_touch(a, 0))
    m.mem.free_space(a)  # still shadowed by domain 1's VMM
    other = m.mem.new_space(2)  # domain 2 gets the tables
    m.run(_writes(other, make_pte(130, PTE_P | PTE_W | PTE_U), 1), dom=2)
    assert (m.count(S_PLAIN_PTE), m.count(Op.PTE_FILL)) == (1, 0)
