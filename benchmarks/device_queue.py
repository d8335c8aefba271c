"""M/M/c through pvsim's device path, a hand-written SimPy M/M/c model, and Ciw (one JSON line).

All three serve the same Poisson arrivals (the same inter-arrival and service draws)
with c exponential servers; each reports customers per wall second and its mean wait,
and pvsim's is checked against Erlang C. Target: pvsim >= 0.5x the hand-written SimPy
model, and faster than Ciw.

Usage: python benchmarks/device_queue.py [--customers N] [--servers C] [--load RHO]
(Ciw is an optional dependency: pip install ciw)
"""

from __future__ import annotations

import argparse
import json
import time
from math import factorial

import numpy as np
import simpy

from model.clock import Environment
from model.io.devices import Device, ServiceModel
from model.io.requests import IORequest, RequestLog

FREQ = 1e9  # cycles per second of the simulated clock


class _Replay(ServiceModel):
    """Service times drawn in advance, so every model serves the same customers."""

    def __init__(self, times, channels):
        self.times = iter(times.tolist())
        self.channels = channels

    def seconds(self, req, rng):
        return next(self.times)


def pvsim_mmc(arrivals, services, c):
    env = Environment()
    dev = Device(env, "d", _Replay(services, c), freq_hz=FREQ)
    log = RequestLog()

    def done(r):
        r.stamp("completed", env.now)
        log.add(r)

    def source():
        for i, gap in enumerate(arrivals.tolist()):
            yield env.timeout(max(1, int(gap * FREQ)))
            r = IORequest(i, 1, 0, 4096, False, env.now)
            r.on_done = done
            dev.submit(r)

    env.process(source())
    t = time.perf_counter()
    env.run()
    wall = time.perf_counter() - t
    cols = log.columns()
    return len(arrivals) / wall, float(((cols["service_start"] - cols["queued"]) / FREQ).mean())


def simpy_mmc(arrivals, services, c):
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=c)
    waits = []

    def customer(service):
        arrive = env.now
        with servers.request() as req:
            yield req
            waits.append(env.now - arrive)
            yield env.timeout(max(1, int(service * FREQ)))

    def source():
        for gap, service in zip(arrivals.tolist(), services.tolist(), strict=True):
            yield env.timeout(max(1, int(gap * FREQ)))
            env.process(customer(service))

    env.process(source())
    t = time.perf_counter()
    env.run()
    wall = time.perf_counter() - t
    return len(arrivals) / wall, float(np.mean(waits) / FREQ)


def ciw_mmc(arrivals, services, c):
    try:
        import ciw
    except ImportError:
        return None, None
    gaps, svc = iter(arrivals.tolist()), iter(services.tolist())

    class Seq(ciw.dists.Distribution):
        def __init__(self, it):
            self.it = it

        def sample(self, t=None, ind=None):
            return next(self.it, 1e9)

    network = ciw.create_network(arrival_distributions=[Seq(gaps)],
                                 service_distributions=[Seq(svc)], number_of_servers=[c])
    sim = ciw.Simulation(network)
    horizon = float(arrivals.sum())
    t = time.perf_counter()
    sim.simulate_until_max_time(horizon)
    wall = time.perf_counter() - t
    recs = sim.get_all_records()
    return len(recs) / wall, float(np.mean([r.waiting_time for r in recs]))


def erlang_c_wait(lam, mu, c):
    a = lam / mu
    top = a**c / factorial(c) / (1 - a / c)
    p_wait = top / (sum(a**k / factorial(k) for k in range(c)) + top)
    return p_wait / (c * mu - lam)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--servers", type=int, default=4)
    ap.add_argument("--load", type=float, default=0.7)
    args = ap.parse_args()
    c, mu = args.servers, 1000.0
    lam = args.load * c * mu
    rng = np.random.default_rng(42)
    arrivals = rng.exponential(1 / lam, args.customers)
    services = rng.exponential(1 / mu, args.customers)
    p_rate, p_wait = pvsim_mmc(arrivals, services, c)
    s_rate, s_wait = simpy_mmc(arrivals, services, c)
    c_rate, c_wait = ciw_mmc(arrivals, services, c)
    print(json.dumps({
        "bench": "device_queue", "customers": args.customers, "servers": c, "load": args.load,
        "pvsim_per_s": p_rate, "simpy_per_s": s_rate, "ciw_per_s": c_rate,
        "pvsim_over_simpy": p_rate / s_rate,
        "pvsim_over_ciw": None if c_rate is None else p_rate / c_rate,
        "mean_wait_s": {"pvsim": p_wait, "simpy": s_wait, "ciw": c_wait,
                        "erlang_c": erlang_c_wait(lam, mu, c)}}))


if __name__ == "__main__":
    main()
