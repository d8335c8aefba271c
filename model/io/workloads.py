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


@workload(needs=("disk",),
          transactions=Param("transactions to run", ge=1, le=1e9),
          reads=Param("random 8 KiB reads per transaction", ge=0, le=1000),
          writes=Param("8 KiB writes per transaction, before the commit", ge=0, le=1000),
          cpu_instructions=Param("instructions of compute per transaction", ge=0, le=1e12))
def oltp_db(disk, transactions: int = 200, reads: int = 4, writes: int = 2,
            cpu_instructions: int = 200_000):
    """Database transactions: random 8 KiB reads, compute, 8 KiB writes, then a log write
    that must complete before commit (fsync)."""
    def program(ctx) -> Iterator[Chunk]:
        k = ctx.kernel
        yield enter(k, k.spawn())
        for _ in range(transactions):
            for _ in range(reads):
                yield from disk.read(8192)
            yield _compute(ctx, cpu_instructions)
            pending = []
            for _ in range(writes):
                pending.append((yield from disk.submit(8192, write=True)))
            for req in pending:
                yield from disk.wait(req)
            yield from disk.read(4096, write=True)  # the commit record, synchronously
    return program


def _file_server_check(p) -> None:
    if p.chunk_kib > p.file_kib:
        raise ValueError(f"chunk_kib {p.chunk_kib} is larger than file_kib {p.file_kib}: a "
                         "file is read in chunks of at most its size")


@workload(needs=("disk",), check=_file_server_check,
          files=Param("files to serve", ge=1, le=1e9),
          file_kib=Param("size of each file, KiB", ge=1, le=1 << 24),
          chunk_kib=Param("size of each read, KiB", ge=1, le=1 << 16))
def file_server(disk, files: int = 16, file_kib: int = 256, chunk_kib: int = 64):
    """Serve whole files: a metadata lookup (stat and open), then sequential reads."""
    def program(ctx) -> Iterator[Chunk]:
        k = ctx.kernel
        yield enter(k, k.spawn())
        offset = 0
        for _ in range(files):
            yield from k.syscall("stat", k.p.stat)
            yield from k.syscall("open", k.p.open)
            for _ in range(file_kib // chunk_kib):
                yield from disk.read(chunk_kib * 1024, offset=offset)
                offset += chunk_kib * 1024
            yield from k.syscall("close", k.p.close)
    return program


@workload(needs=("disk", "nic"),
          requests=Param("requests to serve", ge=1, le=1e12),
          rate_per_s=Param("requests per second if serving took no time (an exponential "
                           "gap of mean 1/rate follows each request)", gt=0, le=1e7),
          response_bytes=Param("bytes of each response", ge=1, le=64 << 20),
          miss_ratio=Param("fraction of requests whose file is read from disk", **_FRACTION),
          cpu_instructions=Param("instructions to handle one request", ge=0, le=1e10))
def web_server(disk, nic, requests: int = 200, rate_per_s: float = 2000.0,
               response_bytes: int = 16384, miss_ratio: float = 0.2,
               cpu_instructions: int = 100_000):
    """A closed loop of ``requests`` requests, one at a time: the server sleeps an
    exponential gap (mean ``1 / rate_per_s``), then parses the request, reads a small file
    (from disk with probability ``miss_ratio``, else from the page cache) and sends the
    response over the NIC in MTU-sized segments. The next gap starts when the response is
    sent, so the load offered falls as service slows: an overloaded server serves fewer
    requests, it does not build a queue (arrivals are not Poisson at the server)."""
    from ..isa import Op

    def program(ctx) -> Iterator[Chunk]:
        k = ctx.kernel
        yield enter(k, k.spawn())
        rng = ctx.rng
        f = ctx.hw.freq_hz
        segments = -(-response_bytes // 1460)
        for _ in range(requests):
            gap = int(rng.exponential(1.0 / rate_per_s) * f)
            yield ChunkBuilder(kernel=True).op(Op.TIMER, gap).op(Op.HLT).build()
            yield from k.syscall("read", k.p.read_null)
            yield _compute(ctx, cpu_instructions)
            if rng.random() < miss_ratio:
                yield from disk.read(4096)
            pending = []
            for _ in range(segments):
                pending.append((yield from nic.submit(1460, write=True)))
            for req in pending:
                yield from nic.wait(req)
    return program
