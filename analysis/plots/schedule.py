"""Which vCPU ran on which pCPU when: the scheduler's decisions as a Gantt chart.

Needs the run segments, recorded only with ``record.trace: true``.

Examples
--------
>>> schedule_timeline(r, window=(0.0, 0.01)).savefig("schedule.png")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from model.errors import ConfigError

from ._common import fmt, message_figure, new_figure, plain_text, time_unit, title
from .colors import shade
from .groups import POOL_PAST, rows_for

if TYPE_CHECKING:
    from analysis.results import Results

__all__ = ["DEFAULT_WINDOW_S", "schedule_timeline"]

#: Runs longer than this are shown from their start for this long unless a window is given.
DEFAULT_WINDOW_S = 0.05


def _marks(r: Results, s: pd.DataFrame, max_guests: int
           ) -> list[tuple[str, str, pd.DataFrame, bool]]:
    """What the chart draws in one colour: (label, colour, its segments, whether it pools
    replicas), in scenario order. One per vCPU (``"guest/vK"``, a guest's later vCPUs in
    lighter shades of its colour); past ``max_guests`` guests, a guest entry's replicas
    as one (``"web (64 guests)"``)."""
    out = []
    for row in rows_for(r, list(dict.fromkeys(s["guest"])), max_guests):
        if len(row.members) > 1:
            out.append((row.label, row.color, s[s["guest"].isin(row.members)], True))
            continue
        mine = s[s["guest"] == row.key]
        for v in sorted(mine["vcpu"].unique()):
            out.append((f"{row.key}/v{v}", shade(row.color, int(v)),
                        mine[mine["vcpu"] == v], False))
    return out


@plain_text
def schedule_timeline(r: Results, window: tuple[float, float] | None = None,
                      max_guests: int = POOL_PAST) -> Figure:
    """Run segments per pCPU over time, coloured by guest.

    One row per pCPU; each run segment of a vCPU is a bar in its guest's colour
    (a guest's second, third... vCPU in lighter shades of it); gaps are idle time.

    Parameters
    ----------
    r : Results
        A run recorded with ``record.trace: true``; otherwise the figure says so.
    window : (float, float), optional
        ``(start_s, end_s)`` of simulated time to show. By default the whole run, or
        its first :data:`DEFAULT_WINDOW_S` seconds when it is longer (the title says
        which part is shown).
    max_guests : int, default :data:`analysis.plots.groups.POOL_PAST`
        Past this many guests in the window, a guest entry's replicas are drawn in one
        colour, its legend entry their summed share of the window (of one pCPU).

    Returns
    -------
    matplotlib.figure.Figure
        One axes; one ``BrokenBarHCollection`` (a ``PolyCollection``) per (pCPU, guest,
        vCPU) that ran in the window, its label ``"guest/vK"`` (pooled: per (pCPU,
        guest entry), its label the entry's); the legend names the guests' vCPUs.

    Examples
    --------
    >>> fig = schedule_timeline(r, window=(0.0, 0.01))      # doctest: +SKIP
    >>> fig.axes[0].get_legend().get_texts()[0].get_text()  # doctest: +SKIP
    'web-0/v0  (12%)'
    """
    what = "vCPU schedule (which vCPU ran on which pCPU)"
    sched = r.schedule
    if sched is None or not len(sched):
        return message_figure(title(r, what), "No schedule: the run was recorded without "
                              "record.trace: true.\nSet it in the scenario's record "
                              "section to draw which vCPU ran on which pCPU when.")
    end = float(r.summary.get("sim_time_s") or sched["end_s"].max())
    if window is None:
        window = (0.0, min(end, DEFAULT_WINDOW_S))
        part = (f"first {fmt(window[1] * 1e3)} ms of {fmt(end * 1e3)} ms"
                if end > DEFAULT_WINDOW_S else f"whole run, {fmt(end * 1e3)} ms")
    else:
        part = f"{fmt(window[0] * 1e3)} to {fmt(window[1] * 1e3)} ms of {fmt(end * 1e3)} ms"
    t0, t1 = float(window[0]), float(window[1])
    if not t1 > t0:
        raise ConfigError(f"schedule_timeline: window end {t1} s is not after start {t0} s")
    s = sched[(sched["end_s"] > t0) & (sched["start_s"] < t1)]
    pcpus = int(r.summary.get("host", {}).get("pcpus") or sched["pcpu"].max() + 1)
    scale, unit = time_unit(t1 - t0)
    marks = _marks(r, s, max_guests)
    pooled = any(m[3] for m in marks)
    fig, axes = new_figure(1, 1, width=12,
                           row_height=max(1.2 + 0.55 * pcpus, 1.0 + 0.24 * len(marks)))
    ax = axes[0, 0]
    handles = []
    for label, color, mine, many in marks:
        busy = 0.0
        for p, rows in mine.groupby("pcpu"):
            a = np.clip(rows["start_s"].to_numpy(dtype=float), t0, t1)
            b = np.clip(rows["end_s"].to_numpy(dtype=float), t0, t1)
            busy += float((b - a).sum())
            ax.broken_barh(list(zip((a - t0) * scale, (b - a) * scale, strict=True)),
                           (int(p) - 0.38, 0.76), facecolors=color, edgecolor=color,
                           linewidth=0.3, label=label)
        frac = busy / (t1 - t0)
        share = f"{frac:.0%}" if frac >= 0.005 or not frac else "<1%"
        handles.append(Patch(color=color, label=f"{label}  ({share}"
                             + (" of a pCPU)" if many else ")")))
    ax.set_yticks(range(pcpus), [f"pCPU {p}" for p in range(pcpus)])
    ax.set_ylim(pcpus - 0.5, -0.5)
    ax.set_xlim(0, (t1 - t0) * scale)
    ax.set_xlabel(f"simulated time ({unit})" + (f" from {fmt(t0 * scale)} {unit}" if t0 else ""))
    ax.set_ylabel("physical CPU")
    ax.grid(True, axis="x", alpha=0.3)
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1),
                  fontsize="small", title="vCPU, or guest entry with its\nvCPUs pooled "
                  "(share of window)" if pooled else "vCPU (share of window)")
    else:
        ax.text(0.5, 0.5, "no vCPU ran in this window", transform=ax.transAxes,
                ha="center", va="center", color="0.4")
    fig.suptitle(title(r, f"{what}: {part}"))
    return fig
