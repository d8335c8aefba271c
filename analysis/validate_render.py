"""``pvsim validate``'s terminal display: one table per set of published figures, and the
overheads over native by mechanism of the sets that ask for them (:mod:`analysis.validate`,
:mod:`analysis.overheads`)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .overheads import decomposition, overheads
from .validate import Check, decomposed


def render(checks: list[Check], out: Console) -> None:
    """Print ``checks`` set by set, each set's source and tally, then the overheads."""
    sets = list(dict.fromkeys(c.set for c in checks))
    for name in sets:
        rows = [c for c in checks if c.set == name]
        first = rows[0]
        table = Table(title=f"{name}: simulated versus published ({first.unit}, "
                            f"{first.hardware})")
        for col in ("op", "mode", "published", "simulated", "error", "ok", "row"):
            table.add_column(col, justify="left" if col in ("op", "mode", "row") else "right")
        for c in rows:
            table.add_row(c.op if c.label is None else f"{c.op} ({c.label})", c.mode,
                          _figure(c.published), _figure(c.simulated), f"{c.rel_error:+.1%}",
                          "yes" if c.ok else "[red]NO[/]",
                          f"fitted ({c.fitted})" if c.fitted else "predicted")
        out.print(table)
        bad = sum(1 for c in rows if not c.ok)
        fitted = sum(1 for c in rows if c.fitted)
        out.print(f"source: {first.source}. Tolerance {first.tolerance:.0%}; "
                  f"{len(rows) - bad}/{len(rows)} within. "
                  + (f"{fitted} rows are fitted: a profile constant (named; its source in "
                     "model/profiles/) was taken from or fitted to the row, so they check the "
                     f"model's arithmetic; the {len(rows) - fitted} predicted rows test the "
                     "model" if fitted else "No constant is fitted to these rows: each is a "
                     "prediction"), "\n")
    for ops, hardware in decomposed(checks):
        render_overheads(ops, hardware, out)
    if len(sets) > 1:
        ok = sum(1 for c in checks if c.ok)
        out.print(f"{ok}/{len(checks)} rows within their tolerance")


def render_overheads(ops: list[str], hardware: str, out: Console) -> None:
    """Each of ``ops``' absolute overhead over native per mode, by mechanism."""
    table = Table(title=f"overheads over native ({hardware}, us per op as lmbench reports "
                        "it), by mechanism")
    for col in ("op", "mode", "native", "mode us", "overhead", "by mechanism"):
        table.add_column(col, justify="right" if col in ("native", "mode us", "overhead")
                         else "left")
    for o in overheads(ops, hardware):
        f = 1e6 / o.freq_hz
        table.add_row(o.op, o.mode, f"{o.native_cycles * f:.3g}", f"{o.cycles * f:.3g}",
                      f"{o.overhead_us:+.3g}", decomposition(o))
    out.print(table)
    out.print("by mechanism: each sensitive operation's count times its cost in the mode, "
              "the hypercall batches', then page walks, binary translation, the rest of "
              "the hypervisor's work (pinning, validation) and the guest's own work; the "
              "mode's minus native's (analysis/overheads.py)\n")


def _figure(x: float) -> str:
    """A published or simulated figure: integers with separators, small values with
    three significant digits."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"
