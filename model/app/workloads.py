"""Request-serving workloads: a web server, a key-value store, a database, a file server.

Each is a server (:mod:`model.app.server`): requests arrive from ``arrivals`` (open
loop by default, :mod:`model.app.arrivals`) as packets on the guest's NIC, wait in an
accept queue of ``backlog`` requests, and are served by ``workers`` worker processes
shared out over the guest's vCPUs. The per-request program is written here: receiving
the request (a ``read`` system call), computing, reading files from the page cache or
the disk, disk writes, and sending the response as packets of at most the NIC's largest
request (64 KiB with segmentation offload, else one MTU's payload). A request's size
from a trace replaces the response's size (the value's, for ``kv_store``).

Path lengths are estimates (instructions of a 2.6-era Linux and of typical servers).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..io.paths import work
from ..workload_registry import Param, workload
from .arrivals import Arrivals, Poisson
from .server import ServerConfig, Wait

_FRACTION = {"ge": 0, "le": 1}
#: The payload of one MTU-sized packet (1500 - 40 bytes of TCP/IP headers).
_MTU_PAYLOAD = 1460
#: The largest read a request makes of the disk at once.
_MAX_READ = 128 << 10


#: The workloads' default arrivals (frozen models, shared).
_WEB, _KV = Poisson(rate_per_s=500.0), Poisson(rate_per_s=5000.0)
_DB, _FILES = Poisson(rate_per_s=200.0), Poisson(rate_per_s=50.0)


def _common(default_workers: int) -> dict[str, Param]:
    return {
        "arrivals": Param("where requests come from: poisson, deterministic, bursty, trace "
                          "(open loop) or closed (users with think time)"),
        "workers": Param(f"worker processes, shared out over the vCPUs (default "
                         f"{default_workers})", ge=1, le=4096),
        "backlog": Param("requests the accept queue holds; arrivals beyond it are dropped",
                         ge=1, le=1 << 20),
        "requests": Param("requests the source sends in all; null: until the run ends",
                          ge=1, le=1e12),
        "request_bytes": Param("bytes of a request's packet", ge=1, le=65536),
    }


def _pages(p) -> int:
    from ..kernelparams import KernelParams

    kp = KernelParams()
    return p.workers * (kp.data_pages + kp.stack_pages)  # each worker's own


def _processes(p) -> int:
    return p.workers


def _packet(nic) -> int:
    """The largest packet the guest hands its NIC driver."""
    return getattr(nic.device, "max_request_bytes", None) or _MTU_PAYLOAD


def _send(nic, size: int) -> Iterator:
    """Send ``size`` bytes as packets, then wait until each is sent."""
    step = _packet(nic)
    pending = []
    left = max(size, 1)
    while left > 0:
        n = min(left, step)
        pending.append((yield from nic.submit(n, write=True)))
        left -= n
    for req in pending:
        yield Wait(req)


def _read_disk(disk, size: int, write: bool = False) -> Iterator:
    """Read (or write) ``size`` bytes of the disk, request by request."""
    left = size
    while left > 0:
        n = min(left, _MAX_READ)
        req = yield from disk.submit(n, write=write)
        yield Wait(req)
        left -= n


def _compute(n: int):
    return work(n, kernel=False)  # user code: one chunk per length, shared


def _server(ctx, nic, disk, p, serve) -> Iterator:
    """The program of one vCPU of a server guest: its share of the workers."""
    domain = ctx.vcpu.domain
    config = ServerConfig(p["arrivals"], p["workers"], p["backlog"], p["request_bytes"],
                          p["requests"], serve, nic, disk)
    server = ctx.host.enable_app().server(domain, config)
    n, i = len(domain.vcpus), ctx.vcpu.index
    mine = p["workers"] // n + (1 if i < p["workers"] % n else 0)
    return server.pool(ctx, mine).program()


@workload(needs=("disk", "nic"), pages=_pages, processes=_processes, **_common(8),
          response_bytes=Param("bytes of each response", ge=1, le=64 << 20),
          miss_ratio=Param("fraction of requests whose file is read from disk", **_FRACTION),
          parse_instructions=Param("instructions to parse and handle a request",
                                   ge=0, le=1e10))
def web_server(disk, nic, arrivals: Arrivals = _WEB, workers: int = 8,
               backlog: int = 128, requests: int | None = None, request_bytes: int = 300,
               response_bytes: int = 16384, miss_ratio: float = 0.2,
               parse_instructions: int = 100_000):
    """A static web server: each request is read (a system call), parsed, its file read
    from the page cache or, with probability ``miss_ratio``, from disk, and the response
    sent."""
    def program(ctx):
        k = ctx.kernel

        def serve(req, rng) -> Iterator:
            size = req.size if req.size >= 0 else response_bytes
            yield from k.syscall("read", k.p.read_null)
            yield _compute(parse_instructions)
            if rng.random() < miss_ratio:
                yield from _read_disk(disk, size)
            else:
                yield from k.syscall("read", k.p.read_null)  # from the page cache
            yield from _send(nic, size)

        return _server(ctx, nic, disk, locals_of(arrivals, workers, backlog, requests,
                                                 request_bytes), serve)
    return program


@workload(needs=("nic",), pages=_pages, processes=_processes, **_common(4),
          value_bytes=Param("bytes of each value returned", ge=0, le=1 << 20),
          instructions=Param("instructions to parse a request and look its key up",
                             ge=0, le=1e10))
def kv_store(nic, arrivals: Arrivals = _KV, workers: int = 4,
             backlog: int = 1024, requests: int | None = None, request_bytes: int = 64,
             value_bytes: int = 256, instructions: int = 20_000):
    """An in-memory key-value store (memcached-like): small requests, a lookup, a small
    response; no disk. Its latency is mostly the network path's, which is where
    virtualization's overhead on I/O shows most."""
    def program(ctx):
        k = ctx.kernel

        def serve(req, rng) -> Iterator:
            size = req.size if req.size >= 0 else value_bytes
            yield from k.syscall("read", k.p.read_null)
            yield _compute(instructions)
            yield from _send(nic, size + 32)  # the value and its header

        return _server(ctx, nic, None, locals_of(arrivals, workers, backlog, requests,
                                                 request_bytes), serve)
    return program


@workload(needs=("disk", "nic"), pages=_pages, processes=_processes, **_common(16),
          reads=Param("8 KiB page reads per transaction", ge=0, le=1000),
          miss_ratio=Param("fraction of page reads that miss the buffer pool (read from "
                           "disk)", **_FRACTION),
          writes=Param("8 KiB page writes per transaction, before the commit", ge=0, le=1000),
          cpu_instructions=Param("instructions of compute per transaction", ge=0, le=1e12),
          response_bytes=Param("bytes of the answer", ge=1, le=1 << 20))
def oltp_db(disk, nic, arrivals: Arrivals = _DB, workers: int = 16,
            backlog: int = 128, requests: int | None = None, request_bytes: int = 512,
            reads: int = 4, miss_ratio: float = 1.0, writes: int = 2,
            cpu_instructions: int = 200_000, response_bytes: int = 512):
    """Database transactions: page reads (from disk when they miss the buffer pool),
    compute, page writes, then the commit: a log write that must reach the disk before
    the answer is sent (fsync)."""
    def program(ctx):
        k = ctx.kernel

        def serve(req, rng) -> Iterator:
            yield from k.syscall("read", k.p.read_null)
            for _ in range(reads):
                if rng.random() < miss_ratio:
                    yield from _read_disk(disk, 8192)
            yield _compute(cpu_instructions)
            pending = []
            for _ in range(writes):
                pending.append((yield from disk.submit(8192, write=True)))
            for w in pending:
                yield Wait(w)
            yield from _read_disk(disk, 4096, write=True)  # the commit record
            yield from _send(nic, response_bytes)

        return _server(ctx, nic, disk, locals_of(arrivals, workers, backlog, requests,
                                                 request_bytes), serve)
    return program


def _file_server_check(p) -> None:
    if p.chunk_kib > p.file_kib:
        raise ValueError(f"chunk_kib {p.chunk_kib} is larger than file_kib {p.file_kib}: a "
                         "file is read in chunks of at most its size")


@workload(needs=("disk", "nic"), check=_file_server_check, pages=_pages,
          processes=_processes, **_common(8),
          file_kib=Param("size of each file served, KiB", ge=1, le=1 << 24),
          chunk_kib=Param("size of each read, KiB", ge=1, le=1 << 16),
          miss_ratio=Param("fraction of chunks read from disk (else the page cache)",
                           **_FRACTION))
def file_server(disk, nic, arrivals: Arrivals = _FILES, workers: int = 8,
                backlog: int = 128, requests: int | None = None, request_bytes: int = 200,
                file_kib: int = 256, chunk_kib: int = 64, miss_ratio: float = 1.0):
    """Serve whole files: a metadata lookup (stat and open), then chunk by chunk a read
    (from disk with probability ``miss_ratio``) and its sending."""
    def program(ctx):
        k = ctx.kernel

        def serve(req, rng) -> Iterator:
            size = req.size if req.size >= 0 else file_kib * 1024
            yield from k.syscall("read", k.p.read_null)
            yield from k.syscall("stat", k.p.stat)
            yield from k.syscall("open", k.p.open)
            left = size
            while left > 0:
                n = min(left, chunk_kib * 1024)
                if rng.random() < miss_ratio:
                    yield from _read_disk(disk, n)
                else:
                    yield from k.syscall("read", k.p.read_null)
                yield from _send(nic, n)
                left -= n
            yield from k.syscall("close", k.p.close)

        return _server(ctx, nic, disk, locals_of(arrivals, workers, backlog, requests,
                                                 request_bytes), serve)
    return program


def locals_of(arrivals, workers, backlog, requests, request_bytes) -> dict:
    """The server parameters every request-serving workload has, by name."""
    return {"arrivals": arrivals, "workers": workers, "backlog": backlog,
            "requests": requests, "request_bytes": request_bytes}
