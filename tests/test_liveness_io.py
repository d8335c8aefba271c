"""Liveness of vCPUs blocked on the I/O side: what the I/O system answers for them.

An emulated device's interrupt handler reads and acknowledges the status register
before it takes the answered request; each of those reads is a register access that
blocks the vCPU until the device model has emulated it. A vCPU blocked there has an
answered request *and* a wake-up coming (the device model's), so it is waiting, not
stalled: the liveness check must ask about the register access before it concludes
that an answered request was never delivered (it did not, and every hvm web server
cut at such a moment was reported stalled).
"""

from __future__ import annotations

from model.liveness import State, liveness
from model.scenario import build_host, parse_scenario

SCENARIO = """
name: emulated-status
seed: 1
duration: 20ms
hardware: nehalem-2.93ghz-ept
host: {pcpus: 2, devices: {nic0: {kind: nic, rate_gbit_s: 10, tso: false}, ssd0: {kind: ssd}}}
guests:
  - name: w
    count: 2
    mode: hvm
    os: unmodified
    workload: {profile: web_server, params: {workers: 4, arrivals: {kind: poisson,
                                                                     rate_per_s: 2000},
                                            response_bytes: 16384, miss_ratio: 0.2}}
    devices: [{device: ssd0, path: emulated}, {device: nic0, path: emulated}]
"""


def test_a_vcpu_reading_the_status_of_an_answered_request_is_waiting_not_stalled():
    host = build_host(parse_scenario(SCENARIO))
    env, hv, io = host.env, host.hypervisor, host.io
    seen = {"status read with an answer pending": 0, "checks": 0}

    def monitor():
        while True:
            yield env.timeout(997)  # a prime number of cycles: many phases of the handler
            states = {s.vcpu: s for s in liveness(hv)}
            assert not [s for s in states.values() if s.state is State.STALLED], states
            seen["checks"] += 1
            for att in io.by_id.values():
                blocked = [v for v in hv.vcpus if v.ioreq is att and not v.runnable]
                if att.answered and blocked:
                    assert all(states[v.name].state is State.WAITING
                               and "device model" in states[v.name].why for v in blocked)
                    seen["status read with an answer pending"] += 1

    env.process(monitor())
    stats = host.run(seconds=0.02)
    assert stats.stalled == []
    assert seen["status read with an answer pending"] > 0  # the case was exercised
