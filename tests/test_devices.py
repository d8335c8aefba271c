"""Devices against queueing theory, and the arbitration policies' shares and caps."""

from __future__ import annotations

from math import factorial

import numpy as np
import pytest

from model.clock import Environment
from model.errors import UnknownNameError
from model.io.arbitration import RoundRobin, TokenBucket, WeightedFair, make_policy
from model.io.devices import Device, ExponentialService, HddService, NicService, SsdService
from model.io.requests import IORequest, RequestLog

FREQ = 1e9


def erlang_c_wait(lam: float, mu: float, c: int) -> float:
    """Mean wait in queue of M/M/c (Erlang C)."""
    a = lam / mu
    top = a**c / factorial(c) / (1 - a / c)
    return top / (sum(a**k / factorial(k) for k in range(c)) + top) / (c * mu - lam)


def open_queue(lam: float, mean_s: float, c: int, n: int, seed: int) -> float:
    """Poisson arrivals into a c-channel exponential device: the mean wait (s)."""
    env = Environment()
    rng = np.random.default_rng(seed)
    dev = Device(env, "d", ExponentialService(mean_s, c), freq_hz=FREQ,
                 rng=np.random.default_rng(seed + 1000))
    log = RequestLog()

    def source():
        for i in range(n):
            yield env.timeout(max(1, int(rng.exponential(1 / lam) * FREQ)))
            r = IORequest(i, 1, 0, 4096, False, env.now)
            r.on_done = log.add
            dev.submit(r)

    env.process(source())
    env.run()
    cols = log.columns()
    return float(((cols["service_start"] - cols["queued"]) / FREQ).mean())


@pytest.mark.parametrize("c", [1, 4])
def test_exponential_device_matches_mmc_mean_wait(c):
    mu, rho = 1000.0, 0.6
    lam = rho * c * mu
    waits = np.array([open_queue(lam, 1 / mu, c, 50_000, seed) for seed in range(6)])
    mean = waits.mean()
    half = 2.571 * waits.std(ddof=1) / np.sqrt(len(waits))  # 95% t interval, 5 d.o.f.
    theory = erlang_c_wait(lam, mu, c)
    assert half / theory < 0.05  # the interval is tight enough to mean something
    assert abs(mean - theory) / theory < 0.05


def closed_loop(policy, guests: dict[int, int], seconds: float = 2.0, size: int = 4096,
                service=None, sizes: dict[int, int] | None = None
                ) -> tuple[dict[int, int], Device]:
    """Each guest keeps ``outstanding`` requests at a saturated device; bytes served per guest."""
    env = Environment()
    dev = Device(env, "d", service or ExponentialService(1e-4), policy=policy, freq_hz=FREQ,
                 rng=np.random.default_rng(3))
    done = dict.fromkeys(guests, 0)
    ids = iter(range(10**9))

    def issue(g):
        r = IORequest(next(ids), g, 0, (sizes or {}).get(g, size), False, env.now)
        r.on_done = finish
        dev.submit(r)

    def finish(r):
        done[r.guest] += r.size
        issue(r.guest)

    for g, outstanding in guests.items():
        for _ in range(outstanding):
            issue(g)
    env.run(until=int(seconds * FREQ))
    return done, dev


def test_weighted_fair_shares_a_saturated_device_by_weight():
    done, _ = closed_loop(WeightedFair({1: 2, 2: 1}), {1: 16, 2: 16})
    assert done[1] / done[2] == pytest.approx(2.0, rel=0.05)


def test_weighted_fair_is_fair_in_bytes_with_unequal_request_sizes():
    done, _ = closed_loop(WeightedFair({1: 1, 2: 1}, quantum=8192), {1: 16, 2: 16},
                          service=SsdService(channels=1), sizes={1: 4096, 2: 65536})
    assert done[1] / done[2] == pytest.approx(1.0, rel=0.05)


def test_round_robin_gives_equal_shares():
    done, _ = closed_loop(RoundRobin(), {1: 30, 2: 3, 3: 10})
    shares = np.array(list(done.values())) / sum(done.values())
    assert shares == pytest.approx([1 / 3] * 3, rel=0.02)


def test_fifo_shares_by_outstanding_requests():
    done, _ = closed_loop(make_policy("fifo"), {1: 30, 2: 10})
    assert done[1] / done[2] == pytest.approx(3.0, rel=0.05)


def test_token_bucket_holds_a_guest_to_its_iops_cap():
    cap = TokenBucket(make_policy("fifo"), {1: (2000.0, None)}, freq_hz=FREQ)
    done, dev = closed_loop(cap, {1: 32, 2: 32}, seconds=4.0)
    iops = done[1] / 4096 / 4.0
    assert iops == pytest.approx(2000.0, rel=0.02)
    assert done[2] / 4096 / 4.0 > 5000  # the uncapped guest takes the rest


def test_token_bucket_byte_cap():
    cap = TokenBucket(make_policy("fifo"), {1: (None, 40e6)}, freq_hz=FREQ)
    done, _ = closed_loop(cap, {1: 32}, seconds=4.0, size=65536,
                          service=SsdService(channels=4))
    assert done[1] / 4.0 == pytest.approx(40e6, rel=0.02)


def test_contention_matrix_attributes_waits_to_the_holders():
    done, dev = closed_loop(make_policy("fifo"), {1: 1, 2: 20})
    m = dev.contention()
    # guest 1 (one request at a time) waits almost only behind guest 2's queue
    assert m[1][2] > 10 * m[1][1]
    assert m[2][2] > m[2][1] > 0


def test_alone_on_a_device_nothing_waits():
    done, dev = closed_loop(make_policy("fifo"), {1: 1})
    assert dev.contention()[1][1] == 0.0
    assert 0.99 < dev.utilization() <= 1.0


def test_hdd_sequential_requests_skip_seek_and_rotation():
    hdd = HddService()
    rng = np.random.default_rng(0)
    first = hdd.seconds(IORequest(0, 1, 0, 1 << 20, False, 0, offset=0), rng)
    seq = hdd.seconds(IORequest(1, 1, 0, 1 << 20, False, 0, offset=1 << 20), rng)
    assert seq == pytest.approx((1 << 20) / 150e6)
    rand = hdd.seconds(IORequest(2, 1, 0, 4096, False, 0, offset=500 * 10**9), rng)
    assert rand > 5e-3 and first == pytest.approx((1 << 20) / 150e6)


def test_nic_service_is_wire_time_plus_per_packet_cost():
    nic = NicService(rate_gbit_s=1.0, per_packet_us=1.0, mtu=1500)
    t = nic.seconds(IORequest(0, 1, 0, 1460 * 10, True, 0), None)
    assert t == pytest.approx(10 * 1e-6 + (14600 + 10 * 78) * 8 / 1e9)


def test_unknown_policy_lists_choices():
    with pytest.raises(UnknownNameError, match="fifo, priority, round_robin, weighted_fair"):
        make_policy("lottery")


def test_weighted_fair_serves_a_newly_busy_guest_on_its_first_turn():
    """DRR credits a guest's quantum when its turn begins and serves it at once: a guest
    with one small request waits at most one quantum of the backlogged guest."""
    drr = WeightedFair({1: 1, 2: 1}, quantum=65536)
    for i in range(4):
        drr.push(IORequest(i, guest=1, device=0, size=65536, write=False, issued=0))
    order = [drr.pop(0).guest]
    drr.push(IORequest(9, guest=2, device=0, size=8192, write=False, issued=0))
    order += [drr.pop(0).guest for _ in range(4)]
    assert order == [1, 2, 1, 1, 1]


def test_contention_is_the_time_integral_of_waiting_times_holding():
    """A NIC serves one 1460-byte packet in T = 2230 cycles. Guest 1 submits two packets
    at 0, guest 2 one at T/2. Guest 1's second waits [0, T) behind guest 1's first;
    guest 2's waits [T/2, T) behind guest 1's first and [T, 2T) behind guest 1's
    second. A wait counts as it goes, not when it ends: at 1.5 T, half of guest 2's
    wait so far."""
    env = Environment()
    dev = Device(env, "nic", NicService(rate_gbit_s=10), freq_hz=FREQ)
    T = 2230

    def submit(guest, rid):
        dev.submit(IORequest(rid, guest, 0, 1460, True, env.now))

    def matrix():
        return {a: {b: w * FREQ for b, w in r.items()} for a, r in dev.contention().items()}

    submit(1, 0)
    submit(1, 1)
    env.timeout(T // 2).callbacks.append(lambda _e: submit(2, 2))
    env.run(until=3 * T // 2)
    assert matrix() == {1: {1: T, 2: 0}, 2: {1: T, 2: 0}}
    env.run(until=5 * T // 2)
    assert matrix() == {1: {1: T, 2: 0}, 2: {1: T + T // 2, 2: 0}}
    # a work-conserving device: a row sums to the guest's whole wait (T/2 to 2T)
    assert sum(matrix()[2].values()) == 2 * T - T // 2
    assert dev.utilization() == 1.0
