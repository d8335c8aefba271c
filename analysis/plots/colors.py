"""One colour per guest, per CPU category, per latency stage and per mode, for every graph.

A guest keeps its colour in every graph of a run: the guests' names are sorted (numbers
in them by value: ``web-2`` before ``web-10``) and take the colours of matplotlib's
``tab10`` palette in turn without its grey, which belongs to the driver domain; past nine
guests, of :data:`GUEST_PALETTE`, eighteen saturated colours that all read on white
(``tab20``'s pale half vanished there). Past eighteen guests the colours repeat, and the
graphs that draw one mark per guest pool a guest entry's replicas instead
(:mod:`analysis.plots.groups`).

Examples
--------
>>> colors = guest_colors(["web-1", "dom0", "web-0"])
>>> colors["web-0"], colors["web-1"], colors["dom0"]
('#1f77b4', '#ff7f0e', '#7f7f7f')
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from matplotlib import colormaps
from matplotlib.colors import to_hex, to_rgb

from model.modes import MODES

if TYPE_CHECKING:
    from analysis.results import Results

__all__ = [
    "CATEGORY_COLORS",
    "DRIVER_DOMAIN_COLOR",
    "GUEST_PALETTE",
    "MODE_COLORS",
    "PART_COLORS",
    "STAGE_COLORS",
    "color_distance",
    "guest_colors",
    "ink",
    "relative_luminance",
    "run_colors",
    "shade",
]

#: The driver domain's colour (grey: it is nobody's workload).
DRIVER_DOMAIN_COLOR = "#7f7f7f"


def _palette(name: str) -> list[str]:
    hexes = [to_hex(c) for c in colormaps[name].colors]
    return [h for h in hexes if not h[1:3] == h[3:5] == h[5:7]]  # greys are the driver's


_TAB10 = _palette("tab10")  # nine colours: tab10 without its grey

#: Guest colours past nine guests: tab10 without its grey, then nine darker hues chosen
#: greedily to be as far as possible (CIELAB) from those already taken. None is pale (a
#: relative luminance of at most 0.48: at least 2:1 contrast on white), no two are
#: closer than 27 (CIE76 delta E; 2.3 is a just-noticeable difference), none is close
#: to the driver domain's grey.
GUEST_PALETTE = (*_TAB10, "#00008b", "#556b2f", "#a6761d", "#005f5f", "#ff1493", "#1b9e77",
                 "#9932cc", "#393b79", "#800080")


#: CPU categories (model.categories.NAMES, idle aside): guest work in blues, the
#: virtualization overheads in warm colours, the driver domain's work in grey.
CATEGORY_COLORS = {
    "user": "#6baed6",
    "kernel": "#2171b5",
    "hypervisor": "#d62728",
    "transition": "#ff7f0e",
    "page_walk": "#bcbd22",
    "emulation": "#9467bd",
    "driver_domain": "#8c8c8c",
    "idle": "#eeeeee",
}

#: Latency stages (``analysis.tables.STAGE_COLUMNS``, without ``_ms``) in pipeline order:
#: guest-side stages green, driver domain blue, device orange/red, return path purple.
STAGE_COLORS = {
    "ring_enqueue": "#74c476",
    "notify": "#238b45",
    "backend_pickup": "#6baed6",
    "to_device": "#2171b5",
    "device_wait": "#fd8d3c",
    "service": "#d62728",
    "completion_irq": "#9e9ac8",
    "response": "#6a51a3",
    "upcall": "#c994c7",
}


#: Parts of an application request's response time (``model.app.requests.PARTS``), in
#: order: the network green (in light, out dark), waits orange (for a worker light, for a
#: pCPU dark), the worker's CPU time as in :data:`CATEGORY_COLORS` (its virtualization
#: cost red), the halted vCPU purple as emulation, the disk brown.
PART_COLORS = {
    "receive": "#a1d99b",
    "worker_wait": "#fdae6b",
    "user": CATEGORY_COLORS["user"],
    "kernel": CATEGORY_COLORS["kernel"],
    "page_walk": CATEGORY_COLORS["page_walk"],
    "virt": CATEGORY_COLORS["hypervisor"],
    "pcpu_wait": "#e6550d",
    "vcpu_blocked": CATEGORY_COLORS["emulation"],
    "run_queue": "#c994c7",
    "disk": "#8c564b",
    "send": "#31a354",
}


class _ModeColors(Mapping[str, str]):
    """Mode -> colour, as each mode of ``model.modes.MODES`` says (native black, then one
    hue each), in registration order: a mode registered later has its colour too."""

    def __getitem__(self, mode: str) -> str:
        m = MODES.get(mode)
        if m is None:
            raise KeyError(mode)
        return m.color

    def __iter__(self) -> Iterator[str]:
        return iter(MODES.names())

    def __len__(self) -> int:
        return len(MODES)

    def __repr__(self) -> str:
        return repr(dict(self))


#: Virtualization modes: native black, then one hue each.
MODE_COLORS: Mapping[str, str] = _ModeColors()


def _natural(name: str) -> tuple:
    """Sort key: runs of digits by value (``web-2`` before ``web-10``)."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t)
                 for t in re.split(r"(\d+)", name) if t)


def guest_colors(names: Iterable[str], driver_domain: str | None = "dom0") -> dict[str, str]:
    """A stable colour for each guest.

    Parameters
    ----------
    names : iterable of str
        Guest (domain) names. Order does not matter: the names are sorted first (numbers
        by value), so the same set of guests always gets the same colours.
    driver_domain : str or None, default "dom0"
        The driver domain's name; it is drawn grey.

    Returns
    -------
    dict of str to str
        Guest name -> hex colour. The nine colours of ``tab10`` without its grey, or
        the eighteen of :data:`GUEST_PALETTE` for more guests (cycling past eighteen).

    Examples
    --------
    >>> guest_colors(["b", "a"])
    {'a': '#1f77b4', 'b': '#ff7f0e'}
    >>> c = guest_colors([f"web-{i}" for i in range(12)])
    >>> c["web-2"], c["web-10"]
    ('#2ca02c', '#556b2f')
    """
    names = sorted(set(names), key=_natural)
    others = [n for n in names if n != driver_domain]
    palette = _TAB10 if len(others) <= len(_TAB10) else GUEST_PALETTE
    out = {n: palette[i % len(palette)] for i, n in enumerate(others)}
    if driver_domain in names:
        out[driver_domain] = DRIVER_DOMAIN_COLOR
    return out


def run_colors(r: Results) -> dict[str, str]:
    """:func:`guest_colors` for every domain of run ``r`` (its guests and driver domain)."""
    names = list(r.summary["guests"])
    dd = r.summary.get("host", {}).get("driver_domain")
    g = r.guests
    if len(g):
        names += list(g["guest"])
        flagged = g.loc[g["driver_domain"].astype(bool), "guest"]
        if len(flagged):
            dd = flagged.iloc[0]
    return guest_colors(names, driver_domain=dd or "dom0")


def _linear(color: str) -> tuple[float, float, float]:
    return tuple(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
                 for c in to_rgb(color))  # type: ignore[return-value]


def relative_luminance(color: str) -> float:
    """WCAG's relative luminance of ``color``: 0 for black, 1 for white.

    Examples
    --------
    >>> round(relative_luminance("#1f77b4"), 3), round(relative_luminance("#aec7e8"), 3)
    (0.168, 0.557)
    """
    r, g, b = _linear(color)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def color_distance(a: str, b: str) -> float:
    """How different two colours look: CIE76 delta E between them in CIELAB (D65).
    About 2.3 is just noticeable; colours of a categorical palette want 20 or more.

    Examples
    --------
    >>> round(color_distance("#1f77b4", "#1f77b4"), 1), color_distance("red", "blue") > 100
    (0.0, True)
    """
    def lab(c: str) -> tuple[float, float, float]:
        r, g, b = _linear(c)
        xyz = ((0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047,
               0.2126 * r + 0.7152 * g + 0.0722 * b,
               (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883)
        fx, fy, fz = (t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in xyz)
        return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)

    return math.dist(lab(a), lab(b))


def ink(color: str) -> str:
    """Black or white, whichever reads better on ``color`` (by its relative luminance).

    Examples
    --------
    >>> ink("#1f77b4"), ink("#aec7e8")
    ('white', 'black')
    """
    return "black" if relative_luminance(color) > 0.22 else "white"


def shade(color: str, k: int) -> str:
    """``color`` lightened for the ``k``-th sibling (k = 0 is ``color`` itself), to tell
    a guest's vCPUs apart while keeping its hue.

    Examples
    --------
    >>> shade("#1f77b4", 0), shade("#1f77b4", 1)
    ('#1f77b4', '#4e94c4')
    """
    if k <= 0:
        return to_hex(color)
    f = 1 - 0.65**k  # towards white, never reaching it
    return to_hex(tuple(c + (1 - c) * f * 0.6 for c in to_rgb(color)))
