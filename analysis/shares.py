"""The virtualization share of a guest, defined once (the CLI's table, the overview,
the CPU graph and the notebooks all take it from here).

Both shares are of a guest's CPU time by category (``summary.json``'s
``guests.<name>.cpu_s``, seconds), whose ``driver_domain`` entry is the driver domain's
work on the guest's behalf:

- :func:`virtualization_share`, the **virtualization share** (``virt_share``): the
  hypervisor, transitions (hypercalls, traps, VM exits), emulation (binary translation,
  a device model's work on the guest's vCPU) and the driver domain's work for the guest,
  over all the guest cost the host (its vCPUs' time and that driver-domain work).
- :func:`own_virtualization_share`, the **own virtualization share**
  (``virt_share_own``): the hypervisor, transitions and emulation over the guest's own
  vCPUs' time, the driver domain left out of both: what virtualization costs the guest's
  vCPUs themselves.

Page walks are in neither: native runs walk too (a nested walk's extra references show
as more of them).

Examples
--------
>>> cpu = {"user": 0.006, "kernel": 0.001, "transition": 0.001, "driver_domain": 0.002}
>>> virtualization_share(cpu), own_virtualization_share(cpu)
(0.3, 0.125)
"""

from __future__ import annotations

from collections.abc import Mapping

from model.categories import VIRTUALIZATION

__all__ = ["OWN_VIRTUALIZATION", "SHARES", "own_virtualization_share", "virtualization_share"]

#: The categories of :func:`own_virtualization_share`: virtualization on the guest's vCPUs.
OWN_VIRTUALIZATION = tuple(c for c in VIRTUALIZATION if c != "driver_domain")

#: Each share's column name, with its definition in a line (a table's footer, a legend).
SHARES = {
    "virt_share": "virt share: hypervisor + transitions + emulation + driver domain's work "
                  "for the guest, over all the guest cost the host (cpu ms)",
    "virt_share_own": "own virt share: hypervisor + transitions + emulation, over the "
                      "guest's own vCPU time (cpu ms - driver domain ms)",
}


def virtualization_share(cpu: Mapping[str, float]) -> float:
    """The virtualization share of a guest's CPU time by category (0 if it used none):
    see the module."""
    total = sum(cpu.values())
    return sum(cpu.get(c, 0.0) for c in VIRTUALIZATION) / total if total else 0.0


def own_virtualization_share(cpu: Mapping[str, float]) -> float:
    """The own virtualization share of a guest's CPU time by category (0 if its vCPUs
    used none): see the module."""
    own = sum(cpu.values()) - cpu.get("driver_domain", 0.0)
    return sum(cpu.get(c, 0.0) for c in OWN_VIRTUALIZATION) / own if own else 0.0
