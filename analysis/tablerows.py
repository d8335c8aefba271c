"""The rows of the command line's tables as plain text, without rich: the figures
``pvsim run``, ``compare``, ``sweep`` and ``plan`` print, cell for cell, for whatever
else shows them (``pvsim report``'s HTML).

Each function returns a :class:`TextTable` (or lines of text) built from the same data
the command prints (:meth:`Results.overview <analysis.results.Results.overview>`, the
summary's ``app`` and ``devices`` blocks, the compare table, :meth:`Sweep.summary
<analysis.sweep.Sweep.summary>`, a plan's verdicts), formatted the same way.

Examples
--------
>>> t = TextTable("t", ["guest", "cpu ms"], [["a", "1.00"]], right={"cpu ms"})
>>> t.columns, t.rows
(['guest', 'cpu ms'], [['a', '1.00']])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from .stats import TAIL_SAMPLES, thin_tail

if TYPE_CHECKING:
    from .results import Results
    from .sweep import Sweep

__all__ = ["THIN_NOTE", "TextTable", "compare_table", "device_lines", "plan_lines", "request_table",
           "ms_cell", "run_table", "skipped_line", "stall_lines", "sweep_table"]


#: The footnote of a table whose percentiles :func:`ms_cell` may mark.
THIN_NOTE = (f"*: fewer than {TAIL_SAMPLES} samples above that percentile (a p99 needs "
             f"{TAIL_SAMPLES * 100:,}): the value of a few requests, not a tail")


def ms_cell(x: float | None, n: int = 0, q: float | None = None) -> str:
    """A time in ms as a cell (empty if unknown); the ``q`` quantile of ``n`` samples
    marked * when thin (:func:`analysis.stats.thin_tail`).

    Examples
    --------
    >>> ms_cell(0.8021, 100, 0.99), ms_cell(0.8021, 5000, 0.99), ms_cell(None)
    ('0.802*', '0.802', '')
    """
    if x is None or x != x:  # None or NaN
        return ""
    return f"{x:.3f}" + ("*" if q is not None and thin_tail(n, q) else "")


@dataclass
class TextTable:
    """A table as text: a title, column heads, rows of cells, an optional caption, the
    heads of the columns aligned right (numbers) and of those that hold running text
    (wrapped)."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    right: set[str] = field(default_factory=set)
    prose: set[str] = field(default_factory=set)


#: ``pvsim run``'s guest table: overview column -> head, and each column's format.
RUN_HEADS = {"mode": "mode", "cpu_ms": "cpu ms", "virt_share": "virt share",
             "virt_share_own": "own virt share", "driver_domain_ms": "driver domain ms",
             "io_requests": "I/O req", "mbit_s": "Mbit/s"}
RUN_FORMATS = {"cpu_ms": "{:.2f}", "virt_share": "{:.0%}", "virt_share_own": "{:.0%}",
               "driver_domain_ms": "{:.2f}", "io_requests": "{:d}", "mbit_s": "{:.1f}"}


def run_table(r: Results) -> TextTable:
    """``pvsim run``'s table: one row per guest (mode, CPU ms, the two virtualization
    shares, driver-domain ms, I/O requests, Mbit/s), its caption the definitions (the
    I/O latency is per stream: :func:`io_table`)."""
    from .shares import SHARES

    s = r.summary
    rows = []
    for name, row in r.overview().iterrows():
        rows.append([str(name), *[
            "" if pd.isna(row[c]) else RUN_FORMATS[c].format(row[c]) if c in RUN_FORMATS
            else str(row[c]) for c in RUN_HEADS]])
    heads = ["guest", *RUN_HEADS.values()]
    caption = ("cpu ms: the guest's vCPUs and the driver domain's work on its behalf; "
               + "; ".join(SHARES.values()) + "; Mbit/s: bytes over the measured time")
    return TextTable(f"pvsim run {s['scenario']}: {s['sim_time_s']:.3f} s simulated on "
                     f"{s['hardware']}", heads, rows, caption,
                     right={h for h in heads if h not in ("guest", "mode")})


def io_table(summary: dict) -> TextTable | None:
    """The guests' I/O latency per stream (a device and a direction, such as
    ``nic0:send``), after the warm-up; None when no requests were recorded."""
    rows = []
    for name, g in summary["guests"].items():
        for stream, st in g.get("io", {}).get("streams", {}).items():
            n = st["requests"]
            rows.append([name, stream, f"{n:d}", ms_cell(st["mean_ms"]),
                         ms_cell(st["p50_ms"], n, 0.5), ms_cell(st["p99_ms"], n, 0.99)])
    if not rows:
        return None
    heads = ["guest", "stream", "requests", "mean ms", "p50 ms", "p99 ms"]
    return TextTable("I/O requests per stream", heads, rows,
                     caption="latency: issue to completion of each I/O request (a packet, "
                             "a disk read), per device and direction; " + THIN_NOTE,
                     right=set(heads[2:]))


def request_table(summary: dict) -> TextTable | None:
    """The application requests of the guests that serve them (after the warm-up), as
    ``pvsim run`` prints them; None when no guest serves requests."""
    served = [(n, g["app"]) for n, g in summary["guests"].items() if "app" in g]
    if not served:
        return None
    warmup = summary["app"]["warmup_s"]
    heads = ["guest", "offered/s", "served/s", "dropped", "unanswered", "mean ms", "p50 ms",
             "p99 ms", "p99.9 ms", "requests"]

    rows = []
    for name, a in served:
        lat, n = a["latency"], a["latency"]["n"]
        rows.append([name, f"{a['offered_per_s']:.0f}", f"{a['served_per_s']:.0f}",
                     f"{a['dropped']:d}", f"{a['in_flight']:d}", ms_cell(lat["mean_ms"]),
                     ms_cell(lat["p50_ms"], n, 0.5), ms_cell(lat["p99_ms"], n, 0.99),
                     ms_cell(lat["p999_ms"], n, 0.999), f"{n:d}"])
    return TextTable("application requests" + (f" after a {warmup * 1e3:g} ms warm-up"
                                               if warmup else ""), heads, rows,
                     caption="response times: arrival at the NIC to the last packet sent; "
                             "an unanswered request counts with its wait so far; " + THIN_NOTE,
                     right=set(heads[1:]))


def device_lines(summary: dict) -> list[str]:
    """One line per device: utilization, mean queue, requests completed."""
    return [f"device {name}: utilization {d['utilization']:.1%}, mean queue "
            f"{d['mean_queue']:.2f}, {d['completed']} requests"
            for name, d in summary["devices"].items()]


def stall_lines(summary: dict, where: str = "") -> list[str]:
    """One line per vCPU that ended the run blocked with nothing to wake it."""
    return [f"stalled{where}: {s['vcpu']} blocked since {s['blocked_since_s']:.6f} s: "
            f"{s['why']}" for s in summary["invariants"]["stalled"]]


def skipped_line(guest: str, mode: str, why: str) -> str:
    """``pvsim compare``'s note on a guest that could not run in ``mode`` (why)."""
    return f"not reported: {guest} in {mode}: {why} (it kept its own mode in that run)"


def compare_table(table: pd.DataFrame, scenario: str, modes: list[str]) -> TextTable:
    """``pvsim compare``'s table: per guest and metric, each mode's performance relative
    to native and, in brackets, its value (``table`` as ``compare.csv`` holds it)."""
    cell = {(r.subject, r.metric, r.mode): r for r in table.itertuples()}
    rows = []
    for subject in dict.fromkeys(table["subject"]):
        for metric in dict.fromkeys(table["metric"]):
            row = [cell.get((subject, metric, m)) for m in modes]
            if any(row):
                rows.append([str(subject), str(metric), *[
                    "" if r is None else f"{r.relative:.2f} ({r.value:.4g})" for r in row]])
    return TextTable(f"pvsim compare {scenario}: performance relative to native (higher is "
                     "better; value in brackets)", ["guest", "metric", *modes], rows,
                     right=set(modes))


def sweep_table(sw: Sweep, scenario: str, metrics: list[str] | None = None) -> TextTable:
    """``pvsim sweep``'s table: per point, the axes and each metric's mean ± the 95%
    confidence half-width; by default the first six ``group.`` and ``host.`` metrics, as
    the command prints."""
    summary = sw.summary()
    shown = metrics if metrics is not None else [
        m for m in sw.metrics if m.startswith(("group.", "host."))][:6]
    reps = int(summary["replications"].max()) if len(summary) else 0
    rows = []
    for row in summary.to_dict("records"):
        rows.append([*[str(row[a]) for a in sw.axes],
                     *[f"{row[m + '.mean']:.4g}" + ("" if pd.isna(row[m + ".ci"])
                                                    else f" ± {row[m + '.ci']:.2g}")
                       for m in shown]])
    heads = [*sw.axes, *shown]
    return TextTable(f"pvsim sweep {scenario}: {len(summary)} points x {reps} replications "
                     "(mean ± 95% CI half-width)", heads, rows, right=set(heads))


def plan_lines(plan: dict) -> list[str]:
    """A plan's outcome as ``pvsim plan`` prints it, from its ``plan.json``
    (:meth:`Plan.to_dict <analysis.plan.Plan.to_dict>`): each value and whether it holds,
    then the capacity with its margins, or that there is none.

    Examples
    --------
    >>> plan_lines({"path": "n", "answer": None, "stop": "start", "limit": 8,
    ...             "verdicts": [{"value": 1, "holds": False, "reasons": ["x < 1: ..."],
    ...                           "margins": {}}]})
    ['n = 1: fails (x < 1: ...)', 'no capacity: the SLOs fail already at n = 1']
    """
    path, answer = plan["path"], plan["answer"]
    out = [f"{path} = {v['value']}: {'holds' if v['holds'] else 'fails'}"
           + ("" if v["holds"] else f" ({'; '.join(v['reasons'])})")
           for v in sorted(plan["verdicts"], key=lambda v: v["value"])]
    if answer is None:
        first = min(v["value"] for v in plan["verdicts"])
        return [*out, f"no capacity: the SLOs fail already at {path} = {first}"]
    v = next(v for v in plan["verdicts"] if v["value"] == answer)

    def num(x: float | None, fmt: str) -> str:
        return "nan" if x is None or not math.isfinite(x) else format(x, fmt)

    margins = ", ".join(f"{slo}: {num(m['bound_of_mean'], '.4g')} (slack "
                        f"{num(m['slack'], '.3g')})" for slo, m in v["margins"].items())
    bound = {"limit": f" (the search limit {plan['limit']}; the SLOs may hold beyond)",
             "invalid": f" (the largest valid value: {answer + 1} is not a valid scenario)",
             "slo": f"; {answer + 1} fails"}[plan["stop"]]
    return [*out, f"capacity: {path} = {answer}{bound} — at {answer}: {margins}"]
