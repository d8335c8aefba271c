"""Sensitive operations simulated per wall second on a hypercall-bound PV guest (one JSON line).

The guest loops over null system calls (SYSCALL bounced through Xen, return by the iret
hypercall), single-entry mmu_update calls on its live page tables, INVLPG through
mmuext_op, set_timer_op, and every 64 iterations a sched_op yield, which ends the vCPU's
run and goes through the scheduler. In the same run: the event rate of a bare SimPy
loop of timeouts. ``ratio`` = sensitive operations per second / bare SimPy events per
second (target >= 0.5).

Usage: python benchmarks/hypercalls.py [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import time

import simpy

from model.domain import DomainConfig
from model.host import Host
from model.isa import FIRST_SENSITIVE, N_OPS, ChunkBuilder, Op, pte_target
from model.vectors import COUNTS
from model.workloads import enter


def storm(ctx):
    k = ctx.kernel
    p = k.spawn()
    yield enter(k, p)
    vpn = 0x10000
    value = k.mem.lookup(p.space, vpn) & ~(1 << 52)
    user = ChunkBuilder().alu(20).op(Op.SYSCALL).build()
    kern = (ChunkBuilder(kernel=True).alu(30).op(Op.PTE_WRITE, pte_target(p.space, vpn), value)
            .op(Op.INVLPG, vpn).op(Op.TIMER, 10**7).op(Op.SYSRET).build())
    sched = ChunkBuilder(kernel=True).op(Op.YIELD).build()
    while True:
        for _ in range(64):
            yield user
            yield kern
        yield sched


def pvsim_rate(seconds: float) -> dict:
    host = Host("skylake-3.0ghz-ept", pcpus=1, seed=1)
    dom = host.add_guest(DomainConfig("hc", mode="pv"), storm)
    stats = host.run(seconds=seconds)
    v = dom.vcpus[0]
    sensitive = int(v.cpu[COUNTS + FIRST_SENSITIVE:COUNTS + N_OPS].sum())
    t = stats.transitions("hc")
    return {"sensitive_ops": sensitive, "wall_s": stats.wall_s,
            "sensitive_per_s": sensitive / stats.wall_s, "simpy_events": stats.events,
            "hypercalls_by_type": t["hypercalls"], "traps_by_type": t["traps"]}


def simpy_rate(n: int = 300_000) -> float:
    env = simpy.Environment()

    def loop():
        for _ in range(n):
            yield env.timeout(1)

    env.process(loop())
    t = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.05, help="simulated seconds")
    args = ap.parse_args()
    pvsim_rate(0.001)  # compile or load the numba cache outside the measurement
    result = pvsim_rate(args.seconds)
    bare = simpy_rate()
    result.update({"bench": "hypercalls", "simpy_timeouts_per_s": bare,
                   "ratio": result["sensitive_per_s"] / bare, "target_ratio": 0.5})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
