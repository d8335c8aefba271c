"""Simulated instructions per wall second on `cpu_bound`, exact path (one JSON line).

Every memory access goes through the vCPU's TLB and, on a miss, a page walk; one
process, one pCPU, default hardware profile (nested paging under hvm). Also
measured in the same run, for scale: a naive SimPy model that spends one event
per instruction (a timeout of the instruction's cycles).

Usage: python benchmarks/cpu_kernel.py [--instructions N] [--mode hvm]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import simpy

from model.domain import DomainConfig
from model.host import Host
from model.workloads import cpu_bound


def pvsim_rate(instructions: int, mode: str) -> dict:
    host = Host(pcpus=1, seed=1)
    host.add_guest(DomainConfig("c", mode=mode, memory_mb=256), cpu_bound(instructions))
    stats = host.run()
    eng = stats.engine()
    counters = stats.counters("c")
    return {"instr_per_s": eng["instructions_per_s"],
            "mem_accesses_per_s": counters["mem_accesses"] / eng["wall_s"],
            "instructions": eng["instructions"], "wall_s": eng["wall_s"],
            "tlb_misses_per_100k": 1e5 * counters["tlb_misses"] / eng["instructions"]}


def naive_rate(n: int) -> float:
    """One SimPy event per instruction, with a dictionary TLB lookup per memory access."""
    env = simpy.Environment()
    rng = np.random.default_rng(1)
    pages = rng.integers(0, 4096, size=n).tolist()
    is_mem = (rng.random(n) < 0.3).tolist()

    def cpu():
        tlb: dict[int, int] = {}
        for page, mem in zip(pages, is_mem, strict=True):
            cost = 1
            if mem and tlb.setdefault(page, page) is None:
                cost += 40
            yield env.timeout(cost)

    env.process(cpu())
    t = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instructions", type=int, default=100_000_000)
    ap.add_argument("--mode", default="hvm")
    args = ap.parse_args()
    pvsim_rate(1_000_000, args.mode)  # compile (or load the cache) outside the measurement
    result = pvsim_rate(args.instructions, args.mode)
    naive = naive_rate(300_000)
    result.update({"bench": "cpu_kernel", "mode": args.mode, "naive_simpy_instr_per_s": naive,
                   "speedup_vs_naive": result["instr_per_s"] / naive, "target_instr_per_s": 50e6})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
