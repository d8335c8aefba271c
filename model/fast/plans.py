"""What one request of each request-serving workload does, as the fast level runs it.

The exact level runs a workload's per-request program (:mod:`model.app.workloads`)
instruction by instruction; the fast level needs only its I/O structure: the *phases* of
a request, each a set of I/O requests its worker submits together and waits for, with
the worker's CPU work (a *stretch*, measured on the exact engine) before the first, between
two and after the last. A plan draws from the worker's random stream exactly what the
exact program draws, in the same order, so both levels serve the same requests (the same
ones miss the page cache).

A workload the fast level runs registers its plan in :data:`PLANS` under its profile
name; :mod:`model.fast.scope` refuses the others.

Examples
--------
>>> import numpy as np
>>> from model.app.workloads import web_server
>>> p = PLANS["web_server"]
>>> params = {"response_bytes": 16384, "miss_ratio": 1.0}
>>> p(params, -1, np.random.default_rng(0), 65536)
((('disk', 16384, False),), (('nic', 16384, True),))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..app.workloads import _MAX_READ, _MTU_PAYLOAD

#: One I/O request of a phase: (device class, bytes, write).
IO = tuple[str, int, bool]
#: ``plan(params, size, rng, packet) -> phases``: ``size`` is the request's own (from a
#: trace; -1: none), ``packet`` the largest packet the guest's NIC takes.
Plan = Callable[[Mapping[str, Any], int, np.random.Generator, int], tuple[tuple[IO, ...], ...]]

PLANS: dict[str, Plan] = {}


def packet_bytes(max_request_bytes: int | None) -> int:
    """The largest packet a guest hands its NIC (as :func:`model.app.workloads._packet`)."""
    return max_request_bytes or _MTU_PAYLOAD


def _pieces(size: int, step: int) -> list[int]:
    left, out = max(size, 1), []
    while left > 0:
        out.append(min(left, step))
        left -= out[-1]
    return out


def _send(size: int, packet: int) -> tuple[IO, ...]:
    return tuple(("nic", n, True) for n in _pieces(size, packet))


def _web(p, size, rng, packet):
    size = size if size >= 0 else p["response_bytes"]
    phases: list[tuple[IO, ...]] = []
    if rng.random() < p["miss_ratio"]:  # the draw of web_server's serve
        left = size
        while left > 0:  # model.app.workloads._read_disk: one request at a time
            n = min(left, _MAX_READ)
            phases.append((("disk", n, False),))
            left -= n
    phases.append(_send(size, packet))
    return tuple(phases)


def _kv(p, size, rng, packet):
    size = size if size >= 0 else p["value_bytes"]
    return (_send(size + 32, packet),)  # the value and its header, as kv_store sends it


PLANS["web_server"] = _web
PLANS["kv_store"] = _kv
#: Each plan's response to a request of ``size`` (-1: the workload's own), in bytes (the
#: exact level blocks once per packet sent when the response needs more than one: the
#: fast level's phases assume one, :mod:`model.fast.scope`).
RESPONSE_BYTES: dict[str, Callable[[Any, int], int]] = {
    "web_server": lambda p, size: size if size >= 0 else p.response_bytes,
    "kv_store": lambda p, size: (size if size >= 0 else p.value_bytes) + 32,
}


class _Draw:
    """A stand-in random stream whose every draw is ``x`` (for :func:`shapes`)."""

    def __init__(self, x: float) -> None:
        self.x = x

    def random(self) -> float:
        return self.x


def shapes(profile: str, params: Mapping[str, Any], packet: int,
           sizes: frozenset[int] = frozenset({-1})) -> set[int]:
    """The stretches a request of workload ``profile`` can have (its phases + 1), each
    draw of its plan taken at both ends of its range, for each of the request ``sizes``
    its source gives (-1: the workload's own).

    Examples
    --------
    >>> sorted(shapes("web_server", {"response_bytes": 16384, "miss_ratio": 0.2}, 65536))
    [2, 3]
    >>> sorted(shapes("web_server", {"response_bytes": 16384, "miss_ratio": 0.0}, 65536))
    [2]
    """
    plan = PLANS[profile]
    return {len(plan(params, size, _Draw(x), packet)) + 1
            for size in sizes for x in (0.0, 1.0 - 1e-12)}
