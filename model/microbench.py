"""OS microbenchmarks: lmbench's operations (defined as lmbench defines them,
:mod:`model.lmbench`), AA06's nanobenchmarks and I/O workloads, per mode.

Each op is a program that sets up its processes, runs warm-up iterations (so
the translation cache and the TLB reach steady state, as the published
benchmarks do) and then measured iterations between markers. Every op is
modelled as the guest kernel performs it (:mod:`model.guestos`), never as a
constant per mode: the differences between modes come only from the policy
tables and the hardware profile.

Examples
--------
>>> r = run_op("null_syscall", "native", "netburst-3.8ghz-vt")
>>> r.cycles > 0 and r.breakdown["kernel"] > 0
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from . import lmbench as lm
from .categories import NAMES
from .domain import DomainConfig
from .errors import PvsimError, UnknownNameError
from .guestos import DATA_VPN, GuestKernel, Process
from .hardware import DEFAULT_PROFILE, load_profile
from .host import Host, WorkloadContext
from .io.devices import Device, NicService, SsdService
from .io.paths import PATHS
from .isa import PTE_P, PTE_SHADOWED, PTE_U, PTE_W, Chunk, ChunkBuilder, Op, make_pte, pte_target
from .lmbench import Iteration
from .modes import MODES
from .vcpu import Marker
from .workload_registry import registry
from .workloads import cpu_bound, enter


@dataclass(frozen=True)
class OpResult:
    """One (op, mode) measurement: mean latency and cycles per iteration, by category."""

    op: str
    mode: str
    latency_us: float
    cycles: float
    breakdown: dict[str, float]
    iterations: int
    extra: dict[str, float] = field(default_factory=dict)  # e.g. throughput_mbps

    def as_dict(self) -> dict:
        return {"op": self.op, "mode": self.mode, "latency_us": self.latency_us,
                "cycles": self.cycles, "breakdown": self.breakdown, **self.extra}


# --- AA06 nanobenchmarks: code run in the guest kernel -----------------------------------

def _kernel_ops(*ops: tuple[int, int, int]) -> Chunk:
    b = ChunkBuilder(kernel=True)
    for op, a, bb in ops:
        b.op(op, a, bb)
    return b.build()


def _nb_syscall(k, p):
    return lambda: k.syscall("nanobench", 0)


def _nb_in(k, p):
    c = _kernel_ops((Op.PIO, 0x80, 1))
    return lambda: iter([c])


def _nb_cr8(k, p):
    c = _kernel_ops((Op.CR8_WRITE, 0, 0))
    return lambda: iter([c])


def _nb_call_ret(k, p):
    c = _kernel_ops((Op.CALL, 0, 0), (Op.RET, 0, 0))
    return lambda: iter([c])


def _nb_pgfault(k, p):
    c = _kernel_ops((Op.LOAD, (DATA_VPN + 0x9000) << 12, 0))  # no VMA: fixed up, skipped
    return lambda: iter([c])


def _nb_divzero(k, p):
    def it():
        yield _kernel_ops((Op.EXC, 0, 0))
        yield k.work("trap", k.p.trap_handler)
        yield _kernel_ops((Op.IRET, 0, 0))
    return it


def _nb_ptemod(k, p):
    vpn = DATA_VPN
    value = k.mem.lookup(p.space, vpn) & ~PTE_SHADOWED
    c = _kernel_ops((Op.PTE_WRITE, pte_target(p.space, vpn), value))
    return lambda: iter([c])


#: The entries AA06's P->NP and NP->P ptemods change, one per iteration: one page table's
#: worth (512), in no VMA, so that no write allocates a table.
_PTEMOD_VPN, _PTEMOD_ENTRIES = DATA_VPN + 0x8000, 512


def _nb_ptemod_change(present_before: bool):
    """AA06's ptemod P->NP (``present_before``) or NP->P: each iteration changes the
    next of :data:`_PTEMOD_ENTRIES` entries, from present to not present or back."""
    def make(k: GuestKernel, p: Process) -> Iteration:
        pte = make_pte(k.alloc_frame(), PTE_P | PTE_W | PTE_U)
        vpns = range(_PTEMOD_VPN, _PTEMOD_VPN + _PTEMOD_ENTRIES)
        for vpn in vpns:
            k.mem.set_pte(p.space, vpn, pte if present_before else 0)
        value = 0 if present_before else pte
        chunks = iter([_kernel_ops((Op.PTE_WRITE, pte_target(p.space, v), value)) for v in vpns])

        def iteration() -> Iterator[Chunk]:
            chunk = next(chunks, None)
            if chunk is None:
                raise PvsimError(f"a ptemod P->NP or NP->P bench changes at most "
                                 f"{_PTEMOD_ENTRIES} entries: measure fewer iterations")
            yield chunk
        return iteration
    return make


@dataclass(frozen=True)
class OpSpec:
    """A bench op: its iteration's maker, how many iterations are measured after how
    many warm-up ones, its kind (``os``, ``nano``, ``macro``, ``io``, or ``part``: a loop
    another op subtracts, not run by default), a one-line description, the op whose cost
    is subtracted (lmbench's definitions, :data:`model.lmbench.SUBTRACT`) and the units
    an iteration is reported per."""

    make: Callable[[GuestKernel, Process], Iteration]
    iterations: int
    warmup: int
    kind: str  # "os" | "nano" | "macro" | "io" | "part"
    doc: str
    subtract: str | None = None
    per: int = 1


def _os(make, iterations: int, warmup: int, doc: str, kind: str = "os") -> OpSpec:
    return OpSpec(make, iterations, warmup, kind, doc)


OPS: dict[str, OpSpec] = {
    "null_syscall": _os(lm.null_syscall, 200, 5, "lat_syscall null: getppid()"),
    "null_io": _os(lm.null_io, 200, 5, "lat_syscall read and write of one byte, per call"),
    "stat": _os(lm.stat, 100, 5, "lat_syscall stat: stat() of a cached file"),
    "open_close": _os(lm.open_close, 100, 5, "lat_syscall open: open() and close()"),
    "signal_install": _os(lm.signal_install, 200, 5, "lat_sig install: sigaction()"),
    "signal_handle": _os(lm.signal_handle, 100, 5, "lat_sig catch: kill(me, SIGUSR1) "
                         "caught, minus kill(me, 0)"),
    "fork": _os(lm.fork, 20, 2, "lat_proc fork: fork, the child exits, the parent waits"),
    "exec": _os(lm.exec_, 10, 2, "lat_proc exec: fork + execve of a small program"),
    "sh": _os(lm.sh, 6, 1, "lat_proc shell: fork + /bin/sh -c of a small program"),
    "ctx_switch": _os(lm.ctx(2, 0), 200, 10, "lat_ctx 2p/0K: a token between two "
                      "processes, minus one process's pipe write and read"),
    **{f"ctx_{n}p_{kb}k": _os(lm.ctx(n, kb), 100, 2 * n, f"lat_ctx {n}p/{kb}K: a token "
                             f"round {n} processes each summing {kb} KiB, minus the overhead")
       for n, kb in ((2, 16), (2, 64), (8, 16), (16, 16))},
    "page_fault": _os(lm.page_fault, 2, 1, "lat_pagefault: a page of a 1 MiB file mapping "
                      "read, with its zap, per page"),
    "prot_fault": _os(lm.prot_fault, 100, 5, "lat_sig prot: a store to a read-only "
                      "mapping, minus the signal's delivery"),
    "mmap": _os(lm.mmap_op, 10, 2, "map, touch and unmap 64 pages of a file"),
    "forkwait": _os(lm.forkwait, 20, 2, "AA06: fork a child that exits at once; wait"),
    "kill0": _os(lm.kill0, 200, 5, "kill(me, 0), which lat_sig catch subtracts", "part"),
    "remap": _os(lm.remap, 2, 1, "munmap, mmap and msync of a 1 MiB file mapping, per "
                 "page, which lat_pagefault subtracts", "part"),
    **{f"ctx_overhead_{kb}k": _os(lm.ctx_overhead(kb), 200, 5, f"a pipe write and read "
                                  f"and a {kb} KiB sum by one process, which lat_ctx "
                                  "subtracts", "part")
       for kb in (0, 16, 64)},
    "syscall": OpSpec(_nb_syscall, 500, 10, "nano", "AA06: syscall/sysret round trip"),
    "in": OpSpec(_nb_in, 500, 10, "nano", "AA06: in from port 0x80"),
    "cr8write": OpSpec(_nb_cr8, 500, 10, "nano", "AA06: write the task-priority register"),
    "call_ret": OpSpec(_nb_call_ret, 500, 10, "nano", "AA06: call and return"),
    "pgfault": OpSpec(_nb_pgfault, 500, 10, "nano", "AA06: a true page fault, fixed up"),
    "divzero": OpSpec(_nb_divzero, 500, 10, "nano", "AA06: divide by zero, handled"),
    "ptemod": OpSpec(_nb_ptemod, 500, 10, "nano", "AA06: rewrite a PTE unchanged"),
    "ptemod_clear": OpSpec(_nb_ptemod_change(True), 500, 10, "nano",
                           "AA06: make a present PTE not present (P->NP)"),
    "ptemod_fill": OpSpec(_nb_ptemod_change(False), 500, 10, "nano",
                          "AA06: make a not-present PTE present (NP->P)"),
    "cpu_bound": OpSpec(lambda k, p: None, 1, 0, "macro", "2M instructions of integer compute"),
    "kernel_build": OpSpec(None, 1, 0, "io", "8 compile jobs: fork, exec, read, compute, write"),
    "oltp_db": OpSpec(None, 1, 0, "io", "100 transactions, one at a time: 8 KiB reads and "
                      "writes, commit"),
    "web_server": OpSpec(None, 1, 0, "io", "200 requests of one user thinking 0.5 ms: file "
                         "read, 16 KiB reply"),
    "file_server": OpSpec(None, 1, 0, "io", "16 files of 256 KiB, one at a time: stat, open, "
                          "read, close"),
    "net_tx": OpSpec(None, 1, 0, "io", "send 4000 MTU-1500 segments on a 1 Gbit/s NIC"),
    "net_rx": OpSpec(None, 1, 0, "io", "receive 4000 MTU-1500 segments on a 1 Gbit/s NIC"),
}
# lmbench's subtractions and units, by op name (model.lmbench)
OPS = {name: replace(spec, subtract=lm.SUBTRACT.get(name), per=lm.PER.get(name, 1))
       for name, spec in OPS.items()}
#: The I/O workloads' parameters in the bench (each gets the devices it declares it needs).
IO_WORKLOADS = {
    "kernel_build": {},
    "oltp_db": {"requests": 100, "workers": 1, "arrivals": {"kind": "closed", "users": 1,
                                                             "think_ms": 0.0}},
    "web_server": {"requests": 200, "workers": 1, "arrivals": {"kind": "closed", "users": 1,
                                                                "think_ms": 0.5}},
    "file_server": {"requests": 16, "workers": 1, "arrivals": {"kind": "closed", "users": 1,
                                                                "think_ms": 0.0}},
    "net_tx": {"packets": 4000}, "net_rx": {"packets": 4000}}
CPU_BOUND_INSTRUCTIONS = 2_000_000


def _program(op: str, spec: OpSpec):
    def program(ctx: WorkloadContext) -> Iterator[Chunk | Marker]:
        k = ctx.kernel
        p = k.spawn()
        iteration = spec.make(k, p)
        yield enter(k, p)
        for _ in range(spec.warmup):
            yield from iteration()
        yield Marker("start")
        for _ in range(spec.iterations):
            yield from iteration()
        yield Marker("stop")
    return program


def _cpu_bound_program(ctx: WorkloadContext):
    inner = cpu_bound(instructions=CPU_BOUND_INSTRUCTIONS + 300_000)(ctx)
    yield next(inner)  # enter the process
    # steady state: the program has touched all its memory before (shadows are filled)
    proc = ctx.kernel.by_space[int(ctx.vcpu.cpu[0])]
    yield lm.touch(ctx.kernel.mem.present(proc.space)[:, 0].tolist(), write=False)
    warm = 0
    for chunk in inner:  # warm the TLB, then measure
        yield chunk
        warm += chunk.instructions()
        if warm >= 300_000:
            break
    yield Marker("start")
    yield from inner
    yield Marker("stop")


def measured(marks: list[tuple], field: int = 1) -> object:
    """Sum of what accumulated between start/resume and pause/stop markers: the cycles by
    category (``field`` 1) or the simulated time (``field`` 2)."""
    total = None
    opened = None
    for mark in marks:
        label, value = mark[0], mark[field]
        if label in ("start", "resume"):
            opened = value
        elif label in ("pause", "stop") and opened is not None:
            delta = value - opened
            total = delta if total is None else total + delta
            opened = None
    return total


def run_op(op: str, mode: str, hardware: str = DEFAULT_PROFILE, seed: int = 0) -> OpResult:
    """Run one microbenchmark in one mode on one guest alone on one pCPU.

    The latency is the vCPU's cycles between the start and stop markers (the guest runs
    alone and never blocks, so its cycles are its elapsed time) divided by the
    iterations and by the units each reports (``OPS[op].per``); when the op's
    definition subtracts another loop's cost (``OPS[op].subtract``, as lmbench does),
    that op's result, measured the same way, is subtracted category by category.

    Examples
    --------
    >>> catch = run_op("signal_handle", "native", "netburst-2.4ghz")
    >>> catch.extra["subtracted_cycles"] == run_op("kill0", "native", "netburst-2.4ghz").cycles
    True
    """
    if op not in OPS:
        raise UnknownNameError("op", op, list(OPS))
    MODES[mode]  # noqa: B018 (raises UnknownNameError with the choices)
    spec = OPS[op]
    hw = load_profile(hardware)
    if spec.kind == "io":
        return _run_io_op(op, mode, hw, seed)
    host = Host(hw, pcpus=1, seed=seed, memory_mb=1024)
    program = _cpu_bound_program if op == "cpu_bound" else _program(op, spec)
    dom = host.add_guest(DomainConfig("bench", mode=mode, memory_mb=512), program)
    host.run()
    n = spec.iterations * spec.per
    per = measured(dom.vcpus[0].marks) / n
    extra = {}
    if spec.subtract is not None:
        base = run_op(spec.subtract, mode, hardware, seed)
        per = per - np.array([base.breakdown.get(c, 0.0) for c in NAMES])
        extra["subtracted_cycles"] = base.cycles
    breakdown = {NAMES[i]: float(per[i]) for i in range(len(NAMES)) if per[i]}
    cyc = float(per.sum())
    return OpResult(op, mode, cyc / hw.freq_hz * 1e6, cyc, breakdown, n, extra)


def _run_io_op(op: str, mode: str, hw, seed: int) -> OpResult:
    """An I/O workload on a guest with an SSD and a 1 Gbit/s NIC behind a driver domain
    (a pv dom0 on its own pCPU; a native guest drives the devices itself). The latency is
    the simulated time from start to end; the cycles are the guest's and those the driver
    domain spent on its behalf (category ``driver_domain``)."""
    host = Host(hw, pcpus=2, seed=seed, memory_mb=1536)
    io = host.enable_io()
    io.add_device(Device(host.env, "disk0", SsdService(), freq_hz=hw.freq_hz))
    io.add_device(Device(host.env, "nic0", NicService(), freq_hz=hw.freq_hz))
    if PATHS[MODES[mode].default_path].via_driver_domain:
        io.set_driver_domain(host.add_guest(DomainConfig("dom0", "pv", affinity=(0,))))
    dom = host.add_guest(DomainConfig("bench", mode=mode, memory_mb=512, affinity=(1,)))
    kind, atts = registry()[op], [io.attach(dom, "disk0"), io.attach(dom, "nic0")]
    work = kind.bind({a.device.kind: a for a in atts}, kind.params(**IO_WORKLOADS[op]))

    def program(ctx):
        inner = work(ctx)
        yield next(inner)  # the process starts
        yield Marker("start")
        yield from inner
        yield Marker("stop")
    host.start(dom.vcpus[0], program)
    stats = host.run()
    marks = dom.vcpus[0].marks
    latency = measured(marks, field=2)
    cycles = measured(marks).astype(float)
    behalf = stats.driver_domain_cycles("bench")
    breakdown = {NAMES[i]: float(cycles[i]) for i in range(len(NAMES)) if cycles[i]}
    if behalf:
        breakdown["driver_domain"] = float(behalf)
    total = float(sum(breakdown.values()))
    extra = {}
    if op.startswith("net_"):
        size = io.log.columns()["size"]
        extra["throughput_mbps"] = float(size.sum()) * 8 / (latency / hw.freq_hz) / 1e6
    return OpResult(op, mode, latency / hw.freq_hz * 1e6, total, breakdown, 1, extra)


def run_bench(hardware: str = DEFAULT_PROFILE, modes: Iterable[str] | None = None,
              ops: Iterable[str] | None = None, seed: int = 0,
              progress: Callable[[str, str], None] | None = None) -> list[OpResult]:
    """Run ``ops`` (default all) in each of ``modes`` (default every registered mode)
    on ``hardware``.

    Combinations the hardware cannot run (hvm without VT-x) are skipped.
    """
    modes = MODES.names() if modes is None else modes
    ops = [o for o, spec in OPS.items() if spec.kind != "part"] if ops is None else list(ops)
    for op in ops:
        if op not in OPS:
            raise UnknownNameError("op", op, list(OPS))
    hw = load_profile(hardware)
    out = []
    for mode in modes:
        if MODES[mode].reason(hw) is not None:  # raises UnknownNameError for a bad name
            continue
        for op in ops:
            if progress:
                progress(op, mode)
            out.append(run_op(op, mode, hardware, seed))
    return out

