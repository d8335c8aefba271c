"""Graphs of sweeps and capacity plans: a metric against an axis, with confidence bands.

Examples
--------
>>> import pandas as pd
>>> from analysis.sweep import Sweep
>>> sw = Sweep(pd.DataFrame({"n": [1, 1, 2, 2], "point": [0, 0, 1, 1],
...                          "replication": [0, 1, 0, 1], "seed": [5, 6, 5, 6],
...                          "host.busy_fraction": [0.2, 0.3, 0.5, 0.6]}), ["n"])
>>> fig = sweep_metric(sw, "host.busy_fraction")
>>> fig.axes[0].get_xlabel(), len(fig.axes[0].lines)
('n', 1)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..plan import Plan
from ..sweep import Sweep
from ._common import plain_text
from .save import save_figure

#: Metric families drawn by default (per-replica guest metrics are left to the table).
HEADLINE_PREFIXES = ("host.", "group.", "device.")


def _numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


@plain_text
def sweep_metric(sw: Sweep, metric: str, confidence: float = 0.95) -> Figure:
    """``metric`` against each axis of the sweep: the mean over replications with its
    confidence band, one line per value of the other axes."""
    summary = sw.summary(confidence)
    fig = Figure(figsize=(5.5 * len(sw.axes), 4), layout="constrained")
    axes = fig.subplots(1, len(sw.axes), squeeze=False)
    for ax, axis in zip(axes[0], sw.axes, strict=True):
        others = [a for a in sw.axes if a != axis]
        groups = summary.groupby(others, sort=True) if others else [((), summary)]
        numeric = _numeric(summary[axis])
        cats = list(dict.fromkeys(summary[axis])) if not numeric else None
        groups = list(groups)
        for n, (key, g) in enumerate(groups):
            key = key if isinstance(key, tuple) else (key,)
            label = ", ".join(f"{a}={v}" for a, v in zip(others, key, strict=True)) or None
            g = g.sort_values(axis) if numeric else g
            dodge = (n - (len(groups) - 1) / 2) * 0.08  # side by side at a category
            x = g[axis].to_numpy() if numeric else np.array(
                [cats.index(v) + dodge for v in g[axis]])
            mean, half = g[f"{metric}.mean"].to_numpy(), g[f"{metric}.ci"].to_numpy()
            if numeric:
                line, = ax.plot(x, mean, marker="o", label=label)
                ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.2,
                                linewidth=0)
            else:
                ax.errorbar(x, mean, yerr=np.nan_to_num(half), marker="o", capsize=4,
                            linestyle="none", label=label)
        if cats is not None:
            ax.set_xticks(range(len(cats)), [str(c) for c in cats])
            ax.set_xlim(-0.5, len(cats) - 0.5)
        elif pd.api.types.is_integer_dtype(summary[axis]):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(axis)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if others:
            ax.legend(fontsize="small")
    reps = int(summary["replications"].max())
    fig.suptitle(f"{metric}: mean of {reps} replication{'s' * (reps > 1)}"
                 + (f", {confidence:.0%} confidence band" if reps > 1 else ""))
    return fig


@plain_text
def plan_figure(p: Plan) -> Figure:
    """Each SLO's metric against the searched axis: the evaluated points (held or failed),
    the values that are not valid scenarios (ticks along the bottom), the SLO bound, and
    the answer."""
    table = p.sweep.table
    fig = Figure(figsize=(6 * len(p.slos), 4), layout="constrained")
    axes = fig.subplots(1, len(p.slos), squeeze=False)
    values = sorted(p.verdicts)
    valid = np.array([p.verdicts[v].valid for v in values], bool)
    ok = np.array([p.verdicts[v].holds for v in values], bool)
    for ax, slo in zip(axes[0], p.slos, strict=True):
        # a value that is not a valid scenario ran nothing: it has no margin and no rows
        edge = [p.verdicts[v].margins.get(str(slo), (np.nan,))[0] for v in values]
        mean = [table.loc[table[p.path] == v, slo.metric].mean()
                if slo.metric in table else np.nan for v in values]
        vals, means, edges = np.array(values), np.array(mean, float), np.array(edge, float)
        ax.plot(vals[valid], means[valid], color="0.5", linewidth=1, zorder=1)
        ax.scatter(vals[ok], means[ok], color="tab:green", label="holds", zorder=2)
        ax.scatter(vals[~ok & valid], means[~ok & valid], color="tab:red", marker="x",
                   label="fails", zorder=2)
        if (~valid).any():
            ax.plot(vals[~valid], np.full((~valid).sum(), 0.02), linestyle="none", marker="|",
                    markersize=12, color="0.3", transform=ax.get_xaxis_transform(),
                    label="not a valid scenario")
        ax.vlines(vals[valid], np.fmin(means, edges)[valid], np.fmax(means, edges)[valid],
                  color="0.6", linewidth=1, label="confidence bound")
        if np.isfinite(slo.bound):
            ax.axhline(slo.bound, color="black", linestyle="--", label=f"SLO {slo}")
        else:  # an SLO that always holds: nothing to draw, but say which it is
            ax.plot([], [], color="black", linestyle="--", label=f"SLO {slo}")
        if p.answer is not None:
            ax.axvline(p.answer, color="tab:blue", linestyle=":",
                       label=f"capacity {p.path} = {p.answer}")
        ax.set_xlabel(p.path)
        ax.set_ylabel(slo.metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    why = {"limit": " (search limit)", "invalid": " (largest valid value)"}
    fig.suptitle(f"capacity search over {p.path}: "
                 + ("no value meets the SLOs" if p.answer is None
                    else f"{p.answer}{why.get(p.stop, '')}"), fontsize="medium")
    return fig


def save_sweep_plots(sw: Sweep, out: str | Path) -> list[Path]:
    """One PNG per headline metric under ``out/plots/``."""
    paths = []
    for m in sw.metrics:
        if m.startswith(HEADLINE_PREFIXES) and sw.table[m].notna().any():
            fig = sweep_metric(sw, m)
            paths.append(save_figure(fig, Path(out) / "plots" / f"sweep-{m}.png"))
    return paths


def save_plan_plot(p: Plan, out: str | Path) -> list[Path]:
    """The plan's figure as ``out/plots/plan.png``."""
    return [save_figure(plan_figure(p), Path(out) / "plots" / "plan.png")]
