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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from ..domain import DomainConfig
from ..host import Host
from ..io.arbitration import POLICIES, TokenBucket
from ..io.devices import DEVICE_KINDS, Device, ServiceDistribution
from ..modes import is_modified
from ..sched import SCHEDULERS
from ..workload_registry import registry
from .checks import DRIVER_DOMAIN, replica_names
from .format import Scenario

V = TypeVar("V")


@dataclass(frozen=True)
class BuildContext:
    """What a component built from a scenario's spec (``from_spec``) may know of the
    host being built: the guests' domain ids by guest name (the one place names become
    ids), their CPU weights, and the clock.

    Attributes
    ----------
    ids : dict
        Guest entry name -> the domain ids of its replicas.
    weights : dict
        Domain id -> CPU weight, of every guest's domain in creation order.
    freq_hz : float
        Cycles per second of the host clock.

    Examples
    --------
    >>> ctx = BuildContext({"web": (1, 2), "db": (3,)}, {1: 256, 2: 256, 3: 512}, 3e9)
    >>> ctx.per_domain({"web": 2, "db": 9})
    {1: 2, 2: 2, 3: 9}
    """

    ids: dict[str, tuple[int, ...]]
    weights: dict[int, int]
    freq_hz: float

    def per_domain(self, by_guest: Mapping[str, V]) -> dict[int, V]:
        """A per-guest value (guest name -> value) for every replica's domain id."""
        return {dom: v for g, v in by_guest.items() for dom in self.ids[g]}


def guest_names(s: Scenario) -> list[tuple[str, int]]:
    """(domain name, index into ``s.guests``) of every replica."""
    return [(n, i) for i, g in enumerate(s.guests) for n in replica_names(g.name, g.count)]


def make_devices(s: Scenario, env, ctx: BuildContext) -> list[Device]:
    """The devices of ``s``'s host (``host.devices``, in order), their arbitration built
    with ``ctx``; both fidelity levels build them here."""
    return [
        Device(
            env,
            name,
            DEVICE_KINDS[spec.kind].from_spec(spec),
            policy=TokenBucket.wrap(POLICIES[spec.arbitration].from_spec(spec, ctx), spec, ctx),
            freq_hz=ctx.freq_hz,
            distribution=ServiceDistribution.from_spec(spec),
        )
        for name, spec in s.host.devices.items()
    ]


def build_host(s: Scenario, seed: int | None = None) -> Host:
    """Create the host, its devices and driver domain, and every guest with its workload."""
    sched = SCHEDULERS[s.host.scheduler].from_spec(s.host)
    need = s.footprint  # the pools, with a margin over the estimate (validated: bounded)
    host = Host(
        s.hardware,
        pcpus=s.host.pcpus,
        scheduler=sched,
        memory_mb=s.host.memory_mb,
        seed=s.seed if seed is None else seed,
        max_pt_pages=max(8192, need.tables + need.tables // 4 + 1024),
        max_spaces=max(4096, need.spaces + need.spaces // 4 + 64),
        max_domains=sum(g.count for g in s.guests) + 2,
    )
    host.hypervisor.ledger.grow(s.total_vcpus)  # at once: no doubling to waste
    replicas = guest_names(s)
    io = host.enable_io(keep_requests=s.record.requests) if s.host.devices else None
    if s.needs_driver_domain:
        dd = s.driver_domain
        dom0 = host.add_guest(
            DomainConfig(
                DRIVER_DOMAIN,
                dd.mode,
                vcpus=dd.vcpus,
                weight=dd.weight,
                memory_mb=dd.memory_mb,
                affinity=tuple(dd.pinning) if dd.pinning else None,
            )
        )
        io.set_driver_domain(dom0)
    domains = []
    for name, i in replicas:
        g = s.guests[i]
        domains.append(
            (
                host.add_guest(
                    DomainConfig(
                        name,
                        g.mode,
                        vcpus=g.vcpus,
                        memory_mb=g.memory_mb,
                        weight=g.weight,
                        cap=g.cap,
                        modified_os=is_modified(g.os),
                        affinity=tuple(g.pinning) if g.pinning else None,
                    )
                ),
                g,
            )
        )
    ids: dict[str, tuple[int, ...]] = {}
    for d, g in domains:
        ids[g.name] = (*ids.get(g.name, ()), d.dom)
    ctx = BuildContext(ids, {d.dom: d.weight for d, _ in domains}, host.hw.freq_hz)
    for device in make_devices(s, host.env, ctx):
        io.add_device(device)
    for d, g in domains:
        atts = {}  # the first attachment of each device class feeds the workload
        for a in g.devices:
            att = io.attach(d, a.device, a.path)
            atts.setdefault(att.device.kind, att)
        kind = registry()[g.workload.profile]
        for v in d.vcpus:  # the attachments it needs are there (validated)
            host.start(v, kind.bind(atts, g.workload.params))
    host.record_series(s.record.interval)
    return host
