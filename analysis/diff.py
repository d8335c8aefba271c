"""``pvsim diff A B``: two results directories side by side, metric by metric.

Two directories of one kind are compared:

- **runs** (``pvsim run``): every figure of ``summary.json`` (:func:`run_metrics`: per
  guest CPU by category, transitions, I/O and request throughput, latencies and their
  parts; per device utilization, queue and waits; host, hypervisor and I/O totals; the
  guest entries' pooled requests under ``app.groups``) by its dotted path
  (``guests.web-pv.cpu_s.user``). The engine block (wall time, events) and what is not
  a figure are left out; the fields of ``scenario.resolved.yaml`` that differ are
  listed apart, as the inputs;
- **compares** (``pvsim compare``): the runs of the modes both have, mode by mode;
- **sweeps** or plans: point by point, matched by the values of their varied
  parameters, each headline metric (:mod:`analysis.metrics`) as the mean of the
  point's replications.

Each metric gets A's value, B's, ``B - A`` and ``(B - A) / |A|`` (infinite from zero).
Identical ones are marked (the CLI hides them unless ``--all``); the others come
largest relative change first (significant ones first in a sweep).

Significance, where both sides have two replications or more, is Welch's two-sided
t-test (:func:`analysis.stats.welch`): it tests the difference of the means itself and does not
assume both configurations have the same spread (a change of configuration often
changes the variance too). Non-overlapping confidence intervals would be a cruder
test: two 95% intervals can overlap while the difference is significant at 5%. Two
sweeps of one scenario seed share their replications' seeds (common random numbers),
which correlates the pairs positively; Welch's test ignores that and is then
conservative. Each metric is tested on its own: among many unchanged metrics, about
one in ``1 / (1 - confidence)`` passes by chance.

A directory's *shape* is its guest entries and devices: other shapes are refused
(:class:`ShapeMismatchError`, naming what differs), as are other kinds
(:class:`KindMismatchError`). Another ``count`` of a guest entry is the same shape:
the replicas only one side has show as such.

Examples
--------
>>> import tempfile
>>> from model.scenario import parse_scenario
>>> from analysis.run import simulate
>>> text = "name: d\\nduration: 5ms\\nguests: [{name: a, mode: MODE, workload: {profile: spin}}]"
>>> with tempfile.TemporaryDirectory() as tmp:
...     pv = simulate(parse_scenario(text.replace("MODE", "pv"))).save(f"{tmp}/pv")
...     hvm = simulate(parse_scenario(text.replace("MODE", "hvm"))).save(f"{tmp}/hvm")
...     d = diff(pv, hvm)
...     same = diff(pv, pv)
>>> d.kind, d.points[0].inputs
('run', [('guests.a.mode', 'pv', 'hvm')])
>>> len(same.points[0].changed)
0
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from model.errors import PvsimError

from .resultsdir import NotAResultsDirectory, results_kind
from .stats import mean_ci, welch

__all__ = ["Change", "Diff", "DiffError", "KindMismatchError", "NotResultsError",
           "PointDiff", "ShapeMismatchError", "diff", "kind_of", "run_metrics", "to_json"]

#: The sections of ``summary.json`` whose figures a run's diff compares.
SECTIONS = ("host", "guests", "devices", "hypervisor", "io", "app")


class DiffError(PvsimError):
    """Two results directories that cannot be compared."""


class NotResultsError(DiffError):
    """A path that is not a results directory of pvsim's (missing, a file, damaged)."""


class KindMismatchError(DiffError):
    """Directories of different kinds, such as a run and a sweep."""


class ShapeMismatchError(DiffError):
    """Different guest entries or devices, varied parameters, or no point in common."""


# --- the figures -----------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """One metric of one point in A and in B.

    Attributes
    ----------
    name : str
        The metric: a dotted path in ``summary.json`` (runs) or a headline metric
        (sweeps).
    a, b : float or None
        The value (a sweep's: the mean of the replications); None where that side has
        none.
    n_a, n_b : int
        Replications behind each value (1 for a run).
    ci_a, ci_b : float or None
        Half-widths of the means' confidence intervals (from two replications).
    p_value, significant : float or None, bool or None
        Welch's two-sided p-value and whether it is below ``1 - confidence`` (None
        without two replications on both sides).
    identical : bool
        The same values on both sides (every replication).
    """

    name: str
    a: float | None
    b: float | None
    n_a: int = 1
    n_b: int = 1
    ci_a: float | None = None
    ci_b: float | None = None
    p_value: float | None = None
    significant: bool | None = None
    identical: bool = False

    @property
    def change(self) -> float | None:
        """``b - a`` (None if a side has no value)."""
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def relative(self) -> float | None:
        """``(b - a) / |a|``: infinite from zero, 0 from zero to zero, None if a side
        has no value."""
        d = self.change
        if d is None:
            return None
        if self.a == 0:
            return 0.0 if d == 0 else math.copysign(math.inf, d)
        return d / abs(self.a)

    @property
    def subject(self) -> str:
        """What the metric is of: ``guest NAME``, ``entry NAME`` (a guest entry),
        ``device NAME``, or a section: ``host``, ``hypervisor``, ``io``..."""
        return _split(self.name)[0]

    @property
    def metric(self) -> str:
        """The name without its subject (``cpu_s.user``)."""
        return _split(self.name)[1]

    def as_dict(self) -> dict[str, Any]:
        """The change as JSON-ready values (an infinite relative change as None)."""
        rel = self.relative
        return {**asdict(self), "subject": self.subject, "metric": self.metric,
                "change": self.change,
                "relative": None if rel is None or math.isinf(rel) else rel}


_OWNERS = {"guests": "guest", "guest": "guest", "devices": "device", "device": "device",
           "group": "entry", "app.groups": "entry"}


def _split(name: str) -> tuple[str, str]:
    parts = name.split(".")
    if parts[:2] == ["app", "groups"]:
        parts = ["app.groups", *parts[2:]]
    if parts[0] in _OWNERS and len(parts) > 2:
        return f"{_OWNERS[parts[0]]} {parts[1]}", ".".join(parts[2:])
    return parts[0], ".".join(parts[1:]) or name


def _order(c: Change) -> tuple:
    """Changed before identical, significant before untested before not significant,
    then the largest relative change (from zero: infinite), then what one side only has
    (a guest replica of another count, a latency where no request completed)."""
    rel = c.relative
    rank = {True: 0, None: 1, False: 2}[c.significant]
    return (c.identical, rank, rel is None, -abs(rel or 0.0), c.name)


@dataclass
class PointDiff:
    """The metrics of one point (a run's only point, a compare's mode, a sweep's point).

    Attributes
    ----------
    point : dict
        ``{}`` for runs, ``{"mode": M}`` for compares, the varied values for sweeps.
    changes : list of Change
        Every metric either side has, changed first, the largest change first.
    inputs : list of (str, object, object)
        The fields of the resolved scenarios that differ: (path, A's value, B's);
        empty for sweeps (their points say what differs).
    """

    point: dict[str, Any]
    changes: list[Change]
    inputs: list[tuple[str, Any, Any]] = field(default_factory=list)

    @property
    def changed(self) -> list[Change]:
        """The metrics that are not identical."""
        return [c for c in self.changes if not c.identical]

    @property
    def label(self) -> str:
        """The point as ``path=value, ...`` (empty for a run)."""
        return ", ".join(f"{k}={v}" for k, v in self.point.items())


@dataclass
class Diff:
    """Two results directories side by side.

    Attributes
    ----------
    kind : str
        ``run``, ``compare`` or ``sweep``.
    a, b : Path
        The directories.
    points : list of PointDiff
        The points both have (a run has one), in A's order.
    only_a, only_b : list of dict
        The points only A or only B has.
    confidence : float
        The significance threshold is ``p < 1 - confidence``.
    """

    kind: str
    a: Path
    b: Path
    points: list[PointDiff]
    only_a: list[dict[str, Any]] = field(default_factory=list)
    only_b: list[dict[str, Any]] = field(default_factory=list)
    confidence: float = 0.95

    @property
    def identical(self) -> bool:
        """No metric of any common point differs and both have the same points."""
        return not (self.only_a or self.only_b or any(p.changed for p in self.points))

    def as_dict(self) -> dict[str, Any]:
        """The diff as JSON-ready data (every metric, identical ones included)."""
        return {"pvsim": "diff", "kind": self.kind, "a": str(self.a), "b": str(self.b),
                "confidence": self.confidence,
                "test": "Welch's two-sided t-test on the replications, significant when "
                        f"p < {1 - self.confidence:.3g}",
                "points": [{"point": p.point,
                            "inputs": [{"path": k, "a": x, "b": y} for k, x, y in p.inputs],
                            "changes": [c.as_dict() for c in p.changes]}
                           for p in self.points],
                "only_in_a": self.only_a, "only_in_b": self.only_b}


# --- statistics --------------------------------------------------------------------------
def _change(name: str, x: Sequence[float], y: Sequence[float], confidence: float) -> Change:
    """The change of one metric given its values (replications) in A and B."""
    nx, ny = len(x), len(y)
    mx, hx = mean_ci(x, confidence) if nx else (None, None)
    my, hy = mean_ci(y, confidence) if ny else (None, None)
    p = sig = None
    if nx >= 2 and ny >= 2:
        p = welch(x, y)[2]
        sig = p < 1.0 - confidence
    return Change(name, mx, my, nx, ny, None if nx < 2 else hx, None if ny < 2 else hy, p,
                  sig, identical=sorted(x) == sorted(y))


def _compare(a: Mapping[str, Sequence[float]], b: Mapping[str, Sequence[float]],
             confidence: float) -> list[Change]:
    names = list(dict.fromkeys([*a, *b]))
    return sorted((_change(n, a.get(n, ()), b.get(n, ()), confidence) for n in names),
                  key=_order)


# --- reading directories -----------------------------------------------------------------
def kind_of(path: str | Path) -> str:
    """The kind of results directory ``path`` is: ``run``, ``compare`` or ``sweep`` (a
    plan's directory is a sweep's).

    Raises
    ------
    NotResultsError
        ``path`` is missing, not a directory, or not a pvsim results directory.
    """
    try:
        kind = results_kind(path)
    except NotAResultsDirectory as e:
        raise NotResultsError(str(e)) from None
    return "sweep" if kind == "plan" else kind


def _leaves(prefix: str, obj: Any, out: dict[str, float]) -> None:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            _leaves(f"{prefix}.{k}", v, out)
    elif isinstance(obj, int | float) and not isinstance(obj, bool) and obj == obj:
        out[prefix] = float(obj)  # (not NaN: a figure a run did not have)


def run_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """The figures of one run's ``summary.json`` that a diff compares, by dotted path.

    Every number under :data:`SECTIONS`, but a device's contention matrix, which is
    summed per waiting guest (``devices.D.contention_s.G``: G's wait at D behind any
    guest); and ``invariants.stalled``, the number of stalled vCPUs.

    Examples
    --------
    >>> s = {"host": {"busy_fraction": 0.5, "driver_domain": "dom0"},
    ...      "devices": {"d": {"utilization": 0.1,
    ...                        "contention_s": {"x": {"x": 0.25, "y": 0.5}}}},
    ...      "invariants": {"stalled": []}, "engine": {"wall_s": 3.0}}
    >>> run_metrics(s)  # doctest: +NORMALIZE_WHITESPACE
    {'host.busy_fraction': 0.5, 'devices.d.utilization': 0.1,
     'devices.d.contention_s.x': 0.75, 'invariants.stalled': 0.0}
    """
    out: dict[str, float] = {}
    for section in SECTIONS:
        if section != "devices":
            _leaves(section, summary.get(section, {}), out)
            continue
        for name, d in summary.get("devices", {}).items():
            for k, v in d.items():
                if k == "contention_s" and isinstance(v, Mapping):
                    for g, behind in v.items():
                        out[f"devices.{name}.contention_s.{g}"] = math.fsum(
                            x for x in behind.values() if isinstance(x, int | float))
                else:
                    _leaves(f"devices.{name}.{k}", v, out)
    out["invariants.stalled"] = float(len(summary.get("invariants", {}).get("stalled", [])))
    return out


def _flat_inputs(prefix: str, obj: Any, out: dict[str, Any]) -> None:
    """A resolved scenario as dotted paths; a list of named entries by name."""
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            _flat_inputs(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(obj, list) and obj and all(isinstance(v, Mapping) for v in obj):
        named = all("name" in v for v in obj)
        for i, v in enumerate(obj):
            _flat_inputs(f"{prefix}.{v['name'] if named else i}", v, out)
    else:
        out[prefix] = obj


def _inputs(a: Path, b: Path) -> list[tuple[str, Any, Any]]:
    """The fields of the two resolved scenarios that differ (none if either is
    unreadable)."""
    import yaml

    flat = []
    for p in (a, b):
        try:
            doc = yaml.safe_load((p / "scenario.resolved.yaml").read_text())
        except (OSError, ValueError, yaml.YAMLError):
            return []
        out: dict[str, Any] = {}
        _flat_inputs("", doc, out)
        flat.append(out)
    fa, fb = flat
    return [(k, fa.get(k), fb.get(k)) for k in dict.fromkeys([*fa, *fb])
            if fa.get(k) != fb.get(k)]


def _read_run(p: Path) -> dict:
    from .results import _read_summary  # checks the file as Results.load does

    return _read_summary(p / "summary.json")


def _shape_error(a: Path, b: Path, what: Iterable[tuple[str, set, set]]) -> None:
    parts = []
    for label, x, y in what:
        if x != y:
            bits = [f"only in A: {', '.join(sorted(x - y))}" if x - y else "",
                    f"only in B: {', '.join(sorted(y - x))}" if y - x else ""]
            parts.append(f"{label} differ ({'; '.join(b for b in bits if b)})")
    if parts:
        raise ShapeMismatchError(f"{a} and {b} are results of scenarios of different shapes: "
                                 + "; ".join(parts))


def _counter(name: str, guests: set[str]) -> bool:
    """Whether ``name`` is a count or wait of a dict that lists only what happened (the
    hypervisor's transitions; those of a guest in ``guests``, or its waits at a
    device): 0 if absent."""
    parts = name.split(".")
    if parts[0] == "hypervisor":
        return True
    if parts[0] == "guests":
        return parts[2:3] == ["transitions"] and parts[1] in guests
    return parts[0] == "devices" and parts[2:3] == ["contention_s"] and parts[3] in guests


def _run_point(a: Path, b: Path, confidence: float,
               point: dict[str, Any] | None = None) -> PointDiff:
    sa, sb = _read_run(a), _read_run(b)
    _shape_error(a, b, [
        ("guest entries", {g.get("spec", n) for n, g in sa["guests"].items()},
         {g.get("spec", n) for n, g in sb["guests"].items()}),
        ("devices", set(sa["devices"]), set(sb["devices"]))])
    ma, mb = run_metrics(sa), run_metrics(sb)
    both = set(sa["guests"]) & set(sb["guests"])
    for name in [*ma, *mb]:  # a count one side does not list is 0 there
        if _counter(name, both):
            ma.setdefault(name, 0.0)
            mb.setdefault(name, 0.0)
    ma, mb = {k: [v] for k, v in ma.items()}, {k: [v] for k, v in mb.items()}
    return PointDiff(point or {}, _compare(ma, mb, confidence), _inputs(a, b))


#: The columns of a sweep's table that are neither varied values nor metrics.
_RUN_COLUMNS = ("point", "replication", "seed")


def _read_sweep(p: Path) -> tuple[list[str], Any]:
    """A sweep's varied parameters and its table (:meth:`Sweep.load
    <analysis.sweep.Sweep.load>`)."""
    from .sweep import Sweep

    try:
        sw = Sweep.load(p)
    except PvsimError as e:
        raise NotResultsError(str(e)) from None
    return sw.axes, sw.table


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _points(table: Any, axes: list[str]) -> dict[tuple, dict[str, list[float]]]:
    """Per point (its varied values): each metric's replications, NaN left out."""
    metrics = [m for m in table.columns if m not in (*axes, *_RUN_COLUMNS)]
    out = {}
    for _, g in table.groupby("point", sort=True):
        values = {m: [float(v) for v in g[m].dropna()] for m in metrics}
        out[tuple(_py(g[x].iloc[0]) for x in axes)] = {m: v for m, v in values.items() if v}
    return out


def _sweep_diff(a: Path, b: Path, confidence: float) -> Diff:
    (axa, ta), (axb, tb) = _read_sweep(a), _read_sweep(b)
    if set(axa) != set(axb):
        raise ShapeMismatchError(
            f"{a} and {b} are sweeps of different parameters: A varies "
            f"{', '.join(axa) or 'nothing'}; B varies {', '.join(axb) or 'nothing'}")

    def owners(t: Any, kind: str) -> set[str]:
        return {m.split(".")[1] for m in t.columns if m.startswith(f"{kind}.")}
    _shape_error(a, b, [("guest entries", owners(ta, "group"), owners(tb, "group")),
                        ("devices", owners(ta, "device"), owners(tb, "device"))])
    pa_, pb = _points(ta, axa), _points(tb, axa)
    common = [k for k in pa_ if k in pb]
    if not common:
        few = [", ".join(f"{x}={v}" for x, v in zip(axa, next(iter(p)), strict=True))
               for p in (pa_, pb)]
        raise ShapeMismatchError(f"{a} and {b} have no point in common (A has {len(pa_)}, "
                                 f"such as {few[0]}; B has {len(pb)}, such as {few[1]})")

    def point(k: tuple) -> dict[str, Any]:
        return dict(zip(axa, k, strict=True))
    return Diff("sweep", a, b,
                [PointDiff(point(k), _compare(pa_[k], pb[k], confidence)) for k in common],
                [point(k) for k in pa_ if k not in pb], [point(k) for k in pb if k not in pa_],
                confidence)


def diff(a: str | Path, b: str | Path, confidence: float = 0.95) -> Diff:
    """Compare results directory ``a`` with ``b`` metric by metric.

    Parameters
    ----------
    a, b : str or Path
        Two results directories of one kind: runs, compares, or sweeps (or plans).
    confidence : float, default 0.95
        A change is significant when Welch's p-value is below ``1 - confidence``
        (sweeps with two or more replications on both sides).

    Returns
    -------
    Diff

    Raises
    ------
    NotResultsError, KindMismatchError, ShapeMismatchError
        Saying which directory, and what differs.

    Examples
    --------
    >>> diff("/nonexistent/a", "/nonexistent/b")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    analysis.diff.NotResultsError: /nonexistent/a: no such directory; ...
    """
    if not 0.0 < confidence < 1.0:
        raise DiffError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")
    a, b = Path(a), Path(b)
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb:
        raise KindMismatchError(f"{a} is a {ka} directory and {b} a {kb} directory; "
                                "compare two of one kind")
    if ka == "sweep":
        return _sweep_diff(a, b, confidence)
    if ka == "run":
        return Diff("run", a, b, [_run_point(a, b, confidence)], confidence=confidence)
    ra, rb = ({d.name: d for d in sorted(p.iterdir()) if (d / "summary.json").is_file()}
              for p in (a, b))
    common = [m for m in ra if m in rb]
    if not common:
        raise ShapeMismatchError(f"{a} and {b} have no mode in common (A: "
                                 f"{', '.join(ra) or 'none'}; B: {', '.join(rb) or 'none'})")
    return Diff("compare", a, b,
                [_run_point(ra[m], rb[m], confidence, {"mode": m}) for m in common],
                [{"mode": m} for m in ra if m not in rb],
                [{"mode": m} for m in rb if m not in ra], confidence)


def to_json(d: Diff) -> str:
    """``d`` as JSON text (:meth:`Diff.as_dict`)."""
    return json.dumps(d.as_dict(), indent=1, default=_py) + "\n"
