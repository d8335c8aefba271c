"""Application response-time graphs: the distribution per guest entry, and where it goes.

Both read ``r.app_requests`` (one row per finished application request) and leave out
the requests that arrived in the warm-up (``record.warmup``), as the summary's
statistics do. A response time runs from the arrival of the request's packet at the
NIC to the end of the response; its parts (:data:`model.app.requests.PARTS`) add up
to it exactly.

Examples
--------
>>> from analysis.plots import response_cdf, response_decomposition   # doctest: +SKIP
>>> response_cdf(r).savefig("response_cdf.png")                     # doctest: +SKIP
>>> response_decomposition(r).savefig("response_parts.png")         # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analysis.tables import PART_COLUMNS

from ..stats import TAIL_SAMPLES, thin_tail
from ._common import fmt, guest_order, log_scale, message_figure, new_figure, plain_text, title
from .colors import PART_COLORS, run_colors
from .groups import entry_colors
from .latency import PERCENTILE_MARKERS, use_log_scale

if TYPE_CHECKING:
    from analysis.results import Results

__all__ = ["PART_WORDS", "response_cdf", "response_decomposition"]

#: What each part of a response time is, in a few words (model/app/requests.py).
PART_WORDS = {
    "receive": "from the NIC until the path brought the request's packet to the guest",
    "worker_wait": "in the accept queue, until a worker took it",
    "user": "its worker ran: guest user mode",
    "kernel": "its worker ran: guest kernel",
    "page_walk": "its worker ran: page walks",
    "virt": "its worker ran: hypervisor, transitions, emulation",
    "pcpu_wait": "its vCPU was runnable, waiting for a pCPU (steal)",
    "vcpu_blocked": "its vCPU was halted (device model, full ring)",
    "run_queue": "after its packet or I/O arrived, its vCPU ran other work first",
    "disk": "its worker waited for its disk I/O",
    "send": "its worker waited for the response's packets to be sent",
}

#: Guest entries drawn one line each in the CDF (past it, the ones with the highest p99;
#: the others are thin grey lines).
MAX_CDF_GROUPS = 12
#: Serving guests drawn one bar each in the decomposition; past it, one bar per guest
#: entry (its replicas pooled).
MAX_GUEST_BARS = 16
#: Bars at most in the decomposition (past it, the slowest).
MAX_BARS = 40


def _no_app(r: Results, what: str) -> Figure:
    return message_figure(title(r, what), "No application requests: no guest's workload "
                          "serves requests (web_server, kv_store, oltp_db, file_server), "
                          "or none finished.")


def _warmup_s(r: Results) -> float:
    return float((r.summary.get("app") or {}).get("warmup_s") or 0.0)


def _after_warmup(r: Results, what: str) -> str:
    w = _warmup_s(r)
    return f"{what} (after a {fmt(w * 1e3)} ms warm-up)" if w else what


def _measured(app: pd.DataFrame) -> pd.DataFrame:
    """The requests that count: those that did not arrive in the warm-up."""
    return app[~app["warmup"].astype(bool)]


def _groups(r: Results, app: pd.DataFrame) -> list[str]:
    """The guest entries that served requests, in scenario order."""
    order = [g.name for g in r.scenario.guests]
    have = set(app["group"].unique())
    return [g for g in order if g in have] + sorted(have - set(order))


def _group_label(r: Results, group: str, app: pd.DataFrame) -> str:
    mine = app[app["group"] == group]
    mode = mine["mode"].iloc[0] if len(mine) else ""
    k = mine["guest"].nunique()
    return f"{group} [{mode}" + (f", {k} guests]" if k > 1 else "]")


@plain_text
def response_cdf(r: Results) -> Figure:
    """Empirical CDF of application response times, one line per guest entry.

    The requests of a guest entry's replicas are pooled (one line for ``web``, not one
    per ``web-0`` .. ``web-7``); the requests that arrived in the warm-up are left out.
    Each line is in the entry's colour (:func:`analysis.plots.groups.entry_colors`: its
    first guest's, as in every graph of the run); its 50th, 95th and 99th
    percentiles are marked on it (o, square, triangle) and quoted in the legend with
    the number of requests behind them and the requests dropped (which a CDF of
    response times cannot show). An entry whose p99 rests on fewer than
    :data:`analysis.stats.TAIL_SAMPLES` requests above it (:func:`analysis.stats.thin_tail`:
    under 1,000 requests) says so, and its p99 marker is hollow. The
    time axis is logarithmic when the response times spread over more than 1.5
    decades. Past :data:`MAX_CDF_GROUPS` entries, the ones with the highest p99 are
    drawn and named, the others are thin grey lines.

    Parameters
    ----------
    r : Results
        A run whose guests serve requests (``r.app_requests`` has rows).

    Returns
    -------
    matplotlib.figure.Figure
        One axes with one ``Line2D`` per guest entry drawn, labelled with the entry's
        name first; a figure saying so when there are no requests to draw.

    Examples
    --------
    >>> from model.scenario import parse_scenario
    >>> from analysis.run import simulate
    >>> r = simulate(parse_scenario('''
    ... name: demo
    ... duration: 30ms
    ... host: {devices: {nic0: {kind: nic}}}
    ... guests:
    ...   - {name: kv, workload: {profile: kv_store}, devices: [{device: nic0}]}
    ... '''))
    >>> fig = response_cdf(r)
    >>> fig.axes[0].get_lines()[0].get_label().split("  ")[:2]
    ['kv [pv]', '135 requests']
    """
    what = _after_warmup(r, "response time distribution per guest entry")
    app = r.app_requests
    if app is None or not len(app):
        return _no_app(r, what)
    measured = _measured(app)
    if not len(measured):
        return message_figure(title(r, what), "Every finished request arrived in the "
                              f"warm-up ({fmt(_warmup_s(r) * 1e3)} ms): there is no "
                              "response time to show. Shorten record.warmup or run longer.")
    groups = _groups(r, app)
    lat = {g: np.sort(measured.loc[measured["group"] == g, "latency_ms"].to_numpy(float))
           for g in groups}
    empty = [g for g in groups if not len(lat[g])]
    drawn = [g for g in groups if len(lat[g])]
    p99 = {g: float(np.percentile(lat[g], 99)) for g in drawn}
    named = drawn
    if len(drawn) > MAX_CDF_GROUPS:
        top = set(sorted(drawn, key=lambda g: -p99[g])[:MAX_CDF_GROUPS])
        named = [g for g in drawn if g in top]
    others = [g for g in drawn if g not in named]
    colors = entry_colors(r, drawn)
    stats = (r.summary.get("app") or {}).get("groups", {})
    entries = len(named) + bool(others) + bool(empty)
    fig, axes = new_figure(1, 1, width=9.5, row_height=4.6 + 0.21 * entries)
    ax = axes[0, 0]
    for g in others:  # under the named ones
        ax.step(np.concatenate(([lat[g][0]], lat[g])),
                np.concatenate(([0.0], np.arange(1, len(lat[g]) + 1) / len(lat[g]))),
                where="post", color="0.75", lw=0.8, zorder=1,
                label=f"{len(others)} other guest entr{'y' if len(others) == 1 else 'ies'} "
                      "(p99 at most "
                      f"{fmt(max(p99[o] for o in others))} ms)" if g == others[0] else "_")
    for g in named:
        x = lat[g]
        n = len(x)
        p = np.percentile(x, list(PERCENTILE_MARKERS))
        dropped = int(stats.get(g, {}).get("dropped") or 0)
        label = f"{_group_label(r, g, app)}  {n:,} requests  " + "  ".join(
            f"p{q} {fmt(v)}" for q, v in zip(PERCENTILE_MARKERS, p, strict=True)) + " ms"
        if dropped:
            label += f"  ({dropped:,} dropped)"
        waiting = int(stats.get(g, {}).get("in_flight") or 0)
        if waiting:  # the summary's percentiles count them at their age; not drawn here
            label += f"  ({waiting:,} unanswered at the end, not drawn)"
        if thin_tail(n, 0.99):
            label += f"  (p99 of {n} requests: under {TAIL_SAMPLES} above it)"
        ax.step(np.concatenate(([x[0]], x)), np.concatenate(([0.0], np.arange(1, n + 1) / n)),
                where="post", color=colors[g], lw=1.8, label=label, zorder=2)
        for (q, marker), v in zip(PERCENTILE_MARKERS.items(), p, strict=True):
            hollow = q == 99 and thin_tail(n, 0.99)
            ax.scatter([v], [q / 100], marker=marker, s=42, zorder=3, linewidths=0.8,
                       color="none" if hollow else colors[g],
                       edgecolors=colors[g] if hollow else "black")
    if empty:
        names = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        ax.plot([], [], ls="", label=f"no request finished after the warm-up: {names}")
    log = use_log_scale(np.concatenate([lat[g] for g in drawn]))
    if log:
        log_scale(ax)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"response time (ms{', log scale' if log else ''}): arrival at the NIC "
                  "to the end of the response")
    ax.set_ylabel("fraction of requests ≤ response time")
    ax.set_title(f"{len(measured):,} requests of {len(groups)} guest "
                 f"entr{'ies' if len(groups) > 1 else 'y'}, replicas pooled",
                 fontsize="medium")
    ax.grid(True, which="major", alpha=0.3)
    proxies = [Line2D([], [], ls="", marker=m, color="0.6", markeredgecolor="black",
                      label=f"p{q}") for q, m in PERCENTILE_MARKERS.items()]
    key = ax.legend(handles=proxies, loc="lower right", fontsize="small",
                    title="percentile", title_fontsize="small")
    ax.add_artist(key)
    handles, labels = ax.get_legend_handles_labels()
    if others:  # drawn first (underneath), listed after the named ones
        handles, labels = handles[1:] + handles[:1], labels[1:] + labels[:1]
    fig.legend(handles, labels, loc="outside lower center", fontsize="small", frameon=False,
               title="guest entry [mode]  requests  response-time percentiles",
               title_fontsize="small")
    fig.suptitle(title(r, what))
    return fig


def _part_label(col: str) -> str:
    return col.removesuffix("_ms").replace("_", " ")


@plain_text
def response_decomposition(r: Results) -> Figure:
    """Mean response time per guest, as stacked horizontal bars of its parts.

    One bar per guest that serves requests (scenario order, its name in its colour),
    or, past :data:`MAX_GUEST_BARS` such guests, one per guest entry with its replicas
    pooled (at most :data:`MAX_BARS` bars: past that, the slowest). The segments,
    left to right in the order of :data:`model.app.requests.PARTS`, are the mean
    milliseconds of each part over the requests that arrived after the warm-up, so a
    bar's length is the mean response time (written at its end with the number of
    requests). Parts no request spent time in are left out; the legend says what each
    part is.

    Parameters
    ----------
    r : Results
        A run whose guests serve requests (``r.app_requests`` has rows).

    Returns
    -------
    matplotlib.figure.Figure
        One axes with one ``BarContainer`` per part drawn, labelled with the part's
        name (underscores as spaces); a figure saying so when there are no requests.

    Examples
    --------
    >>> from model.scenario import parse_scenario
    >>> from analysis.run import simulate
    >>> r = simulate(parse_scenario('''
    ... name: demo
    ... duration: 30ms
    ... host: {devices: {nic0: {kind: nic}}}
    ... guests:
    ...   - {name: kv, workload: {profile: kv_store}, devices: [{device: nic0}]}
    ... '''))
    >>> ax = response_decomposition(r).axes[0]
    >>> [c.get_label() for c in ax.containers][:3]
    ['receive', 'worker wait', 'user']
    """
    what = _after_warmup(r, "where the response time goes, mean per request")
    app = r.app_requests
    if app is None or not len(app):
        return _no_app(r, what)
    measured = _measured(app)
    serving = [g for g in guest_order(r) if (r.summary["guests"][g].get("app") or {})]
    serving += sorted(set(app["guest"]) - set(serving))
    by_group = len(serving) > MAX_GUEST_BARS
    if by_group:
        keys = _groups(r, app)
        colors = entry_colors(r, keys)
        members = measured.groupby("group")["guest"].nunique()
        names = {g: f"{g} ({int(members[g])} guests)" if members.get(g, 0) > 1 else g
                 for g in keys}
    else:
        keys, colors, names = serving, run_colors(r), {g: g for g in serving}
    col = "group" if by_group else "guest"
    means = measured.groupby(col)[list(PART_COLUMNS)].mean().reindex(keys)
    counts = measured.groupby(col).size().reindex(keys).fillna(0).astype(int)
    shown = f"{len(keys)} guest entries" if by_group else ""
    if len(keys) > MAX_BARS:
        slowest = set(means.sum(axis=1, min_count=1).sort_values(ascending=False)
                      .index[:MAX_BARS])
        shown = f"the {MAX_BARS} slowest of {len(keys)} guest entries"
        keys = [k for k in keys if k in slowest]
        means, counts = means.reindex(keys), counts.reindex(keys)
    parts = [c for c in PART_COLUMNS if (means[c].fillna(0) > 0).any()]
    rows = (len(parts) + 1) // 2
    fig, axes = new_figure(1, 1, width=10.5,
                           row_height=1.9 + (0.36 if len(keys) <= MAX_GUEST_BARS else 0.26)
                           * max(len(keys), 2) + 0.24 * rows)
    ax = axes[0, 0]
    y = np.arange(len(keys))
    left = np.zeros(len(keys))
    for c in parts:
        w = means[c].fillna(0).to_numpy(float)
        ax.barh(y, w, left=left, height=0.6, label=_part_label(c), edgecolor="white",
                linewidth=0.5, color=PART_COLORS[c.removesuffix("_ms")])
        left += w
    for i, k in enumerate(keys):
        n = int(counts.loc[k])
        ax.text(left[i], i, f"  {fmt(left[i])} ms, {n:,} request{'s' * (n != 1)}" if n
                else "  no request finished after the warm-up", va="center", fontsize="small")
    ax.set_yticks(y, [names[k] for k in keys])
    for lab, k in zip(ax.get_yticklabels(), keys, strict=True):
        lab.set_color(colors.get(k, "black"))
        lab.set_fontweight("bold")
    ax.invert_yaxis()
    ax.set_xlim(0, (left.max() * 1.3) or 1)
    ax.set_xlabel("mean response time per request (ms), by part")
    ax.set_ylabel("guest entry, replicas pooled" if by_group else "guest")
    if shown:
        ax.set_title(shown, fontsize="medium")
    ax.grid(True, axis="x", alpha=0.3)
    fig.legend(handles=[Patch(color=PART_COLORS[c.removesuffix("_ms")],
                              label=f"{_part_label(c)}: {PART_WORDS[c.removesuffix('_ms')]}")
                        for c in parts],
               loc="outside lower center", ncols=2 if len(parts) > 1 else 1, fontsize="small",
               title="part of the response time, stacked left to right in the order listed "
                     "(down each column)",
               title_fontsize="small", frameon=False)
    fig.suptitle(title(r, what))
    return fig
