"""``pvsim compare``: one scenario with every guest in each virtualization mode.

Each mode's run puts every guest that can run in it into it. A guest that cannot
(an unmodified OS in pv; hvm on hardware without VT-x) keeps its own mode in that
run, so the host carries the same load, and its figures for that mode are not
reported: the reason is. An attachment whose explicit I/O path the new mode cannot
use falls back to the mode's default path (pv: split driver, full and hvm: emulated,
native: direct).

Performance is relative to native, per guest and metric, with higher always better:
``value / native`` for rates, ``native / value`` for latencies.

Examples
--------
>>> from model.scenario import parse_scenario
>>> s = parse_scenario("name: c\\nduration: 5ms\\nguests: [{name: a, os: unmodified, "
...                    "mode: hvm, workload: {profile: cpu_bound}}]")
>>> c = compare(s, ["native", "pv", "hvm"])
>>> c.skipped
[('a', 'pv', 'an unmodified OS cannot run in pv mode')]
>>> sorted(c.table["mode"].unique())
['hvm', 'native']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from model.errors import PvsimError, valid_choices
from model.hardware import load_profile
from model.modes import MODES, baseline_mode, is_modified
from model.scenario import Scenario, guest_names, with_overrides
from model.workload_registry import registry

from .results import Results
from .run import simulate

#: Metric -> (how to read it from a guest's summary, True if higher is better).
METRICS: dict[str, tuple[Callable[[dict, float], float | None], bool]] = {
    "instructions_per_s": (lambda g, d: g["instructions"] / (g["finished_s"] or d), True),
    "io_mbit_s": (lambda g, d: g["io"]["throughput_mbps"], True),  # 0 if starved
    # a server's application requests (absent for a guest that serves none)
    "served_per_s": (lambda g, d: g["app"]["served_per_s"] if "app" in g else None, True),
    "request_mean_ms": (lambda g, d: g.get("app", {}).get("latency", {}).get("mean_ms"),
                        False),
    "request_p99_ms": (lambda g, d: g.get("app", {}).get("latency", {}).get("p99_ms"), False),
}
#: I/O latency metrics, one per stream of a guest (a device and a direction: the metric
#: ``io_p50_ms[nic0:send]``), lower is better: a percentile pooled over a guest's
#: devices and directions would mix requests as unlike as a received packet and a disk
#: read. Metric -> the stream's key in the summary.
STREAM_METRICS = {"io_p50_ms": "p50_ms", "io_p99_ms": "p99_ms"}


def _stream_metrics(g: dict) -> list[tuple[str, float]]:
    """A guest summary's per-stream I/O metrics: ``(metric[stream], value)``."""
    streams = g.get("io", {}).get("streams", {})
    return [(f"{m}[{name}]", s[key]) for name, s in streams.items()
            for m, key in STREAM_METRICS.items()]


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` (a :data:`METRICS` name, or a per-stream one)
    is better."""
    base = metric.split("[", 1)[0]
    return METRICS[base][1] if base in METRICS else False


def mode_problem(s: Scenario, guest: int, mode: str) -> str | None:
    """Why guest ``s.guests[guest]`` cannot run in ``mode`` on the scenario's hardware."""
    return MODES[mode].reason(
        load_profile(s.hardware), modified_os=is_modified(s.guests[guest].os)
    )


def in_mode(s: Scenario, mode: str) -> tuple[Scenario, list[tuple[str, str]]]:
    """Scenario ``s`` with every guest that can run in ``mode`` moved to it; returns the
    variant and the (guest group, reason) of those left in their own mode."""
    sets, kept = [], []
    for i, g in enumerate(s.guests):
        why = mode_problem(s, i, mode)
        if why:
            kept.append((g.name, why))
            continue
        sets.append(f"guests.{i}.mode={mode}")
        for j, a in enumerate(g.devices):
            if a.path is not None and MODES[mode].path_problem(a.path):
                sets.append(f"guests.{i}.devices.{j}.path=null")
    return with_overrides(s, sets), kept


@dataclass
class Comparison:
    """The runs of a comparison and its relative-performance table.

    Attributes
    ----------
    runs : dict
        Mode -> its :class:`~analysis.results.Results`.
    table : pandas.DataFrame
        One row per (guest, metric, mode): ``subject``, ``metric``, ``mode``, ``value``,
        ``relative`` (to native, higher is better; NaN when native has no figure).
    skipped : list
        (guest, mode, reason) of every combination not reported.
    """

    runs: dict[str, Results]
    table: pd.DataFrame
    skipped: list[tuple[str, str, str]]


def compare(
    s: Scenario,
    modes: Sequence[str],
    seed: int | None = None,
    progress: Callable[[str, float], None] | bool | None = None,
) -> Comparison:
    """Run ``s`` once per mode in ``modes`` and compare each guest's metrics to native.

    ``progress(mode, fraction)`` is called as each run advances; ``True``: a progress bar
    with the time left, in a terminal or a Jupyter notebook (:mod:`analysis.progress`).
    """
    if progress is True:
        from .progress import progress_bar

        modes = list(modes)
        with progress_bar(f"comparing {s.name}", len(modes), "runs", show=True) as bar:
            return compare(s, modes, seed, lambda m, f: bar(modes.index(m) + f))
    if not modes or len(set(modes)) != len(modes):
        raise PvsimError(
            f"--modes {','.join(modes)}: give distinct modes, such as {','.join(MODES)}"
        )
    for m in modes:
        if m not in MODES:
            raise PvsimError(f"unknown mode {m!r}; {valid_choices(m, MODES)}")
    baseline = baseline_mode()
    runs, skipped, rows = {}, [], []
    names = guest_names(s)
    for m in modes:
        variant, kept = in_mode(s, m)
        reasons = dict(kept)
        runs[m] = r = simulate(
            variant, seed, None if progress is None else (lambda f, m=m: progress(m, f))
        )
        for group, why in kept:
            skipped.append((group, m, why))
        for name, i in names:
            if s.guests[i].name in reasons:
                continue
            g = r.summary["guests"][name]
            does_io = bool(registry()[s.guests[i].workload.profile].needs)
            values = [(metric, read(g, s.duration)) for metric, (read, _) in METRICS.items()
                      if does_io or not metric.startswith("io_")]
            for metric, value in values + (_stream_metrics(g) if does_io else []):
                if value is not None:
                    rows.append(
                        {"subject": name, "metric": metric, "mode": m, "value": float(value)}
                    )
    table = pd.DataFrame(rows, columns=["subject", "metric", "mode", "value"])
    native = table[table["mode"] == baseline].set_index(["subject", "metric"])["value"]
    base = pd.Series(list(zip(table["subject"], table["metric"], strict=True))).map(native)
    higher = table["metric"].map(higher_is_better).astype(bool)
    value = table["value"].to_numpy()
    table["relative"] = (value / base).where(higher, base / value).to_numpy()
    return Comparison(runs, table, skipped)
