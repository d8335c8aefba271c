"""Where the CPU time went: seconds per guest by category, for one run or across modes.

Categories are ``model.categories.NAMES`` without idle: user, kernel, hypervisor,
transition, page_walk, emulation, and driver_domain (the driver domain's work on
the guest's behalf).

Examples
--------
>>> cpu_breakdown(r).savefig("cpu.png")                           # doctest: +SKIP
>>> cpu_breakdown_by_mode({"pv": r_pv, "hvm": r_hvm}).savefig("m.png")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from model.categories import NAMES
from model.errors import ConfigError

from ..shares import SHARES, virtualization_share
from ._common import color_ticklabels, fmt, message_figure, new_figure, plain_text, title
from .colors import CATEGORY_COLORS, guest_colors
from .groups import POOL_PAST, rows_for

if TYPE_CHECKING:
    from analysis.results import Results

__all__ = ["CATEGORIES", "cpu_breakdown", "cpu_breakdown_by_mode"]

#: Stacking order, bottom to top.
CATEGORIES = tuple(c for c in NAMES if c != "idle")


def _used_categories(frames: list[pd.DataFrame]) -> list[str]:
    return [c for c in CATEGORIES if any(c in f and (f[c] > 0).any() for f in frames)]


def _stack(ax: Axes, x: np.ndarray, df: pd.DataFrame, cats: list[str], width: float,
           legend: bool, scale: float) -> np.ndarray:
    bottom = np.zeros(len(df))
    for c in cats:
        h = scale * (df[c].to_numpy(dtype=float) if c in df else np.zeros(len(df)))
        ax.bar(x, h, width, bottom=bottom, color=CATEGORY_COLORS[c], edgecolor="white",
               linewidth=0.5, label=c.replace("_", " ") if legend else f"_{c}")
        bottom += h
    return bottom


def _annotate(ax: Axes, x: np.ndarray, df: pd.DataFrame, at: np.ndarray, unit: str,
              scale: float, fontsize: str = "small", totals: np.ndarray | None = None) -> None:
    """Each bar's total (``totals``, default ``at``) and virtualization share
    (:func:`analysis.shares.virtualization_share`), written at height ``at`` (above a
    whisker)."""
    totals = at if totals is None else totals
    shares = [virtualization_share(row) for row in df.to_dict("records")]
    for xi, y, tot, v in zip(x, at, totals, shares, strict=True):
        share = f"\n{v:.0%} virt share" if tot > 0 else ""
        ax.text(xi, y, f"{fmt(tot)} {unit}{share}", ha="center", va="bottom",
                fontsize=fontsize)


def _unit(frames: list[pd.DataFrame]) -> tuple[float, str]:
    """ms unless some guest used a second or more."""
    top = max((float(f.sum(axis=1).max()) for f in frames if len(f)), default=0.0)
    return (1.0, "s") if top >= 1 else (1e3, "ms")


def _legend(ax: Axes) -> None:
    """The categories top to bottom, as stacked."""
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], title="category", loc="upper left",
              bbox_to_anchor=(1.01, 1), fontsize="small")


@plain_text
def cpu_breakdown(r: Results, max_bars: int = POOL_PAST) -> Figure:
    """CPU time per guest, stacked by category: in time, and as shares of each guest's.

    Above, one bar per guest (scenario order, its name in its colour), stacked bottom
    to top in the order of :data:`CATEGORIES`, with its total and its virtualization
    share (:mod:`analysis.shares`: hypervisor, transitions, emulation, and the driver
    domain's work for the guest, over all of it) written over it, the definition under
    the graph. Below, the same bars scaled
    to 100 % of each guest's CPU time, so that the make-up of a guest that used little
    CPU stays readable next to one that used much. Categories that are zero for every
    guest are left out.

    Past ``max_bars`` guests, one bar per guest entry (:mod:`analysis.plots.groups`):
    the mean over its replicas of each category (so a bar still reads as one guest's
    CPU time, comparable with a single guest's), a whisker from the replicas' least to
    their largest total, and the entry's colour.

    Parameters
    ----------
    r : Results
    max_bars : int, default :data:`analysis.plots.groups.POOL_PAST`

    Returns
    -------
    matplotlib.figure.Figure
        Two axes, each with one ``BarContainer`` per category drawn (labelled with the
        category, underscores as spaces). Above, bar heights are ``r.cpu_breakdown()``
        (pooled: its mean per entry) in milliseconds unless a guest used a second or
        more (the y label says which); below, percentages of each bar's total.

    Examples
    --------
    >>> fig = cpu_breakdown(r)                               # doctest: +SKIP
    >>> [t.get_text() for t in fig.axes[1].get_xticklabels()]  # doctest: +SKIP
    ['web (64 guests)', 'db']
    """
    what = "CPU time per guest by category"
    per_guest = r.cpu_breakdown()
    if not len(per_guest):
        return message_figure(title(r, what), "The run has no guests.")
    rows = rows_for(r, list(per_guest.index), max_rows=max_bars)
    pooled = any(len(row.members) > 1 for row in rows)
    df = pd.DataFrame([per_guest.loc[list(row.members)].mean() for row in rows],
                      index=pd.Index([row.key for row in rows], name="guest"))
    cats = _used_categories([df])
    scale, unit = _unit([df])
    n = len(df)
    fig, axes = new_figure(2, 1, width=max(7.5, 3.0 + (1.3 if n <= 8 else 0.95) * n),
                           row_height=3.6, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    ax, share = axes[0, 0], axes[1, 0]
    x = np.arange(n)
    totals = _stack(ax, x, df, cats, 0.6, legend=True, scale=scale)
    top = totals
    if pooled:  # the replicas' spread of totals
        sums = [scale * per_guest.loc[list(row.members)].sum(axis=1) for row in rows]
        lo, hi = np.array([s.min() for s in sums]), np.array([s.max() for s in sums])
        many = np.array([len(row.members) > 1 for row in rows])
        ax.errorbar(x[many], totals[many], yerr=[totals[many] - lo[many],
                    hi[many] - totals[many]], fmt="none", ecolor="black", elinewidth=1,
                    capsize=4, label="replicas' least to\nlargest total")
        top = np.where(many, hi, totals)
    _annotate(ax, x, df, top, unit, scale, fontsize="small" if n <= 8 else "x-small",
              totals=totals)
    ax.set_ylim(0, max(top.max(), 1e-12) * 1.25)
    ax.set_ylabel(f"CPU time per guest ({unit})" if pooled else f"CPU time ({unit})")
    ax.set_title("CPU time" + (" (a guest entry: the mean of its replicas)" if pooled else ""),
                 loc="left", fontsize="medium")
    sums = df.sum(axis=1).replace(0.0, np.nan)
    _stack(share, x, df.div(sums, axis=0).fillna(0.0), cats, 0.6, legend=False, scale=100.0)
    share.set_ylim(0, 100)
    share.set_ylabel("share of the guest's\nCPU time (%)")
    share.set_title("make-up of each guest's CPU time", loc="left", fontsize="medium")
    tilt = n > 8 or (pooled and n > 4)
    share.set_xticks(x, [row.label for row in rows], rotation=30 if tilt else 0,
                     ha="right" if tilt else "center", rotation_mode="anchor")
    for lab, row in zip(share.get_xticklabels(), rows, strict=True):
        lab.set_color(row.color)
        lab.set_fontweight("bold")
    share.set_xlim(-0.7, n - 0.3)
    share.set_xlabel("guest entry, replicas pooled" if pooled else "guest")
    for a in (ax, share):
        a.grid(True, axis="y", alpha=0.3)
    _legend(ax)
    fig.suptitle(title(r, what))
    fig.supxlabel(SHARES["virt_share"], fontsize="x-small", color="0.35")
    return fig


@plain_text
def cpu_breakdown_by_mode(runs: Mapping[str, Results]) -> Figure:
    """CPU seconds per guest by category, one group of bars per mode.

    Parameters
    ----------
    runs : mapping of str to Results
        Label (usually the mode: ``native``, ``pv``, ``full``, ``hvm``) -> the run of
        the same scenario in that mode, in the order to draw. The guests should be the
        same in every run; a guest missing from a run leaves a gap in its group.

    Returns
    -------
    matplotlib.figure.Figure
        One axes; one ``BarContainer`` per (mode, category) drawn, in mode order; the
        x ticks name the guests, and each mode's name sits above its group.
    """
    if not runs:
        raise ConfigError("cpu_breakdown_by_mode needs at least one run")
    frames = {label: r.cpu_breakdown() for label, r in runs.items()}
    guests: list[str] = []
    for f in frames.values():
        guests += [g for g in f.index if g not in guests]
    cats = _used_categories(list(frames.values()))
    scale, unit = _unit(list(frames.values()))
    n, width, gap = len(guests), 0.8, 1.0
    fig, axes = new_figure(1, 1, width=max(8.0, 3.0 + 1.15 * n * len(runs)), row_height=5.5)
    ax = axes[0, 0]
    ticks, top = [], 1e-12
    above = blended_transform_factory(ax.transData, ax.transAxes)
    for k, (label, df) in enumerate(frames.items()):
        x0 = k * (n + gap)
        df = df.reindex(guests)
        have = df.notna().all(axis=1).to_numpy()
        x = x0 + np.arange(n)
        totals = _stack(ax, x[have], df[have], cats, width, legend=k == 0, scale=scale)
        _annotate(ax, x[have], df[have], totals, unit, scale, fontsize="x-small")
        top = max(top, totals.max() if len(totals) else 0)
        ticks += list(x)
        ax.text(x0 + (n - 1) / 2, 1.01, label, transform=above, ha="center", va="bottom",
                fontsize="large", fontweight="bold")  # the mode, over its group
        if k:
            ax.axvline(x0 - (gap + 1) / 2, color="0.8", lw=1)
    long = max(len(g) for g in guests) > 6 and n > 1
    ax.set_xticks(ticks, guests * len(frames), rotation=30 if long else 0,
                  ha="right" if long else "center", rotation_mode="anchor")
    color_ticklabels(ax.get_xticklabels(), guest_colors(guests))
    ax.set_xlim(-0.7, ticks[-1] + 0.7)
    ax.set_ylim(0, top * 1.22)
    ax.set_ylabel(f"CPU time ({unit})")
    ax.set_xlabel("guest, by mode")
    ax.grid(True, axis="y", alpha=0.3)
    _legend(ax)
    first = next(iter(runs.values()))
    fig.suptitle(f"{first.summary.get('scenario', '')}: CPU time per guest by category, "
                 f"per mode\n{first.summary.get('hardware', '')}")
    return fig
