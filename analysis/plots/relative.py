"""Performance relative to native, per guest (or benchmark operation), metric and mode.

The input is the tidy table of ``pvsim compare`` (``analysis.compare.compare(...).table``)
or of ``pvsim bench``. The convention, everywhere: ``relative`` is *higher is better*
and 1.0 is native.
For a throughput-type metric (more is better) ``relative = value / native``; for a
latency- or cost-type metric (less is better: latency, CPU time, cycles per
operation) ``relative = native / value``. So 0.5 means "half native performance"
whatever the metric: twice the latency, or half the throughput.

Examples
--------
>>> import pandas as pd
>>> table = pd.DataFrame({"subject": ["fork", "fork", "exec", "exec"],
...                       "metric": ["latency"] * 4, "mode": ["pv", "hvm"] * 2,
...                       "relative": [0.8, 0.5, 0.9, 0.6]})
>>> fig = relative_performance(table)
>>> [float(b.get_height()) for b in fig.axes[0].containers[0]]
[0.8, 0.9]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from model.modes import baseline_mode

from ._common import new_figure, plain_text
from .colors import MODE_COLORS

__all__ = ["relative_performance"]

_EXTRA = ["#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#ff7f0e"]


def _mode_order(modes: list[str], baseline: str) -> list[str]:
    known = [m for m in (baseline, *MODE_COLORS) if m in modes]
    return list(dict.fromkeys(known + modes))


@plain_text
def relative_performance(table: pd.DataFrame, baseline: str | None = None,
                         title: str | None = None) -> Figure:
    """Grouped bars of performance relative to native, one panel per metric.

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy, one row per (subject, metric, mode): columns ``subject`` (a guest or a
        benchmark operation), ``metric`` (str), ``mode`` and ``relative``. ``relative``
        must already be *higher is better* with 1.0 = native: ``value / native`` for
        throughput-type metrics, ``native / value`` for latency- and cost-type ones
        (see the module docstring), as in ``analysis.compare.compare(...).table``.
        Other columns are ignored; a NaN ``relative`` (native had no figure) draws no
        bar.
    baseline : str, optional
        The mode the values are relative to (drawn as the line at 1.0; its own bars,
        all 1.0, are left out); by default the registry's mode without a hypervisor
        (:func:`model.modes.baseline_mode`, ``native``).
    title : str, optional
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per metric (in order of first appearance); in each one
        ``BarContainer`` per mode (labelled with the mode) with a bar per subject, and
        a dashed line at 1.0.
    """
    missing = {"subject", "metric", "mode", "relative"} - set(table.columns)
    if missing:
        raise ValueError(f"relative_performance: the table lacks column(s) "
                         f"{', '.join(sorted(missing))}; it needs subject, metric, mode, "
                         "relative")
    if baseline is None:
        baseline = baseline_mode()
    t = table[table["mode"] != baseline]
    metrics = list(dict.fromkeys(t["metric"]))
    if not metrics:
        raise ValueError(f"relative_performance: no rows other than the {baseline!r} ones")
    modes = _mode_order(list(dict.fromkeys(t["mode"])), baseline)
    extra = iter(_EXTRA * 4)
    colors = {m: MODE_COLORS.get(m) or next(extra) for m in modes}
    n_subj = t.groupby("metric")["subject"].nunique().max()
    fig, axes = new_figure(len(metrics), 1,
                           width=max(7.0, 2.5 + 0.35 * n_subj * (len(modes) + 1)),
                           row_height=2.8)
    for ax, metric in zip(axes.flat, metrics, strict=True):
        rows = t[t["metric"] == metric]
        subjects = list(dict.fromkeys(rows["subject"]))
        here = [m for m in modes if (rows["mode"] == m).any()]
        width = 0.8 / len(here)
        x = np.arange(len(subjects))
        for k, mode in enumerate(here):
            vals = (rows[rows["mode"] == mode].groupby("subject", sort=False)["relative"]
                    .mean().reindex(subjects))
            xs = x - 0.4 + width * (k + 0.5)
            bars = ax.bar(xs, vals.to_numpy(dtype=float), width, label=mode,
                          color=colors[mode], edgecolor="white", linewidth=0.5)
            if len(subjects) * len(here) <= 24:
                ax.bar_label(bars, labels=[f"{v:.2f}" if np.isfinite(v) else ""
                                           for v in vals], fontsize="x-small", padding=1)
        ax.axhline(1.0, color="black", ls="--", lw=1, label=f"{baseline} = 1.0")
        ax.set_xticks(x, subjects, rotation=30 if len(subjects) > 6 else 0,
                      ha="right" if len(subjects) > 6 else "center")
        top = float(np.nanmax(rows["relative"].to_numpy(dtype=float), initial=1.0))
        ax.set_ylim(0, max(1.15, top * 1.15))
        ax.set_title(metric)
        ax.set_ylabel(f"relative to {baseline}\n(higher is better)")
        ax.grid(True, axis="y", alpha=0.3)
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="outside right upper",
               fontsize="small", title="mode")
    fig.suptitle(title or f"Performance relative to {baseline} (higher is better)")
    fig.supxlabel(f"1.0 = {baseline}. Latency and cost metrics: {baseline} / value; "
                  f"throughput metrics: value / {baseline}.", fontsize="small", color="0.3")
    return fig
