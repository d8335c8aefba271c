"""Simulated versus published figures (``pvsim validate``).

Examples
--------
>>> rows = validate(ops=["call_ret"])
>>> [(r.op, r.mode, r.published, r.fitted) for r in rows]  # doctest: +NORMALIZE_WHITESPACE
[('call_ret', 'native', 11.0, 'call'), ('call_ret', 'full', 51.0, 'bt_ret_lookup'),
 ('call_ret', 'hvm', 11.0, None)]
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import yaml

from model.microbench import run_op


@dataclass(frozen=True)
class Check:
    """One published figure and the simulated value beside it."""

    op: str
    mode: str
    hardware: str
    published: float
    simulated: float
    tolerance: float
    source: str
    #: the profile constant taken from or fitted to this figure (None: a prediction)
    fitted: str | None = None

    @property
    def rel_error(self) -> float:
        return (self.simulated - self.published) / self.published

    @property
    def ok(self) -> bool:
        return abs(self.rel_error) <= self.tolerance


def published() -> dict:
    """The published figures shipped with pvsim (``analysis/published.yaml``)."""
    return yaml.safe_load((resources.files("analysis") / "published.yaml").read_text())


def validate(ops: list[str] | None = None) -> list[Check]:
    """Run each published nanobenchmark on its testbed's profile and compare."""
    data = published()
    out = []
    for op, modes in data["cycles"].items():
        if ops is not None and op not in ops:
            continue
        for mode, value in modes.items():
            r = run_op(op, mode, data["hardware"])
            out.append(Check(op, mode, data["hardware"], float(value), r.cycles,
                             float(data["tolerance"]), " ".join(data["source"].split()),
                             data.get("fitted", {}).get(op, {}).get(mode)))
    return out
