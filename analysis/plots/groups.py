"""Guests pooled by guest entry, for the graphs of runs with many guests.

A scenario's guest entry (``guests: [{name: web, count: 64, ...}]``) makes replicas
``web-0`` .. ``web-63``. A graph that draws one mark per guest (a line, a bar, a band)
stays readable up to :data:`POOL_PAST` guests; past that it draws one mark per guest
entry with its replicas pooled. :func:`rows_for` says which: a list of :class:`Row`,
each the guests one mark stands for, its label and its colour.

Examples
--------
>>> from types import SimpleNamespace
>>> import pandas as pd
>>> r = SimpleNamespace(guests=pd.DataFrame({
...     "guest": ["dom0", "db", *[f"web-{i}" for i in range(20)]],
...     "group": ["dom0", "db", *["web"] * 20],
...     "driver_domain": [True] + [False] * 21}),
...     summary={"guests": {"db": {}, **{f"web-{i}": {} for i in range(20)}}})
>>> [(row.key, row.label, len(row.members)) for row in rows_for(r)]
[('db', 'db', 1), ('web', 'web (20 guests)', 20)]
>>> [row.key for row in rows_for(r, ["db", "web-0", "web-1"])]  # few: one row per guest
['db', 'web-0', 'web-1']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .colors import GUEST_PALETTE, run_colors

if TYPE_CHECKING:
    from analysis.results import Results

__all__ = ["POOL_PAST", "Row", "entries", "entry_colors", "entry_of", "pooled", "row_of",
           "rows_for"]

#: Up to this many guests a graph draws one mark per guest; past it, one per guest entry.
POOL_PAST = 16


@dataclass(frozen=True)
class Row:
    """One mark of a graph: a guest, or a guest entry with its replicas pooled.

    Attributes
    ----------
    key : str
        The guest's name, or the guest entry's.
    label : str
        What the graph writes: the guest, or ``"web (64 guests)"``.
    members : tuple of str
        The guests it stands for, in scenario order.
    color : str
        The guest's colour, or the entry's (:func:`entry_colors`).
    """

    key: str
    label: str
    members: tuple[str, ...]
    color: str


def entry_of(r: Results) -> dict[str, str]:
    """Guest -> its guest entry (the driver domain left out; a guest the guest table does
    not know is its own entry).

    Examples
    --------
    >>> entry_of(r)["web-12"]   # doctest: +SKIP
    'web'
    """
    out = {g: g for g in r.summary["guests"]}
    t = r.guests
    if len(t) and "group" in t:
        dd = t["driver_domain"].astype(bool) if "driver_domain" in t else False
        for guest, group in zip(t.loc[~dd, "guest"], t.loc[~dd, "group"], strict=True):
            out[str(guest)] = str(group)
    return out


def entries(r: Results, guests: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Guest entry -> its replicas among ``guests`` (default: every guest), both in
    scenario order (guests the run does not name last, sorted).

    Examples
    --------
    >>> entries(r, ["web-1", "db", "web-0"])   # doctest: +SKIP
    {'web': ['web-0', 'web-1'], 'db': ['db']}
    """
    of = entry_of(r)
    order = list(r.summary["guests"])
    have = order if guests is None else list(dict.fromkeys(guests))
    rank = {g: i for i, g in enumerate(order)}
    out: dict[str, list[str]] = {}
    for g in sorted(have, key=lambda g: (rank.get(g, len(rank)), g)):
        out.setdefault(of.get(g, g), []).append(g)
    return out


def entry_colors(r: Results, keys: Iterable[str] | None = None) -> dict[str, str]:
    """A colour per guest entry, the same in every graph of a run: its first replica's
    colour (a single guest keeps its own), or, where an earlier entry (in scenario
    order) already has that colour (past eighteen guests the guest colours repeat), the
    first colour of :data:`GUEST_PALETTE` no earlier entry has.

    Parameters
    ----------
    r : Results
    keys : iterable of str, optional
        The entries wanted (default: all). A key that is no entry of the run (the driver
        domain, say) gets its guest colour, or grey.

    Returns
    -------
    dict of str to str
        Entry -> hex colour, for ``keys`` in their order.
    """
    colors, members = run_colors(r), entries(r)
    every: dict[str, str] = {}
    for k, m in members.items():  # all entries, in scenario order: stable whatever keys
        c = colors.get(m[0], "#7f7f7f")
        if c in every.values():
            c = next((p for p in GUEST_PALETTE if p not in every.values()), c)
        every[k] = c
    return {k: every.get(k) or colors.get(k, "#7f7f7f")
            for k in (every if keys is None else keys)}


def pooled(guests: Iterable[str], max_rows: int = POOL_PAST) -> bool:
    """Whether a graph of ``guests`` pools them by entry (more than ``max_rows``).

    Examples
    --------
    >>> pooled([f"web-{i}" for i in range(16)]), pooled([f"web-{i}" for i in range(17)])
    (False, True)
    """
    return len(set(guests)) > max_rows


def rows_for(r: Results, guests: Iterable[str] | None = None,
             max_rows: int = POOL_PAST) -> list[Row]:
    """The marks a graph of ``guests`` (default: every guest of run ``r``) draws: one per
    guest up to ``max_rows`` guests, else one per guest entry (its replicas among
    ``guests`` pooled), in scenario order.

    Parameters
    ----------
    r : Results
    guests : iterable of str, optional
        The guests the graph has data for (the ones that used a device, say).
    max_rows : int, default :data:`POOL_PAST`

    Returns
    -------
    list of Row
        Pooled, a row's key is its entry's name (a guest entry of which ``guests`` hold
        one replica is that guest, by its own name), its colour the entry's.
    """
    groups = entries(r, guests)
    flat = [g for m in groups.values() for g in m]
    if not pooled(flat, max_rows):
        colors = run_colors(r)
        return [Row(g, g, (g,), colors.get(g, "#7f7f7f")) for g in flat]
    colors = entry_colors(r, groups)
    return [Row(m[0], m[0], (m[0],), colors[k]) if len(m) == 1  # a lone replica: by name
            else Row(k, f"{k} ({len(m)} guests)", tuple(m), colors[k])
            for k, m in groups.items()]


def row_of(rows: Iterable[Row]) -> dict[str, str]:
    """Guest -> the key of the row that stands for it.

    Examples
    --------
    >>> row_of([Row("web", "web (2 guests)", ("web-0", "web-1"), "#1f77b4")])
    {'web-0': 'web', 'web-1': 'web'}
    """
    return {g: row.key for row in rows for g in row.members}
