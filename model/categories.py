"""Cycle categories: every simulated cycle on every physical CPU is attributed to one."""

from __future__ import annotations

USER = 0
KERNEL = 1
HYPERVISOR = 2
TRANSITION = 3
PAGE_WALK = 4
EMULATION = 5
DRIVER_DOMAIN = 6
IDLE = 7

#: Category names, indexed by category number.
NAMES = (
    "user",
    "kernel",
    "hypervisor",
    "transition",
    "page_walk",
    "emulation",
    "driver_domain",
    "idle",
)
N_CATEGORIES = len(NAMES)
INDEX = {name: i for i, name in enumerate(NAMES)}

#: The categories that are the cost of virtualization itself. Page walks are not among
#: them: native runs walk too (a nested walk's extra references show as more of them).
VIRTUALIZATION = ("hypervisor", "transition", "emulation", "driver_domain")
