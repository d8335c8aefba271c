"""Shared-device graphs: utilization and queue length over time, and who waited behind whom.

Examples
--------
>>> device_timeline(r).savefig("devices.png")       # doctest: +SKIP
>>> contention_heatmap(r).savefig("contention.png")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from ._common import (
    color_ticklabels,
    device_kind,
    device_names,
    fmt,
    grid_shape,
    guest_order,
    hide_unused,
    message_figure,
    new_figure,
    no_data,
    plain_text,
    time_unit,
    title,
)
from .colors import run_colors

if TYPE_CHECKING:
    from analysis.results import Results

__all__ = ["contention_heatmap", "device_timeline"]


def _no_devices(r: Results, what: str) -> Figure:
    return message_figure(title(r, what), "The host has no devices.")


def _series(ts: pd.DataFrame, metric: str, device: str) -> pd.DataFrame:
    """``time_s`` x guest table of one metric at one device."""
    rows = ts[(ts["metric"] == metric) & (ts["device"] == device)]
    return rows.pivot_table(index="time_s", columns="guest", values="value", aggfunc="sum",
                            fill_value=0.0).sort_index()


def _steps(t: np.ndarray, end: float) -> np.ndarray:
    """Interval starts plus the end of the last one, for a step plot."""
    return np.append(t, max(end, t[-1]))


@plain_text
def device_timeline(r: Results) -> Figure:
    """Each device's utilization over time stacked by guest, and its queue length.

    Two rows per device, sharing the time axis: above, the fraction of the device's
    channels busy serving each guest per sampling interval (timeseries metric
    ``device_util``), stacked in scenario order in the guests' colours; below, the
    time-weighted mean number of requests waiting in its queue (``queue_length``).

    Parameters
    ----------
    r : Results

    Returns
    -------
    matplotlib.figure.Figure
        ``2 x devices`` axes; each utilization axes holds one ``PolyCollection`` per
        guest using the device, labelled with the guest's name (its y axis is scaled to
        the data, as a percentage); each queue axes one line. The figure's legend names
        the guests.
    """
    what = "device utilization and queue length over time"
    devices = device_names(r)
    if not devices:
        return _no_devices(r, what)
    ts = r.timeseries
    colors = run_colors(r)
    end = float(r.summary.get("sim_time_s", r.scenario.duration))
    scale, unit = time_unit(end)
    fig, axes = new_figure(2 * len(devices), 1, width=10, row_height=2.1, sharex=True,
                           gridspec_kw={"height_ratios": [2, 1] * len(devices)})
    drawn: dict[str, object] = {}
    for k, dev in enumerate(devices):
        ax_u, ax_q = axes[2 * k, 0], axes[2 * k + 1, 0]
        info = r.summary["devices"].get(dev, {})
        util = _series(ts, "device_util", dev)
        if len(util):
            guests = [g for g in guest_order(r) if g in util] + sorted(
                set(util.columns) - set(guest_order(r)))
            x = _steps(util.index.to_numpy(dtype=float), end) * scale
            ys = [np.append(util[g].to_numpy(), util[g].iloc[-1]) for g in guests]
            polys = ax_u.stackplot(x, ys, labels=guests, colors=[colors.get(g) for g in guests],
                                   step="post", alpha=0.85)
            drawn.update(zip(guests, polys, strict=True))
            peak = float(np.sum(ys, axis=0).max())
            # the data's own scale (the title gives the mean): a nearly idle device
            # would be a flat line on 0..100%
            ax_u.set_ylim(0, min(1.0, peak * 1.2) if peak > 0 else 1.0)
            ax_u.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
        else:
            no_data(ax_u, "no per-guest utilization (record.requests was false, or no "
                    "guest used this device)")
        mean_u = info.get("utilization")
        chans = info.get("channels")
        ax_u.set_title(f"{dev} ({device_kind(r, dev)}"
                       + (f", {chans} channel{'s' * (chans != 1)}" if chans else "") + ")"
                       + (f": utilization by guest, run mean {mean_u:.1%}"
                          if mean_u is not None else ": utilization by guest"),
                       loc="left", fontsize="medium")
        ax_u.set_ylabel("channels busy")
        ax_u.grid(True, alpha=0.3)
        q = ts[(ts["metric"] == "queue_length") & (ts["device"] == dev)].sort_values("time_s")
        mq = info.get("mean_queue")
        if len(q):
            x = _steps(q["time_s"].to_numpy(dtype=float), end) * scale
            y = np.append(q["value"].to_numpy(dtype=float), q["value"].iloc[-1])
            ax_q.step(x, y, where="post", color="black", lw=1.2, label="queue length")
            ax_q.fill_between(x, y, step="post", color="0.6", alpha=0.4)
            ax_q.set_ylim(0, max(1.0, float(y.max()) * 1.15))
            if not y.any():
                ax_q.text(0.5, 0.5, "no request ever waited", transform=ax_q.transAxes,
                          ha="center", va="center", color="0.4")
        else:
            no_data(ax_q, "no queue-length series")
        ax_q.set_title(f"{dev}: requests waiting (mean per {fmt(r.interval * 1e3)} ms interval"
                       + (f"; run mean {fmt(mq)}" if mq is not None else "") + ")",
                       loc="left", fontsize="medium")
        ax_q.set_ylabel("queue length\n(requests)")
        ax_q.grid(True, alpha=0.3)
    if drawn:
        fig.legend(list(drawn.values()), list(drawn), loc="outside lower center",
                   ncols=min(len(drawn), 8), fontsize="small", title="guest",
                   title_fontsize="small")
    axes[-1, 0].set_xlabel(f"simulated time ({unit})")
    axes[-1, 0].set_xlim(0, end * scale)
    fig.suptitle(title(r, what))
    return fig


@plain_text
def contention_heatmap(r: Results) -> Figure:
    """Per device, the seconds each guest's requests waited (rows) while each guest's
    requests held the device's channels (columns).

    The diagonal is a guest waiting behind its own requests; off-diagonal cells are
    interference between guests. Cells are annotated with their seconds.

    Parameters
    ----------
    r : Results

    Returns
    -------
    matplotlib.figure.Figure
        One heatmap axes per device (each with its colour bar); the image's array is
        ``r.contention(device)`` (rows and columns in scenario order).
    """
    what = "contention: time each guest waited behind each guest"
    devices = [d for d in device_names(r) if len(r.contention(d))]
    if not devices:
        return message_figure(title(r, what), "No device was used by any guest."
                              if device_names(r) else "The host has no devices.")
    colors = run_colors(r)
    n = max(len(r.contention(d)) for d in devices)
    nrows, ncols = grid_shape(len(devices))
    side = 2.2 + 0.9 * n
    fig, axes = new_figure(nrows, ncols, width=(side + 1.6) * ncols, row_height=side + 0.6)
    for ax, dev in zip(axes.flat, devices, strict=False):
        m = r.contention(dev)
        a = m.to_numpy(dtype=float)
        vmax = a.max() if a.max() > 0 else 1.0
        im = ax.imshow(a, cmap="Reds", vmin=0, vmax=vmax, aspect="equal")
        for (i, j), v in np.ndenumerate(a):
            ax.text(j, i, fmt(v), ha="center", va="center", fontsize="small",
                    color="white" if v > 0.6 * vmax else "black")
        ax.set_xticks(range(a.shape[1]), list(m.columns), rotation=30, ha="right")
        ax.set_yticks(range(a.shape[0]), list(m.index))
        color_ticklabels(ax.get_xticklabels() + ax.get_yticklabels(), colors)
        ax.set_xlabel("holding the device (guest)")
        ax.set_ylabel("waiting (guest)")
        note = f"total {fmt(a.sum())} s" if a.sum() > 0 else "no waiting"
        ax.set_title(f"{dev} ({device_kind(r, dev)}): {note}")
        if a.max() > 0:
            fig.colorbar(im, ax=ax, label="wait (s)", shrink=0.85)
    hide_unused(axes, len(devices))
    fig.suptitle(title(r, what))
    return fig
