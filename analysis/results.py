"""The results of one run: the summary, tidy tables, and their results directory.

A :class:`Results` is what :func:`analysis.run.simulate` returns and what
``pvsim run`` writes to disk; :meth:`Results.load` reads a results directory back,
so notebooks and ``pvsim plot`` work the same on a fresh run and on an old one.

Examples
--------
>>> from model.scenario import parse_scenario
>>> from analysis.run import simulate
>>> r = simulate(parse_scenario("name: t\\nduration: 10ms\\nguests: [{name: a, "
...                             "workload: {profile: spin}}]"))
>>> r.cpu_breakdown().loc["a", "user"] > 0
np.True_
>>> sorted(r.timeseries["metric"].unique())
['cpu_util']
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from model.categories import NAMES, VIRTUALIZATION
from model.errors import PvsimError
from model.scenario import Scenario, load_scenario

from .tables import (
    CPU_COLUMNS,
    GUEST_COLUMNS,
    REQUEST_COLUMNS,
    SCHEDULE_COLUMNS,
    STAGE_COLUMNS,
    TIMESERIES_COLUMNS,
    empty,
)

__all__ = ["Results", "STAGE_COLUMNS", "write_atomically"]

#: The tables of a results directory: attribute -> (file, columns).
TABLES = {"requests": ("requests.parquet", REQUEST_COLUMNS),
          "cpu": ("cpu.parquet", CPU_COLUMNS),
          "timeseries": ("timeseries.parquet", TIMESERIES_COLUMNS),
          "schedule": ("schedule.parquet", SCHEDULE_COLUMNS),
          "guests": ("guests.parquet", GUEST_COLUMNS)}


_UMASK = os.umask(0)  # read once, at import: setting it later would race with threads
os.umask(_UMASK)


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that a reader never sees a partial file: write a
    temporary file beside it, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # as an ordinary new file, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(eq=False)
class Results:
    """One run's results.

    Attributes
    ----------
    scenario : Scenario
        The scenario as run (every default filled in).
    summary : dict
        Headline figures, exactly as ``summary.json``.
    requests, cpu, timeseries, schedule, guests : pandas.DataFrame
        Tidy tables (see :mod:`analysis.tables` for their columns).
    """

    scenario: Scenario
    summary: dict
    requests: pd.DataFrame
    cpu: pd.DataFrame
    timeseries: pd.DataFrame
    schedule: pd.DataFrame
    guests: pd.DataFrame
    source: Path | None = None

    def equals(self, other: Results, engine: bool = True) -> bool:
        """Same scenario, summary and tables (``engine=False`` ignores the wall-clock
        engine block, which differs between two runs of the same scenario and seed)."""
        def summary(r: Results) -> dict:
            return r.summary if engine else {k: v for k, v in r.summary.items()
                                             if k != "engine"}
        return (self.scenario == other.scenario and summary(self) == summary(other)
                and all(getattr(self, t).equals(getattr(other, t)) for t in TABLES))

    @property
    def interval(self) -> float:
        """The time-series interval, seconds."""
        return self.scenario.record.interval

    @property
    def guest_names(self) -> list[str]:
        """The guests (not the driver domain), in scenario order."""
        return list(self.summary["guests"])

    def cpu_breakdown(self) -> pd.DataFrame:
        """CPU seconds per guest (rows) by category (columns); ``driver_domain`` is the
        driver domain's work on the guest's behalf."""
        cats = [c for c in NAMES if c != "idle"]
        rows = {g: [v["cpu_s"].get(c, 0.0) for c in cats]
                for g, v in self.summary["guests"].items()}
        return pd.DataFrame.from_dict(rows, orient="index", columns=cats).rename_axis("guest")

    def contention(self, device: str) -> pd.DataFrame:
        """Seconds each guest (rows) waited at ``device`` behind each guest (columns)."""
        devices = self.summary["devices"]
        if device not in devices:
            raise PvsimError(f"no device {device!r}; valid choices: "
                             f"{', '.join(devices) or '(none)'}")
        m = pd.DataFrame(devices[device]["contention_s"]).T.fillna(0.0)
        order = [g for g in self.guest_names if g in m.index]
        return m.reindex(index=order, columns=order, fill_value=0.0).rename_axis(
            index="waiting", columns="holding")

    def latency_percentiles(self) -> pd.DataFrame:
        """Request latency (ms) per guest and device: count, mean, p50, p95, p99."""
        q = self.requests.groupby(["guest", "device"], sort=False)["latency_ms"]
        out = q.agg(["count", "mean"])
        for p in (50, 95, 99):
            out[f"p{p}"] = q.quantile(p / 100)
        return out

    # --- files -------------------------------------------------------------------------
    def save(self, out: str | Path) -> Path:
        """Write the results directory: the resolved scenario, summary.json and one
        Parquet file per table, each atomically."""
        out = Path(out)
        (out / "summary.json").unlink(missing_ok=True)  # incomplete until written again
        write_atomically(out / "scenario.resolved.yaml",
                         yaml.safe_dump(self.scenario.model_dump(mode="json"), sort_keys=False))
        for attr, (name, _) in TABLES.items():
            buf = io.BytesIO()
            getattr(self, attr).to_parquet(buf, index=False)
            write_atomically(out / name, buf.getvalue())
        # last: a directory with summary.json is complete
        write_atomically(out / "summary.json", json.dumps(self.summary, indent=1) + "\n")
        self.source = out
        return out

    @classmethod
    def load(cls, path: str | Path) -> Results:
        """Read a results directory written by :meth:`save` (or ``pvsim run``)."""
        path = Path(path)
        summary_file = path / "summary.json"
        if not summary_file.is_file():
            raise PvsimError(f"{path}: not a results directory (no summary.json; an "
                             "interrupted run leaves none)")
        tables = {}
        for attr, (name, columns) in TABLES.items():
            f = path / name
            tables[attr] = pd.read_parquet(f) if f.is_file() else empty(columns)
        return cls(load_scenario(str(path / "scenario.resolved.yaml")),
                   json.loads(summary_file.read_text()), source=path, **tables)

    # --- display -----------------------------------------------------------------------
    def overview(self) -> pd.DataFrame:
        """One row per guest: mode, CPU ms, the share of it that is virtualization
        (:data:`model.categories.VIRTUALIZATION`), driver-domain ms, I/O figures."""
        rows = {}
        for g, v in self.summary["guests"].items():
            cpu = v["cpu_s"]
            total = sum(cpu.values())
            io_ = v.get("io", {})
            rows[g] = {"mode": v["mode"], "cpu_ms": 1e3 * total,
                       "virt_overhead": sum(cpu.get(c, 0.0) for c in VIRTUALIZATION) / total
                       if total else 0.0,
                       "driver_domain_ms": 1e3 * cpu.get("driver_domain", 0.0),
                       "io_requests": io_.get("requests", 0),
                       "mbit_s": io_.get("throughput_mbps", float("nan")),
                       "p50_ms": io_.get("p50_ms", float("nan")),
                       "p99_ms": io_.get("p99_ms", float("nan"))}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("guest")

    def _headline(self) -> str:
        s = self.summary
        return (f"pvsim results: {s['scenario']} on {s['hardware']}, {s['sim_time_s']:.3f} s "
                f"simulated, seed {s['seed']}, {len(s['guests'])} guests, "
                f"{len(s['devices'])} devices, host CPU busy {s['host']['busy_fraction']:.0%}")

    def __repr__(self) -> str:
        return f"{self._headline()}\n{self.overview().to_string(float_format='{:.3f}'.format)}"

    def _repr_html_(self) -> str:
        dev = pd.DataFrame.from_dict(
            {d: {"utilization": v["utilization"], "mean_queue": v["mean_queue"],
                 "completed": v["completed"]} for d, v in self.summary["devices"].items()},
            orient="index")
        html = f"<p><b>{self._headline()}</b></p>" + self.overview().to_html(
            float_format="{:.3f}".format)
        if len(dev):
            html += "<p>devices</p>" + dev.to_html(float_format="{:.3f}".format)
        return html
