"""Run a scenario: simulate it and summarize the run.

:func:`simulate` builds the host, runs it and takes its :class:`model.record.RunRecord`;
from then on only the record is read: :func:`results_of` turns a record (from any
engine) into :class:`Results`, its summary and tables.

Examples
--------
>>> from model.scenario import parse_scenario
>>> s = parse_scenario("name: t\\nduration: 10ms\\nguests: [{name: a, workload: {profile: spin}}]")
>>> r = simulate(s)
>>> r.summary["guests"]["a"]["mode"], r.summary["sim_time_s"]
('pv', 0.01)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from model.errors import PvsimError
from model.fidelity import FAST
from model.record import RunRecord, record_run
from model.scenario import Scenario, build_host, parse_scenario

from .results import Results
from .summary import scenario_hash, summarize
from .tables import (
    SCHEDULE_COLUMNS,
    app_request_table,
    cpu_table,
    empty,
    guest_table,
    request_table,
    schedule_table,
    timeseries_table,
)

__all__ = ["results_of", "scenario_hash", "simulate", "summarize"]


def simulate(
    s: Scenario | Mapping, seed: int | None = None,
    progress: Callable[[float], None] | bool | None = None
) -> Results:
    """Run scenario ``s`` for its duration and return its :class:`Results`.

    Parameters
    ----------
    s : Scenario
    seed : int, optional
        Overrides the scenario's seed.
    progress : callable or bool, optional
        Called with the fraction of simulated time done; ``True``: a progress bar with
        the time left, in a terminal or a Jupyter notebook (:mod:`analysis.progress`).
    """
    if isinstance(s, Mapping):
        s = parse_scenario(s, "simulate(...)")
    elif not isinstance(s, Scenario):
        raise PvsimError(
            f"simulate() takes a Scenario (load_scenario(path) reads a file, "
            f"parse_scenario(text) YAML text) or a mapping, not "
            f"{type(s).__name__}"
        )
    if seed is not None:  # the resolved scenario records the seed the run used (validated)
        s = s.model_copy(update={"seed": seed})
    if s.fidelity == FAST:
        return _simulate_fast(s, progress)
    host = build_host(s)
    if s.record.trace:  # the schedule table and graph (the time series do not need them)
        host.record_segments()
    log = None
    if s.record.trace == "perfetto":  # the trace's instant events, bounded
        from .perfetto import EventLog, TraceLimits

        limits = TraceLimits()
        log = host.hypervisor.start_log(EventLog(
            host.hw.freq_hz, host.series_width, s.duration, keep=limits.instants,
            points=limits.counter_points))
    if progress is True:
        from .progress import progress_bar

        with progress_bar(f"simulating {s.name}", s.duration, "s simulated", show=True) as bar:
            stats = host.run(seconds=s.duration, progress=lambda f: bar(f * s.duration),
                             warmup=s.record.warmup)
    else:
        stats = host.run(seconds=s.duration, progress=progress or None,
                         warmup=s.record.warmup)
    r = results_of(s, record_run(host, stats))
    r.event_log = log
    return r


def _simulate_fast(s: Scenario, progress) -> Results:
    from model.fast import build_fast

    host = build_fast(s)
    if progress is True:
        from .progress import progress_bar

        with progress_bar(f"simulating {s.name} (fast)", s.duration, "s simulated",
                          show=True) as bar:
            host.run(s.duration, s.record.warmup, lambda f: bar(f * s.duration))
    else:
        host.run(s.duration, s.record.warmup, progress or None)
    return results_of(s, host.record())


def results_of(s: Scenario, rec: RunRecord) -> Results:
    """The :class:`Results` of the run of ``s`` that ``rec`` records: its summary and
    tables, from the record alone (whichever engine filled it).

    Parameters
    ----------
    s : Scenario
        The scenario as run (every default filled in).
    rec : RunRecord
        What the run yielded (:func:`model.record.record_run` for the exact engine).

    Returns
    -------
    Results

    Examples
    --------
    >>> from model.scenario import build_host
    >>> s = parse_scenario("name: t\\nduration: 5ms\\nguests: [{name: a, "
    ...                    "workload: {profile: spin}}]")
    >>> host = build_host(s)
    >>> r = results_of(s, record_run(host, host.run(seconds=s.duration)))
    >>> r.summary["host"]["busy_fraction"], r.schedule.empty  # one hog, two pCPUs; no trace
    (0.5, True)
    """
    guests = guest_table(rec, s)
    summary = summarize(s, rec)
    return Results(
        scenario=s,
        summary=summary.to_dict(),
        requests=request_table(rec, guests),
        cpu=cpu_table(rec),
        timeseries=timeseries_table(rec, s.record.interval),
        schedule=schedule_table(rec) if s.record.trace else empty(SCHEDULE_COLUMNS),
        guests=guests,
        app_requests=app_request_table(rec, guests, s.record.warmup or 0.0),
        typed=summary,
    )
