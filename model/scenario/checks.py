"""The checks of a scenario that look at several fields at once: names that collide,
devices that do not exist or are attached twice, paths a mode cannot use, memory that
cannot hold the processes, totals beyond what a host may have, pinning to pCPUs that do
not exist. Each problem is a :class:`~model.scenario.errors.FieldError` at the field it
is about, so the message points at that field's line; all are reported at once.

Examples
--------
>>> from model.scenario import parse_scenario
>>> try:
...     parse_scenario("name: x\\nguests:\\n  - {name: a, count: 2, workload: {profile: spin}}\\n"
...                    "  - {name: a-1, workload: {profile: spin}}\\n", "x.yaml")
... except Exception as e:
...     where, path, message = str(e).split(": ", 2)
>>> where, path
('x.yaml:4:12', 'guests[1].name')
>>> message
"'a-1' is also the name of a replica of guests[0] (a, count 2: a-0, a-1)"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import valid_choices
from ..fidelity import EXACT
from ..io.arbitration import POLICIES
from ..io.devices import DEVICE_KINDS
from ..workload_registry import Footprint, registry
from .errors import FieldError

if TYPE_CHECKING:
    from .format import Scenario

#: The most a host may have: domains (guests and the driver domain), vCPUs, and
#: page-table pages its processes hold at once (2 GiB of tables).
MAX_DOMAINS, MAX_VCPUS, MAX_TABLES = 4095, 4096, 1 << 19
DRIVER_DOMAIN = "dom0"


def replica_names(name: str, count: int) -> list[str]:
    """The domain names of a guest entry's replicas: ``web`` or ``web-0``, ``web-1``..."""
    return [name] if count == 1 else [f"{name}-{r}" for r in range(count)]


def cross_field_problems(s: Scenario) -> list[FieldError]:
    """Every way the parts of ``s`` do not fit together, each at the field it is about."""
    return [*_names(s), *_record(s), *_driver_domain(s), *_guests(s), *_devices(s), *_sizes(s),
            *_pinning(s), *_fidelity(s)]


def _fidelity(s: Scenario) -> list[FieldError]:
    if s.fidelity == EXACT:
        return []
    from ..fast.scope import problems

    return [FieldError(path, why) for path, why in problems(s)]


def _names(s: Scenario) -> list[FieldError]:
    out = []
    owner: dict[str, int] = {}
    for i, g in enumerate(s.guests):
        if g.name in owner and owner[g.name] != i and s.guests[owner[g.name]].name == g.name:
            out.append(FieldError(("guests", i, "name"), f"duplicate guest name {g.name!r}"))
            continue
        for n in replica_names(g.name, g.count):
            j = owner.setdefault(n, i)
            if j != i:
                first = s.guests[j]
                mine = n == g.name
                out.append(FieldError(("guests", i, "name" if mine else "count"), (
                    f"{n!r} is also the name of a replica of guests[{j}] ({first.name}, count "
                    f"{first.count}: {', '.join(replica_names(first.name, first.count)[:3])}"
                    f"{', ...' if first.count > 3 else ''})" if first.count > 1 or not mine
                    else f"duplicate guest name {n!r}")))
        if DRIVER_DOMAIN in replica_names(g.name, g.count):
            out.append(FieldError(("guests", i, "name"), (
                f"{DRIVER_DOMAIN!r} is the driver domain's name; give the guest another")))
    return out


def _record(s: Scenario) -> list[FieldError]:
    from .format import MAX_INTERVALS, format_duration

    out = []
    if s.duration / s.record.interval > MAX_INTERVALS:
        out.append(FieldError(("record", "interval"), (
            f"{format_duration(s.record.interval)} cuts the {format_duration(s.duration)} "
            f"run into more than {MAX_INTERVALS:,} intervals; use at least "
            f"{format_duration(s.duration / MAX_INTERVALS)}")))
    w = s.record.warmup
    if w is not None and w >= s.duration:
        out.append(FieldError(("record", "warmup"), (
            f"a warm-up of {format_duration(w)} leaves nothing of the "
            f"{format_duration(s.duration)} run to measure; make it shorter than the run")))
    return out


def _driver_domain(s: Scenario) -> list[FieldError]:
    """The driver domain's mode must run on the hardware (its kernel is a modified one)."""
    from ..hardware import load_profile
    from ..modes import MODES

    problem = MODES[s.driver_domain.mode].problem(load_profile(s.hardware), detail=False)
    return [] if problem is None else [FieldError(("driver_domain", "mode"), problem)]


def _host_problem(s: Scenario, g, path: str) -> str | None:
    """Why guest ``g`` cannot reach a device through ``path`` on this host, if the path
    is a hosted VMM's: its host (the driver domain) must run natively, on the one pCPU
    the guest runs on (the world switch is the switch between the two on that pCPU)."""
    from ..io.paths import PATHS
    from ..modes import MODES

    if not PATHS[path].hosted:
        return None
    dd = s.driver_domain
    if MODES[dd.mode].virtualized:
        return (f"the {path} path's host is the driver domain, which must run natively "
                f"(driver_domain.mode: native, not {dd.mode})")
    shared = s.host.pcpus == 1 or (g.pinning is not None and len(g.pinning) == 1
                                   and dd.pinning == g.pinning)
    if not shared:
        return (f"the {path} path's world switch is the switch between the guest and its "
                "host on one pCPU: give the host one pCPU (host.pcpus: 1) or pin the "
                "guest and driver_domain.pinning to the same single pCPU")
    return None


def _guests(s: Scenario) -> list[FieldError]:
    from ..hardware import load_profile
    from ..modes import MODES, is_modified
    from ..paging import FRAMES_PER_MB

    out = []
    hw = load_profile(s.hardware)
    for i, g in enumerate(s.guests):
        mode = MODES[g.mode]
        problem = mode.problem(hw, modified_os=is_modified(g.os), detail=False)
        if problem is not None:
            out.append(FieldError(("guests", i, "mode"), problem))
        kinds, seen = set(), {}
        for j, a in enumerate(g.devices):
            if a.device not in s.host.devices:
                out.append(FieldError(("guests", i, "devices", j, "device"), (
                    f"unknown device {a.device!r}; " + (valid_choices(
                        a.device, s.host.devices) if s.host.devices else "the host has no "
                        "devices"))))
                continue
            if a.device in seen:
                out.append(FieldError(("guests", i, "devices", j, "device"), (
                    f"{a.device!r} is attached already (devices[{seen[a.device]}]): a guest "
                    "reaches a device through one path")))
                continue
            seen[a.device] = j
            path = a.path or mode.default_path
            problem = mode.path_problem(path) or _host_problem(s, g, path)
            if problem:
                out.append(FieldError(("guests", i, "devices", j, "path"),
                                      f"{problem} (guest {g.name!r} is {g.mode})"))
            kinds.add(DEVICE_KINDS[s.host.devices[a.device].kind].device_class)
        kind = registry()[g.workload.profile]
        for need in kind.needs:
            if need not in kinds:
                out.append(FieldError(("guests", i, "devices"), (
                    f"workload {g.workload.profile!r} needs a {need} attached; the host's "
                    f"devices: {', '.join(s.host.devices) or '(none)'}")))
        pages = kind.footprint(g.workload.params, g.vcpus).pages
        if pages > g.memory_mb * FRAMES_PER_MB:
            data = kind.resident_pages(g.workload.params)
            out.append(FieldError(("guests", i, "memory_mb"), (
                f"{g.memory_mb} MB cannot hold what the guest needs: a process on each of "
                f"its {g.vcpus} vCPUs" + (f" with {data:,} pages of data" if data else "")
                + f", {pages:,} pages in all: give at least "
                f"{-(-pages // FRAMES_PER_MB):,} MB")))
    dd = s.driver_domain
    if s.needs_driver_domain and Footprint.of(dd.vcpus).pages > dd.memory_mb * FRAMES_PER_MB:
        out.append(FieldError(("driver_domain", "memory_mb"), (
            f"{dd.memory_mb} MB cannot hold the backends of its {dd.vcpus} vCPUs (a "
            f"process each)")))
    return out


def _devices(s: Scenario) -> list[FieldError]:
    """Per-guest device fields name guests; a policy's own field is set only on a device
    that has the policy."""
    from .format import device_field_owner, per_guest_device_fields

    out = []
    names = [g.name for g in s.guests]
    policies = {cls: name for name, cls in POLICIES.items()}
    for d, spec in s.host.devices.items():
        for key in per_guest_device_fields():
            for g in getattr(spec, key):
                if g not in names:
                    out.append(FieldError(("host", "devices", d, key, g), (
                        f"unknown guest {g!r}; {valid_choices(g, names)}")))
        mine = POLICIES[spec.arbitration].params  # its own and its bases' (a subclass's)
        for key, field in type(spec).model_fields.items():
            if device_field_owner(key) in policies and key not in mine and \
                    getattr(spec, key) != field.get_default(call_default_factory=True):
                users = [name for name, cls in POLICIES.items() if key in cls.params]
                out.append(FieldError(("host", "devices", d, key), (
                    f"only used with arbitration {' or '.join(users)} (this device has "
                    f"{spec.arbitration})")))
    return out


def _sizes(s: Scenario) -> list[FieldError]:
    """Memory, domains, vCPUs and page tables, host-wide; a total beyond the host's is
    reported at the guest entry that contributes most."""
    out = []
    need = sum(g.count * g.memory_mb for g in s.guests)
    dom0 = s.driver_domain.memory_mb if s.needs_driver_domain else 0
    if need + dom0 > s.host.memory_mb:
        out.append(FieldError(("host", "memory_mb"), (
            f"the guests need {need:,} MB (count x memory_mb)"
            + (f" and the driver domain {dom0:,} MB" if dom0 else "")
            + f", but the host has {s.host.memory_mb:,} MB")))

    def biggest(per_guest) -> int:
        return max(range(len(s.guests)), key=lambda i: per_guest(s.guests[i]))

    domains = sum(g.count for g in s.guests) + (1 if s.needs_driver_domain else 0)
    if domains > MAX_DOMAINS:
        out.append(FieldError(("guests", biggest(lambda g: g.count), "count"), (
            f"{domains:,} domains in all; a host has at most {MAX_DOMAINS:,}")))
    if s.total_vcpus > MAX_VCPUS:
        out.append(FieldError(("guests", biggest(lambda g: g.count * g.vcpus), "count"), (
            f"{s.total_vcpus:,} vCPUs in all (count x vcpus); a host has at most "
            f"{MAX_VCPUS:,}")))
    tables = s.footprint.tables
    if tables > MAX_TABLES:
        def mine(g):
            return registry()[g.workload.profile].footprint(g.workload.params,
                                                            g.vcpus).tables * g.count
        out.append(FieldError(("guests", biggest(mine), "workload"), (
            f"the guests' processes hold about {tables:,} page-table pages at once "
            f"({tables * 4 // 1024:,} MB); at most {MAX_TABLES:,} fit")))
    return out


def _pinning(s: Scenario) -> list[FieldError]:
    out = []
    pinned = [(("driver_domain", "pinning"), s.driver_domain.pinning)] + [
        (("guests", i, "pinning"), g.pinning) for i, g in enumerate(s.guests)]
    for where, pins in pinned:
        bad = [p for p in pins or [] if not 0 <= p < s.host.pcpus]
        if bad:
            out.append(FieldError(where, (f"pCPU {bad[0]} does not exist (the host has "
                                          f"{s.host.pcpus}: 0..{s.host.pcpus - 1})")))
        elif pins and len(set(pins)) != len(pins):
            out.append(FieldError(where, f"pCPUs {pins} name one twice"))
    return out
