"""The host as a graph: pCPUs, guests and their vCPUs, the driver domain's backends, devices.

Layers, top to bottom: pCPUs; vCPUs; domains (guests and the driver domain);
the driver domain's backends (one per device and I/O path through it); devices.
Edges carry the run's traffic as their width: a vCPU to each pCPU it ran on by CPU
seconds, and a guest to each device by bytes moved, through the backend for the
paths served in the driver domain (``pv``, ``emulated``, ``virtio``, ``vhost``: each
path of ``model.io.paths.PATHS`` says) or straight to the device (``direct``,
``passthrough``).

In pvsim ``vhost`` is the in-kernel backend *of the driver domain* (it runs on the
driver domain's vCPUs, see ``model/io/paths.py``), so it is drawn through the driver
domain like ``virtio``, not as a direct path.

Examples
--------
>>> g = topology_graph(r)                          # doctest: +SKIP
>>> g.edges["web-pv", "pv backend\\nssd0"]["bytes"]  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from model.io.paths import PATHS

from ._common import device_kind, device_names, fmt, guest_order, new_figure, plain_text, title
from .colors import DRIVER_DOMAIN_COLOR, ink
from .groups import Row, row_of, rows_for

if TYPE_CHECKING:
    from analysis.results import Results

__all__ = ["LAYERS", "MAX_GUESTS", "topology", "topology_graph", "via_driver_domain"]

#: Guests drawn one node each; past it, one node per guest entry.
MAX_GUESTS = 12
#: Past this many edge labels, edges thinner than SMALL_EDGE of the widest of their
#: kind go unlabelled.
FEW_LABELS = 24
SMALL_EDGE = 0.02

#: Layer name -> height in the drawing.
LAYERS = {"pcpu": 4, "vcpu": 3, "domain": 2, "backend": 1, "device": 0}
LAYER_TITLES = {"pcpu": "physical CPUs", "vcpu": "virtual CPUs", "domain": "domains",
                "backend": "driver-domain\nbackends", "device": "devices"}


def via_driver_domain(path: str) -> bool:
    """Whether I/O ``path`` is served by a backend in the driver domain (``pv``,
    ``emulated``, ``virtio``, ``vhost``; a path unknown here is drawn direct).

    Examples
    --------
    >>> via_driver_domain("virtio"), via_driver_domain("passthrough")
    (True, False)
    """
    p = PATHS.get(path)
    return p is not None and p.via_driver_domain


_HYPERVISOR = "(hypervisor)"


def _bytes(r: Results) -> dict[tuple[str, str], float]:
    """Bytes moved per (guest, device), from the requests table (empty when the run did
    not keep requests: the per-device throughput series come from the same table)."""
    req = r.requests
    if req is None or not len(req):
        return {}
    return {k: float(v) for k, v in req.groupby(["guest", "device"])["size"].sum().items()}


def _driver_domain(r: Results) -> str | None:
    g = r.guests
    if len(g) and g["driver_domain"].astype(bool).any():
        return str(g.loc[g["driver_domain"].astype(bool), "guest"].iloc[0])
    return r.summary.get("host", {}).get("driver_domain")


def _domain_rows(r: Results, max_guests: int) -> list[Row]:
    """The guest nodes: one per guest up to ``max_guests`` guests, else one per guest
    entry; past ``max_guests`` entries, the first ``max_guests - 1`` and one node for
    the rest."""
    rows = rows_for(r, guest_order(r), max_rows=max_guests)
    if len(rows) <= max_guests:
        return rows
    keep, rest = rows[:max_guests - 1], rows[max_guests - 1:]
    members = tuple(g for row in rest for g in row.members)
    return [*keep, Row(f"+{len(members)} more guests",
                       f"+{len(members)} more guests\n({len(rest)} entries)", members,
                       "#b0b0b0")]


def topology_graph(r: Results, max_guests: int = MAX_GUESTS) -> nx.DiGraph:
    """The host's topology with the run's traffic, as drawn by :func:`topology`.

    Parameters
    ----------
    r : Results
    max_guests : int, default :data:`MAX_GUESTS`
        Guests drawn one node each; past it, one node per guest entry (its replicas
        pooled: ``"web (64 guests)"``), and past that many entries the last ones pooled
        in one node (``"+N more guests"``).

    Returns
    -------
    networkx.DiGraph
        Nodes have ``layer`` (a key of :data:`LAYERS`), ``label``, ``pos`` and, for
        domains, ``members`` (the guests the node stands for); guest nodes are named as
        the guest (pooled: the entry), vCPUs ``"guest/vK"`` (a pooled node's vCPUs:
        one node ``"entry/vcpus"``), pCPUs ``"pCPU K"``, devices as the device,
        backends ``"<kind>\\n<device>"``. Edges have ``kind`` (``runs_on``: vCPU ->
        pCPU with ``seconds``; ``io``: with ``bytes``; ``owns``: guest -> vCPU or
        driver domain -> backend, no traffic); a pooled node's edges sum its members'.

    Examples
    --------
    >>> g = topology_graph(r)                                # doctest: +SKIP
    >>> g.nodes["web"]["label"], g.edges["web/vcpus", "pCPU 0"]["seconds"]  # doctest: +SKIP
    ('web (64 guests)\\npv', 0.0021)
    """
    g = nx.DiGraph()
    dd = _driver_domain(r)
    rows = _domain_rows(r, max_guests)
    node_of = row_of(rows)
    if dd:
        node_of[dd] = dd
        rows.append(Row(dd, dd, (dd,), DRIVER_DOMAIN_COLOR))
    vcpus = {}
    if len(r.guests):
        vcpus = {str(k): int(v) for k, v in r.guests.set_index("guest")["vcpus"].items()}
    cpu = r.cpu[r.cpu["guest"] != _HYPERVISOR] if len(r.cpu) else r.cpu
    if len(cpu):
        cpu = cpu[cpu["category"] != "idle"]
        used = cpu.groupby(["guest", "vcpu"])["vcpu"].first()
        for (dom, v) in used.index:  # a vCPU the guest table does not count
            vcpus[dom] = max(vcpus.get(dom, 0), int(v) + 1)
    pcpus = int(r.summary.get("host", {}).get("pcpus") or r.scenario.host.pcpus)
    all_cpu = r.cpu
    for p in range(pcpus):
        mine = all_cpu[all_cpu["pcpu"] == p] if len(all_cpu) else all_cpu
        total = float(mine["seconds"].sum()) if len(mine) else 0.0
        idle = float(mine.loc[mine["category"] == "idle", "seconds"].sum()) if len(mine) else 0
        busy = f"\n{1 - idle / total:.0%} busy" if total > 0 else ""
        g.add_node(f"pCPU {p}", layer="pcpu", label=f"pCPU {p}{busy}", color="#d9d9d9")
    info = r.summary["guests"]
    for row in rows:
        modes = list(dict.fromkeys(info.get(m, {}).get("mode", "driver domain")
                                   for m in row.members))
        g.add_node(row.key, layer="domain", label=f"{row.label}\n{', '.join(modes)}",
                   color=row.color, members=row.members)
        if row.members == (row.key,):
            for v in range(vcpus.get(row.key, 1)):
                node = f"{row.key}/v{v}"
                g.add_node(node, layer="vcpu", label=f"v{v}", color=row.color)
                g.add_edge(row.key, node, kind="owns")
        else:
            n = sum(vcpus.get(m, 1) for m in row.members)
            g.add_node(f"{row.key}/vcpus", layer="vcpu", label=f"{n}\nvCPUs", color=row.color)
            g.add_edge(row.key, f"{row.key}/vcpus", kind="owns")
    if len(cpu):
        sec = cpu.groupby(["guest", "vcpu", "pcpu"])["seconds"].sum()
        for (dom, v, p), s in sec.items():
            key = node_of.get(dom)
            node = f"{dom}/v{v}" if key == dom else f"{key}/vcpus"
            if s > 0 and node in g:
                if g.has_edge(node, f"pCPU {p}"):
                    g.edges[node, f"pCPU {p}"]["seconds"] += float(s)
                else:
                    g.add_edge(node, f"pCPU {p}", kind="runs_on", seconds=float(s))
    traffic = _bytes(r)
    for dev in device_names(r):
        dinfo = r.summary["devices"][dev]
        util = dinfo.get("utilization")
        g.add_node(dev, layer="device", color="#fdd49e",
                   label=f"{dev}\n{device_kind(r, dev)}"
                   + (f", {util:.1%} busy" if util is not None else ""))
    for guest in guest_order(r):
        src = node_of[guest]
        for dev, path in info[guest].get("devices", {}).items():
            b = traffic.get((guest, dev), 0.0)
            dst = dev
            if via_driver_domain(path) and dd:
                dst = f"{PATHS[path].backend_label or path}\n{dev}"
                if dst not in g:
                    g.add_node(dst, layer="backend", label=dst, color="#f0f0f0")
                    g.add_edge(dd, dst, kind="owns")
                    g.add_edge(dst, dev, kind="io", bytes=0.0)
                g.edges[dst, dev]["bytes"] += b
            if g.has_edge(src, dst):
                g.edges[src, dst]["bytes"] += b
            else:
                g.add_edge(src, dst, kind="io", bytes=b, path=path)
    _place(g, [row.key for row in rows])
    return g


def _place(g: nx.DiGraph, domains: list[str]) -> None:
    """Fixed positions: each layer a row, its nodes in a stable order, centred."""
    order = {n: i for i, n in enumerate(domains)}

    def key(n: str) -> tuple:
        layer = g.nodes[n]["layer"]
        if layer == "pcpu":
            return (int(n.split()[1]),)
        if layer == "vcpu":
            dom, v = n.rsplit("/v", 1)
            return (order.get(dom, len(order)), int(v) if v.isdigit() else 0)
        if layer == "domain":
            return (order.get(n, len(order)),)
        if layer == "backend":
            _, dev = n.split("\n")
            devs = [d for d in g if g.nodes[d]["layer"] == "device"]
            return (devs.index(dev) if dev in devs else 0, n)
        return (0,)

    rows: dict[str, list[str]] = {}
    for n, d in g.nodes(data=True):
        rows.setdefault(d["layer"], []).append(n)
    widest = max(len(v) for v in rows.values())
    for layer, nodes in rows.items():
        if layer != "device":
            nodes.sort(key=key)
        xs = np.linspace(-(len(nodes) - 1) / 2, (len(nodes) - 1) / 2, len(nodes))
        xs *= widest / max(len(nodes), 1) if len(nodes) > 1 else 1
        for n, x in zip(nodes, xs, strict=True):
            g.nodes[n]["pos"] = (float(x), float(LAYERS[layer]))


def _mb(b: float) -> str:
    return f"{fmt(b / 1e6)} MB" if b >= 1e5 else f"{fmt(b / 1e3)} kB"


_NODE_STYLE = {  # layer -> text box style
    "pcpu": "square,pad=0.6",
    "vcpu": "circle,pad=0.25",
    "domain": "round,pad=0.6",
    "backend": "round4,pad=0.45",
    "device": "square,pad=0.6",
}


def _label_positions(g: nx.DiGraph, labels: dict[tuple[str, str], str], xrange: float,
                     size_in: tuple[float, float]) -> dict[tuple[str, str], tuple[float, float]]:
    """Where to write each edge's label: on the edge, away from the middle where edges
    between two layers cross, at the first of a few heights where it keeps clear of
    the labels already placed."""
    char_w = 0.055 * xrange / size_in[0]  # 7 pt text: data units per character
    line_h = 0.15 * 5.2 / size_in[1]
    placed: dict[tuple[str, str], tuple[float, float]] = {}
    boxes: list[tuple[float, float, float]] = []  # x, y, half width
    order = sorted(labels, key=lambda e: (g.nodes[e[0]]["pos"][1],
                                          (g.nodes[e[0]]["pos"][0] + g.nodes[e[1]]["pos"][0])))
    for e in order:
        (x0, y0), (x1, y1) = g.nodes[e[0]]["pos"], g.nodes[e[1]]["pos"]
        if y0 < y1:
            (x0, y0), (x1, y1) = (x1, y1), (x0, y0)  # from the upper end
        half = len(labels[e]) * char_w / 2
        best = None
        for f in (0.72, 0.28, 0.6, 0.4, 0.8, 0.2, 0.5):
            x, y = x0 + f * (x1 - x0), y0 + f * (y1 - y0)
            if all(abs(x - bx) > half + bh + 3 * char_w or abs(y - by) > line_h
                   for bx, by, bh in boxes):
                best = (x, y)
                break
        placed[e] = best or (x0 + 0.5 * (x1 - x0), y0 + 0.5 * (y1 - y0))
        boxes.append((*placed[e], half))
    return placed


@plain_text
def topology(r: Results, max_guests: int = MAX_GUESTS) -> Figure:
    """Draw the host's topology with edge widths proportional to the run's traffic.

    vCPU -> pCPU edges are as wide as the CPU seconds the vCPU ran there, guest ->
    backend -> device edges as the bytes moved (scaled separately), each edge labelled
    with its amount; a guest's vCPUs hang from it by thin dotted lines, as do the driver
    domain's backends. Positions are fixed by layer (see :data:`LAYERS`), so the same
    host always looks the same.

    Past ``max_guests`` guests a node stands for a guest entry's replicas
    (:func:`topology_graph`), its edges their sums.

    Parameters
    ----------
    r : Results
    max_guests : int, default :data:`MAX_GUESTS`

    Returns
    -------
    matplotlib.figure.Figure
        One axes (no ticks) with a ``LineCollection`` per edge kind (``owns``,
        ``runs_on``, ``io``, in that order) and a text box per node of
        :func:`topology_graph` holding its label.
    """
    g = topology_graph(r, max_guests)
    pos = {n: d["pos"] for n, d in g.nodes(data=True)}
    xs = [p[0] for p in pos.values()]
    widest = max(sum(1 for _, d in g.nodes(data=True) if d["layer"] == lay) for lay in LAYERS)
    size = (min(18.0, max(9.0, 1.9 * widest + 2.0)), 7.5)  # past 18 in, nodes crowd
    fig, axes = new_figure(1, 1, width=size[0], row_height=size[1])
    ax = axes[0, 0]
    edges = {k: [(u, v) for u, v, d in g.edges(data=True) if d["kind"] == k]
             for k in ("owns", "runs_on", "io")}
    top_s = max([g.edges[e]["seconds"] for e in edges["runs_on"]] + [1e-12])
    top_b = max([g.edges[e]["bytes"] for e in edges["io"]] + [1e-12])
    nx.draw_networkx_edges(g, pos, ax=ax, edgelist=edges["owns"], style=":", width=1,
                           edge_color="0.55", arrows=False)
    nx.draw_networkx_edges(g, pos, ax=ax, edgelist=edges["runs_on"],
                           width=[0.8 + 9 * g.edges[e]["seconds"] / top_s
                                  for e in edges["runs_on"]],
                           edge_color=[g.nodes[u]["color"] for u, _ in edges["runs_on"]],
                           alpha=0.75, arrows=False)
    nx.draw_networkx_edges(g, pos, ax=ax, edgelist=edges["io"],
                           width=[0.8 + 9 * g.edges[e]["bytes"] / top_b for e in edges["io"]],
                           edge_color=[g.nodes[u]["color"] if g.nodes[u]["layer"] == "domain"
                                       else "0.45" for u, _ in edges["io"]],
                           alpha=0.75, arrows=False)
    for _, d in g.nodes(data=True):
        ax.text(*d["pos"], d["label"], ha="center", va="center", fontsize="small",
                color=ink(d["color"]), fontweight="bold", zorder=5,
                bbox={"boxstyle": _NODE_STYLE[d["layer"]], "fc": d["color"], "ec": "0.25",
                      "lw": 1})
    known = top_b > 1e-12  # with record.requests false no bytes are known
    labels = {e: f"{fmt(1e3 * g.edges[e]['seconds'])} ms" for e in edges["runs_on"]}
    if known:
        labels |= {e: _mb(g.edges[e]["bytes"]) for e in edges["io"]}
    if len(labels) > FEW_LABELS:  # many edges: the thin ones' labels would only crowd
        labels = {e: t for e, t in labels.items()
                  if g.edges[e].get("seconds", 0) >= SMALL_EDGE * top_s
                  or g.edges[e].get("bytes", 0) >= SMALL_EDGE * top_b}
    xlim = (min(xs) - 1.5, max(xs) + 0.8)
    if len(labels) <= 48:
        where = _label_positions(g, labels, xlim[1] - xlim[0], size)
        for e, text in labels.items():
            ax.text(*where[e], text, fontsize=7, ha="center", va="center", zorder=4,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                          "alpha": 0.85})
    for layer, y in LAYERS.items():
        if any(d["layer"] == layer for _, d in g.nodes(data=True)):
            ax.text(xlim[0], y, LAYER_TITLES[layer], ha="left", va="center",
                    fontsize="small", color="0.3", style="italic")
    ax.set_xlim(*xlim)
    ax.set_ylim(-0.5, 4.5)
    ax.set_axis_off()
    fig.legend(handles=[Line2D([], [], color="0.4", lw=5, alpha=0.75,
                               label="CPU time of a vCPU on a pCPU"),
                        Line2D([], [], color="0.45", lw=5 if known else 1, alpha=0.75,
                               label="bytes a guest moved to a device" if known else
                               "I/O path (bytes not recorded: record.requests false)"),
                        Line2D([], [], color="0.55", ls=":", label="owns (no traffic)")],
               loc="outside lower center", ncols=3, fontsize="small",
               title="line width proportional to", title_fontsize="small")
    fig.suptitle(title(r, "host topology and traffic"))
    return fig
