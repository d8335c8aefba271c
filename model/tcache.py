"""Binary translation's translation cache: kernel routines translated on first use.

A row per kernel routine of ``tc`` holds the stamp of its last use (0: not translated)
and its size in instructions; ``tc_ctl`` the instructions the cache holds and its clock
(:mod:`model.vectors`: ``TC_*``). The CPU/MMU kernel (:mod:`model.cpu`) stamps a routine
at each entry (its ``Op.CODE`` marker) and calls :func:`tc_miss` when it is not there.
"""

from __future__ import annotations

from numba import njit

from .categories import EMULATION
from .vectors import (
    B_BT_TRANSLATE,
    B_TC_CAPACITY,
    CYCLES,
    S_TC_MISS,
    S_TC_TRANSLATED,
    TC_SIZE,
    TC_STAMP,
    TC_USED,
)


@njit(cache=True)
def tc_miss(tc, tc_ctl, routine, size, base, cpu):
    """Translate kernel routine ``routine`` (``size`` instructions), evicting the least
    recently used routines while the cache would overflow. Returns the cycles charged."""
    while tc_ctl[TC_USED] + size > base[B_TC_CAPACITY] and tc_ctl[TC_USED] > 0:
        victim = -1
        for r in range(tc.shape[0]):
            if tc[r, TC_STAMP] != 0 and (victim < 0 or tc[r, TC_STAMP] < tc[victim, TC_STAMP]):
                victim = r
        tc_ctl[TC_USED] -= tc[victim, TC_SIZE]
        tc[victim, TC_STAMP] = 0
    tc[routine, TC_SIZE] = size
    tc_ctl[TC_USED] += size
    t = size * base[B_BT_TRANSLATE]
    cpu[CYCLES + EMULATION] += t
    cpu[S_TC_MISS] += 1
    cpu[S_TC_TRANSLATED] += size
    return t
