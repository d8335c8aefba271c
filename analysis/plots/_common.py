"""Helpers shared by the graphs: figures, titles, units, and what a run contains."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

if TYPE_CHECKING:
    from analysis.results import Results


F = TypeVar("F", bound=Callable)


def plain_text(fn: F) -> F:
    """Make ``fn``'s figures with mathtext off: a name or label with ``$`` in it is text,
    never parsed as TeX (each text keeps the setting it was made with)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context({"text.parse_math": False}):
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 8.0, row_height: float = 3.5,
               **subplot_kw) -> tuple[Figure, np.ndarray]:
    """A figure (not registered with pyplot: nothing to close, safe on any backend)
    and its axes as a 2-D array."""
    fig = Figure(figsize=(width, max(row_height * nrows, 2.5)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


@plain_text
def message_figure(title: str, message: str) -> Figure:
    """A figure that says why there is nothing to draw."""
    fig = Figure(figsize=(8, 2.5), layout="constrained")
    ax = fig.subplots()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes)
    return fig


def title(r: Results, what: str) -> str:
    """A figure's title: ``"scenario: what"``, then a line naming the hardware profile,
    the simulated time and the seed."""
    s = r.summary
    sim = s.get("sim_time_s")
    scale, unit = time_unit(sim or 0.0)
    run = [s.get("hardware", r.scenario.hardware)]
    if sim:
        run.append(f"{fmt(sim * scale)} {unit} simulated")
    if s.get("seed") is not None:
        run.append(f"seed {s['seed']}")
    return f"{s.get('scenario', r.scenario.name)}: {what}\n{', '.join(run)}"


def guest_order(r: Results) -> list[str]:
    """The guests (driver domain aside) in scenario order."""
    return list(r.summary["guests"])


def device_names(r: Results) -> list[str]:
    """The host's devices in scenario order."""
    return list(r.summary.get("devices", {}))


def device_kind(r: Results, device: str) -> str:
    """``disk`` or ``nic`` (or the scenario's kind if the summary lacks one)."""
    kind = r.summary["devices"].get(device, {}).get("kind")
    if kind is None and device in r.scenario.host.devices:
        kind = r.scenario.host.devices[device].kind
    return kind or "device"


def time_unit(span_s: float) -> tuple[float, str]:
    """A scale and unit for times up to ``span_s`` seconds: ms below 2 s.

    Examples
    --------
    >>> time_unit(0.2), time_unit(30.0)
    ((1000.0, 'ms'), (1.0, 's'))
    """
    return (1e3, "ms") if span_s < 2 else (1.0, "s")


def fmt(v: float) -> str:
    """A number with three significant digits, without scientific notation for the
    magnitudes a run produces (1e-4 .. 1e5)."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e5 or a < 1e-4:
        return f"{v:.2e}"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.{2 - int(np.floor(np.log10(a)))}f}"


def grid_shape(n: int, max_cols: int = 2) -> tuple[int, int]:
    """Rows and columns for ``n`` panels, at most ``max_cols`` wide."""
    cols = min(max(n, 1), max_cols)
    return -(-max(n, 1) // cols), cols


def hide_unused(axes: np.ndarray, used: int) -> None:
    """Hide the panels past the first ``used`` of a grid."""
    for ax in axes.flat[used:]:
        ax.set_visible(False)


def color_ticklabels(labels, colors: dict[str, str]) -> None:
    """Colour each tick label naming a guest in that guest's colour."""
    for lab in labels:
        c = colors.get(lab.get_text())
        if c is not None:
            lab.set_color(c)
            lab.set_fontweight("bold")


def log_scale(ax: Axes, axis: str = "x") -> None:
    """Make ``ax``'s ``axis`` ("x" or "y") logarithmic, its ticks labelled as plain numbers
    (``0.1``, ``1``, ``10``; and ``2``, ``5`` between them when what is drawn spans three
    decades or less): matplotlib's default log labels are mathtext, which the graphs turn
    off (:func:`plain_text`), so they would show as ``$\\mathdefault{..}$``. Call it after
    drawing.

    Examples
    --------
    >>> fig, axes = new_figure()
    >>> ax = axes[0, 0]
    >>> _ = ax.plot([0.01, 10], [0, 1])
    >>> log_scale(ax)
    >>> ax.get_xscale(), ax.xaxis.get_major_formatter()(0.1, 0)
    ('log', '0.1')
    """
    getattr(ax, f"set_{axis}scale")("log")
    a = ax.xaxis if axis == "x" else ax.yaxis
    lo, hi = ax.dataLim.intervalx if axis == "x" else ax.dataLim.intervaly
    if lo > 0 and hi / lo < 1e3:  # three decades or less: 1, 2 and 5 of each labelled
        a.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    a.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    a.set_minor_formatter(NullFormatter())


def no_data(ax: Axes, message: str) -> None:
    """Mark a panel as empty, saying why."""
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes,
            color="0.4", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
