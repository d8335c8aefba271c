"""OS microbenchmarks: lmbench-style operations and AA06's nanobenchmarks, per mode.

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
from dataclasses import dataclass, field

from .categories import NAMES
from .domain import DomainConfig
from .errors import UnknownNameError
from .guestos import DATA_VPN, GuestKernel, Process, Vma
from .hardware import DEFAULT_PROFILE, load_profile
from .host import Host, WorkloadContext
from .io.devices import Device, NicService, SsdService
from .io.paths import PATHS
from .isa import Chunk, ChunkBuilder, Op, make_pte, pte_target
from .modes import MODES
from .vcpu import Marker
from .workload_registry import registry
from .workloads import cpu_bound, enter

Iteration = Callable[[], Iterator[Chunk]]


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


USER_BUF = DATA_VPN << 12  # a user buffer in the process's first data page


def _copy_out(va: int, n_lines: int) -> Chunk:
    b = ChunkBuilder(kernel=True)
    for i in range(n_lines):
        b.store(va + 64 * i)
    return b.build()


# --- the ops -------------------------------------------------------------------------------
# Each maker takes (kernel, main process) and returns the per-iteration generator factory,
# plus optionally the number of measured iterations.

def _null_syscall(k: GuestKernel, p: Process) -> Iteration:
    return lambda: k.syscall("null", k.p.null_syscall)


def _null_io(k, p):
    return lambda: k.syscall("read", k.p.read_null, _copy_out(USER_BUF, 1))


def _stat(k, p):
    return lambda: k.syscall("stat", k.p.stat, _copy_out(USER_BUF, 3))


def _open_close(k, p):
    def it():
        yield from k.syscall("open", k.p.open)
        yield from k.syscall("close", k.p.close)
    return it


def _signal_install(k, p):
    def it():
        yield from k.syscall("sigaction", k.p.sigaction,
                             ChunkBuilder(kernel=True).load(USER_BUF).build())
    return it


def _signal_handle(k, p):
    def it():  # kill(getpid(), SIGUSR1): the signal is delivered on the way out
        yield ChunkBuilder().op(Op.SYSCALL).build()
        yield k.work("syscall", k.p.syscall_entry)
        yield k.work("signal", k.p.sigaction)
        yield from k.signal_delivery()
    return it


def _touch(proc: Process, vpns, write: bool = True) -> Chunk:
    b = ChunkBuilder()
    for vpn in vpns:
        b.alu(10).op(Op.STORE if write else Op.LOAD, vpn << 12)
    return b.build()


def _fork(k, p):
    def it():
        child = yield from k.fork(p)
        yield from k.switch_to(child)
        yield _touch(child, range(DATA_VPN, DATA_VPN + k.p.cow_touch_pages))
        yield from k.exit(child, switch_to=p)
        yield _touch(p, range(DATA_VPN, DATA_VPN + k.p.cow_touch_pages))
    return it


def _forkwait(k, p):
    def it():
        child = yield from k.fork(p)
        yield from k.syscall("wait", k.p.wait)  # parent blocks in wait4 ...
        yield from k.switch_to(child)  # ... the child runs and exits at once
        yield from k.exit(child, switch_to=p)
        stack = p.vmas[2]  # the parent returns to user code and dirties its stack
        yield _touch(p, range(stack.start + stack.pages - 2, stack.start + stack.pages))
    return it


def _run_program(k: GuestKernel, proc: Process, text_file: int) -> Iterator[Chunk]:
    yield from k.exec(proc, text_file)
    text = proc.vmas[0]
    yield _touch(proc, range(text.start, text.start + 16), write=False)
    yield _touch(proc, range(DATA_VPN, DATA_VPN + 8))
    stack = proc.vmas[2]
    yield _touch(proc, range(stack.start + stack.pages - 2, stack.start + stack.pages))


def _exec(k, p):
    def it():
        child = yield from k.fork(p)
        yield from k.switch_to(child)
        yield from _run_program(k, child, text_file=2)
        yield from k.exit(child, switch_to=p)
    return it


def _sh(k, p):
    def it():
        sh = yield from k.fork(p)
        yield from k.switch_to(sh)
        yield from _run_program(k, sh, text_file=3)  # /bin/sh starts ...
        prog = yield from k.fork(sh)  # ... and runs the small program
        yield from k.switch_to(prog)
        yield from _run_program(k, prog, text_file=2)
        yield from k.exit(prog, switch_to=sh)
        yield from k.syscall("wait", k.p.wait)
        yield from k.exit(sh, switch_to=p)
    return it


def _ctx_switch(k, p):
    other = k.spawn()
    procs = [p, other]
    state = {"i": 0}

    def it():  # one token hop: write to the peer's pipe, block reading ours, switch
        peer = procs[(state["i"] + 1) % 2]
        state["i"] += 1
        yield ChunkBuilder().alu(10).op(Op.SYSCALL).build()
        yield k.work("syscall", k.p.syscall_entry)
        yield k.work("pipe", k.p.pipe_rw)
        yield _copy_out(USER_BUF, 1)
        yield from k.switch_to(peer)
        yield k.work("pipe", k.p.pipe_rw)
        yield ChunkBuilder(kernel=True).op(Op.SYSRET).build()
    return it


REGION_PAGES = 256


def _page_fault(k, p):
    state = {"i": REGION_PAGES, "vma": None}

    def it():
        if state["i"] == REGION_PAGES:  # a fresh 1 MiB file mapping (outside the measurement)
            yield Marker("pause")
            if state["vma"] is not None:
                yield from _munmap(k, p, state["vma"])
            state["vma"] = yield from _mmap(k, p, REGION_PAGES)
            state["i"] = 0
            yield Marker("resume")
        yield _touch(p, [state["vma"].start + state["i"]], write=False)
        state["i"] += 1
    return it


def _mmap(k: GuestKernel, p: Process, pages: int, file: int = 7):
    start = 0x7F00000 + 0x1000 * len(p.vmas)
    vma = Vma(start, pages, "file", False, file)
    yield from k.syscall("mmap", k.p.mmap)
    p.vmas.append(vma)
    return vma


def _munmap(k: GuestKernel, p: Process, vma: Vma):
    present = [vpn for vpn in range(vma.start, vma.start + vma.pages)
               if k.mem.lookup(p.space, vpn) & 1]
    zap = ChunkBuilder(kernel=True).op(Op.LAZY_BEGIN)
    for vpn in present:
        zap.op(Op.PTE_WRITE, pte_target(p.space, vpn), 0)
    zap.op(Op.LAZY_END).op(Op.TLB_FLUSH)
    yield from k.syscall("munmap", k.p.munmap_base + k.p.munmap_per_pte * len(present),
                         zap.build())
    for vpn in present:
        k.put_frame(k.mem.lookup(p.space, vpn) >> 12)
    p.vmas.remove(vma)


def _mmap_op(k, p):
    def it():  # map 64 pages of a file, touch each, unmap
        vma = yield from _mmap(k, p, 64)
        yield _touch(p, range(vma.start, vma.start + 64), write=False)
        yield from _munmap(k, p, vma)
    return it


def _prot_fault(k, p):
    ro = Vma(DATA_VPN + 0x8000, 1, "anon", False)
    p.vmas.append(ro)
    k.mem.set_pte(p.space, ro.start, make_pte(k.alloc_frame(), 0x5))  # present, user, read-only
    return lambda: iter([_touch(p, [ro.start])])


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
    value = k.mem.lookup(p.space, vpn) & ~(1 << 52)
    c = _kernel_ops((Op.PTE_WRITE, pte_target(p.space, vpn), value))
    return lambda: iter([c])


@dataclass(frozen=True)
class OpSpec:
    make: Callable[[GuestKernel, Process], Iteration]
    iterations: int
    warmup: int
    kind: str  # "os" | "nano" | "macro"
    doc: str


OPS: dict[str, OpSpec] = {
    "null_syscall": OpSpec(_null_syscall, 200, 5, "os", "getppid(): the null system call"),
    "null_io": OpSpec(_null_io, 200, 5, "os", "read one byte from a null device"),
    "stat": OpSpec(_stat, 100, 5, "os", "stat() of a file in the dentry cache"),
    "open_close": OpSpec(_open_close, 100, 5, "os", "open() and close() a file"),
    "signal_install": OpSpec(_signal_install, 200, 5, "os", "sigaction()"),
    "signal_handle": OpSpec(_signal_handle, 100, 5, "os", "deliver and handle a signal"),
    "fork": OpSpec(_fork, 20, 2, "os", "fork; the child dirties pages and exits"),
    "exec": OpSpec(_exec, 10, 2, "os", "fork + exec of a small program + exit"),
    "sh": OpSpec(_sh, 6, 1, "os", "fork + exec /bin/sh, which runs a small program"),
    "ctx_switch": OpSpec(_ctx_switch, 200, 10, "os", "two processes passing a token"),
    "page_fault": OpSpec(_page_fault, 200, 10, "os", "minor fault on a mapped file page"),
    "prot_fault": OpSpec(_prot_fault, 100, 5, "os", "write to a read-only page: SIGSEGV"),
    "mmap": OpSpec(_mmap_op, 10, 2, "os", "map, touch and unmap 64 pages of a file"),
    "forkwait": OpSpec(_forkwait, 20, 2, "os", "fork a child that exits at once; wait"),
    "syscall": OpSpec(_nb_syscall, 500, 10, "nano", "AA06: syscall/sysret round trip"),
    "in": OpSpec(_nb_in, 500, 10, "nano", "AA06: in from port 0x80"),
    "cr8write": OpSpec(_nb_cr8, 500, 10, "nano", "AA06: write the task-priority register"),
    "call_ret": OpSpec(_nb_call_ret, 500, 10, "nano", "AA06: call and return"),
    "pgfault": OpSpec(_nb_pgfault, 500, 10, "nano", "AA06: a true page fault, fixed up"),
    "divzero": OpSpec(_nb_divzero, 500, 10, "nano", "AA06: divide by zero, handled"),
    "ptemod": OpSpec(_nb_ptemod, 500, 10, "nano", "AA06: rewrite a PTE unchanged"),
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
    yield _touch(proc, ctx.kernel.mem.present(proc.space)[:, 0].tolist(), write=False)
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

    The latency is the vCPU's cycles between the start and stop markers (the
    guest runs alone and never blocks, so its cycles are its elapsed time)
    divided by the iterations.
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
    n = spec.iterations
    per = measured(dom.vcpus[0].marks) / n
    breakdown = {NAMES[i]: float(per[i]) for i in range(len(NAMES)) if per[i]}
    cyc = float(per.sum())
    return OpResult(op, mode, cyc / hw.freq_hz * 1e6, cyc, breakdown, n)


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
    ops = list(OPS) if ops is None else list(ops)
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

