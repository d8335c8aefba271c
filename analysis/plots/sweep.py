"""Graphs of sweeps and capacity plans: a metric against an axis, with confidence bands,
and the "hockey stick" of a load sweep (served load and response time against the offered).

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
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from model.errors import ConfigError

from ..plan import Plan
from ..sweep import Sweep
from ._common import log_scale, plain_text
from .colors import MODE_COLORS
from .latency import use_log_scale
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
    """Each SLO's metric against the searched axis: the evaluated points (in each panel,
    whether that panel's SLO held, and hollow where it held but the point failed another
    SLO or stalled), the values that are not valid scenarios (ticks along the bottom), the
    SLO bound, and the answer. The axis is an integer one: its ticks are whole values."""
    table = p.sweep.table
    fig = Figure(figsize=(6 * len(p.slos), 4), layout="constrained")
    axes = fig.subplots(1, len(p.slos), squeeze=False)
    values = sorted(p.verdicts)
    valid = np.array([p.verdicts[v].valid for v in values], bool)
    point_ok = np.array([p.verdicts[v].holds for v in values], bool)
    for ax, slo in zip(axes[0], p.slos, strict=True):
        # a value that is not a valid scenario ran nothing: it has no margin and no rows
        edge = [p.verdicts[v].margins.get(str(slo), (np.nan,))[0] for v in values]
        ok = np.array([p.verdicts[v].held.get(str(slo), False) for v in values], bool)
        mean = [table.loc[table[p.path] == v, slo.metric].mean()
                if slo.metric in table else np.nan for v in values]
        vals, means, edges = np.array(values), np.array(mean, float), np.array(edge, float)
        ax.plot(vals[valid], means[valid], color="0.5", linewidth=1, zorder=1)
        both = ok & point_ok
        ax.scatter(vals[both], means[both], color="tab:green", label="holds", zorder=2)
        if (ok & ~point_ok).any():
            ax.scatter(vals[ok & ~point_ok], means[ok & ~point_ok], facecolors="none",
                       edgecolors="tab:green", label="holds; the point fails another\n"
                       "SLO (or stalled)", zorder=2)
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
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(slo.metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    why = {"limit": " (search limit)", "invalid": " (largest valid value)"}
    fig.suptitle(f"capacity search over {p.path}: "
                 + ("no value meets the SLOs" if p.answer is None
                    else f"{p.answer}{why.get(p.stop, '')}"), fontsize="medium")
    return fig


def served_groups(sw: Sweep) -> list[str]:
    """The guest entries of a sweep that served requests (a ``group.NAME.served_per_s``
    metric with a value), in the order of the sweep's metrics.

    Examples
    --------
    >>> sw = Sweep(pd.DataFrame({"n": [1, 2], "point": [0, 1], "replication": [0, 0],
    ...                          "seed": [5, 5], "group.web.served_per_s": [10.0, 19.0]}),
    ...            ["n"])
    >>> served_groups(sw)
    ['web']
    """
    return [m.removeprefix("group.").removesuffix(".served_per_s") for m in sw.metrics
            if m.startswith("group.") and m.endswith(".served_per_s")
            and sw.table[m].notna().any()]


def load_axis(sw: Sweep) -> str | None:
    """The axis of a sweep that sets its load: the first numeric axis with two values or
    more whose path ends in ``rate_per_s``, else one under an ``arrivals`` section, else
    one ending in ``.count``, else the first numeric one (None if there is none).

    Examples
    --------
    >>> t = pd.DataFrame({"guests.web.mode": ["pv", "hvm"], "guests.web.count": [1, 2],
    ...                   "point": [0, 1], "replication": [0, 0], "seed": [5, 5]})
    >>> load_axis(Sweep(t, ["guests.web.mode", "guests.web.count"]))
    'guests.web.count'
    """
    numeric = [a for a in sw.axes if _numeric(sw.table[a]) and sw.table[a].nunique() > 1]
    for test in (lambda a: a.endswith("rate_per_s"), lambda a: ".arrivals." in a,
                 lambda a: a.endswith(".count")):
        for a in numeric:
            if test(a):
                return a
    return numeric[0] if numeric else None


def _line_colors(keys: list[tuple], others: list[str]) -> list[str | None]:
    """A colour per line: each mode's own when the other axes are one mode axis,
    matplotlib's cycle otherwise (None)."""
    if len(others) == 1 and others[0].endswith(".mode") and all(
            k[0] in MODE_COLORS for k in keys):
        return [MODE_COLORS[k[0]] for k in keys]
    return [f"C{i % 10}" for i in range(len(keys))]


@plain_text
def hockey_stick(sw: Sweep, axis: str | None = None, confidence: float = 0.95) -> Figure:
    """Served load and response time against the offered load: a load sweep's "hockey
    stick".

    Left, the requests served per second against those offered (each point a point of
    the sweep, the mean over its replications), with the line served = offered: a
    healthy server stays on it, a saturated one falls below (the share of requests
    dropped is written by the points that dropped 0.1 % or more). Right, the request p99
    (solid) and mean (dashed) response times against the offered load: flat, then
    rising steeply as the server saturates (a logarithmic axis when they spread over
    more than 1.5 decades). One line per guest entry that serves requests and per
    value of the sweep's other axes (each mode in its colour when the other axis is a
    mode), joining the points in the order of ``axis``; with replications, the
    ``confidence`` bands of the means (vertical) and of the offered load (horizontal
    bars), as :func:`sweep_metric` draws them.

    The load is per guest (``group.NAME.offered_per_s``, ``served_per_s``), unless
    ``axis`` is that guest entry's count (``guests.NAME.count``): then it is the entry's
    total, the per-guest rate times the count, since the load per guest stays the same.

    Parameters
    ----------
    sw : Sweep
        A sweep whose metrics include ``group.NAME.served_per_s`` (its guests serve
        requests).
    axis : str, optional
        The axis that sets the load; by default :func:`load_axis`.
    confidence : float, default 0.95

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: served against offered (one ``Line2D`` per line, labelled, and the
        served = offered line), and response time against offered (two ``Line2D`` per
        line: p99 then mean).

    Raises
    ------
    ValueError
        The sweep has no served requests, or no numeric axis to draw along.

    Examples
    --------
    >>> t = pd.DataFrame({"rate": [100, 200, 300], "point": [0, 1, 2],
    ...                   "replication": 0, "seed": 5,
    ...                   "group.web.offered_per_s": [100.0, 200.0, 300.0],
    ...                   "group.web.served_per_s": [100.0, 200.0, 240.0],
    ...                   "group.web.drop_rate": [0.0, 0.0, 0.2],
    ...                   "group.web.request_p99_ms": [1.0, 2.0, 90.0],
    ...                   "group.web.request_mean_ms": [0.5, 0.8, 40.0]})
    >>> fig = hockey_stick(Sweep(t, ["rate"]))
    >>> served, latency = fig.axes
    >>> served.get_lines()[0].get_ydata().tolist(), latency.get_yscale()
    ([100.0, 200.0, 240.0], 'log')
    """
    groups = served_groups(sw)
    if not groups:
        raise ConfigError("hockey_stick: the sweep has no group.NAME.served_per_s metric with "
                         "a value (no guest served requests)")
    axis = axis or load_axis(sw)
    if axis is None or axis not in sw.axes or not _numeric(sw.table[axis]):
        raise ConfigError(f"hockey_stick: {'no numeric axis' if axis is None else axis!r} to "
                         f"draw along (the sweep's axes: {', '.join(sw.axes)})")
    summary = sw.summary(confidence)
    others = [a for a in sw.axes if a != axis]
    combos = (list(summary.groupby(others, sort=False)) if others else [((), summary)])
    combos = [(k if isinstance(k, tuple) else (k,), g.sort_values(axis)) for k, g in combos]
    colors = _line_colors([k for k, _ in combos], others)
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    served_ax, lat_ax = fig.subplots(1, 2)
    markers = "osD^vP*X"
    totals, top, times = set(), 0.0, []
    for gi, group in enumerate(groups):
        col = lambda m, part, grp=group: f"group.{grp}.{m}.{part}"  # noqa: E731
        total = axis == f"guests.{group}.count"  # the entry's total, not per guest
        if total:
            totals.add(group)
        for (key, g), color in zip(combos, colors, strict=True):
            scale = g[axis].to_numpy(float) if total else 1.0
            x, xerr = (scale * g[col("offered_per_s", "mean")].to_numpy(float),
                       scale * g[col("offered_per_s", "ci")].to_numpy(float))
            y, yerr = (scale * g[col("served_per_s", "mean")].to_numpy(float),
                       scale * g[col("served_per_s", "ci")].to_numpy(float))
            label = ", ".join(str(v) for v in key)
            label = f"{group}: {label}" if len(groups) > 1 and label else (label or group)
            marker = markers[gi % len(markers)]
            line, = served_ax.plot(x, y, marker=marker, color=color, label=label)
            c = line.get_color()
            _bands(served_ax, x, y, xerr, yerr, c)
            drops = g.get(col("drop_rate", "mean"), pd.Series(np.nan, g.index)).to_numpy(float)
            for xi, yi, d in zip(x, y, drops, strict=True):
                if d >= 1e-3:
                    served_ax.annotate(f"{d:.1%} dropped", (xi, yi), textcoords="offset points",
                                       xytext=(4, -11), fontsize="x-small", color=c)
            top = max(top, np.nanmax(np.concatenate([x, y]), initial=0.0))
            for stat, style in (("request_p99_ms", "-"), ("request_mean_ms", "--")):
                if col(stat, "mean") not in g:
                    continue
                v, h = g[col(stat, "mean")].to_numpy(float), g[col(stat, "ci")].to_numpy(float)
                lat_ax.plot(x, v, marker=marker, color=c, linestyle=style,
                            label=label if style == "-" else f"_{label} mean")
                _bands(lat_ax, x, v, xerr, h, c)
                times.append(v)
    served_ax.plot([0, top * 1.05], [0, top * 1.05], color="black", linestyle=":", lw=1,
                   label="served = offered", zorder=0)
    every = set(groups) == totals
    unit = ("requests/s, all of the guest entry's guests" if every
            else "requests/s per guest" if not totals
            else f"requests/s per guest ({', '.join(sorted(totals))}: all its guests)")
    served_ax.set_xlabel(f"offered ({unit})")
    served_ax.set_ylabel(f"served ({unit})")
    served_ax.set_xlim(0, top * 1.05 or 1)
    served_ax.set_ylim(0, top * 1.05 or 1)
    served_ax.set_title("served against offered load", fontsize="medium")
    served_ax.legend(fontsize="small", loc="upper left",
                     title=", ".join(others) if others else None, title_fontsize="small")
    t = np.concatenate(times) if times else np.array([])
    log = use_log_scale(t[np.isfinite(t)])
    if log:
        log_scale(lat_ax, "y")
    else:
        lat_ax.set_ylim(bottom=0)
    lat_ax.set_xlim(0, top * 1.05 or 1)
    lat_ax.set_xlabel(f"offered ({unit})")
    lat_ax.set_ylabel(f"response time (ms{', log scale' if log else ''})")
    lat_ax.set_title("request response time against offered load", fontsize="medium")
    lat_ax.legend(handles=[Line2D([], [], color="0.3", linestyle="-", label="p99"),
                           Line2D([], [], color="0.3", linestyle="--", label="mean")],
                  fontsize="small", loc="upper left")
    for ax in (served_ax, lat_ax):
        ax.grid(alpha=0.3)
    reps = int(summary["replications"].max())
    fig.suptitle(f"the hockey stick over {axis}: mean of {reps} replication{'s' * (reps > 1)}"
                 + (f", {confidence:.0%} confidence bands" if reps > 1 else ""))
    return fig


def _bands(ax, x: np.ndarray, y: np.ndarray, xerr: np.ndarray, yerr: np.ndarray,
           color: str) -> None:
    """The confidence band of ``y`` and bars for that of ``x`` (nothing where NaN: a
    single replication)."""
    if np.isfinite(yerr).any():
        ax.fill_between(x, y - yerr, y + yerr, color=color, alpha=0.2, linewidth=0)
    if np.isfinite(xerr).any():
        ax.errorbar(x, y, xerr=np.nan_to_num(xerr), fmt="none", ecolor=color, elinewidth=0.8,
                    capsize=0)


#: The file of the hockey stick among a sweep's graphs.
HOCKEY_STICK = "sweep-hockey_stick.png"


def save_sweep_plots(sw: Sweep, out: str | Path) -> list[Path]:
    """One PNG per headline metric under ``out/plots/``, and :func:`hockey_stick` as
    ``sweep-hockey_stick.png`` when guests served requests and an axis is numeric."""
    paths = []
    for m in sw.metrics:
        if m.startswith(HEADLINE_PREFIXES) and sw.table[m].notna().any():
            fig = sweep_metric(sw, m)
            paths.append(save_figure(fig, Path(out) / "plots" / f"sweep-{m}.png"))
    if served_groups(sw) and load_axis(sw) is not None:
        paths.append(save_figure(hockey_stick(sw), Path(out) / "plots" / HOCKEY_STICK))
    return paths


def save_plan_plot(p: Plan, out: str | Path) -> list[Path]:
    """The plan's figure as ``out/plots/plan.png``."""
    return [save_figure(plan_figure(p), Path(out) / "plots" / "plan.png")]
