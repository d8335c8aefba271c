"""Workloads that use I/O through an attachment (:class:`model.iopath.Attachment`)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from .isa import Chunk, ChunkBuilder
from .workloads import enter


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


def net_tx(att, mtu: int = 1500, window: int = 64, packets: int | None = None):
    """Bulk TCP-like transmission: MTU-sized segments with up to ``window`` in flight."""
    return disk_io(att, size=mtu - 40, write_fraction=1.0, queue_depth=window,
                   requests=packets)
