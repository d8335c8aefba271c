"""Write every graph that applies to a run as PNG files in ``DIR/plots/``.

Examples
--------
>>> save_all(r, "results/quickstart-1")   # doctest: +SKIP
[PosixPath('results/quickstart-1/plots/cpu_breakdown.png'), ...]
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from ..resultsdir import record_files, remove_stale_temps, write_atomically
from ._common import plain_text
from .contention import contention_heatmap
from .cpu import cpu_breakdown
from .devices import device_timeline
from .latency import latency_cdf, latency_stages
from .response import response_cdf, response_decomposition
from .schedule import schedule_timeline
from .topology import topology

if TYPE_CHECKING:
    from analysis.results import Results

__all__ = ["graphs_for", "save_all", "save_figure"]


@plain_text
def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Save ``fig`` as PNG at ``path`` atomically: a reader sees the old file or the
    whole new one, never a partial one."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    write_atomically(Path(path), buf.getvalue())
    return Path(path)


#: Every graph a run's results directory can have, by file stem.
RUN_GRAPHS = ("cpu_breakdown", "topology", "device_timeline", "contention_heatmap",
              "latency_cdf", "latency_stages", "response_cdf", "response_decomposition",
              "schedule_timeline")


def graphs_for(r: Results) -> dict[str, Callable[[Results], Figure]]:
    """The graphs that apply to run ``r``, by file stem: CPU and topology always; the
    device graphs when the host has devices; the latency graphs when requests were
    recorded; the response-time graphs when guests served application requests; the
    schedule when the run was traced."""
    out: dict[str, Callable[[Results], Figure]] = {"cpu_breakdown": cpu_breakdown,
                                                   "topology": topology}
    if r.summary.get("devices"):
        out["device_timeline"] = device_timeline
        out["contention_heatmap"] = contention_heatmap
        if r.requests is not None and len(r.requests):
            out["latency_cdf"] = latency_cdf
            out["latency_stages"] = latency_stages
    if r.app_requests is not None and len(r.app_requests):
        out["response_cdf"] = response_cdf
        out["response_decomposition"] = response_decomposition
    if r.schedule is not None and len(r.schedule):
        out["schedule_timeline"] = schedule_timeline
    return out


def save_all(r: Results, directory: str | Path, dpi: int = 120) -> list[Path]:
    """Draw every applicable graph (:func:`graphs_for`) and write it to
    ``directory/plots/NAME.png``, each file atomically, and add them to the
    directory's manifest if it is a pvsim results directory.

    Parameters
    ----------
    r : Results
    directory : str or Path
        A results directory (created if missing).
    dpi : int, default 120

    Returns
    -------
    list of Path
        The files written, in drawing order.
    """
    out = Path(directory) / "plots"
    graphs = graphs_for(r)
    remove_stale_temps(out)  # of a killed earlier save
    stale = [out / f"{g}.png" for g in sorted(set(RUN_GRAPHS) - set(graphs))]
    for f in stale:  # from an earlier drawing of this directory
        f.unlink(missing_ok=True)
    paths = [save_figure(draw(r), out / f"{name}.png", dpi=dpi) for name, draw in graphs.items()]
    record_files(Path(directory), paths, stale)  # a pvsim results directory's manifest
    return paths
