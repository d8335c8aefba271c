"""What the fast level runs, and why it refuses the rest (checked with the scenario).

The fast level (:mod:`model.fast`) runs hosts whose every guest serves requests with a
workload that has a plan (:data:`model.fast.plans.PLANS`: ``web_server``, ``kv_store``),
from an open-loop source or closed-loop users, through I/O paths with a ring or none (``direct``,
``passthrough``, ``pv``, ``virtio``, ``vhost``) or an emulated device (``emulated``: the
vCPU waits for the device model on each register access), behind a pv driver domain,
pinned or not, uncapped, each response one packet, its schedule recorded or not but no
Perfetto trace. Anything else is refused with the reason, before the run: run it at
``fidelity: exact``.

Examples
--------
>>> from model.scenario import parse_scenario
>>> s = parse_scenario("name: t\\nguests: [{name: a, workload: {profile: spin}}]")
>>> path, why = problems(s)[0]
>>> path, why.endswith("workload is spin: run it with fidelity: exact")
(('guests', 0, 'workload', 'profile'), True)
"""

from __future__ import annotations

from ..io.devices import DEVICE_KINDS
from ..modes import MODES
from .plans import PLANS, RESPONSE_BYTES, packet_bytes

#: The I/O paths whose structure the fast level follows (a request, a ring or none or
#: the device model's register accesses, the device, an answer).
PATHS = ("direct", "passthrough", "pv", "virtio", "vhost", "emulated")
_EXACT = "run it with fidelity: exact"


def problems(s) -> list[tuple[tuple, str]]:
    """Why the fast level cannot run ``s``: (key path, reason) pairs (none: it can)."""
    out: list[tuple[tuple, str]] = []
    if s.record.trace == "perfetto":
        out.append((("record", "trace"), "the fast level keeps no timeline of events for "
                    f"Perfetto (its schedule, record.trace: true, it has); {_EXACT}"))
    if s.needs_driver_domain and not MODES[s.driver_domain.mode].pv_drivers:
        out.append((("driver_domain", "mode"), f"the fast level's driver domain is a pv "
                    f"dom0, not {s.driver_domain.mode!r}; {_EXACT}"))
    for i, g in enumerate(s.guests):
        w = g.workload
        if w.profile not in PLANS:
            out.append((("guests", i, "workload", "profile"), (
                f"the fast level runs request-serving guests with a plan "
                f"({', '.join(sorted(PLANS))}); this one's workload is {w.profile}: {_EXACT}")))
            continue
        if g.cap:
            out.append((("guests", i, "cap"), f"the fast level does not cap CPU; {_EXACT}"))
        packet = _packet(s, g)
        size = max(RESPONSE_BYTES[w.profile](w.params, n) for n in w.params.arrivals.sizes())
        if size > packet:
            out.append((("guests", i, "workload", "params"), (
                f"a response of {size} bytes is {-(-size // packet)} packets of at most "
                f"{packet} bytes (its NIC's largest): the fast level replays one "
                f"stretch per phase of I/O, the exact level's worker blocks once per packet; "
                f"{_EXACT}")))
        for j, a in enumerate(g.devices):
            path = a.path or MODES[g.mode].default_path
            if path not in PATHS:
                out.append((("guests", i, "devices", j, "path"), (
                    f"the fast level follows the {', '.join(PATHS)} paths, not {path} (a "
                    f"hosted VMM's world switches to its host OS); {_EXACT}")))
    return out


def _packet(s, g) -> int:
    """The largest packet guest entry ``g`` hands its NIC (its first NIC's)."""
    for a in g.devices:
        model = DEVICE_KINDS[s.host.devices[a.device].kind].from_spec(s.host.devices[a.device])
        if model.device_class == "nic":
            return packet_bytes(getattr(model, "max_request_bytes", None))
    return packet_bytes(None)
