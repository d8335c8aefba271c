"""Build a ready-to-run :class:`~model.host.Host` from a validated :class:`Scenario`.

Examples
--------
>>> from model.scenario import parse_scenario
>>> s = parse_scenario("name: t\\nguests: [{name: a, count: 2, workload: {profile: spin}}]")
>>> host = build_host(s)
>>> [d.name for d in host.domains]
['a-0', 'a-1']
"""

from __future__ import annotations

from .arbitration import TokenBucket, WeightedFair, make_policy
from .devices import Device, HddService, NicService, SsdService
from .domain import DomainConfig
from .host import Host
from .scenario import DeviceSpec, Scenario
from .scenario_checks import DRIVER_DOMAIN, replica_names
from .sched import make_scheduler
from .workload_registry import registry


def _service(spec: DeviceSpec):
    if spec.kind == "hdd":
        return HddService()
    if spec.kind == "ssd":
        return SsdService()
    if spec.kind == "nvme":
        return SsdService(channels=32, read_us=20.0, write_us=15.0, bandwidth_mb_s=3000.0)
    return NicService(rate_gbit_s=spec.rate_gbit_s, mtu=spec.mtu)


def guest_names(s: Scenario) -> list[tuple[str, int]]:
    """(domain name, index into ``s.guests``) of every replica."""
    return [(n, i) for i, g in enumerate(s.guests) for n in replica_names(g.name, g.count)]


def build_host(s: Scenario, seed: int | None = None) -> Host:
    """Create the host, its devices and driver domain, and every guest with its workload."""
    sched = make_scheduler(s.host.scheduler, **(
        {"timeslice_ms": s.host.timeslice_ms, "ratelimit_us": s.host.ratelimit_us}
        if s.host.scheduler == "credit" else {"quantum_ms": s.host.timeslice_ms}))
    need = s.footprint  # the pools, with a margin over the estimate (validated: bounded)
    host = Host(s.hardware, pcpus=s.host.pcpus, scheduler=sched, memory_mb=s.host.memory_mb,
                seed=s.seed if seed is None else seed,
                max_pt_pages=max(8192, need.tables + need.tables // 4 + 1024),
                max_spaces=max(4096, need.spaces + need.spaces // 4 + 64),
                max_domains=sum(g.count for g in s.guests) + 2)
    host.hypervisor.ledger.grow(s.total_vcpus)  # at once: no doubling to waste
    replicas = guest_names(s)
    io = host.enable_io(keep_requests=s.record.requests) if s.host.devices else None
    if s.needs_driver_domain:
        dd = s.driver_domain
        dom0 = host.add_guest(DomainConfig(DRIVER_DOMAIN, "pv", vcpus=dd.vcpus, weight=dd.weight,
                                           memory_mb=dd.memory_mb,
                                           affinity=tuple(dd.pinning) if dd.pinning else None))
        io.set_driver_domain(dom0)
    domains = []
    for name, i in replicas:
        g = s.guests[i]
        domains.append((host.add_guest(DomainConfig(
            name, g.mode, vcpus=g.vcpus, memory_mb=g.memory_mb, weight=g.weight, cap=g.cap,
            modified_os=g.os == "modified",
            affinity=tuple(g.pinning) if g.pinning else None)), g))
    dom_ids = {}
    for d, g in domains:
        dom_ids.setdefault(g.name, []).append(d.dom)
    for name, spec in s.host.devices.items():
        if spec.arbitration == "weighted_fair":
            policy = WeightedFair({d.dom: d.weight for d, _ in domains})
        elif spec.arbitration == "priority":
            policy = make_policy("priority", priorities={
                dom: p for g, p in spec.priorities.items() for dom in dom_ids[g]})
        else:
            policy = make_policy(spec.arbitration)
        if spec.caps:
            caps = {dom: cap for g, cap in spec.caps.items() for dom in dom_ids[g]}
            policy = TokenBucket(policy, caps, freq_hz=host.hw.freq_hz)
        io.add_device(Device(host.env, name, _service(spec), policy=policy,
                             freq_hz=host.hw.freq_hz))
    for d, g in domains:
        atts = {}  # the first attachment of each kind feeds the workload
        for a in g.devices:
            att = io.attach(d, a.device, a.path)
            atts.setdefault(att.device.kind, att)
        kind = registry()[g.workload.profile]
        args = [atts[need] for need in kind.needs]  # validated
        for v in d.vcpus:
            host.start(v, kind.program(args, g.workload.params))
    return host
