"""I/O latency graphs: the distribution per guest and device, and where the time went.

Both read ``r.requests`` (one row per completed request, ``record.requests: true``)
and draw one panel per device that completed requests.

Examples
--------
>>> from analysis.plots import latency_cdf          # doctest: +SKIP
>>> latency_cdf(r).savefig("latency.png")           # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import offset_copy

from analysis.results import STAGE_COLUMNS

from ..stats import TAIL_SAMPLES, thin_tail
from ._common import (
    device_kind,
    device_names,
    fmt,
    grid_shape,
    guest_order,
    hide_unused,
    log_scale,
    message_figure,
    new_figure,
    plain_text,
    title,
)
from .colors import STAGE_COLORS
from .groups import POOL_PAST, row_of, rows_for

if TYPE_CHECKING:
    from analysis.results import Results

__all__ = ["PERCENTILE_MARKERS", "latency_cdf", "latency_stages", "use_log_scale"]

#: Percentiles marked on each CDF, and their marker.
PERCENTILE_MARKERS = {50: "o", 95: "s", 99: "^"}
#: Spread (decades between the fastest and the slowest request) past which the
#: latency axis is logarithmic.
LOG_SPREAD_DECADES = 1.5


def use_log_scale(values: np.ndarray, decades: float = LOG_SPREAD_DECADES) -> bool:
    """Whether positive ``values`` spread over more than ``decades`` decades.

    Examples
    --------
    >>> use_log_scale(np.array([0.1, 0.5, 2.0])), use_log_scale(np.array([0.01, 5.0]))
    (False, True)
    """
    v = np.asarray(values, dtype=float)
    v = v[v > 0]
    return bool(len(v) > 1 and np.log10(v.max() / v.min()) > decades)


def _with_requests(r: Results) -> tuple[pd.DataFrame, list[str]]:
    req = r.requests
    if req is None or not len(req):
        return req, []
    have = set(req["device"].unique())
    known = device_names(r)
    return req, [d for d in known if d in have] + sorted(have - set(known))


def _no_requests(r: Results, what: str) -> Figure:
    return message_figure(title(r, what), "No I/O requests were recorded: the run has no "
                          "devices, no guest used one, or record.requests was false.")


def _guests_of(r: Results, req: pd.DataFrame) -> list[str]:
    order = guest_order(r)
    have = set(req["guest"].unique())
    return [g for g in order if g in have] + sorted(have - set(order))


@plain_text
def latency_cdf(r: Results, max_lines: int = POOL_PAST) -> Figure:
    """Empirical CDF of request latency per guest, one panel per device.

    Each guest using a device is one step line (in its colour); its 50th, 95th and
    99th percentiles are marked on the line (o, square, triangle) and quoted in the
    legend. The latency axis is logarithmic when a panel's latencies spread over more
    than 1.5 decades. Past ``max_lines`` guests at a device, one line per guest entry
    (its replicas' requests pooled), in the entry's colour.

    Parameters
    ----------
    r : Results
        A run recorded with ``record.requests: true``.
    max_lines : int, default :data:`analysis.plots.groups.POOL_PAST`

    Returns
    -------
    matplotlib.figure.Figure
        One axes per device that completed requests; each has one ``Line2D`` per guest
        (pooled: per guest entry), labelled with its name first (``"web (64 guests)"``).
        A figure saying so when there are no requests.

    Examples
    --------
    >>> latency_cdf(r).axes[0].get_lines()[0].get_label()   # doctest: +SKIP
    'web (64 guests) [pv]  p50 0.345  p95 0.346  p99 0.351 ms'
    """
    what = "I/O request latency distribution"
    req, devices = _with_requests(r)
    if not devices:
        return _no_requests(r, what)
    lines = {dev: rows_for(r, _guests_of(r, req[req["device"] == dev]), max_lines)
             for dev in devices}
    nrows, ncols = grid_shape(len(devices))
    most = max(len(v) for v in lines.values())
    fig, axes = new_figure(nrows, ncols, width=6.5 * ncols, row_height=4.4 + 0.2 * most)
    for ax, dev in zip(axes.flat, devices, strict=False):
        mine = req[req["device"] == dev]
        by_guest = mine.groupby("guest", sort=False)
        for row in lines[dev]:
            sel = pd.concat([by_guest.get_group(g) for g in row.members])
            lat = np.sort(sel["latency_ms"].to_numpy(dtype=float))
            frac = np.arange(1, len(lat) + 1) / len(lat)
            p = np.percentile(lat, list(PERCENTILE_MARKERS))
            path = ", ".join(dict.fromkeys(sel["path"])) if "path" in sel else ""
            label = (f"{row.label} [{path}]  " if path else f"{row.label}  ") + "  ".join(
                f"p{q} {fmt(v)}{'*' if thin_tail(len(lat), q / 100) else ''}"
                for q, v in zip(PERCENTILE_MARKERS, p, strict=True)) + " ms"
            ax.step(np.concatenate(([lat[0]], lat)), np.concatenate(([0.0], frac)),
                    where="post", color=row.color, lw=1.8, label=label)
            for (q, marker), v in zip(PERCENTILE_MARKERS.items(), p, strict=True):
                ax.scatter([v], [q / 100], marker=marker, s=42, color=row.color,
                           edgecolors="black", linewidths=0.6, zorder=3)
        log = use_log_scale(mine["latency_ms"].to_numpy(dtype=float))
        if log:
            log_scale(ax)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{dev} ({device_kind(r, dev)}): {len(mine)} requests")
        ax.set_xlabel(f"request latency (ms{', log scale' if log else ''})")
        ax.set_ylabel("fraction of requests ≤ latency")
        ax.grid(True, which="major", alpha=0.3)
        proxies = [Line2D([], [], ls="", marker=m, color="0.6", markeredgecolor="black",
                          label=f"p{q}") for q, m in PERCENTILE_MARKERS.items()]
        key = ax.legend(handles=proxies, loc="lower right", fontsize="small",
                        title=f"percentile\n(*: under {TAIL_SAMPLES} requests above it)",
                        title_fontsize="small")
        ax.add_artist(key)  # a CDF leaves its lower right empty; the guests go below
        pooled = any(len(row.members) > 1 for row in lines[dev])
        below = offset_copy(ax.transAxes, fig=fig, y=-0.5, units="inches")  # the x label's
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=below,
                  fontsize="small", frameon=False, title_fontsize="small",
                  title=f"guest{' entry, replicas pooled' if pooled else ''} [I/O path]  "
                        "latency percentiles")
    hide_unused(axes, len(devices))
    fig.suptitle(title(r, what))
    return fig


def _stage_label(col: str) -> str:
    return col.removesuffix("_ms").replace("_", " ")


@plain_text
def latency_stages(r: Results, max_bars: int = POOL_PAST) -> Figure:
    """Mean request latency per guest decomposed into pipeline stages, one panel per device.

    One horizontal bar per guest using the device, stacked from left to right in
    pipeline order (``analysis.tables.STAGE_COLUMNS``: ring enqueue, notify, backend
    pickup, to device, device wait, service, completion irq, response, upcall); the
    segments are the mean milliseconds of each stage, so the bar's length is the
    guest's mean latency (written at its end). Stages no request spent time in are
    left out of the legend. Past ``max_bars`` guests at a device, one bar per guest
    entry: the means over its replicas' requests.

    Parameters
    ----------
    r : Results
        A run recorded with ``record.requests: true``.
    max_bars : int, default :data:`analysis.plots.groups.POOL_PAST`

    Returns
    -------
    matplotlib.figure.Figure
        One axes per device that completed requests; each has one ``BarContainer``
        per stage drawn, labelled with the stage's name.

    Examples
    --------
    >>> [t.get_text() for t in latency_stages(r).axes[0].get_yticklabels()]  # doctest: +SKIP
    ['web (64 guests)']
    """
    what = "where I/O request latency goes, by stage (mean per request)"
    req, devices = _with_requests(r)
    if not devices:
        return _no_requests(r, what)
    stages = [c for c in STAGE_COLUMNS if c in req and (req[c] > 0).any()]
    bars = {dev: rows_for(r, _guests_of(r, req[req["device"] == dev]), max_bars)
            for dev in devices}
    most = max(max(len(v) for v in bars.values()), 2)
    fig, axes = new_figure(len(devices), 1, width=10,
                           row_height=1.2 + (0.55 if most <= 8 else 0.36) * most)
    for ax, dev in zip(axes.flat, devices, strict=True):
        mine = req[req["device"] == dev]
        rows = bars[dev]
        key = mine["guest"].map(row_of(rows))
        keys = [row.key for row in rows]
        means = mine.groupby(key)[stages].mean().reindex(keys)
        _stacked_barh(ax, means, keys)
        paths = (mine.groupby(key)["path"].agg(lambda p: ", ".join(dict.fromkeys(p)))
                 if "path" in mine else {})
        ax.set_yticks(range(len(rows)), [row.label for row in rows])
        for lab, row in zip(ax.get_yticklabels(), rows, strict=True):
            lab.set_color(row.color)
            lab.set_fontweight("bold")
        for i, k in enumerate(keys):
            total = means.loc[k].sum()
            ax.text(total, i, f"  {fmt(total)} ms" + (f" [{paths[k]}]" if k in paths else ""),
                    va="center", fontsize="small")
        ax.invert_yaxis()
        ax.set_xlim(0, means.sum(axis=1).max() * 1.25 or 1)
        ax.set_title(f"{dev} ({device_kind(r, dev)})")
        ax.set_xlabel("mean time per request (ms)")
        pooled = any(len(row.members) > 1 for row in rows)
        ax.set_ylabel("guest entry, replicas pooled" if pooled else "guest")
        ax.grid(True, axis="x", alpha=0.3)
    fig.legend(handles=[Patch(color=STAGE_COLORS.get(_stage_label(c).replace(" ", "_")),
                              label=_stage_label(c)) for c in stages],
               loc="outside lower center", ncols=min(len(stages), 5), fontsize="small",
               title="stage (pipeline order, left to right)")
    fig.suptitle(title(r, what))
    return fig


def _stacked_barh(ax: Axes, means: pd.DataFrame, guests: list[str]) -> None:
    left = np.zeros(len(guests))
    for col in means.columns:
        w = means[col].to_numpy(dtype=float)
        ax.barh(range(len(guests)), w, left=left, height=0.6, label=_stage_label(col),
                color=STAGE_COLORS.get(col.removesuffix("_ms")), edgecolor="white",
                linewidth=0.5)
        left += w
