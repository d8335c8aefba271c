"""Sweeps: a scenario run at many points of a design, replicated, in parallel, resumable.

A point is a set of ``--set`` overrides (``{"guests.web.count": "8"}``); a design is
a full factorial over ``--vary`` axes or an explicit file. Replication ``k`` of every
point runs with the same seed, derived from the scenario's seed with numpy's
SeedSequence (common random numbers: differences between points are not blurred
by different random streams). Each run's headline metrics (:mod:`analysis.metrics`)
are cached under the hash of its resolved scenario and seed, written atomically as
soon as the run finishes, so a re-run computes only what is missing. Every entry is
checked when read (:mod:`analysis.cache`); a damaged one is recomputed and counted in
:attr:`Sweep.damaged`.

Runs go inline (``jobs=1``), to a local process pool (``jobs>1``; workers come from
a fork server, so it is safe from a notebook, and die with the process that started
them, even when it is killed), or to a Dask cluster (``dask=ADDRESS``,
or ``"local:N"`` for a LocalCluster). The tables do not depend on which.

Examples
--------
>>> from model.scenario import parse_scenario
>>> s = parse_scenario("name: w\\nduration: 5ms\\nguests: [{name: a, workload: {profile: spin}}]")
>>> sw = sweep(s, factorial([parse_vary("guests.a.count=1,3")]), replications=2)
>>> len(sw.table), sw.table.groupby("guests.a.count")["host.busy_fraction"].mean().to_dict()
(4, {1: 0.5, 3: 1.0})
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import json
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model import __version__
from model.errors import ConfigError, PvsimError
from model.record import EXACT
from model.scenario import Scenario, with_overrides
from model.scenario.overrides import parse_override

from . import cache as run_cache
from .design import Axis, Point, factorial, parse_vary, read_design  # noqa: F401 - API
from .metrics import headline
from .processes import die_with_parent
from .reproducibility import Reproducibility, reproducibility
from .results import resolved_yaml, write_atomically
from .stats import mean_ci


def replication_seed(seed: int, k: int) -> int:
    """The seed of replication ``k`` of a sweep of a scenario with ``seed``."""
    return int(np.random.SeedSequence(seed, spawn_key=(k,)).generate_state(1, np.uint64)[0]
               >> 1)


#: Modules of analysis/ that only present results (the command line, graphs, reports,
#: traces, diffs): the one part of the code a run's cached metrics do not depend on.
PRESENTATION = ("cli.py", "cliparse.py", "diff.py", "diff_render.py", "perfetto.py", "progress.py",
                "report.py", "report_html.py", "tablerows.py", "validate_render.py", "plots")


def digest_files() -> list[Path]:
    """The files :func:`code_digest` covers: the model's sources and hardware profiles,
    and all of analysis/ but the modules that only present results (:data:`PRESENTATION`;
    a new module counts until it is named there)."""
    import analysis
    import model

    roots = (Path(model.__file__).parent, Path(analysis.__file__).parent)
    files = sorted(p for p in roots[0].rglob("*") if p.suffix in (".py", ".yaml"))
    return files + sorted(p for p in roots[1].rglob("*") if p.suffix in (".py", ".yaml")
                          and p.relative_to(roots[1]).parts[0] not in PRESENTATION)


@functools.cache
def code_digest() -> str:
    """A digest of everything a run's metrics depend on besides the scenario and seed
    (:func:`digest_files`)."""
    import model

    h = hashlib.sha256(__version__.encode())
    root = Path(model.__file__).parent.parent
    for f in digest_files():
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _foreign(s: Scenario) -> list[tuple[Any, str]]:
    """The components ``s`` names that are registered from outside pvsim."""
    return [(r, name) for r, name in s.components()
            if not (r.module_of(name) or "").startswith(("model.", "analysis."))]


def _foreign_digest(s: Scenario) -> list[str]:
    """The source of each component from outside pvsim that ``s`` names (editing one
    invalidates the cache like editing the model); where its source cannot be read
    (defined interactively), its identity in this process, so it is never reused."""
    out = []
    for r, name in sorted(_foreign(s), key=lambda rn: (rn[0].what, rn[1])):
        c = r[name]
        c = getattr(c, "function", c)
        target = c if hasattr(c, "__qualname__") else type(c)
        try:
            text = inspect.getsource(target)
        except (OSError, TypeError):
            text = f"unreadable: {id(c)} in process {os.getpid()}"
        out.append(f"{r.what}:{name}:{hashlib.sha256(text.encode()).hexdigest()}")
    return out


def run_key(s: Scenario, seed: int) -> str:
    """The cache key of one run: the resolved scenario, the seed, :func:`code_digest`
    (editing a profile or the model invalidates the cache), and the source of any
    component from outside pvsim that the scenario names."""
    text = json.dumps([s.identity(), seed, code_digest(), run_cache.FORMAT,
                       *_foreign_digest(s)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def run_one(s: Scenario, seed: int, cache_file: str | None = None) -> dict[str, float]:
    """Simulate ``s`` with ``seed`` and return its headline metrics (not-a-number ones as
    NaN, see :func:`analysis.cache.normalize`); with ``cache_file``, also store them there
    as a checked cache entry (atomically) as soon as the run ends."""
    from .run import simulate

    metrics = run_cache.normalize(headline(simulate(s, seed)))
    if cache_file is not None:
        run_cache.write_entry(cache_file, metrics)
    return metrics


def _check_components_travel(s: Scenario) -> None:
    """Refuse, before any worker starts, a scenario that names a component registered
    from outside pvsim (a notebook's, a plug-in's): worker processes start from pvsim's
    own modules, so they would not know it, and every run would fail there."""
    foreign = sorted({f"{r.what} {name!r} (from {r.module_of(name)})"
                      for r, name in _foreign(s)})
    if foreign:
        raise ConfigError(
            f"scenario {s.name} uses {', '.join(foreign)}, registered in this process "
            "only: worker processes (jobs > 1, --dask) would not know it. Run with "
            "jobs=1, or register it in the workers as well.")


class Runner:
    """Where runs execute: inline (``jobs=1``), a local process pool (``jobs>1``), or a
    Dask cluster (``dask``: an address, or ``"local:N"``). Start-up happens once, on
    first use; use it as a context manager, across as many sweeps as needed."""

    def __init__(self, jobs: int = 1, dask: str | None = None) -> None:
        if jobs < 1:
            raise ConfigError(f"--jobs must be >= 1, got {jobs}")
        if dask is not None and dask.startswith("local:") and not (
                dask[6:].isdigit() and int(dask[6:]) >= 1):
            raise ConfigError(f"--dask {dask}: write local:N with N >= 1 workers")
        self.jobs, self.dask = jobs, dask
        self._submit = self._completed = self._close = None

    @property
    def remote(self) -> bool:
        """Runs may execute on other machines (they cannot write the local cache)."""
        return self.dask is not None and not self.dask.startswith("local:")

    def _start(self) -> None:
        if self.dask is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["analysis.sweep", "analysis.run"])
            pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx,
                                       initializer=die_with_parent, initargs=(os.getpid(),))
            self._submit = pool.submit
            self._completed = as_completed
            self._close = lambda: pool.shutdown(wait=True, cancel_futures=True)
            return
        try:
            from dask.distributed import Client, LocalCluster
            from dask.distributed import as_completed as dask_completed
        except ImportError:
            raise ConfigError("--dask needs dask.distributed: pip install 'pvsim[dask]'"
                              ) from None
        cluster = None
        try:
            if self.dask.startswith("local:"):
                cluster = LocalCluster(n_workers=int(self.dask[6:]), threads_per_worker=1,
                                       processes=True, dashboard_address=None)
                client = Client(cluster)
            else:
                client = Client(self.dask, timeout="10s")
        except OSError as e:
            raise ConfigError(f"--dask {self.dask}: cannot reach the scheduler ({e})") from None

        def close() -> None:
            client.close()
            if cluster is not None:
                cluster.close()
        self._submit = lambda *a: client.submit(*a, pure=False)
        self._completed, self._close = dask_completed, close

    def run(self, calls: Sequence[tuple[Scenario, int, str | None]]):
        """Yield ``(index, metrics)`` of each ``run_one(*call)`` as it completes."""
        if self.jobs == 1 and self.dask is None:
            for i, call in enumerate(calls):
                yield i, run_one(*call)
            return
        for s in {id(c[0]): c[0] for c in calls}.values():
            _check_components_travel(s)
        if self._submit is None:
            self._start()
        futures = {self._submit(run_one, *call): i for i, call in enumerate(calls)}
        for fut in self._completed(list(futures)):
            yield futures[fut], fut.result()

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._submit = self._completed = self._close = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class Sweep:
    """A finished sweep.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (point, replication): the varied values (a column per path), ``point``,
        ``replication``, ``seed``, then every headline metric.
    axes : list of str
        The varied paths.
    ran, cached : int
        Runs computed now (damaged entries included), and runs read from the cache.
    damaged : dict
        Cache entries that were damaged and recomputed: file name -> what was wrong.
    reproducibility : Reproducibility or None
        What ran the sweep (:mod:`analysis.reproducibility`): the process that called
        :func:`sweep`. Runs read from the cache were made by the same pvsim code (the
        cache key covers it), not necessarily with the same library versions.
    base : Scenario or None
        The scenario the points vary (written by :meth:`save` when known).
    """

    table: pd.DataFrame
    axes: list[str]
    ran: int = 0
    cached: int = 0
    damaged: dict[str, str] = field(default_factory=dict)
    reproducibility: Reproducibility | None = None
    base: Scenario | None = field(default=None, repr=False)

    @property
    def recomputed(self) -> int:
        """How many cache entries were damaged and recomputed."""
        return len(self.damaged)

    @property
    def metrics(self) -> list[str]:
        return [c for c in self.table.columns
                if c not in (*self.axes, "point", "replication", "seed")]

    def summary(self, confidence: float = 0.95) -> pd.DataFrame:
        """Per point: the varied values, replications, and each metric's mean and the
        half-width of its confidence interval (``<metric>.mean``, ``<metric>.ci``)."""
        rows = []
        for p, g in self.table.groupby("point", sort=True):
            row = {a: g[a].iloc[0] for a in self.axes} | {"point": p, "replications": len(g)}
            for m in self.metrics:
                x = g[m].dropna().tolist()
                mean, half = mean_ci(x, confidence) if x else (float("nan"), float("nan"))
                row[f"{m}.mean"], row[f"{m}.ci"] = mean, half
            rows.append(row)
        return pd.DataFrame(rows)

    @classmethod
    def load(cls, directory: str | Path) -> Sweep:
        """The sweep a results directory holds (its ``sweep.parquet``: the varied axes are
        the columns before ``point``), for ``pvsim report`` and ``pvsim diff``.

        Raises
        ------
        PvsimError
            ``sweep.parquet`` is missing, unreadable or not a sweep's table.
        """
        import pyarrow as pa

        f = Path(directory) / "sweep.parquet"
        try:
            table = pd.read_parquet(f)
        except (pa.ArrowException, OSError, ValueError, TypeError, EOFError) as e:
            why = (str(e).splitlines() or [type(e).__name__])[0][:100]
            raise PvsimError(f"{f}: not a readable Parquet file ({why}); run the sweep "
                             "again") from None
        cols = list(table.columns)
        if not {"point", "replication", "seed"} <= set(cols):
            raise PvsimError(f"{f}: not a pvsim sweep table (no point, replication and seed "
                             "columns)")
        return cls(table, cols[:cols.index("point")])

    def save(self, out: str | Path) -> Path:
        """``sweep.parquet``, ``sweep_summary.csv`` and (when known)
        ``reproducibility.json`` in ``out``, each atomically, and the base scenario as
        ``scenario.resolved.yaml`` (its comment header first) when the sweep knows it."""

        out = Path(out)
        if self.base is not None:
            write_atomically(out / "scenario.resolved.yaml", resolved_yaml(self.base))
        buf = io.BytesIO()
        self.table.to_parquet(buf, index=False)
        write_atomically(out / "sweep.parquet", buf.getvalue())
        write_atomically(out / "sweep_summary.csv", self.summary().to_csv(index=False))
        if self.reproducibility is not None:
            write_atomically(out / "reproducibility.json",
                             json.dumps(self.reproducibility.to_dict(), indent=1) + "\n")
        return out


def _typed(values: Sequence[str]) -> list[object]:
    """An axis's values as numbers or booleans when they all parse to one such type
    (ints and floats together as floats); otherwise as written."""
    parsed = []
    for v in values:
        try:
            parsed.append(parse_override(f"x={v}")[1])
        except PvsimError:
            return list(values)
    kinds = {type(v) for v in parsed}
    if kinds <= {int, float} and float in kinds:
        return [float(v) for v in parsed]
    return parsed if len(kinds) == 1 and kinds <= {int, float, bool, str} else list(values)


def sweep(base: Scenario, points: Sequence[Point], replications: int = 1, jobs: int = 1,
          dask: str | None = None, cache_dir: str | Path | None = None,
          progress: Callable[[int, int], None] | bool | None = None,
          runner: Runner | None = None) -> Sweep:
    """Run ``base`` at every point, ``replications`` times each.

    Parameters
    ----------
    base : Scenario
    points : list of dict
        Overrides per point (path -> value as text); every point sets the same paths.
    replications : int
    jobs : int
        Local worker processes (1 runs inline).
    dask : str, optional
        A Dask scheduler address, or ``"local:N"``.
    cache_dir : path, optional
        Where each run's metrics are cached (and looked up).
    progress : callable or bool, optional
        ``progress(done, total)`` after each run; ``True``: a progress bar with the time
        left (estimated from the runs computed, not those read from the cache), in a
        terminal or a Jupyter notebook (:mod:`analysis.progress`).
    runner : Runner, optional
        An existing runner (then ``jobs`` and ``dask`` are ignored); it is left open.
    """
    if progress is True:
        from .progress import progress_bar

        with progress_bar(f"sweeping {base.name}", len(points) * replications, "runs",
                          show=True) as bar:
            return sweep(base, points, replications, jobs, dask, cache_dir,
                         lambda done, _total: bar(done), runner)
    if replications < 1:
        raise ConfigError(f"replications must be >= 1, got {replications}")
    if not points:
        raise ConfigError("a sweep needs at least one point")
    axes = list(points[0])
    for n, p in enumerate(points):
        if list(p) != axes:
            raise ConfigError(f"design point {n + 1} sets {', '.join(p) or 'nothing'}; every "
                              f"point must set the same paths ({', '.join(axes)})")
    if "seed" in axes:
        raise ConfigError("seed cannot be an axis: each replication has its own seed, "
                          "derived from the scenario's; use --replications")
    variants = [with_overrides(base, [f"{k}={v}" for k, v in p.items()]) for p in points]
    seeds = [replication_seed(base.seed, k) for k in range(replications)]
    cache = Path(cache_dir) if cache_dir is not None else None
    results: dict[tuple[int, int], dict] = {}
    todo: list[tuple[int, int, Path | None]] = []
    damaged: dict[str, str] = {}
    for i, s in enumerate(variants):
        for k, seed in enumerate(seeds):
            f = cache / f"{run_key(s, seed)}.json" if cache is not None else None
            entry = run_cache.read_entry(f) if f is not None else None
            if entry is not None and entry.metrics is not None:
                results[i, k] = entry.metrics
                continue
            if entry is not None:
                damaged[f.name] = entry.damage
            todo.append((i, k, f))
    cached, total = len(results), len(variants) * replications
    if progress:
        progress(cached, total)
    own = runner is None
    runner = Runner(jobs, dask) if own else runner
    try:
        calls = [(variants[i], seeds[k], None if f is None or runner.remote else str(f))
                 for i, k, f in todo]
        for n, metrics in runner.run(calls):
            i, k, f = todo[n]
            results[i, k] = metrics
            if f is not None and runner.remote:  # a remote worker could not write it
                run_cache.write_entry(f, metrics)
            if progress:
                progress(len(results), total)
    finally:
        if own:
            runner.close()
    columns = {a: _typed([p[a] for p in points]) for a in axes}
    rows = []
    for i in range(len(points)):
        for k, seed in enumerate(seeds):
            rows.append({**{a: columns[a][i] for a in axes}, "point": i,
                         "replication": k, "seed": seed, **results[i, k]})
    return Sweep(pd.DataFrame(rows), axes, ran=len(todo), cached=cached, damaged=damaged,
                 reproducibility=reproducibility(EXACT), base=base)
