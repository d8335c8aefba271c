"""One colour per guest, per CPU category, per latency stage and per mode, for every graph.

A guest keeps its colour in every graph of a run: the guests' names are sorted and
take the colours of matplotlib's ``tab10`` palette in turn (``tab20`` past nine
guests), leaving out the palettes' greys, which belong to the driver domain.

Examples
--------
>>> colors = guest_colors(["web-1", "dom0", "web-0"])
>>> colors["web-0"], colors["web-1"], colors["dom0"]
('#1f77b4', '#ff7f0e', '#7f7f7f')
"""

from __future__ import annotations

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
    "MODE_COLORS",
    "PART_COLORS",
    "STAGE_COLORS",
    "guest_colors",
    "ink",
    "run_colors",
    "shade",
]

#: The driver domain's colour (grey: it is nobody's workload).
DRIVER_DOMAIN_COLOR = "#7f7f7f"


def _palette(name: str) -> list[str]:
    hexes = [to_hex(c) for c in colormaps[name].colors]
    return [h for h in hexes if not h[1:3] == h[3:5] == h[5:7]]  # greys are the driver's


_TAB10 = _palette("tab10")  # nine colours: tab10 without its grey
_TAB20 = _palette("tab20")  # eighteen

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


def guest_colors(names: Iterable[str], driver_domain: str | None = "dom0") -> dict[str, str]:
    """A stable colour for each guest.

    Parameters
    ----------
    names : iterable of str
        Guest (domain) names. Order does not matter: the names are sorted first, so
        the same set of guests always gets the same colours.
    driver_domain : str or None, default "dom0"
        The driver domain's name; it is drawn grey.

    Returns
    -------
    dict of str to str
        Guest name -> hex colour. The nine colours of ``tab10`` without its grey, or
        the eighteen of ``tab20`` for more guests (cycling past eighteen).

    Examples
    --------
    >>> guest_colors(["b", "a"])
    {'a': '#1f77b4', 'b': '#ff7f0e'}
    """
    names = sorted(set(names))
    others = [n for n in names if n != driver_domain]
    palette = _TAB10 if len(others) <= len(_TAB10) else _TAB20
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


def ink(color: str) -> str:
    """Black or white, whichever reads better on ``color`` (by its relative luminance).

    Examples
    --------
    >>> ink("#1f77b4"), ink("#aec7e8")
    ('white', 'black')
    """
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in to_rgb(color))
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.22 else "white"


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
