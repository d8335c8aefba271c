"""A :class:`~analysis.diff.Diff` shown on the terminal (``pvsim diff``): per point, the
inputs that differ and a rich table of the changed metrics.

Examples
--------
>>> _rel(Change("guests.g.cpu_s.user", 2.0, 3.0)), _num(1234.0), _value(0.5, 0.01, 4)
('+50.0%', '1,234', '0.5 ± 0.01 (n=4)')
"""

from __future__ import annotations

import math
from typing import Any

from .diff import Change, Diff

__all__ = ["render"]


def _num(x: float | None, sign: str = "") -> str:
    if x is None or math.isnan(x):
        return "—"
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):{sign},}"
    return f"{x:{sign}.4g}"


def _rel(c: Change) -> str:
    r = c.relative
    if r is None:
        return "only in A" if c.b is None else "only in B"
    if math.isinf(r):
        return "from 0"
    return f"{r:+.1%}"


def _value(x: float | None, ci: float | None, n: int | None) -> str:
    if ci is None or math.isnan(ci):
        return _num(x)
    half = f"{ci:.2g}" if abs(ci) < 100 else f"{ci:,.0f}"
    return f"{_num(x)} ± {half}" + ("" if n is None else f" (n={n})")


def render(d: Diff, console: Any, show_all: bool = False, top: int | None = 40) -> None:
    """Print ``d`` to a :class:`rich.console.Console`: per point, the inputs that
    differ and a table of the changed metrics (every metric with ``show_all``), at most
    ``top`` rows of them (None: all)."""
    from rich.table import Table

    tested = d.kind == "sweep" and any(c.p_value is not None for p in d.points
                                       for c in p.changes)
    console.print(f"[bold]pvsim diff[/] ({d.kind}s) A = {d.a}, B = {d.b}")
    for which, pts in (("A", d.only_a), ("B", d.only_b)):
        if pts:
            shown = "; ".join(", ".join(f"{k}={v}" for k, v in p.items()) for p in pts)
            console.print(f"[yellow]only in {which}:[/] {shown}")
    for p in d.points:
        where = f" at {p.label}" if p.label else ""
        for k, x, y in p.inputs[:12]:
            console.print(f"input{where}: {k}: {x!r} -> {y!r}")
        if len(p.inputs) > 12:
            console.print(f"input{where}: and {len(p.inputs) - 12} more fields differ")
        rows = p.changes if show_all else p.changed
        if not rows:
            console.print(f"no metric differs{where} ({len(p.changes)} compared)")
            continue
        cut = rows if show_all or top is None or top <= 0 else rows[:top]
        ns = {n for c in p.changes for n in (c.n_a, c.n_b)}
        each = ns.pop() if len(ns) == 1 else None  # one count: said once, in the title
        table = Table(title=f"{len(p.changed)} of {len(p.changes)} metrics differ{where}"
                      + (f" (means of {each} replications)" if tested and each else ""),
                      title_justify="left")
        for col in ("subject", "metric", "A", "B", "B - A", "relative",
                    *(("p", "significant") if tested else ())):
            table.add_column(col, justify="left" if col in ("subject", "metric") else "right")
        for c in cut:
            sig = {True: "[bold]yes[/]", False: "no", None: ""}[c.significant]
            table.add_row(c.subject, c.metric, _value(c.a, c.ci_a, None if each else c.n_a),
                          _value(c.b, c.ci_b, None if each else c.n_b), _num(c.change, "+"),
                          _rel(c),
                          *((("" if c.p_value is None else f"{c.p_value:.3g}"), sig)
                            if tested else ()))
        console.print(table)
        if len(cut) < len(rows):
            console.print(f"... and {len(rows) - len(cut)} more (--top 0 shows them all; "
                          "--json writes every metric)")
    if tested:
        console.print(f"significant: Welch's two-sided t-test on the replications, p < "
                      f"{1 - d.confidence:.3g} (each metric on its own); ± is the "
                      f"{d.confidence:.0%} confidence interval of the mean")
    elif d.kind == "sweep":
        console.print("fewer than two replications on a side: no significance test (sweep "
                      "with --replications 2 or more)")
    else:
        console.print("single runs: no replications, so no significance test (two sweeps "
                      "with --replications give one)")
