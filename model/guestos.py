"""The guest kernel: OS operations expanded into the instructions a real kernel executes.

Each operation is a generator of :class:`~model.isa.Chunk` objects. It emits the
operation's page-table writes, TLB flushes, CR3 loads and batching regions as
sensitive instructions, and its ordinary work as ALU runs and memory accesses
to the kernel's direct map; the bookkeeping a kernel keeps beside its page
tables (processes, VMAs, frame reference counts, the page cache) is updated
after the chunk that changed the tables has executed (a generator resumes only
then). The same code serves every mode: Linux under Xen PV takes the same paths
with its paravirt hooks (lazy MMU batching, pinning), which the mode's policy
table turns into hypercalls; an unmodified kernel's hooks cost nothing.

Path lengths are estimates of a 2.6-era Linux (:class:`model.kernelparams.KernelParams`);
counts of pages touched and PTEs copied follow from the process's real memory.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from .errors import PvsimError
from .isa import (
    KERNEL_BASE,
    PTE_COW,
    PTE_P,
    PTE_SHADOWED,
    PTE_U,
    PTE_W,
    Chunk,
    ChunkBuilder,
    Op,
    make_pte,
    pte_target,
)  # fmt: skip
from .kernelparams import ROUTINES, KernelParams
from .paging import FRAME_MASK, Memory

PAGE = 4096


TEXT_VPN = 0x400
DATA_VPN = 0x10000
STACK_VPN = 0x7FFF000
MMAP_VPN = 0x7F00000
#: Kernel direct-map addresses of the kernel's hot data structures (a few 2 MiB pages).
KDATA = KERNEL_BASE + 0x200000
#: The kernel's page descriptors (``mem_map``, one ``struct page`` per frame) in the direct
#: map, and the size of one (an estimate: a cache line; 2.6.18's is 56 bytes on x86-64 and
#: 32 on i386): the reference and reverse-map counts that fork, exit, munmap and faults
#: update with atomics. (The size only decides which TLB entry an access uses.)
MEM_MAP = KERNEL_BASE + (1 << 44)
STRUCT_PAGE = 64
#: Memory accesses a kernel routine makes per 4 KiB page of kernel data it touches, and
#: the most pages one touches (estimates: a routine works on a few structures, the
#: current task's, its stack, a lock's, each read and written many times).
ACCESSES_PER_KERNEL_PAGE, KERNEL_ROUTINE_PAGES = 32, 8


@cache
def _mm_locks(n: int, op: int) -> Chunk:
    """A fault's ``n`` atomics (``op``) on its mm's locks (mmap_sem, the page-table lock),
    which live in the kernel's hot data."""
    return _atomics(np.full(n, KDATA, np.int64), op)


def _atomics(va: np.ndarray, op: int) -> Chunk:
    """A kernel chunk of atomics (``op``: :attr:`~model.isa.Op.ATOMIC`, or a plain
    :attr:`~model.isa.Op.STORE` on one CPU), one at each address of ``va``."""
    return Chunk(np.full(len(va), op, np.uint8), va, np.zeros(len(va), np.int64), True)


@cache
def _work_template(n: int, mem_fraction: float, seed: int) -> Chunk:
    """``n`` kernel instructions: ALU runs with loads/stores to kernel data (deterministic):
    to lines of a few 4 KiB pages (:data:`ACCESSES_PER_KERNEL_PAGE`, at most
    :data:`KERNEL_ROUTINE_PAGES`), somewhere in four 2 MiB pages of the direct map."""
    rng = np.random.default_rng(seed)
    n_mem = int(round(n * mem_fraction))
    b = ChunkBuilder(kernel=True)
    if n_mem == 0:
        return b.alu(n).build()
    gaps = np.diff(np.sort(rng.choice(n, size=n_mem, replace=False)), prepend=-1) - 1
    n_pages = min(-(-n_mem // ACCESSES_PER_KERNEL_PAGE), KERNEL_ROUTINE_PAGES)
    pages = rng.integers(0, (4 << 21) >> 12, size=n_pages)
    addrs = (KDATA + (rng.choice(pages, size=n_mem) << 12)
             + rng.integers(0, 1 << 12, size=n_mem) // 64 * 64)
    stores = rng.random(n_mem) < 0.35
    for gap, va, st in zip(gaps.tolist(), addrs.tolist(), stores.tolist(), strict=True):
        b.alu(gap)
        b.op(Op.STORE if st else Op.LOAD, va)
    b.alu(n - n_mem - int(gaps.sum()))
    return b.build()


@dataclass
class Vma:
    """A virtual memory area of a process: ``pages`` pages from vpn ``start``.

    Examples
    --------
    >>> Vma(0x400, 64, "text", False, file=1).contains(0x43F)
    True
    """

    start: int  # first vpn
    pages: int
    kind: str  # "text" | "anon" | "file" | "stack"
    writable: bool
    file: int = -1

    def contains(self, vpn: int) -> bool:
        return self.start <= vpn < self.start + self.pages


@dataclass
class Process:
    """A guest process: its pid, address space and VMAs.

    Examples
    --------
    >>> p = Process(1, 7, [Vma(0x400, 64, "text", False)])
    >>> p.vma(0x410).kind, p.vma(0x10) is None
    ('text', True)
    """

    pid: int
    space: int
    vmas: list[Vma] = field(default_factory=list)

    def vma(self, vpn: int) -> Vma | None:
        for v in self.vmas:
            if v.contains(vpn):
                return v
        return None


@dataclass(frozen=True)
class FaultResolution:
    """What the guest kernel does about a fault: handler chunks, and whether the
    faulting instruction is skipped (an exception-table fixup or a signal) rather
    than re-executed.

    Examples
    --------
    >>> FaultResolution(iter(()), skip=True).skip
    True
    """

    chunks: Iterator[Chunk]
    skip: bool = False


class GuestKernel:
    """The operating system of one guest domain.

    Parameters
    ----------
    dom : int
        Domain id (owner of its machine frames).
    memory : Memory
        The host's machine memory.
    frames : numpy.ndarray
        The machine frames of the domain's reservation.
    params : KernelParams, optional
        Path lengths and process sizes.
    smp : bool, default False
        Whether the kernel runs on more than one CPU, so that its atomics are locked
        instructions. On one CPU they are plain read-modify-writes: a uniprocessor build
        has no lock prefixes, and Linux 2.6 patches out an SMP build's when it boots on one
        CPU (arch/i386/kernel/alternative.c, ``alternatives_smp_unlock``).

    Examples
    --------
    >>> from model.paging import Memory
    >>> k = GuestKernel(1, Memory(n_data_frames=4096), first_frame=0, n_frames=2048)
    >>> p = k.spawn()
    >>> [v.kind for v in p.vmas]
    ['text', 'anon', 'stack']
    >>> [int(c.op[0]) == Op.SYSCALL for c in k.syscall("null", 20)][:1]
    [True]
    """

    def __init__(
        self,
        dom: int,
        memory: Memory,
        first_frame: int,
        n_frames: int,
        params: KernelParams | None = None,
        smp: bool = False,
    ) -> None:
        self.dom = dom
        self.mem = memory
        self.p = params or KernelParams()
        self._atomic = Op.ATOMIC if smp else Op.STORE  # see page_refs()
        memory.reserve(dom, first_frame, n_frames)
        # frames never used yet are handed out in order from _next; freed ones are reused
        # first, most recently freed first (what is kept grows with use, not with size)
        self._next, self._end = first_frame, first_frame + n_frames
        self._free: list[int] = []
        self.refs: dict[int, int] = {}
        self.page_cache: dict[tuple[int, int], int] = {}
        self._cached: set[int] = set()
        self.procs: dict[int, Process] = {}
        self.by_space: dict[int, Process] = {}
        self._next_pid = 1
        self._seed = 0
        self.kernel_space = memory.new_space(dom)  # init_mm: the idle address space
        self._work: dict[tuple[str, int], Chunk] = {}  # see work()
        self._signal: tuple[Chunk, ...] | None = None  # see signal_delivery()
        self._cr3: dict[int, Chunk] = {}  # switch_mm's chunk per address space

    # --- frames ------------------------------------------------------------------------
    def alloc_frame(self) -> int:
        if self._free:
            f = self._free.pop()
        elif self._next < self._end:
            f = self._next
            self._next += 1
        else:
            raise PvsimError(f"guest domain {self.dom} is out of memory (raise its memory)")
        self.refs[f] = 1
        return f

    def put_frame(self, f: int) -> None:
        n = self.refs.get(f, 0) - 1
        if n <= 0:
            self.refs.pop(f, None)
            if f not in self._cached:
                self._free.append(f)
        else:
            self.refs[f] = n

    def file_frame(self, file: int, index: int) -> int:
        key = (file, index)
        if key not in self.page_cache:
            self.page_cache[key] = self.alloc_frame()
            self._cached.add(self.page_cache[key])
        return self.page_cache[key]

    # --- building blocks -----------------------------------------------------------------
    def work(self, routine: str, n: int) -> Chunk:
        """Kernel routine entry (for the translation cache) plus ``n`` instructions of work:
        one chunk per (routine, length), made on first use and shared (a chunk is never
        changed; a vCPU keeps its position in its own frame)."""
        chunk = self._work.get((routine, n))
        if chunk is None:  # (the params are frozen: the kernel's fraction never changes)
            rid, size = ROUTINES[routine]
            body = _work_template(n, self.p.kernel_mem_fraction, rid)
            marker = ChunkBuilder(kernel=True).code(rid, size).build()
            chunk = self._work[routine, n] = _concat(marker, body)
        return chunk

    def page_refs(self, frames: np.ndarray | list[int], per_frame: int) -> Chunk:
        """``per_frame`` atomic updates of each of ``frames``' ``struct page`` (its
        reference and reverse-map counts, its flags), frame by frame: locked
        (:attr:`~model.isa.Op.ATOMIC`) in an SMP kernel, plain stores on one CPU. (A few
        of a fault's are on its mm's or mapping's fields instead: the address only
        decides which TLB entry the access uses.)

        Examples
        --------
        >>> from model.paging import Memory
        >>> k = GuestKernel(1, Memory(n_data_frames=64), 0, 32, smp=True)
        >>> c = k.page_refs(np.array([3, 5]), 2)
        >>> [int(x - MEM_MAP) // STRUCT_PAGE for x in c.a], bool((c.op == Op.ATOMIC).all())
        ([3, 3, 5, 5], True)
        """
        va = np.repeat(MEM_MAP + np.asarray(frames, np.int64) * STRUCT_PAGE, per_frame)
        return _atomics(va, self._atomic)

    def syscall(self, routine: str, n: int, *extra: Chunk) -> Iterator[Chunk]:
        """A system call: user SYSCALL, entry path, ``n`` instructions of ``routine``,
        any ``extra`` kernel chunks, and SYSRET."""
        yield _SYSCALL
        yield self.work("syscall", self.p.syscall_entry)
        yield self.work(routine, n)
        yield from extra
        yield _SYSRET

    # --- processes -----------------------------------------------------------------------
    def spawn(self, text_file: int = 1) -> Process:
        """Create a process with resident text, data and stack (set up directly,
        as at boot: no instructions are charged)."""
        p = self.p
        proc = Process(
            self._next_pid,
            self.mem.new_space(self.dom),
            [
                Vma(TEXT_VPN, p.text_pages, "text", False, text_file),
                Vma(DATA_VPN, p.data_pages, "anon", True),
                Vma(STACK_VPN, p.stack_pages, "stack", True),
            ],
        )
        self._next_pid += 1
        for vma in proc.vmas:
            self.make_present(proc, vma, vma.pages)
        self.mem.space_flags[proc.space] = 0
        self._register(proc)
        return proc

    def make_present(self, proc: Process, vma: Vma, pages: int) -> None:
        """Map the first ``pages`` pages of ``proc``'s ``vma`` directly (as at boot: no
        instructions are charged): a file's (text or file kind) read-only from the page
        cache, shared; an anonymous one's writable, in fresh frames."""
        for i in range(pages):
            if vma.kind in ("text", "file"):
                frame, flags = self.file_frame(vma.file, i), PTE_P | PTE_U
                self.refs[frame] = self.refs.get(frame, 0) + 1
            else:
                frame, flags = self.alloc_frame(), PTE_P | PTE_U | PTE_W
            self.mem.set_pte(proc.space, vma.start + i, make_pte(frame, flags))

    def _register(self, proc: Process) -> None:
        self.procs[proc.pid] = proc
        self.by_space[proc.space] = proc

    def pin(self, proc: Process) -> Chunk:
        return ChunkBuilder(kernel=True).op(Op.PT_PIN, proc.space).build()

    def switch_to(self, proc: Process) -> Iterator[Chunk]:
        """Context switch: scheduler work, then, in a lazy-CPU batch, the next process's
        kernel stack (``__switch_to``'s esp0) and its address space (switch_mm's CR3)."""
        yield self.work("switch", self.p.context_switch)
        yield self._switch_mm(proc.space, stack=True)

    def _switch_mm(self, space: int, stack: bool = False) -> Chunk:
        """The CR3 load of a switch to ``space`` in a lazy-CPU batch, after the kernel
        stack's (``stack``: a switch of process); one chunk per (space, stack)."""
        chunk = self._cr3.get((space, stack))
        if chunk is None:
            b = ChunkBuilder(kernel=True).op(Op.LAZY_BEGIN)
            if stack:
                b.op(Op.STACK_SWITCH)
            chunk = self._cr3[space, stack] = b.op(Op.CR3_LOAD, space).op(Op.LAZY_END).build()
        return chunk

    def fork(self, parent: Process) -> Generator[Chunk, None, Process]:
        """fork(): copy the parent's page tables into a new address space, write-protect
        its private writable pages (copy-on-write), flush its TLB, pin the child's tables.

        Returns the child :class:`Process` (use ``child = yield from kernel.fork(p)``).
        """
        p = self.p
        child = Process(
            self._next_pid,
            self.mem.new_space(self.dom),
            [Vma(v.start, v.pages, v.kind, v.writable, v.file) for v in parent.vmas],
        )
        self._next_pid += 1
        entries = self.mem.present(parent.space)
        entries[:, 1] &= ~PTE_SHADOWED  # a model bit, invisible to the guest
        yield _SYSCALL
        yield self.work("syscall", p.syscall_entry)
        yield self.work("fork", p.fork_base + p.fork_per_vma * len(parent.vmas))
        b = ChunkBuilder(kernel=True).op(Op.LAZY_BEGIN)
        copy = _work_template(p.fork_per_pte, p.kernel_mem_fraction, 99)
        pieces = []
        for vpn, pte in entries.tolist():
            if pte & PTE_W:
                pte = (pte & ~PTE_W) | PTE_COW
                b.op(Op.PTE_WRITE, pte_target(parent.space, vpn), pte)
            b.op(Op.PTE_WRITE, pte_target(child.space, vpn), pte)
            frame = pte >> 12 & FRAME_MASK
            self.refs[frame] = self.refs.get(frame, 0) + 1
        b.op(Op.LAZY_END).op(Op.TLB_FLUSH)
        pieces.extend([copy] * len(entries))
        yield _concat(*pieces) if pieces else ChunkBuilder(kernel=True).build()
        yield self.page_refs(entries[:, 1] >> 12 & FRAME_MASK, p.fork_locked_per_pte)
        yield b.build()
        yield self.pin(child)
        yield _SYSRET
        self._register(child)
        return child

    def _teardown(self, space: int) -> Iterator[Chunk]:
        """exit_mmap: unpin (Xen PV), clear every PTE in a lazy
        batch, then free the frames and the page-table pages."""
        entries = self.mem.present(space)
        refs, clears = self.zap(space, entries)
        if len(entries):
            zap = _work_template(self.p.exit_per_pte, self.p.kernel_mem_fraction, 98)
            yield _concat(*([zap] * len(entries)))
            yield refs
        yield ChunkBuilder(kernel=True).op(Op.PT_UNPIN, space).build()
        yield clears
        self.release(entries)
        self.mem.free_space(space)

    def zap(self, space: int, entries: np.ndarray,
            tail: tuple[Op, ...] = ()) -> tuple[Chunk, Chunk]:
        """The chunks that clear ``entries`` (rows of (vpn, pte) of ``space``): the pages'
        ``struct page`` updates, then the PTE writes in a lazy batch, then the ``tail``
        operations (a TLB flush). :meth:`release` drops the kernel's references after."""
        refs = self.page_refs(entries[:, 1] >> 12 & FRAME_MASK, self.p.exit_locked_per_pte)
        b = ChunkBuilder(kernel=True).op(Op.LAZY_BEGIN)
        for vpn in entries[:, 0].tolist():
            b.op(Op.PTE_WRITE, pte_target(space, vpn), 0)
        b.op(Op.LAZY_END)
        for o in tail:
            b.op(o)
        return refs, b.build()

    def release(self, entries: np.ndarray) -> None:
        """Drop the reference each of ``entries`` (rows of (vpn, pte)) held on its frame."""
        for pte in entries[:, 1].tolist():
            self.put_frame(pte >> 12 & FRAME_MASK)

    def exit(self, proc: Process, switch_to: Process) -> Iterator[Chunk]:
        """exit(): switch away, tear the address space down, reap the process."""
        p = self.p
        yield _SYSCALL
        yield self.work("syscall", p.syscall_entry)
        yield self.work("exit", p.exit_base)
        yield from self.switch_to(switch_to)
        yield from self._teardown(proc.space)
        del self.procs[proc.pid], self.by_space[proc.space]
        yield _SYSRET

    def exec(self, proc: Process, text_file: int = 2) -> Iterator[Chunk]:
        """execve(): a new address space for a new program (text from the page cache,
        data and stack faulted in on demand); the old one is torn down."""
        p = self.p
        yield _SYSCALL
        yield self.work("syscall", p.syscall_entry)
        yield self.work("exec", p.exec_base)
        old = proc.space
        proc.space = self.mem.new_space(self.dom)
        del self.by_space[old]
        self.by_space[proc.space] = proc
        proc.vmas = [
            Vma(TEXT_VPN, p.text_pages, "text", False, text_file),
            Vma(DATA_VPN, p.data_pages, "anon", True),
            Vma(STACK_VPN, p.stack_pages, "stack", True),
        ]
        yield self.pin(proc)
        yield self._switch_mm(proc.space)
        yield from self._teardown(old)
        yield _IRET

    # --- faults ------------------------------------------------------------------------
    def page_fault(self, proc: Process, va: int, write: bool, kernel_mode: bool) -> FaultResolution:
        """Resolve a page fault of ``proc`` at ``va`` (the handler the CPU vectors to)."""
        vpn = va >> 12
        vma = proc.vma(vpn) if va < KERNEL_BASE else None
        pte = self.mem.lookup(proc.space, vpn) & ~PTE_SHADOWED
        if vma is None or (write and not vma.writable):
            if kernel_mode:  # exception-table fixup (copy_from_user and friends)
                return FaultResolution(
                    iter([self.work("fault", self.p.fault_fixup), _IRET]), skip=True
                )
            return FaultResolution(self._sigsegv(), skip=True)
        if pte & PTE_P and write and pte & PTE_COW:
            return FaultResolution(self._cow(proc, vpn, pte))
        return FaultResolution(self._demand(proc, vma, vpn))

    def _install(self, proc: Process, vpn: int, value: int) -> Chunk:
        return (
            ChunkBuilder(kernel=True)
            .op(Op.PTE_WRITE, pte_target(proc.space, vpn), value)
            .op(Op.INVLPG, vpn)
            .op(Op.IRET)
            .build()
        )

    def _demand(self, proc: Process, vma: Vma, vpn: int) -> Iterator[Chunk]:
        p = self.p
        if vma.kind in ("text", "file"):
            yield self.work("fault", p.fault_file)
            yield _mm_locks(p.fault_locked, self._atomic)
            frame = self.file_frame(vma.file, vpn - vma.start)
            yield self.page_refs([frame], p.fault_file_locked)
            self.refs[frame] = self.refs.get(frame, 0) + 1
            flags = PTE_P | PTE_U | (PTE_W if vma.writable else 0)
        else:
            yield self.work("fault", p.fault_anon)
            yield _mm_locks(p.fault_locked, self._atomic)
            frame = self.alloc_frame()
            yield self.page_refs([frame], p.fault_anon_locked)
            yield _clear_page(frame)
            flags = PTE_P | PTE_U | PTE_W
        yield self._install(proc, vpn, make_pte(frame, flags))

    def _cow(self, proc: Process, vpn: int, pte: int) -> Iterator[Chunk]:
        yield self.work("fault", self.p.fault_cow)
        yield _mm_locks(self.p.fault_locked, self._atomic)
        frame = pte >> 12 & FRAME_MASK
        if self.refs.get(frame, 1) > 1:  # still shared: copy it
            new = self.alloc_frame()
            yield _copy_page(frame, new)
            yield self.page_refs([frame], self.p.fault_cow_locked)
            self.put_frame(frame)
            frame = new
        else:
            yield self.page_refs([frame], self.p.fault_cow_reuse_locked)
        yield self._install(proc, vpn, make_pte(frame, PTE_P | PTE_U | PTE_W))

    def _sigsegv(self) -> Iterator[Chunk]:
        yield self.work("fault", self.p.fault_sigsegv)
        yield from self.signal_delivery()

    def signal_delivery(self) -> Iterator[Chunk]:
        """Build a signal frame on the user stack, run a small handler, sigreturn (the
        chunks made on first use and shared: a chunk is never changed)."""
        if self._signal is None:
            p = self.p
            frame_va = (STACK_VPN + p.stack_pages - 1) << 12
            push, pop = ChunkBuilder(kernel=True), ChunkBuilder(kernel=True)
            for i in range(8):
                push.store(frame_va + 64 * i)
                pop.load(frame_va + 64 * i)
            self._signal = (
                self.work("signal", p.signal_setup), push.op(Op.IRET).build(),
                ChunkBuilder().alu(20).build(),  # the user's handler
                _SYSCALL, self.work("sigreturn", p.sigreturn), pop.op(Op.IRET).build())
        return iter(self._signal)

    def interrupt(self) -> Iterator[Chunk]:
        """The guest's interrupt handler (timer or event-channel upcall)."""
        return iter((self.work("irq", self.p.interrupt_handler), _IRET))


_IRET = ChunkBuilder(kernel=True).op(Op.IRET).build()
_SYSCALL = ChunkBuilder().op(Op.SYSCALL).build()
_SYSRET = ChunkBuilder(kernel=True).op(Op.SYSRET).build()


def _concat(*chunks: Chunk) -> Chunk:
    return Chunk(
        np.concatenate([c.op for c in chunks]),
        np.concatenate([c.a for c in chunks]),
        np.concatenate([c.b for c in chunks]),
        chunks[0].kernel,
    )


def _page_run(op: int, frame: int) -> ChunkBuilder:
    base = KERNEL_BASE + (frame << 12)
    b = ChunkBuilder(kernel=True)
    for line in range(64):  # one access per 64-byte cache line (rep movs/stos)
        b.op(op, base + 64 * line)
    return b


def _clear_page(frame: int) -> Chunk:
    return _page_run(Op.STORE, frame).alu(64).build()


def _copy_page(src: int, dst: int) -> Chunk:
    s, d = _page_run(Op.LOAD, src).build(), _page_run(Op.STORE, dst).alu(128).build()
    return _concat(s, d)
