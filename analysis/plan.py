"""``pvsim plan``: the largest value of an integer axis at which every SLO holds.

The search gallops up from a starting value (doubling) until an SLO fails, then
bisects between the last value that held and the first that failed. A point holds
when, for every SLO, the one-sided confidence bound of the metric's mean over the
replications is inside the bound: for ``METRIC < BOUND``,
``mean + t(confidence, R-1) * sd / sqrt(R) < BOUND``. With one replication the
bound is the single value. A metric the run does not have (a latency with no
request completed) fails its SLO, with that reason.

A value that is not a valid scenario (more guests than the host's memory holds) fails
without running, so a search whose SLOs always hold ends at the search limit or at
the largest valid value; :attr:`Plan.stop` says which bounded the answer.

The search assumes the metrics are monotone in the axis (more guests, more load);
``pvsim plan`` reports every point it evaluated so that can be checked.

Examples
--------
>>> parse_slo("group.web.p99_ms < 10")
Slo(metric='group.web.p99_ms', op='<', bound=10.0)
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from model.errors import ConfigError, valid_choices
from model.record import EXACT
from model.scenario import Scenario, ScenarioError, with_overrides
from model.scenario.overrides import parse_override, set_path

from .metrics import STALLED, metric_names
from .reproducibility import reproducibility
from .resultsdir import write_atomically
from .stats import t_quantile
from .sweep import Runner, Sweep, sweep

#: The file of a plan's results directory that holds its decisions (:meth:`Plan.to_dict`).
PLAN_FILE = "plan.json"

_SLO = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*([^\s\d].*?)?\s*$")
#: Units a bound may carry, per metric unit (metric_catalog): the factor to the metric's.
BOUND_UNITS = {
    "ms": {"s": 1e3, "ms": 1.0, "us": 1e-3, "µs": 1e-3, "ns": 1e-6},
    "fraction": {"%": 0.01},
    "Mbit/s": {"Gbit/s": 1e3, "Mbit/s": 1.0, "kbit/s": 1e-3},
    "1/s": {"/s": 1.0, "1/s": 1.0, "k/s": 1e3},
}


@dataclass(frozen=True)
class Slo:
    """A service-level objective on a headline metric."""

    metric: str
    op: str
    bound: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


def parse_slo(text: str) -> Slo:
    """``"group.web.p99_ms < 10"`` -> Slo. The bound may carry a unit that the metric's
    unit converts from (:data:`BOUND_UNITS`): ``< 1ms`` or ``< 500us`` on a time in ms,
    ``< 80%`` on a fraction, ``> 2Gbit/s`` on Mbit/s.

    Examples
    --------
    >>> parse_slo("group.web.request_p99_ms < 500us").bound
    0.5
    >>> str(parse_slo("host.busy_fraction <= 80%"))
    'host.busy_fraction <= 0.8'
    """
    m = _SLO.match(text)
    if not m:
        raise ConfigError(f"--slo {text!r}: write METRIC < BOUND (or >, <=, >=), such as "
                          "'group.web.p99_ms < 10' or 'host.busy_fraction < 0.8'")
    metric, op, number, unit = m.groups()
    try:
        bound = float(number)
    except ValueError:
        raise ConfigError(f"--slo {text!r}: {number!r} is not a number") from None
    if unit:
        bound *= _unit_factor(text, metric, unit)
    return Slo(metric, op, bound)


def _unit_factor(text: str, metric: str, unit: str) -> float:
    """The factor from a bound's ``unit`` to ``metric``'s own unit."""
    from .metric_catalog import kind

    parts = metric.split(".")
    try:
        own = kind(parts[0], parts[-1]).unit
    except (ConfigError, IndexError):
        raise ConfigError(f"--slo {text!r}: a bound with a unit needs a known metric; "
                          f"write the bound in the metric's own unit") from None
    units = BOUND_UNITS.get(own, {})
    if unit not in units:
        raise ConfigError(f"--slo {text!r}: {metric} is in {own}; "
                          + (valid_choices(unit, units, "its bound may be in")
                             if units else "write its bound as a plain number"))
    return units[unit]


@dataclass
class Verdict:
    """Whether one axis value meets every SLO, and by how much."""

    value: int
    holds: bool
    #: per SLO: (the confidence bound of the mean, or NaN; slack to the bound, > 0 = inside);
    #: empty for a value that is not a valid scenario
    margins: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: per SLO: whether it held (a point holds if all do and no vCPU stalled)
    held: dict[str, bool] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    #: False: the value is not a valid scenario (nothing ran; ``reasons`` says why)
    valid: bool = True


def judge(table: pd.DataFrame, value: int, slos: Sequence[Slo],
          confidence: float) -> Verdict:
    """Decide one point from its replications (rows of a sweep table). A replication in
    which some vCPU stalled fails, whatever its figures: a stalled guest serves less,
    which would otherwise read as capacity to spare."""
    v = Verdict(value, True)
    stalled = table[STALLED] if STALLED in table else pd.Series(dtype=float)
    if (stalled > 0).any():
        v.holds = False
        v.reasons.append(f"vCPUs stalled (blocked with nothing to wake them) in "
                         f"{int((stalled > 0).sum())} replication(s): see their summaries")
    for slo in slos:
        x = table[slo.metric] if slo.metric in table else pd.Series(dtype=float)
        if x.empty or x.isna().any():  # a replication without the figure fails the SLO
            v.holds = False
            v.margins[str(slo)] = (math.nan, -math.inf)
            v.held[str(slo)] = False
            v.reasons.append(f"{slo.metric}: not measured in "
                             f"{int(x.isna().sum()) if len(x) else 'any'} replication(s) "
                             "(no request completed?)")
            continue
        mean, n = float(x.mean()), len(x)
        half = (t_quantile(confidence, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
                if n > 1 else 0.0)
        upper = slo.op in ("<", "<=")
        edge = mean + half if upper else mean - half
        slack = slo.bound - edge if upper else edge - slo.bound
        ok = slack > 0 or (slack == 0 and slo.op in ("<=", ">="))
        v.margins[str(slo)] = (edge, slack)
        v.held[str(slo)] = ok
        if not ok:
            v.holds = False
            v.reasons.append(f"{slo}: bound of the mean {edge:.4g} at {confidence:.0%}")
    return v


@dataclass
class Plan:
    """The answer of a capacity search.

    Attributes
    ----------
    answer : int or None
        The largest value found at which every SLO holds (None: not even the start).
    verdicts : dict
        Every value evaluated -> its :class:`Verdict`.
    sweep : Sweep
        All runs made (one row per value and replication).
    confidence : float
        The one-sided confidence of each decision.
    """

    path: str
    slos: list[Slo]
    answer: int | None
    verdicts: dict[int, Verdict]
    sweep: Sweep
    limit: int
    confidence: float = 0.95

    @property
    def limited(self) -> bool:
        """The answer is the search's upper limit: the SLOs may hold beyond it."""
        return self.answer == self.limit

    @property
    def stop(self) -> str:
        """What bounds the answer: ``"limit"`` (the search limit), ``"invalid"`` (the next
        value is not a valid scenario), ``"slo"`` (the next value fails an SLO) or
        ``"start"`` (no answer: the start fails)."""
        if self.answer is None:
            return "start"
        if self.limited:
            return "limit"
        nxt = self.verdicts.get(self.answer + 1)
        return "invalid" if nxt is not None and not nxt.valid else "slo"

    def to_dict(self) -> dict:
        """The search as plain data (``plan.json``): the axis, the SLOs, the confidence,
        the limit, the answer and what bounds it, and every value's verdict with each
        SLO's bound of the mean and slack (null where not a number).

        Examples
        --------
        >>> p = Plan("n", [parse_slo("x < 1")], 2, {2: Verdict(2, True, {"x < 1": (0.5, 0.5)}),
        ...          3: Verdict(3, False, reasons=["not a valid scenario: ..."], valid=False)},
        ...          Sweep(pd.DataFrame(), ["n"]), 8)
        >>> d = p.to_dict()
        >>> d["answer"], d["stop"], d["verdicts"][0]["margins"]
        (2, 'invalid', {'x < 1': {'bound_of_mean': 0.5, 'slack': 0.5}})
        """

        def num(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {"pvsim": "plan", "path": self.path, "slos": [str(s) for s in self.slos],
                "confidence": self.confidence, "limit": self.limit, "answer": self.answer,
                "stop": self.stop,
                "verdicts": [{"value": v.value, "holds": v.holds, "valid": v.valid,
                              "reasons": list(v.reasons),
                              "margins": {slo: {"bound_of_mean": num(edge), "slack": num(slack)}
                                          for slo, (edge, slack) in v.margins.items()}}
                             for v in self.verdicts.values()]}

    def save(self, out: str | Path) -> Path:
        """The plan's results directory ``out``: its runs as a sweep's
        (:meth:`Sweep.save <analysis.sweep.Sweep.save>`) and ``plan.json``
        (:meth:`to_dict`), each file atomically."""
        out = self.sweep.save(out)
        write_atomically(out / PLAN_FILE, json.dumps(self.to_dict(), indent=1) + "\n")
        return out


def search(start: int, limit: int, holds: Callable[[int], bool]) -> int | None:
    """The largest value in [``start``, ``limit``] at which ``holds`` (monotone: true up
    to some value, false beyond) is true, None if not even at ``start``: doubling from
    ``start`` until it fails or reaches ``limit``, then bisecting the last doubling.

    Examples
    --------
    >>> asked = []
    >>> search(1, 100, lambda v: asked.append(v) or v <= 37), asked
    (37, [1, 2, 4, 8, 16, 32, 64, 48, 40, 36, 38, 37])
    """
    if not holds(start):
        return None
    good, bad = start, None
    while bad is None and good < limit:  # gallop
        nxt = min(good * 2, limit)
        if holds(nxt):
            good = nxt
        else:
            bad = nxt
    while bad is not None and bad - good > 1:  # bisect
        mid = (good + bad) // 2
        if holds(mid):
            good = mid
        else:
            bad = mid
    return good


def plan(base: Scenario, path: str, slos: Sequence[Slo], start: int | None = None,
         limit: int = 1024, replications: int = 3, confidence: float = 0.95, jobs: int = 1,
         dask: str | None = None, cache_dir: str | Path | None = None,
         progress: Callable[[int, Verdict], None] | bool | None = None) -> Plan:
    """Find the largest value of integer axis ``path`` in [``start``, ``limit``] at which
    every SLO holds (see the module docstring).

    ``start`` defaults to the scenario's current value at ``path``. ``progress`` is called
    with each value decided and its :class:`Verdict`; ``True``: a progress bar with the
    values decided, the most still to decide and the time left, in a terminal or a
    Jupyter notebook (:mod:`analysis.progress`).
    """
    if progress is True:
        from .progress import plan_progress, progress_bar

        with progress_bar(f"planning {base.name}", 0, "values decided", show=True) as bar:
            return plan(base, path, slos, start, limit, replications, confidence, jobs,
                        dask, cache_dir, plan_progress(path, limit, bar))
    if not slos:
        raise ConfigError("plan needs at least one --slo")
    if start is None:
        start = _current(base, path)
    if not 0.5 < confidence < 1:
        raise ConfigError(f"--confidence {confidence}: a one-sided confidence must lie "
                          "strictly between 0.5 and 1, such as 0.95")
    if start < 1 or start > limit:
        raise ConfigError(f"--vary {path}: the start {start} must lie in [1, {limit}]")
    known = metric_names(with_overrides(base, [f"{path}={start}"]))
    for slo in slos:
        if slo.metric not in known:
            raise ConfigError(f"--slo {slo}: unknown metric {slo.metric!r}; "
                              f"{valid_choices(slo.metric, known)}")
    tables: list[pd.DataFrame] = []
    verdicts: dict[int, Verdict] = {}
    counts = [0, 0]  # runs computed, read from the cache
    damaged: dict[str, str] = {}

    def holds(value: int) -> bool:
        try:
            sw = sweep(base, [{path: str(value)}], replications, cache_dir=cache_dir,
                       runner=runner)
        except ScenarioError as e:  # such as more guests than the host's memory holds
            verdicts[value] = v = Verdict(value, False, reasons=[f"not a valid scenario: {e}"],
                                          valid=False)
            if progress:
                progress(value, v)
            return False
        tables.append(sw.table.assign(point=len(tables)))
        counts[0] += sw.ran
        counts[1] += sw.cached
        damaged.update(sw.damaged)
        verdicts[value] = v = judge(sw.table, value, slos, confidence)
        if progress:
            progress(value, v)
        return v.holds

    with Runner(jobs, dask) as runner:
        answer = search(start, limit, holds)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        columns=[path, "point", "replication", "seed"])
    return Plan(path, list(slos), answer, dict(sorted(verdicts.items())),
                Sweep(table, [path], ran=counts[0], cached=counts[1], damaged=damaged,
                      reproducibility=reproducibility(EXACT), base=base), limit, confidence)


def _current(s: Scenario, path: str) -> int:
    """The scenario's value at dotted ``path`` (lists by element name or index)."""
    data = s.model_dump(mode="json")
    keys = parse_override(f"{path}=0")[0]
    try:
        node: object = data
        for i in set_path(copy.deepcopy(data), keys, None):
            node = node[i]
    except (KeyError, IndexError, TypeError):
        raise ConfigError(f"--vary {path}: no such field in the scenario") from None
    if not isinstance(node, int) or isinstance(node, bool):
        raise ConfigError(f"--vary {path}: plan searches an integer axis; the scenario has "
                          f"{node!r} there")
    return node
