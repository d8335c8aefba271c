"""Shared-device graphs: utilization and queue length over time (who waited behind whom
is :mod:`analysis.plots.contention`).

Examples
--------
>>> device_timeline(r).savefig("devices.png")       # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from ._common import (
    device_kind,
    device_names,
    fmt,
    message_figure,
    new_figure,
    no_data,
    plain_text,
    time_unit,
    title,
)
from .groups import POOL_PAST, row_of, rows_for

if TYPE_CHECKING:
    from analysis.results import Results

__all__ = ["device_timeline"]


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
def device_timeline(r: Results, max_bands: int = POOL_PAST) -> Figure:
    """Each device's utilization over time stacked by guest, and its queue length.

    Two rows per device, sharing the time axis: above, the fraction of the device's
    channels busy serving each guest per sampling interval (timeseries metric
    ``device_util``), stacked in scenario order in the guests' colours; below, the
    time-weighted mean number of requests waiting in its queue (``queue_length``).
    Past ``max_bands`` guests at a device, one band per guest entry (its replicas'
    utilization summed), in the entry's colour.

    Parameters
    ----------
    r : Results
    max_bands : int, default :data:`analysis.plots.groups.POOL_PAST`

    Returns
    -------
    matplotlib.figure.Figure
        ``2 x devices`` axes; each utilization axes holds one ``PolyCollection`` per
        guest using the device (pooled: per guest entry, ``"web (64 guests)"``),
        labelled with the guest's name (its y axis is scaled to
        the data, as a percentage); each queue axes one line. The figure's legend names
        the guests.
    """
    what = "device utilization and queue length over time"
    devices = device_names(r)
    if not devices:
        return _no_devices(r, what)
    ts = r.timeseries
    end = float(r.summary.get("sim_time_s", r.scenario.duration))
    scale, unit = time_unit(end)
    fig, axes = new_figure(2 * len(devices), 1, width=10, row_height=2.1, sharex=True,
                           gridspec_kw={"height_ratios": [2, 1] * len(devices)})
    drawn: dict[str, object] = {}
    pooled = False
    for k, dev in enumerate(devices):
        ax_u, ax_q = axes[2 * k, 0], axes[2 * k + 1, 0]
        info = r.summary["devices"].get(dev, {})
        util = _series(ts, "device_util", dev)
        if len(util):
            rows = rows_for(r, [str(g) for g in util.columns], max_bands)
            util = util.T.groupby(util.columns.map(row_of(rows))).sum().T  # pooled
            keys = [row.key for row in rows]
            x = _steps(util.index.to_numpy(dtype=float), end) * scale
            ys = [np.append(util[k].to_numpy(), util[k].iloc[-1]) for k in keys]
            labels = [row.label for row in rows]
            polys = ax_u.stackplot(x, ys, labels=labels, colors=[row.color for row in rows],
                                   step="post", alpha=0.85)
            drawn.update(zip(labels, polys, strict=True))
            pooled = pooled or any(len(row.members) > 1 for row in rows)
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
                   ncols=min(len(drawn), 4 if pooled else 8), fontsize="small",
                   title="guest, or guest entry (replicas pooled)" if pooled else "guest",
                   title_fontsize="small")
    axes[-1, 0].set_xlabel(f"simulated time ({unit})")
    axes[-1, 0].set_xlim(0, end * scale)
    fig.suptitle(title(r, what))
    return fig
