"""Workloads that use I/O through an attachment (:class:`model.io.system.Attachment`)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from ..isa import Chunk, ChunkBuilder
from ..workload_registry import Param, workload
from ..workloads import enter

_FRACTION = {"ge": 0, "le": 1}


def _count(what: str) -> Param:
    return Param(f"{what}; null: forever", ge=1, le=1e12)


@workload(needs=("disk",),
          size=Param("bytes per request", ge=1, le=64 << 20),
          write_fraction=Param("fraction of requests that are writes", **_FRACTION),
          think_us=Param("compute between requests, microseconds", ge=0, le=1e9),
          queue_depth=Param("requests kept outstanding (asynchronous I/O above 1)", ge=1,
                            le=4096),
          requests=_count("requests to issue"),
          sequential=Param("requests follow each other on the disk (no seek)"))
def disk_io(att, size: int = 4096, write_fraction: float = 0.0, think_us: float = 0.0,
            queue_depth: int = 1, requests: int | None = None, sequential: bool = False):
    """Issue ``size``-byte requests with ``queue_depth`` outstanding (a process with
    asynchronous I/O when above one), computing ``think_us`` between requests.
    Runs ``requests`` requests, or forever."""
    def program(ctx) -> Iterator[Chunk]:
        k = ctx.kernel
        yield enter(k, k.spawn())
        think = ChunkBuilder().alu(int(think_us * ctx.hw.freq_hz / 1e6)).build()
        rng = ctx.rng
        pending: deque = deque()
        issued = 0
        offset = 0
        while requests is None or issued < requests or pending:
            while len(pending) < queue_depth and (requests is None or issued < requests):
                write = bool(rng.random() < write_fraction)
                off = offset if sequential else -1
                offset += size
                req = yield from att.submit(size, write, off)
                pending.append(req)
                issued += 1
            yield from att.wait(pending.popleft())
            if think_us:
                yield think
    return program


_NET = {"mtu": Param("the MTU, bytes: each request carries mtu - 40 payload bytes",
                   ge=576, le=9000),
        "window": Param("segments in flight", ge=1, le=4096),
        "packets": _count("segments to transfer")}


@workload(needs=("nic",), **_NET)
def net_tx(att, mtu: int = 1500, window: int = 64, packets: int | None = None):
    """Bulk TCP-like transmission: MTU-sized segments with up to ``window`` in flight."""
    return disk_io(att, size=mtu - 40, write_fraction=1.0, queue_depth=window,
                   requests=packets)


@workload(needs=("nic",), **_NET)
def net_rx(att, mtu: int = 1500, window: int = 64, packets: int | None = None):
    """Bulk reception: ``window`` receive buffers posted; each completes when an MTU-sized
    segment arrives at line rate."""
    return disk_io(att, size=mtu - 40, write_fraction=0.0, queue_depth=window,
                   requests=packets)


def _compute(ctx, instructions: int) -> Chunk:
    return ChunkBuilder().alu(instructions).build()


@workload(needs=("disk",), processes=3,
          jobs=Param("compile jobs, one after another", ge=1, le=1e6),
          sources_per_job=Param("16 KiB source files each job reads", ge=0, le=1000),
          compile_instructions=Param("instructions of one compilation", ge=0, le=1e12))
def kernel_build(disk, jobs: int = 8, sources_per_job: int = 4,
                 compile_instructions: int = 3_000_000):
    """Compile jobs: each forks and execs a compiler, reads its sources (16 KiB each),
    computes, writes an object file (32 KiB) and exits."""
    def program(ctx) -> Iterator[Chunk]:
        k = ctx.kernel
        make = k.spawn()
        yield enter(k, make)
        for job in range(jobs):
            cc = yield from k.fork(make)
            yield from k.switch_to(cc)
            yield from k.exec(cc, text_file=10)
            for _ in range(sources_per_job):
                yield from disk.read(16384)
            yield _compute(ctx, compile_instructions)
            yield from disk.read(32768, write=True)
            yield from k.exit(cc, switch_to=make)
            del job
    return program
