"""Test harness: run a hand-written instruction stream on one guest and measure it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from model.categories import NAMES
from model.domain import DomainConfig
from model.host import Host
from model.isa import Chunk
from model.microbench import measured
from model.vcpu import Marker
from model.workloads import enter

P4 = "netburst-3.8ghz-vt"  # AA06's testbed: VT-x, shadow paging only
NEHALEM = "nehalem-2.93ghz-ept"  # EPT (nested paging) and VPID


class Measurement:
    """What ran between the markers: cycles by category, and the vCPU."""

    def __init__(self, host: Host, cycles: np.ndarray) -> None:
        self.host = host
        self.vcpu = host.domains[0].vcpus[0]
        self.array = cycles
        self.total = int(cycles.sum())
        self.by_category = {NAMES[i]: int(cycles[i]) for i in range(len(NAMES)) if cycles[i]}

    def counter(self, name: str) -> int:
        from model.vectors import STAT_NAMES
        idx = {v: k for k, v in STAT_NAMES.items()}[name]
        return int(self.vcpu.cpu[idx])


def measure(mode: str, body: Callable[[object, object], Iterable[Chunk]],
            hardware: str = P4, **guest) -> Measurement:
    """Run ``body(kernel, process)`` between markers in a fresh process of a guest
    in ``mode`` (on its first vCPU; ``vcpus=2`` makes it an SMP guest whose second vCPU
    has nothing to do); returns the cycles spent between the markers."""
    def program(ctx):
        if ctx.vcpu.index:
            return
        k = ctx.kernel
        p = k.spawn()
        yield enter(k, p)
        items = body(k, p)
        yield Marker("start")
        yield from items
        yield Marker("stop")
    host = Host(hardware, pcpus=1, memory_mb=256)
    host.add_guest(DomainConfig("t", mode=mode, memory_mb=64, **guest), program)
    host.run()
    return Measurement(host, measured(host.domains[0].vcpus[0].marks))


def legend_texts(legend) -> list[str]:
    """The texts of a matplotlib legend's entries, in order."""
    return [t.get_text() for t in legend.get_texts()]
