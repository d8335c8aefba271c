"""Simulated versus published figures (``pvsim validate``).

The figures are in sets (``analysis/published.yaml``), each from one paper's testbed: its
hardware profile, its unit (cycles, microseconds per iteration, or seconds for a number
of iterations) and its tolerance. Each row is run with :func:`model.microbench.run_op` on
the set's profile and compared.

Examples
--------
>>> rows = validate(ops=["call_ret"])
>>> [(r.op, r.mode, r.published, r.fitted) for r in rows]  # doctest: +NORMALIZE_WHITESPACE
[('call_ret', 'native', 11.0, 'call'), ('call_ret', 'full', 51.0, 'bt_ret_lookup'),
 ('call_ret', 'hvm', 11.0, None)]
>>> [s["name"] for s in published()["sets"]][:2]
['aa06-nanobenchmarks', 'lmbench-native']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

import yaml

from model.errors import PvsimError, UnknownNameError
from model.microbench import OpResult, run_op

#: The units a set's figures may be in.
UNITS = ("cycles", "us", "s")


@dataclass(frozen=True)
class Check:
    """One published figure and the simulated value beside it (in the set's ``unit``)."""

    op: str
    mode: str
    hardware: str
    published: float
    simulated: float
    tolerance: float
    source: str
    #: the profile constant taken from or fitted to this figure (None: a prediction)
    fitted: str | None = None
    #: the set it belongs to, and the unit of ``published`` and ``simulated``
    set: str = ""
    unit: str = "cycles"
    #: the paper's name for the figure (``fork proc``), when it differs from the op's
    label: str | None = None
    #: whether the set asks for its ops' overheads over native by mechanism
    decompose: bool = False

    @property
    def rel_error(self) -> float:
        return (self.simulated - self.published) / self.published

    @property
    def ok(self) -> bool:
        return abs(self.rel_error) <= self.tolerance


def published() -> dict:
    """The published figures shipped with pvsim (``analysis/published.yaml``)."""
    return yaml.safe_load((resources.files("analysis") / "published.yaml").read_text())


def _value(r: OpResult, unit: str, iterations: int) -> float:
    """The simulated figure of ``r`` in ``unit``."""
    if unit == "cycles":
        return r.cycles
    if unit == "us":
        return r.latency_us
    if unit == "s":
        return r.latency_us * iterations / 1e6
    raise PvsimError(f"analysis/published.yaml: unit {unit!r}; valid choices: "
                     + ", ".join(UNITS))


def validate(ops: Iterable[str] | None = None, sets: Iterable[str] | None = None) -> list[Check]:
    """Run each published figure's op on its set's testbed profile and compare.

    Parameters
    ----------
    ops : iterable of str, optional
        Only these ops (default: all).
    sets : iterable of str, optional
        Only these sets (default: all).

    Returns
    -------
    list of Check
        In the order of the sets and their rows.
    """
    data = published()["sets"]
    names = [s["name"] for s in data]
    wanted = None if sets is None else list(sets)
    for name in wanted or ():
        if name not in names:
            raise UnknownNameError("set", name, names)
    ops = None if ops is None else set(ops)
    out = []
    for s in data:
        if wanted is not None and s["name"] not in wanted:
            continue
        unit, source = s["unit"], " ".join(s["source"].split())
        for op, modes in s["rows"].items():
            if ops is not None and op not in ops:
                continue
            for mode, value in modes.items():
                r = run_op(op, mode, s["hardware"])
                out.append(Check(
                    op, mode, s["hardware"], float(value),
                    _value(r, unit, int(s.get("iterations", 1))), float(s["tolerance"]),
                    source, s.get("fitted", {}).get(op, {}).get(mode), s["name"], unit,
                    s.get("labels", {}).get(op), bool(s.get("overheads", False))))
    return out


def decomposed(checks: list[Check]) -> list[tuple[list[str], str]]:
    """The sets of ``checks`` that ask for their ops' overheads by mechanism
    (``overheads: true`` in ``analysis/published.yaml``): ``(ops, hardware)`` each."""
    out: dict[str, tuple[list[str], str]] = {}
    for c in checks:
        if c.decompose:
            ops, _ = out.setdefault(c.set, ([], c.hardware))
            if c.op not in ops:
                ops.append(c.op)
    return list(out.values())
