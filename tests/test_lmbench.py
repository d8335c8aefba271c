"""The bench ops that lmbench defines measure what lmbench measures (model/lmbench.py):
the loops it subtracts are subtracted, the units it reports per are divided by."""

from __future__ import annotations

import pytest

from model.microbench import OPS, run_bench, run_op

SUBTRACTING = [op for op, spec in OPS.items() if spec.subtract is not None]


def test_the_subtracting_ops_are_lmbenchs():
    assert set(SUBTRACTING) == {"signal_handle", "prot_fault", "page_fault", "ctx_switch",
                                "ctx_2p_16k", "ctx_2p_64k", "ctx_8p_16k", "ctx_16p_16k"}
    assert all(OPS[OPS[op].subtract].kind in ("part", "os") for op in SUBTRACTING)


@pytest.mark.parametrize("hardware", ["netburst-3.8ghz-vt", "nehalem-2.93ghz-ept"])
@pytest.mark.parametrize("mode", ["native", "pv", "full", "hvm"])
def test_what_is_left_after_the_subtraction_is_work_of_every_category(hardware, mode):
    """The subtracted loop is part of the op's own work, category by category: nothing
    goes negative, and something is left."""
    for op in SUBTRACTING:
        r = run_op(op, mode, hardware)
        assert r.cycles > 0, op
        assert all(v >= 0 for v in r.breakdown.values()), (op, r.breakdown)
        assert r.extra["subtracted_cycles"] == run_op(OPS[op].subtract, mode, hardware).cycles


def test_a_page_fault_is_reported_per_page():
    r = run_op("page_fault", "native", "netburst-2.4ghz")
    assert r.iterations == OPS["page_fault"].iterations * 256


def test_the_context_switch_working_set_is_walked_again_after_each_switch():
    """lat_ctx's buffer (the first data pages; the token's page among them) is summed
    after each switch: without a tagged TLB every page of it beyond the token's costs one
    walk more than the 0 KiB hop, and the overhead loop, which does not switch, none."""
    hw = "netburst-2.4ghz"
    walks = {kb: run_op(f"ctx_2p_{kb}k" if kb else "ctx_switch", "native", hw)
             .breakdown.get("page_walk", 0.0) for kb in (0, 16, 64)}
    extra16, extra64 = walks[16] - walks[0], walks[64] - walks[0]
    assert extra16 > 0 and extra64 == pytest.approx(5 * extra16)  # 15 pages against 3
    assert run_op("ctx_8p_16k", "native", hw).cycles == run_op("ctx_2p_16k", "native",
                                                               hw).cycles


def test_bench_leaves_out_the_loops_ops_subtract():
    from model import lmbench

    assert set(lmbench.SUBTRACT) | set(lmbench.PER) <= set(OPS)  # names, not typos
    ran = {r.op for r in run_bench("netburst-2.4ghz", modes=["native"], ops=None)}
    assert ran and all(OPS[op].kind != "part" for op in ran)
    assert {op for op, spec in OPS.items() if spec.kind == "part"} & ran == set()


def test_a_dynamic_programs_start_up_makes_the_loaders_calls_and_one_fault_per_page():
    """execve() and the start-up of a dynamically linked program (model/images.py): the
    system calls strace showed, and one page fault for each page it touches."""
    from model.costs import measure
    from model.images import DYNAMIC_C, start_up
    from model.isa import Op
    from model.vectors import COUNTS

    def make(k, p):
        def it():
            yield from k.exec(p)
            yield from start_up(k, p, DYNAMIC_C)
        return it

    d = measure(make, "native", "netburst-2.4ghz", iterations=2, warm=1).deltas
    assert (d[:, COUNTS + Op.SYSCALL] == 1 + len(DYNAMIC_C.startup)).all()
    assert (d[:, COUNTS + Op.PAGE_FAULT] == sum(s.touched for s in DYNAMIC_C.segments)).all()


def test_a_forking_parent_with_libraries_copies_their_ptes_too():
    """lat_proc's parent is a dynamically linked process that has run: fork copies the
    PTE of each page its start-up touched into the child, and the child's exit zaps it:
    2 PTE writes per page more than the same fork of the program alone (the parent's
    private pages were write-protected by the first fork, and it does not write them
    again, so later forks leave them)."""
    from model.costs import measure
    from model.images import DYNAMIC_C
    from model.lmbench import fork
    from model.vectors import S_PLAIN_PTE

    def pte_writes(image) -> int:  # natively, every PTE write is a plain store
        d = measure(lambda k, p: fork(k, p, image), "native", "netburst-2.4ghz",
                    iterations=2, warm=1).deltas
        assert d[0, S_PLAIN_PTE] == d[1, S_PLAIN_PTE]
        return int(d[0, S_PLAIN_PTE])

    touched = sum(s.touched for s in DYNAMIC_C.segments)
    assert pte_writes(DYNAMIC_C) - pte_writes(None) == 2 * touched


@pytest.mark.parametrize("op", ["mmap", "page_fault", "fork"])
def test_a_frames_references_are_its_mappings_and_the_page_cache(op):
    """After an op's iterations, the guest kernel's reference count of every frame is the
    number of PTEs that map it, plus one if the page cache holds it: munmap once dropped
    the references of frame 0 (it read the entries after zapping them) instead of its
    own pages'."""
    from collections import Counter

    from model.costs import measure
    from model.paging import FRAME_MASK

    kernels = []

    def make(k, p):
        kernels.append(k)
        return OPS[op].make(k, p)

    measure(make, "native", "netburst-2.4ghz", iterations=3, warm=1)
    k = kernels[0]
    mapped = Counter(int(pte) >> 12 & FRAME_MASK for proc in k.procs.values()
                     for pte in k.mem.present(proc.space)[:, 1])
    cached = set(k.page_cache.values())
    expect = {f: n + (f in cached) for f, n in mapped.items()} | {
        f: 1 for f in cached if f not in mapped}
    assert k.refs == expect
