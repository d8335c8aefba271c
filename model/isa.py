"""The instruction set of the emulated machine and its chunked streams.

A guest's instruction stream is a sequence of chunks. A chunk is three parallel
numpy arrays (``op``, ``a``, ``b``): the instruction class and up to two
operands. Streams are produced chunk by chunk by generators and never
materialized whole.

Ordinary instructions are consumed in bulk by the compiled CPU/MMU kernel
(:mod:`model.cpu`); sensitive ones are handled as the virtualization mode's
policy table says (:mod:`model.modes`).

Operand conventions
-------------------
``ALU``        a = run length (a >= 1 identical register-only instructions)
``LOAD/STORE`` a = virtual address
``ATOMIC``     a = virtual address: a locked read-modify-write of memory (a
               ``lock``-prefixed instruction, or ``xchg`` with memory): an access that
               writes and costs the processor's ``locked_rmw`` instead of ``mem``
``CODE``       a = routine id, b = static size of the routine in instructions
               (a marker at the entry of a kernel routine: binary translation
               translates that code on a translation-cache miss; free elsewhere)
``PTE_WRITE``  a = ``pte_target(space, vpn)``, b = new PTE value (``make_pte``)
``CR3_LOAD``   a = address-space id
``INVLPG``     a = virtual page number
``PIO``        a = port
``TIMER``      a = delay in cycles from now (one-shot)
``HLT``        a = 0: halt until an interrupt; a > 0: halt unless an interrupt was
               delivered since the vCPU's interrupt count was a - 1 (check, then halt)
``EXC``        a = exception vector (0 = divide error)
``PT_PIN``     a = address-space id: its tables become page tables the hypervisor
               watches (Xen PV: MMUEXT_PIN_L4_TABLE validates every entry)
``PT_UNPIN``   a = address-space id: teardown begins (Xen PV: MMUEXT_UNPIN_TABLE;
               nothing elsewhere: a shadow VMM only sees the teardown's writes)
``IO``         a = I/O action id, b = its argument: an action of an I/O path (publish
               on a ring, notify, take responses) that must happen at its exact
               simulated time; the hypervisor performs it and charges its costs
``STACK_SWITCH`` the kernel stack of the process switched to is made the one a trap
               enters on (the TSS's esp0: a store natively, counted in the switch's
               work; Xen PV: HYPERVISOR_stack_switch, in the switch's multicall)

``PT_ALLOC``, ``PAGE_FAULT``, ``HIDDEN_FAULT`` and ``INTERRUPT`` are events the
machine raises (a page-table page linked in, a fault, an interrupt delivered),
not instructions of a stream; they have policy rows all the same. So are
``PTE_CLEAR`` and ``PTE_FILL``: a ``PTE_WRITE`` that a shadow-paging VMM traces is
counted and charged as the kind of change it makes, as AA06's ptemod rows
measure them (present to not present, not present to present; any other change,
or none, is a ``PTE_WRITE``).

Examples
--------
>>> from model.isa import Op, ChunkBuilder
>>> c = ChunkBuilder().alu(10).load(0x1000).op(Op.SYSCALL).build()
>>> len(c), int(c.op[0]), int(c.a[0])
(3, 0, 10)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class Op(IntEnum):
    """Instruction classes. Values below :data:`FIRST_SENSITIVE` are ordinary."""

    ALU = 0
    LOAD = 1
    STORE = 2
    BRANCH = 3
    CALL = 4
    RET = 5
    CODE = 6
    ATOMIC = 7
    # sensitive operations
    SYSCALL = 10
    SYSRET = 11
    IRET = 12
    PTE_WRITE = 13
    CR3_LOAD = 14
    TLB_FLUSH = 15
    INVLPG = 16
    PIO = 17
    MMIO = 18
    CLI = 19
    STI = 20
    TIMER = 21
    HLT = 22
    CPUID = 23
    RDTSC = 24
    EXC = 25
    CR8_WRITE = 26
    LAZY_BEGIN = 27
    LAZY_END = 28
    PT_ALLOC = 29
    YIELD = 30
    PT_PIN = 31
    PT_UNPIN = 32
    IO = 33
    STACK_SWITCH = 34
    # events raised by the machine, not instructions in a stream
    PAGE_FAULT = 40
    HIDDEN_FAULT = 41
    INTERRUPT = 42
    PTE_CLEAR = 43
    PTE_FILL = 44


FIRST_SENSITIVE = 10
N_OPS = 45

#: Sensitive operations whose effect reaches beyond the vCPU (the hypervisor
#: or the scheduler must act at the right simulated time): the kernel stops there.
STOP_OPS = (Op.HLT, Op.YIELD, Op.PIO, Op.MMIO, Op.IO)

# Page-table entry layout (x86-like): frame << PAGE_SHIFT | flags. These are the only
# definitions of the entry bits, the address widths and the table geometry: the
# compiled kernel (model.cpu) and the page tables (model.paging) import them (numba
# freezes module-level ints as compile-time constants, so names cost nothing).
PTE_P = 0x1  # present
PTE_W = 0x2  # writable
PTE_U = 0x4  # user
PTE_A = 0x20  # accessed
PTE_D = 0x40  # dirty
PTE_G = 0x100  # global
PTE_COW = 0x200  # software bit: copy-on-write
PTE_SHADOWED = 1 << 52  # model bit: a shadow entry exists for this guest PTE
PAGE_SHIFT = 12  # 4 KiB pages: va >> PAGE_SHIFT is the virtual page number (vpn)
FRAME_MASK = (1 << 40) - 1  # the frame of an entry: (pte >> PAGE_SHIFT) & FRAME_MASK
VPN_BITS = 36  # a pte_target operand: space << VPN_BITS | vpn
VPN_MASK = (1 << VPN_BITS) - 1
PT_LEVELS = 4  # a page-table tree: L4 (root) .. L1 (leaves)
PT_INDEX_BITS = 9  # vpn bits that index one level's table
PT_ENTRIES = 1 << PT_INDEX_BITS  # entries per page-table page
PT_INDEX_MASK = PT_ENTRIES - 1
LARGE_PAGE_SHIFT = PAGE_SHIFT + PT_INDEX_BITS  # 2 MiB pages (the kernel's direct map)
#: Virtual addresses at or above this are the guest kernel's direct map (2 MiB pages).
KERNEL_BASE = 1 << 47


def make_pte(frame: int, flags: int) -> int:
    """Encode a page-table entry.

    Examples
    --------
    >>> hex(make_pte(5, PTE_P | PTE_W))
    '0x5003'
    """
    return (int(frame) << PAGE_SHIFT) | int(flags)


def pte_target(space: int, vpn: int) -> int:
    """Encode the operand naming the PTE of ``vpn`` in address space ``space``."""
    return (int(space) << VPN_BITS) | int(vpn)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk of an instruction stream (three parallel arrays).

    ``kernel`` says whether the chunk executes in guest kernel mode.
    """

    op: np.ndarray
    a: np.ndarray
    b: np.ndarray
    kernel: bool = False
    #: a chunk that is one ``Op.IO`` instruction (:func:`model.io.paths.io_op`) names its
    #: action here (-1: any other chunk): the vCPU stops at it without calling the kernel,
    #: which would do nothing else
    action: int = -1

    def __len__(self) -> int:
        return len(self.op)

    def instructions(self) -> int:
        """Number of instructions in the chunk (ALU runs count their length)."""
        alu = self.op == Op.ALU
        return int(self.a[alu].sum() + (~alu).sum())


class ChunkBuilder:
    """Accumulates instructions and builds a :class:`Chunk`.

    Examples
    --------
    >>> b = ChunkBuilder(kernel=True).code(3, 120).alu(40).op(Op.SYSRET)
    >>> b.build().kernel
    True
    """

    __slots__ = ("_op", "_a", "_b", "kernel")

    def __init__(self, kernel: bool = False) -> None:
        self._op: list[int] = []
        self._a: list[int] = []
        self._b: list[int] = []
        self.kernel = kernel

    def op(self, op: int, a: int = 0, b: int = 0) -> ChunkBuilder:
        self._op.append(int(op))
        self._a.append(int(a))
        self._b.append(int(b))
        return self

    def alu(self, n: int) -> ChunkBuilder:
        if n > 0:
            self.op(Op.ALU, n)
        return self

    def load(self, va: int) -> ChunkBuilder:
        return self.op(Op.LOAD, va)

    def store(self, va: int) -> ChunkBuilder:
        return self.op(Op.STORE, va)

    def atomic(self, va: int) -> ChunkBuilder:
        return self.op(Op.ATOMIC, va)

    def code(self, routine: int, static_size: int) -> ChunkBuilder:
        return self.op(Op.CODE, routine, static_size)

    def __len__(self) -> int:
        return len(self._op)

    def build(self) -> Chunk:
        return Chunk(
            np.array(self._op, dtype=np.uint8),
            np.array(self._a, dtype=np.int64),
            np.array(self._b, dtype=np.int64),
            self.kernel,
        )
