"""Process images: the mappings a dynamically linked program has besides its own, and what
its start-up does (the dynamic loader's system calls and the pages it touches).

A :class:`ProcessImage` lists the segments a program maps beyond its own text, data and
stack (:meth:`model.guestos.GuestKernel.spawn` makes those): the C library's and the
dynamic loader's text, read-only data and data, their anonymous memory (bss, TLS, heap),
each with its size and the pages a start-up touches; and the system calls of the start-up
(opening and mapping the libraries, relocation's ``mprotect`` calls, TLS set-up).

:func:`map_image` adds an image's segments to a process, either with the pages a start-up
touched already present (a process that has run: the forking parent of ``lat_proc``) or
none (just exec'd); :func:`start_up` is the start-up itself: its system calls, then one
page fault per page it touches (one page per fault, as Linux 2.4, which has no
fault-around).

The defaults were measured on this machine (Linux 6.18, glibc 2.36, dash 0.5.12, x86-64),
not on the Linux 2.4 and glibc 2.3 of lmbench's published figures: the system calls with
``strace``, the mappings with ``/proc/self/smaps``, the pages touched as the page faults
``perf record -e page-faults -c 1 -d`` counts per mapping. A modern kernel's fault-around
maps up to 16 file pages per fault, so the pages a start-up touches are at least these
counts (a lower bound for Linux 2.4).

Examples
--------
>>> sum(s.touched for s in DYNAMIC_C.segments), len(DYNAMIC_C.startup)
(43, 28)
>>> sum(s.touched for s in DASH.segments), len(DASH.startup)
(51, 49)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .guestos import GuestKernel, Process, Vma
from .isa import Chunk, ChunkBuilder, Op

#: Where an image's segments are mapped: above the program's data and below mmap()'s
#: area (:data:`model.guestos.MMAP_VPN`), one unmapped page between two segments.
LIB_VPN = 0x6000000


@dataclass(frozen=True)
class Segment:
    """One mapping of an image.

    Attributes
    ----------
    name : str
        What it is (``libc text``).
    kind : str
        ``text`` (file-backed, read-only, shared with every process mapping the file) or
        ``anon`` (private and writable: a library's data after its copy-on-write, bss,
        TLS, heap).
    pages : int
        Its size.
    touched : int
        Pages a start-up touches.
    file : int
        The file a ``text`` segment maps (page-cache id), -1 for ``anon``.
    """

    name: str
    kind: str
    pages: int
    touched: int
    file: int = -1


@dataclass(frozen=True)
class ProcessImage:
    """A dynamically linked program's segments beyond its own, and its start-up's system
    calls (``(routine, KernelParams field)`` each: the routine names the code for binary
    translation, the field its path length)."""

    name: str
    segments: tuple[Segment, ...]
    startup: tuple[tuple[str, str], ...]


def _calls(*groups: tuple[int, str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(call for n, routine, length in groups for call in [(routine, length)] * n)


#: The loader's and libc's start-up calls of a dynamically linked C program (strace of
#: ``hello``, lmbench's ``hello.c``, from its execve to its own write): brk, 8 mmap, access,
#: 2 openat, 2 fstat, 2 close, read, 2 pread64, 3 mprotect, arch_prctl, set_tid_address,
#: set_robust_list, rseq, prlimit64, munmap.
_LOADER = _calls((1, "mmap", "brk"), (8, "mmap", "mmap"), (1, "stat", "access"),
                 (2, "open", "open"), (2, "stat", "stat"), (2, "close", "close"),
                 (3, "read", "read_null"), (3, "mmap", "mprotect"), (5, "null", "null_syscall"),
                 (1, "munmap", "munmap_base"))  # fmt: skip

#: The libraries' mappings (``/proc/self/smaps``): name, kind, pages, file (page-cache id).
_LIBRARIES = (("libc text", "text", 342, 20), ("libc read-only data", "text", 83, 21),
              ("libc data", "anon", 6, -1), ("loader text", "text", 38, 22),
              ("loader data", "anon", 4, -1), ("loader cache", "text", 9, 23))


def _linked(touched: tuple[int, ...], heap: tuple[int, int]) -> tuple[Segment, ...]:
    """The libraries' segments, each with the pages a start-up touches (in the order of
    :data:`_LIBRARIES`), and the program's anonymous memory: ``heap`` (pages, touched)."""
    return (*(Segment(name, kind, pages, t, file) for (name, kind, pages, file), t
              in zip(_LIBRARIES, touched, strict=True)),
            Segment("bss, TLS and heap", "anon", *heap))


#: A dynamically linked C program: libc and the dynamic loader (the page faults per
#: mapping of ``hello``: libc 22, the loader 10, anonymous 9, the loader's cache 2).
DYNAMIC_C = ProcessImage("dynamic C program", _linked((14, 4, 4, 6, 4, 2), (16, 9)), _LOADER)

#: ``/bin/sh -c /tmp/hello`` by dash, up to its vfork and exec of the program: the loader's
#: calls and 21 of its own (7 rt_sigaction, 2 rt_sigprocmask, 2 fstat, 2 brk, geteuid
#: twice, getuid, getgid, getegid, getpid, getppid, getrandom); page faults per mapping:
#: libc 28, the loader 10, anonymous 12, the cache 1 (dash's own text, 10 faults, is the
#: program's: the bench's exec of a program touches its text itself).
DASH = ProcessImage(
    "dash", _linked((18, 6, 4, 6, 4, 1), (33, 12)),
    _LOADER + _calls((9, "sigaction", "sigaction"), (2, "stat", "stat"), (2, "mmap", "brk"),
                     (8, "null", "null_syscall")),
)


def map_image(k: GuestKernel, proc: Process, image: ProcessImage,
              present: bool) -> list[Vma]:
    """Add ``image``'s segments to ``proc`` (at :data:`LIB_VPN`), with the pages a
    start-up touches already present (``present``: set up directly, as at boot; no
    instructions are charged) or none. Returns the new VMAs, in the image's order."""
    vmas, vpn = [], LIB_VPN
    for seg in image.segments:
        vma = Vma(vpn, seg.pages, "file" if seg.kind == "text" else "anon",
                  seg.kind == "anon", seg.file)
        vpn += seg.pages + 1
        proc.vmas.append(vma)
        vmas.append(vma)
        if present:
            k.make_present(proc, vma, seg.touched)
    return vmas


def start_up(k: GuestKernel, proc: Process, image: ProcessImage) -> Iterator[Chunk]:
    """A start-up of ``image`` in ``proc`` (just exec'd): map its segments, make its
    system calls, then touch its pages (a read of each text page, a write of each data
    page: one fault each)."""
    vmas = map_image(k, proc, image, present=False)
    for routine, length in image.startup:
        yield from k.syscall(routine, getattr(k.p, length))
    b = ChunkBuilder()
    for seg, vma in zip(image.segments, vmas, strict=True):
        for i in range(seg.touched):
            b.alu(10).op(Op.STORE if seg.kind == "anon" else Op.LOAD, (vma.start + i) << 12)
    yield b.build()
