"""The guest kernel's parameters: the dynamic path lengths (instructions) of its routines,
the atomics of its memory-management paths, the sizes of a process, and the routine
catalogue binary translation translates (:mod:`model.guestos` runs them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KernelParams:
    """Dynamic path lengths (instructions) of guest-kernel routines, and process sizes.

    Every value is an estimate for a 2.6-era Linux on x86; each is a keyword so
    a scenario or a notebook can change it.

    Examples
    --------
    >>> KernelParams(fork_base=12000).fork_base, KernelParams().stat
    (12000, 1200)
    """

    syscall_entry: int = 30
    null_syscall: int = 20
    read_null: int = 150
    write_null: int = 100  # write() of a byte to /dev/null
    stat: int = 1200
    open: int = 2500
    close: int = 400
    sigaction: int = 150
    kill: int = 120  # kill(): find the task, check the permission (all of kill(pid, 0))
    signal_send: int = 150  # and for a real signal: queue it, mark it pending
    signal_setup: int = 600
    sigreturn: int = 400
    fork_base: int = 9000
    fork_per_vma: int = 300
    fork_per_pte: int = 12
    exec_base: int = 20000
    exit_base: int = 6000
    exit_per_pte: int = 8
    wait: int = 600
    fault_anon: int = 500
    fault_cow: int = 600
    fault_file: int = 700
    fault_fixup: int = 60
    fault_sigsegv: int = 400
    trap_handler: int = 40
    context_switch: int = 1500
    pipe_rw: int = 800
    mmap: int = 1500
    msync: int = 300  # msync(MS_INVALIDATE) of a clean file mapping
    mprotect: int = 800  # mprotect() of a few pages (split the VMA, change the PTEs)
    brk: int = 300  # brk(): move the heap's end
    access: int = 600  # access(): a path lookup, like stat without the copy
    munmap_base: int = 1000
    munmap_per_pte: int = 10
    interrupt_handler: int = 300
    # the atomics of the memory-management paths, counted in Linux 2.6.18 (mm/memory.c,
    # mm/rmap.c, mm/swap.c, mm/filemap.c, arch/i386/mm/fault.c; no contention): locked
    # read-modify-writes (Op.ATOMIC, the processor's locked_rmw each) in an SMP kernel,
    # plain ones on one vCPU (GuestKernel's smp)
    fork_locked_per_pte: int = 2  # copy_one_pte: get_page, page_dup_rmap
    exit_locked_per_pte: int = 2  # zap_pte_range: page_remove_rmap; release_pages' put_page
    fault_locked: int = 3  # do_page_fault's mmap_sem (down_read_trylock, up_read), PTE lock
    fault_anon_locked: int = 5  # inc_mm_counter; onto the LRU: get, SetPageLRU/Active, put
    fault_file_locked: int = 5  # find_get_page (read_lock, get, read_unlock), inc_mm_counter,
    #                             page_add_file_rmap
    fault_cow_locked: int = 11  # do_wp_page copying: the old page locked, unlocked, got,
    #                             unmapped and released twice; the new one onto the LRU (4);
    #                             the PTE lock again
    fault_cow_reuse_locked: int = 2  # do_wp_page reusing the page: lock_page, unlock_page
    kernel_mem_fraction: float = 0.3  # share of kernel instructions that access memory
    text_pages: int = 64  # resident text of a small program (file-backed, shared)
    data_pages: int = 160  # resident private data and heap (anonymous)
    stack_pages: int = 8
    cow_touch_pages: int = 6  # pages a forked child writes before it exits or execs


# --- routine catalogue: id and static size (guest instructions) for binary translation ------
ROUTINES = {
    "syscall": (1, 400), "null": (2, 60), "read": (3, 900), "stat": (4, 2500),
    "open": (5, 4000), "close": (6, 800), "sigaction": (7, 300), "signal": (8, 1500),
    "sigreturn": (9, 700), "fork": (10, 6000), "exec": (11, 9000), "exit": (12, 5000),
    "wait": (13, 900), "fault": (14, 2500), "trap": (15, 200), "switch": (16, 2000),
    "pipe": (17, 1800), "mmap": (18, 3000), "munmap": (19, 2500), "irq": (20, 1200),
    "nanobench": (21, 100), "write": (22, 900),
}  # fmt: skip
N_ROUTINES = 32
