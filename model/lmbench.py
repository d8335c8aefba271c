"""lmbench's OS benchmarks as ``pvsim bench`` ops: each does what lmbench's source does,
and reports what it reports, subtraction included.

The definitions follow lmbench 3 (``src/lat_syscall.c``, ``lat_sig.c``, ``lat_ctx.c``,
``lat_pagefault.c``, ``lat_proc.c``; the summary's columns from ``scripts/getsummary``),
the suite behind the published native figures that ``pvsim validate`` compares with
(Barham et al., SOSP 2003, row L-UP). Each maker takes the guest kernel and the benchmark's
process and returns an *iteration*: a callable giving the chunks of one iteration. Where
lmbench subtracts the cost of another loop, the op names that loop (:data:`SUBTRACT`) and
:func:`model.microbench.run_op` subtracts its cost, as measured the same way; where it
reports per unit of an iteration (per page), the op names the units (:data:`PER`).

The costs of each routine are the guest kernel's (:class:`model.kernelparams.KernelParams`,
estimates); these functions only say what runs.

Examples
--------
>>> SUBTRACT["signal_handle"], SUBTRACT["prot_fault"], PER["page_fault"]
('kill0', 'signal_handle', 256)
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator

import numpy as np

from .guestos import DATA_VPN, MMAP_VPN, GuestKernel, Process, Vma
from .images import DASH, DYNAMIC_C, ProcessImage, map_image, start_up
from .isa import Chunk, ChunkBuilder, Op, make_pte

Iteration = Callable[[], Iterator[Chunk]]

USER_BUF = DATA_VPN << 12  # a user buffer in the process's first data page
#: Pages of lat_pagefault's file mapping (lmbench needs at least 1 MiB; the script maps
#: the whole test file): 1 MiB.
REGION_PAGES = 256
_SYSCALL = ChunkBuilder().op(Op.SYSCALL).build()
_SYSRET = ChunkBuilder(kernel=True).op(Op.SYSRET).build()


def copy_out(va: int, n_lines: int) -> Chunk:
    """The kernel's copy of ``n_lines`` cache lines to user memory at ``va``."""
    b = ChunkBuilder(kernel=True)
    for i in range(n_lines):
        b.store(va + 64 * i)
    return b.build()


def copy_in(va: int, n_lines: int) -> Chunk:
    """The kernel's copy of ``n_lines`` cache lines from user memory at ``va``."""
    b = ChunkBuilder(kernel=True)
    for i in range(n_lines):
        b.load(va + 64 * i)
    return b.build()


def touch(vpns: Iterable[int], write: bool = True) -> Chunk:
    """User code touching one word of each page of ``vpns`` (a store, or a load)."""
    b = ChunkBuilder()
    for vpn in vpns:
        b.alu(10).op(Op.STORE if write else Op.LOAD, vpn << 12)
    return b.build()


# --- lat_syscall -------------------------------------------------------------------------

def null_syscall(k: GuestKernel, p: Process) -> Iteration:
    """``lat_syscall null``: ``getppid()``."""
    return lambda: k.syscall("null", k.p.null_syscall)


def null_io(k: GuestKernel, p: Process) -> Iteration:
    """The summary's *null I/O*: the mean of ``lat_syscall read`` (``read(fd, &c, 1)``
    of ``/dev/zero``) and ``lat_syscall write`` (``write(fd, &c, 1)`` to ``/dev/null``):
    one of each per iteration, reported per call (:data:`PER`)."""
    def it():
        yield from k.syscall("read", k.p.read_null, copy_out(USER_BUF, 1))
        yield from k.syscall("write", k.p.write_null, copy_in(USER_BUF, 1))
    return it


def stat(k: GuestKernel, p: Process) -> Iteration:
    """``lat_syscall stat``: ``stat()`` of a file in the dentry cache."""
    return lambda: k.syscall("stat", k.p.stat, copy_out(USER_BUF, 3))


def open_close(k: GuestKernel, p: Process) -> Iteration:
    """``lat_syscall open``: ``open(file, O_RDONLY)`` and ``close()``."""
    def it():
        yield from k.syscall("open", k.p.open)
        yield from k.syscall("close", k.p.close)
    return it


# --- lat_sig -----------------------------------------------------------------------------

def signal_install(k: GuestKernel, p: Process) -> Iteration:
    """``lat_sig install``: ``sigaction(SIGUSR1, &sa, &old)``."""
    def it():
        yield from k.syscall("sigaction", k.p.sigaction,
                             ChunkBuilder(kernel=True).load(USER_BUF).build())
    return it


def kill0(k: GuestKernel, p: Process) -> Iteration:
    """``kill(getpid(), 0)``: the permission check of a signal, none sent; what
    ``lat_sig catch`` subtracts."""
    return lambda: k.syscall("signal", k.p.kill)


def signal_handle(k: GuestKernel, p: Process) -> Iteration:
    """``lat_sig catch``: ``kill(getpid(), SIGUSR1)``, the signal delivered on the way
    out to an empty handler, which returns through ``sigreturn``; minus ``kill(me, 0)``
    (:func:`kill0`)."""
    def it():
        yield _SYSCALL
        yield k.work("syscall", k.p.syscall_entry)
        yield k.work("signal", k.p.kill + k.p.signal_send)
        yield from k.signal_delivery()
    return it


def prot_fault(k: GuestKernel, p: Process) -> Iteration:
    """``lat_sig prot``: a store to a read-only shared file mapping, the SIGSEGV
    delivered to a handler that returns; minus the whole ``lat_sig catch`` cost
    (:func:`signal_handle`, as lmbench assumes the two deliveries cost the same)."""
    ro = Vma(DATA_VPN + 0x8000, 1, "file", False, 9)
    p.vmas.append(ro)
    k.mem.set_pte(p.space, ro.start, make_pte(k.file_frame(9, 0), 0x5))  # present, user, ro
    return lambda: iter([touch([ro.start])])


# --- lat_proc ----------------------------------------------------------------------------

def _forked(k: GuestKernel, p: Process,
            child: Callable[[Process], Iterator[Chunk]]) -> Iterator[Chunk]:
    """lat_proc's iteration: ``fork()``; the parent blocks in ``waitpid()``; the child
    runs ``child(process)`` and calls ``exit()``; the parent returns from the wait and
    dirties its stack."""
    proc = yield from k.fork(p)
    yield from k.syscall("wait", k.p.wait)
    yield from k.switch_to(proc)
    yield from child(proc)
    yield from k.exit(proc, switch_to=p)
    yield _stack_touch(p)


def fork(k: GuestKernel, p: Process, image: ProcessImage | None = DYNAMIC_C) -> Iteration:
    """``lat_proc fork``: the child returns from fork, dirties the pages its exit path
    writes (``cow_touch_pages``) and exits (:func:`_forked`). The parent is a
    dynamically linked program that has run (``image``, its start-up's pages present;
    None: the program alone): fork copies their PTEs too."""
    if image is not None:
        map_image(k, p, image, present=True)

    def child(proc: Process) -> Iterator[Chunk]:
        yield touch(range(DATA_VPN, DATA_VPN + k.p.cow_touch_pages))
    return lambda: _forked(k, p, child)


def _stack_touch(proc: Process) -> Chunk:
    stack = proc.vmas[2]
    return touch(range(stack.start + stack.pages - 2, stack.start + stack.pages))


def _run_program(k: GuestKernel, proc: Process, text_file: int,
                 image: ProcessImage = DYNAMIC_C) -> Iterator[Chunk]:
    """``execve()`` of a small dynamically linked program: the start-up of ``image`` (the
    loader maps the libraries, relocates, sets up TLS: :func:`model.images.start_up`),
    then the program touches its text, data and stack, makes one ``write(1, ...)`` (it
    fails: lat_proc closed fd 1) and exits later."""
    yield from k.exec(proc, text_file)
    yield from start_up(k, proc, image)
    text = proc.vmas[0]
    yield touch(range(text.start, text.start + 16), write=False)
    yield touch(range(DATA_VPN, DATA_VPN + 8))
    yield _stack_touch(proc)
    yield from k.syscall("write", k.p.write_null)  # write(1): EBADF


def exec_(k: GuestKernel, p: Process) -> Iteration:
    """``lat_proc exec``: the child closes fd 1 and ``execve()`` s ``/tmp/hello``,
    dynamically linked (:data:`model.images.DYNAMIC_C`), which starts up, writes to fd 1
    and exits (:func:`_forked`; the parent as for :func:`fork`)."""
    map_image(k, p, DYNAMIC_C, present=True)

    def child(proc: Process) -> Iterator[Chunk]:
        yield from k.syscall("close", k.p.close)
        yield from _run_program(k, proc, text_file=2)
    return lambda: _forked(k, p, child)


def sh(k: GuestKernel, p: Process) -> Iteration:
    """``lat_proc shell``: the child closes fd 1 and runs ``/bin/sh -c /tmp/hello``: the
    shell starts up (:data:`model.images.DASH`), forks and execs ``hello``, waits for it
    and exits (:func:`_forked`; the parent as for :func:`fork`). (dash vforks; the bash
    of lmbench's Linux 2.4 figures forked, as here.)"""
    map_image(k, p, DYNAMIC_C, present=True)

    def shell(proc: Process) -> Iterator[Chunk]:
        yield from k.syscall("close", k.p.close)
        yield from _run_program(k, proc, text_file=3, image=DASH)  # /bin/sh starts ...
        prog = yield from k.fork(proc)  # ... and runs the small program
        yield from k.syscall("wait", k.p.wait)
        yield from k.switch_to(prog)
        yield from _run_program(k, prog, text_file=2)
        yield from k.exit(prog, switch_to=proc)
    return lambda: _forked(k, p, shell)


def forkwait(k: GuestKernel, p: Process) -> Iteration:
    """AA06's forkwait: ``fork()`` a child that exits at once, and ``wait()`` for it
    (:func:`_forked`); the parent is a dynamically linked program (as for :func:`fork`)."""
    map_image(k, p, DYNAMIC_C, present=True)
    return lambda: _forked(k, p, lambda proc: iter(()))


# --- lat_ctx -----------------------------------------------------------------------------

def _bread(kb: int) -> Chunk | None:
    """lmbench's ``bread``: sum every 4-byte word of a ``kb`` KiB buffer (the process's
    first data pages); None for 0 KiB."""
    if not kb:
        return None
    b = ChunkBuilder()
    for word in range(kb * 1024 // 4):
        b.load(USER_BUF + 4 * word).alu(1)
    return b.build()


def ctx(procs: int, kb: int) -> Callable[[GuestKernel, Process], Iteration]:
    """``lat_ctx -s KB procs``: a ring of ``procs`` processes passing a token through
    pipes, each summing its ``kb`` KiB buffer when it has the token. One iteration is a
    hop: the process writes the token to the next one's pipe, reads its own, finds it
    empty and sleeps; the next one returns from its read and sums its buffer. Minus the
    same write, read and sum by one process on one pipe (:func:`ctx_overhead`): what is
    left is the context switch."""
    def make(k: GuestKernel, p: Process) -> Iteration:
        ring = [p, *(k.spawn() for _ in range(procs - 1))]
        bread = _bread(kb)
        at = {"i": 0}

        def it():
            nxt = ring[(at["i"] + 1) % procs]
            at["i"] += 1
            yield from k.syscall("pipe", k.p.pipe_rw, copy_in(USER_BUF, 1))  # write
            yield _SYSCALL  # read: the pipe is empty, the process sleeps
            yield k.work("syscall", k.p.syscall_entry)
            yield k.work("pipe", k.p.pipe_rw)
            yield from k.switch_to(nxt)
            yield copy_out(USER_BUF, 1)  # the next one's read returns the token
            yield _SYSRET
            if bread is not None:
                yield bread
        return it
    return make


def ctx_overhead(kb: int) -> Callable[[GuestKernel, Process], Iteration]:
    """lat_ctx's overhead: one process writes a token to a pipe and reads it back, then
    sums its ``kb`` KiB buffer."""
    def make(k: GuestKernel, p: Process) -> Iteration:
        bread = _bread(kb)

        def it():
            yield from k.syscall("pipe", k.p.pipe_rw, copy_in(USER_BUF, 1))
            yield from k.syscall("pipe", k.p.pipe_rw, copy_out(USER_BUF, 1))
            if bread is not None:
                yield bread
        return it
    return make


# --- lat_pagefault and lat_mmap ----------------------------------------------------------

def mmap(k: GuestKernel, p: Process, pages: int, file: int = 7) -> Generator[Chunk, None, Vma]:
    """``mmap()`` of ``pages`` pages of a file (``vma = yield from mmap(k, p, n)``)."""
    start = MMAP_VPN + 0x1000 * len(p.vmas)
    vma = Vma(start, pages, "file", False, file)
    yield from k.syscall("mmap", k.p.mmap)
    p.vmas.append(vma)
    return vma


def munmap(k: GuestKernel, p: Process, vma: Vma) -> Iterator[Chunk]:
    """``munmap()``: zap the mapping's present PTEs (a lazy batch), flush the TLB."""
    entries = k.mem.present(p.space)
    entries = entries[(entries[:, 0] >= vma.start) & (entries[:, 0] < vma.start + vma.pages)]
    refs, clears = k.zap(p.space, entries, tail=(Op.TLB_FLUSH,))
    yield from k.syscall("munmap", k.p.munmap_base + k.p.munmap_per_pte * len(entries),
                         refs, clears)
    k.release(entries)  # (read before the zap: the entries are empty now)
    p.vmas.remove(vma)


def _remapping(k: GuestKernel, p: Process, touch_pages: bool) -> Iteration:
    order = np.random.default_rng(0).permutation(REGION_PAGES).tolist()  # lmbench's
    state: dict = {"vma": None}

    def it():
        if state["vma"] is None:  # the first (warm-up) iteration maps the file
            state["vma"] = yield from mmap(k, p, REGION_PAGES)
        if touch_pages:
            start = state["vma"].start
            yield touch([start + i for i in order], write=False)
        yield from munmap(k, p, state["vma"])
        state["vma"] = yield from mmap(k, p, REGION_PAGES)
        yield from k.syscall("mmap", k.p.msync)  # msync(MS_INVALIDATE)
    return it


def page_fault(k: GuestKernel, p: Process) -> Iteration:
    """``lat_pagefault``: read one byte of every page of a 1 MiB file mapping, in a random
    order, then unmap, map and ``msync(MS_INVALIDATE)`` it again (the zap of the pages
    faulted in counts); minus the same unmap, map and msync without the reads
    (:func:`remap`); per page (:data:`PER`)."""
    return _remapping(k, p, touch_pages=True)


def remap(k: GuestKernel, p: Process) -> Iteration:
    """What lat_pagefault subtracts: unmap, map and msync of the untouched mapping."""
    return _remapping(k, p, touch_pages=False)


def mmap_op(k: GuestKernel, p: Process) -> Iteration:
    """Map 64 pages of a file, touch each, unmap. (lmbench's ``lat_mmap`` writes one
    byte per 16 KiB over the first tenth of a mapping of a given size; which size the
    summary's *mmap lat* is reported at is not settled here.)"""
    def it():
        vma = yield from mmap(k, p, 64)
        yield touch(range(vma.start, vma.start + 64), write=False)
        yield from munmap(k, p, vma)
    return it


#: The op whose per-iteration cost lmbench subtracts from each op's.
SUBTRACT = {
    "signal_handle": "kill0",
    "prot_fault": "signal_handle",
    "page_fault": "remap",
    "ctx_switch": "ctx_overhead_0k",
    "ctx_2p_16k": "ctx_overhead_16k",
    "ctx_2p_64k": "ctx_overhead_64k",
    "ctx_8p_16k": "ctx_overhead_16k",
    "ctx_16p_16k": "ctx_overhead_16k",
}
#: The units an iteration is reported per (the others: per iteration).
PER = {"null_io": 2, "page_fault": REGION_PAGES, "remap": REGION_PAGES}
