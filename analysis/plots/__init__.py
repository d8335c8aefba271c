"""Graphs of a run: latency, response times, contention, devices, CPU time, topology and
the schedule.

Every graph is a function of a :class:`analysis.results.Results` (or, for
:func:`relative_performance`, of a tidy table) returning a
:class:`matplotlib.figure.Figure`. Figures are made without pyplot, so any backend
(Agg included) works and nothing needs closing. A guest has the same colour in every
graph (:func:`guest_colors`). :func:`save_all` writes the ones that apply to
``DIR/plots/*.png``.

Examples
--------
>>> from model.scenario import parse_scenario
>>> from analysis.run import simulate
>>> r = simulate(parse_scenario('''
... name: demo
... duration: 20ms
... host: {devices: {ssd0: {kind: ssd}}}
... guests:
...   - {name: a, workload: {profile: disk_io}, devices: [{device: ssd0}]}
...   - {name: b, workload: {profile: spin}}
... record: {trace: true}
... '''))
>>> fig = cpu_breakdown(r)
>>> [t.get_text() for t in fig.axes[1].get_xticklabels()]  # the guests, under the bars
['a', 'b']
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     print(sorted(p.name for p in save_all(r, d)))  # doctest: +NORMALIZE_WHITESPACE
['contention_heatmap.png', 'cpu_breakdown.png', 'device_timeline.png', 'latency_cdf.png',
 'latency_stages.png', 'schedule_timeline.png', 'topology.png']
"""

from .colors import guest_colors
from .contention import contention_heatmap
from .cpu import cpu_breakdown, cpu_breakdown_by_mode
from .devices import device_timeline
from .latency import latency_cdf, latency_stages
from .relative import relative_performance
from .response import response_cdf, response_decomposition
from .save import graphs_for, save_all, save_figure
from .schedule import schedule_timeline
from .sweep import hockey_stick, plan_figure, save_plan_plot, save_sweep_plots, sweep_metric
from .topology import topology, topology_graph

__all__ = [
    "contention_heatmap",
    "cpu_breakdown",
    "cpu_breakdown_by_mode",
    "device_timeline",
    "graphs_for",
    "guest_colors",
    "hockey_stick",
    "latency_cdf",
    "latency_stages",
    "relative_performance",
    "response_cdf",
    "response_decomposition",
    "plan_figure",
    "save_all",
    "save_plan_plot",
    "save_sweep_plots",
    "sweep_metric",
    "save_figure",
    "schedule_timeline",
    "topology",
    "topology_graph",
]
