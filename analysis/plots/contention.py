"""Who waited behind whom at each shared device: interference between guests, drawn
apart from a guest waiting behind its own requests.

``Results.contention(device)`` is the seconds each guest's requests waited (rows) while
each guest's requests held the device's channels (columns). Its diagonal, a guest
waiting behind its own earlier requests, is queueing the guest causes itself, not
interference; it can dominate the matrix and read as interference, so
:func:`contention_heatmap` hatches it in the matrix and draws it as a bar of its own,
and the colour scale covers interference only. Past :data:`MAX_CELLS` guests the rows
and columns are guest entries with their replicas pooled (:mod:`analysis.plots.groups`;
unless all are replicas of one entry: then one row per guest, without numbers), and a
third panel names the :data:`TOP_PAIRS` guest pairs that interfered most. The
figure has the same size for 2 guests or 128; cells carry their numbers up to
:data:`MAX_CELLS` x :data:`MAX_CELLS`.

Examples
--------
>>> contention_heatmap(r).savefig("contention.png")   # doctest: +SKIP
>>> v = contention_view(r, "nic0")                    # doctest: +SKIP
>>> v.own["web-0"], v.pairs.iloc[0]                   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ._common import device_kind, device_names, fmt, message_figure, plain_text, title
from .groups import row_of, rows_for

if TYPE_CHECKING:
    from analysis.results import Results

__all__ = ["FIGURE_WIDTH", "MAX_CELLS", "PANEL_HEIGHT", "TOP_PAIRS", "ContentionView",
           "contention_heatmap", "contention_view"]

#: Guests drawn one row and column each; past it, one per guest entry. Also the largest
#: matrix whose cells carry their numbers.
MAX_CELLS = 12
#: Interfering guest pairs listed, largest first.
TOP_PAIRS = 12
#: The figure's width, and its height per device (inches), whatever the number of guests.
FIGURE_WIDTH = 15.0
PANEL_HEIGHT = 5.4
#: Past this many rows, every k-th row and column is named.
MAX_TICKS = 16


@dataclass(frozen=True)
class ContentionView:
    """One device's contention as :func:`contention_heatmap` draws it.

    Attributes
    ----------
    device : str
    interference : pandas.DataFrame
        Seconds the rows' requests waited (``waiting``) behind the columns' (``holding``),
        rows and columns guests or, when ``grouped``, guest entries, in scenario order;
        a guest behind its own requests is left out (the cell of a single guest's own
        row and column is NaN). A guest entry's diagonal cell is its replicas waiting
        behind one another.
    own : pandas.Series
        Per row, seconds its guests waited behind their own requests (the diagonal of
        ``Results.contention``, summed over an entry's replicas).
    pairs : pandas.DataFrame
        The :data:`TOP_PAIRS` largest waits of one guest behind another (``waiting``,
        ``holding``, ``seconds``), largest first; distinct guests only.
    labels : dict of str to str
        Row or column key -> its label (``"web (64 guests)"``).
    colors : dict of str to str
        Row or column key -> its colour.
    row_of : dict of str to str
        Guest -> the key of its row.
    grouped : bool
        Whether rows are guest entries.
    guests : int
        The guests in the matrix.
    interfering_pairs : int
        The (waiting, holding) pairs of distinct guests with a wait.
    """

    device: str
    interference: pd.DataFrame
    own: pd.Series
    pairs: pd.DataFrame
    labels: dict[str, str]
    colors: dict[str, str]
    row_of: dict[str, str]
    grouped: bool
    guests: int
    interfering_pairs: int


def contention_view(r: Results, device: str, max_cells: int = MAX_CELLS,
                    top: int = TOP_PAIRS) -> ContentionView:
    """Split ``r.contention(device)`` into interference and own waits, pooled by guest
    entry past ``max_cells`` guests.

    Parameters
    ----------
    r : Results
    device : str
    max_cells : int, default :data:`MAX_CELLS`
    top : int, default :data:`TOP_PAIRS`

    Returns
    -------
    ContentionView

    Examples
    --------
    >>> v = contention_view(r, "ssd0")                    # doctest: +SKIP
    >>> v.interference.loc["web", "db"]  # web's replicas behind db's  # doctest: +SKIP
    """
    m = r.contention(device)
    guests = list(m.index)
    a = m.to_numpy(dtype=float)
    own_g = np.diag(a).copy()
    off = a.copy()
    np.fill_diagonal(off, 0.0)
    w, h = np.nonzero(off > 0)
    order = np.argsort(-off[w, h], kind="stable")[:top]
    pairs = pd.DataFrame({"waiting": [guests[i] for i in w[order]],
                          "holding": [guests[j] for j in h[order]],
                          "seconds": off[w[order], h[order]]})
    rows = rows_for(r, guests, max_rows=max_cells)
    if len(rows) == 1 < len(guests):  # replicas of one entry: nothing to pool them against
        rows = rows_for(r, guests, max_rows=len(guests))
    keys = [row.key for row in rows]
    at = {g: k for k, row in enumerate(rows) for g in row.members}
    at_key = row_of(rows)
    member = np.zeros((len(guests), len(rows)))  # guest x row membership
    member[np.arange(len(guests)), [at[g] for g in guests]] = 1.0
    pooled = member.T @ off @ member
    single = np.array([len(row.members) == 1 for row in rows])
    pooled[np.diag_indices(len(rows))] = np.where(single, np.nan, np.diag(pooled))
    return ContentionView(
        device=device,
        interference=pd.DataFrame(pooled, index=pd.Index(keys, name="waiting"),
                                  columns=pd.Index(keys, name="holding")),
        own=pd.Series(member.T @ own_g, index=keys, name="own_s"),
        pairs=pairs,
        labels={row.key: row.label for row in rows},
        colors={row.key: row.color for row in rows},
        row_of=at_key,
        grouped=any(len(row.members) > 1 for row in rows),
        guests=len(guests),
        interfering_pairs=len(w))


def _unit(top: float) -> tuple[float, str]:
    """A scale and unit for waits up to ``top`` seconds."""
    if top >= 1:
        return 1.0, "s"
    return (1e3, "ms") if top >= 1e-3 else (1e6, "µs")


def _ticks(ax: Axes, v: ContentionView, max_cells: int) -> None:
    keys = list(v.interference.index)
    step = -(-len(keys) // MAX_TICKS)
    idx = list(range(0, len(keys), step))
    names = [v.labels[keys[i]] for i in idx]
    size = "small" if len(keys) > max_cells else "medium"
    ax.set_xticks(idx, names, rotation=30, ha="right", rotation_mode="anchor", fontsize=size)
    ax.set_yticks(idx, names, fontsize=size)
    for lab, i in zip(ax.get_xticklabels() + ax.get_yticklabels(), idx + idx, strict=True):
        lab.set_color(v.colors[keys[i]])
        lab.set_fontweight("bold")


def _heatmap(fig: Figure, ax: Axes, v: ContentionView, kind: str, scale: float,
             unit: str, max_cells: int) -> None:
    a = v.interference.to_numpy(dtype=float) * scale
    finite = a[np.isfinite(a)]
    vmax = float(finite.max()) if len(finite) and finite.max() > 0 else 1.0
    cmap = colormaps["Reds"].with_extremes(bad="white")
    im = ax.imshow(np.ma.masked_invalid(a), cmap=cmap, vmin=0, vmax=vmax, aspect="auto",
                   interpolation="nearest")
    own = [Rectangle((i - 0.5, i - 0.5), 1, 1) for i in range(len(a)) if np.isnan(a[i, i])]
    if own:
        ax.add_collection(PatchCollection(own, facecolor="none", edgecolor="0.6",
                                          hatch="///", linewidth=0))
    if len(a) <= max_cells:  # every cell but the hatched ones, zeros in grey
        for (i, j), x in np.ndenumerate(a):
            if np.isfinite(x):
                ax.text(j, i, fmt(x), ha="center", va="center", fontsize="small",
                        color="white" if x > 0.6 * vmax else "black" if x > 0 else "0.55")
    _ticks(ax, v, max_cells)
    who = "guest entry, replicas pooled" if v.grouped else "guest"
    ax.set_xlabel(f"holding the device ({who})")
    ax.set_ylabel(f"waiting ({who})")
    total = float(np.nansum(v.interference.to_numpy(dtype=float)))
    k, u = _unit(total)
    ax.set_title(f"{v.device} ({kind}): waits behind other guests, {fmt(total * k)} {u} in all"
                 if total > 0 else f"{v.device} ({kind}): no guest waited behind another",
                 loc="left", fontsize="medium")
    if total > 0:
        fig.colorbar(im, ax=ax, label=f"wait behind others ({unit})", shrink=0.85, pad=0.01)


def _own(ax: Axes, v: ContentionView, scale: float, unit: str, max_cells: int) -> None:
    y = np.arange(len(v.own))
    x = v.own.to_numpy(dtype=float) * scale
    ax.barh(y, x, height=0.7, color=[v.colors[k] for k in v.own.index])
    ax.set_ylim(len(y) - 0.5, -0.5)  # the heatmap's rows
    ax.tick_params(axis="y", labelleft=False)
    ax.set_xlabel(f"wait ({unit})")
    ax.set_title("behind its own\nrequests (not\ninterference)", fontsize="medium")
    ax.grid(True, axis="x", alpha=0.3)
    if not x.any():
        ax.set_xlim(0, 1)
        ax.text(0.5, 0.5, "none", transform=ax.transAxes, ha="center", color="0.4")
    elif len(x) <= max_cells:
        ax.set_xlim(0, x.max() * 1.6)
        for yi, xi in zip(y, x, strict=True):
            if xi > 0:
                ax.text(xi, yi, f" {fmt(xi)}", va="center", fontsize="x-small")


def _pairs(ax: Axes, v: ContentionView, scale: float, unit: str) -> None:
    p = v.pairs
    if not len(p):
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no guest waited\nbehind another", transform=ax.transAxes,
                ha="center", va="center", color="0.4")
        return
    y = np.arange(len(p))
    x = p["seconds"].to_numpy(dtype=float) * scale
    ax.barh(y, x, height=0.7, color=[v.colors[v.row_of[g]] for g in p["waiting"]])
    ax.set_yticks(y, [f"{w} behind {h}" for w, h in zip(p["waiting"], p["holding"],
                                                        strict=True)], fontsize="small")
    ax.set_ylim(max(len(y), TOP_PAIRS) - 0.5, -0.5)
    for yi, xi in zip(y, x, strict=True):
        ax.text(xi, yi, f" {fmt(xi)}", va="center", fontsize="x-small")
    ax.set_xlim(0, x.max() * 1.25)
    ax.set_xlabel(f"wait ({unit})")
    ax.set_title(f"the {len(p)} guest pairs (of {v.interfering_pairs}) that\nwaited longest "
                 "behind one another", fontsize="medium")
    ax.grid(True, axis="x", alpha=0.3)


@plain_text
def contention_heatmap(r: Results, max_cells: int = MAX_CELLS) -> Figure:
    """Per device, the time each guest's requests waited behind other guests' (a
    heatmap), behind their own (a bar beside it), and the pairs that interfered most.

    The heatmap's rows wait, its columns hold the device's channels; its diagonal,
    a guest behind its own requests, is hatched and drawn instead as the middle panel's
    bar, and the colour scale covers interference only. Past ``max_cells`` guests the
    rows and columns are guest entries with their replicas pooled (an entry's diagonal
    cell is then its replicas waiting behind one another), unless all the guests are
    replicas of one entry. The right panel lists the :data:`TOP_PAIRS` guest pairs that
    waited longest behind one another. The figure is :data:`FIGURE_WIDTH` by
    :data:`PANEL_HEIGHT` inches per device whatever the number of guests; cells carry
    their numbers up to ``max_cells`` rows.

    Parameters
    ----------
    r : Results
    max_cells : int, default :data:`MAX_CELLS`

    Returns
    -------
    matplotlib.figure.Figure
        Per device with a contention matrix, three axes in a row: the heatmap (its
        image's array is :func:`contention_view`'s ``interference``, masked where
        hatched; with its colour bar when some guest waited behind another), the own
        waits (one bar per row), the top pairs.

    Examples
    --------
    >>> fig = contention_heatmap(r)                      # doctest: +SKIP
    >>> fig.get_size_inches()  # two devices             # doctest: +SKIP
    array([15. , 11.6])
    """
    what = "contention: time each guest waited behind other guests' requests"
    devices = [d for d in device_names(r) if len(r.contention(d))]
    if not devices:
        return message_figure(title(r, what), "No device was used by any guest."
                              if device_names(r) else "The host has no devices.")
    views = [contention_view(r, d, max_cells) for d in devices]
    fig = Figure(figsize=(FIGURE_WIDTH, PANEL_HEIGHT * len(views) + 0.8), layout="constrained")
    axes = fig.subplots(len(views), 3, squeeze=False,
                        gridspec_kw={"width_ratios": [5.0, 1.3, 3.0]})
    for (ax_m, ax_o, ax_p), v in zip(axes, views, strict=True):
        top = max(float(np.nanmax(v.interference.to_numpy(), initial=0.0)),
                  float(v.own.max()), float(v.pairs["seconds"].max()) if len(v.pairs) else 0)
        scale, unit = _unit(top)
        _heatmap(fig, ax_m, v, device_kind(r, v.device), scale, unit, max_cells)
        _own(ax_o, v, scale, unit, max_cells)
        _pairs(ax_p, v, scale, unit)
    if any(x.grouped for x in views):
        n_guests = max(x.guests for x in views)
        n_rows = max(len(x.interference) for x in views)
        note = (f"Rows and columns are guest entries, replicas pooled ({n_guests} guests "
                f"in {n_rows} entries): an entry's diagonal cell is its replicas waiting "
                "behind one another. A guest waiting behind its own requests is not "
                "interference: it is drawn apart (middle panel); hatched cells hold "
                "nothing but that.")
    else:
        note = ("Hatched diagonal: a guest waiting behind its own requests is not "
                "interference; it is drawn apart (middle panel), and the colour scale "
                "covers the others.")
    fig.supxlabel(note, fontsize="small", color="0.3", wrap=True)
    fig.suptitle(title(r, what))
    return fig
