"""The results of one run: the summary, tidy tables, and their results directory.

A :class:`Results` is what :func:`analysis.run.simulate` returns and what
``pvsim run`` writes to disk; :meth:`Results.load` reads a results directory back,
so notebooks and ``pvsim plot`` work the same on a fresh run and on an old one.

``Results.summary`` is the plain dict that ``summary.json`` holds (notebooks, plots and
the CLI read it; a results directory loads back to the same dict);
``Results.typed_summary`` is the same as an :class:`analysis.summary.Summary` (the one the
run built, or parsed from the dict on first use for results read from a directory).

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
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import yaml

from model import __version__
from model.app.arrivals import as_recorded
from model.categories import NAMES
from model.errors import PvsimError, valid_choices
from model.io.service import direction
from model.scenario import Scenario, load_scenario
from model.scenario.header import as_comments

from .reproducibility import MACHINE_BLOCKS
from .resultsdir import mark, read_marker, staged, write_atomically
from .shares import own_virtualization_share, virtualization_share
from .summary import Summary, scenario_hash
from .tables import (
    APP_REQUEST_COLUMNS,
    CPU_COLUMNS,
    GUEST_COLUMNS,
    REQUEST_COLUMNS,
    SCHEDULE_COLUMNS,
    STAGE_COLUMNS,
    TIMESERIES_COLUMNS,
    empty,
)

__all__ = ["Results", "STAGE_COLUMNS", "resolved_yaml", "write_atomically"]

#: The tables of a results directory: attribute -> (file, columns).
TABLES = {
    "requests": ("requests.parquet", REQUEST_COLUMNS),
    "cpu": ("cpu.parquet", CPU_COLUMNS),
    "timeseries": ("timeseries.parquet", TIMESERIES_COLUMNS),
    "schedule": ("schedule.parquet", SCHEDULE_COLUMNS),
    "guests": ("guests.parquet", GUEST_COLUMNS),
    "app_requests": ("app_requests.parquet", APP_REQUEST_COLUMNS),
}


#: Columns a results directory written before them lacks: table -> column -> the column
#: it is read as (cpu.parquet before its on-behalf attribution counted every row in the
#: domain that ran it).
OLDER = {"cpu": {"on_behalf_of": "guest"}}

#: The most a summary.json may be (bytes): a run's is a few kB.
MAX_SUMMARY_BYTES = 64 << 20
#: Keys of summary.json that reading a results directory relies on, with their types.
SUMMARY_KEYS = {
    "scenario": str,
    "scenario_hash": str,
    "hardware": str,
    "sim_time_s": (int, float),
    "host": dict,
    "guests": dict,
    "devices": dict,
    "invariants": dict,
}
_AGAIN = "run the scenario again"


@dataclass(eq=False)
class Results:
    """One run's results.

    Attributes
    ----------
    scenario : Scenario
        The scenario as run (every default filled in).
    summary : dict
        Headline figures, exactly as ``summary.json``.
    requests, cpu, timeseries, schedule, guests, app_requests : pandas.DataFrame
        Tidy tables (see :mod:`analysis.tables` for their columns).
    source : Path or None
        The results directory they were read from or saved to.
    typed : Summary or None
        ``summary`` typed, if the caller has it (see :attr:`typed_summary`).
    event_log : analysis.perfetto.EventLog or None
        The hypervisor's event log, bounded, of a fresh run with ``record.trace:
        perfetto`` (for its trace; not saved as a table, so None when read back).
    """

    scenario: Scenario
    summary: dict
    requests: pd.DataFrame
    cpu: pd.DataFrame
    timeseries: pd.DataFrame
    schedule: pd.DataFrame
    guests: pd.DataFrame
    app_requests: pd.DataFrame = field(default_factory=lambda: empty(APP_REQUEST_COLUMNS))
    source: Path | None = None
    typed: Summary | None = field(default=None, repr=False)
    event_log: list | None = field(default=None, repr=False)

    @property
    def typed_summary(self) -> Summary:
        """The summary as a :class:`analysis.summary.Summary` (parsed from
        :attr:`summary` on first use if the run's own is not at hand).

        Raises
        ------
        PvsimError
            The summary lacks a figure or has one of the wrong shape (one written by
            another version of pvsim, or edited).
        """
        if self.typed is None:
            try:
                self.typed = Summary.from_dict(self.summary)
            except KeyError as e:
                raise PvsimError(
                    f"summary.json has no {e.args[0]!r} where pvsim writes one; {_AGAIN}"
                ) from None
            except (TypeError, AttributeError) as e:
                raise PvsimError(f"summary.json is not what pvsim writes ({e}); {_AGAIN}") from None
        return self.typed

    def equals(self, other: Results, engine: bool = True) -> bool:
        """Same scenario (resolved: an I/O path left to its mode's default and the same
        path named are the same), summary and tables (``engine=False`` ignores the blocks
        that describe the machine, :data:`~analysis.reproducibility.MACHINE_BLOCKS`: the
        wall-clock engine block differs between two runs of the same scenario and seed,
        the reproducibility block between machines and installations)."""

        def summary(r: Results) -> dict:
            return r.summary if engine else {k: v for k, v in r.summary.items()
                                             if k not in MACHINE_BLOCKS}

        return (
            self.scenario.resolved() == other.scenario.resolved()
            and summary(self) == summary(other)
            and all(getattr(self, t).equals(getattr(other, t)) for t in TABLES)
        )

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
        rows = {
            g: [v["cpu_s"].get(c, 0.0) for c in cats] for g, v in self.summary["guests"].items()
        }
        return pd.DataFrame.from_dict(rows, orient="index", columns=cats).rename_axis("guest")

    def contention(self, device: str) -> pd.DataFrame:
        """Seconds each guest (rows) waited at ``device`` behind each guest (columns)."""
        devices = self.summary["devices"]
        if device not in devices:
            raise PvsimError(
                f"no device {device!r}; "
                + (valid_choices(device, devices) if devices else "the run has no devices")
            )
        m = pd.DataFrame(devices[device]["contention_s"]).T.fillna(0.0)
        order = [g for g in self.guest_names if g in m.index]
        return m.reindex(index=order, columns=order, fill_value=0.0).rename_axis(
            index="waiting", columns="holding"
        )

    def latency_percentiles(self) -> pd.DataFrame:
        """Request latency (ms) per guest, device and direction (``read``/``write`` for a
        disk, ``receive``/``send`` for a NIC: each a stream of like requests): count,
        mean, p50, p95, p99, over every request of the table (the summary's
        ``io.streams`` count those issued after the warm-up)."""
        rq = self.requests
        directions = [direction(k, w) for k, w in zip(rq["kind"], rq["write"], strict=True)]
        q = rq.assign(direction=directions).groupby(["guest", "device", "direction"],
                                                    sort=False)["latency_ms"]
        out = q.agg(["count", "mean"])
        for p in (50, 95, 99):
            out[f"p{p}"] = q.quantile(p / 100)
        return out

    # --- files -------------------------------------------------------------------------
    def save(self, out: str | Path, *, force: bool = False) -> Path:
        """Write the results directory ``out``: the resolved scenario, summary.json and
        one Parquet file per table, built aside and swapped in whole
        (:func:`analysis.resultsdir.staged`), so ``out`` is never a mixture of two runs.

        Parameters
        ----------
        out : str or Path
            New, empty, or a pvsim results directory (replaced).
        force : bool, default False
            Replace ``out`` as a whole even if it is some other non-empty directory.

        Returns
        -------
        Path
            ``out``.

        Raises
        ------
        PvsimError
            ``out`` is not pvsim's to replace, or cannot be written (then it is
            unchanged).
        """
        with staged(out, force=force) as st:
            self.write_files(st.path, st.run_id)
        self.source = st.dest
        return st.dest

    def write_files(self, directory: str | Path, run_id: str | None = None) -> Path:
        """Write the files of a results directory into ``directory`` (a directory being
        built: :meth:`save` is the safe way to write one), its marker last; with
        ``record.trace: perfetto``, the trace too (:mod:`analysis.perfetto`)."""
        out = Path(directory)
        write_atomically(out / "scenario.resolved.yaml", resolved_yaml(self.scenario))
        for attr, (name, _) in TABLES.items():
            buf = io.BytesIO()
            getattr(self, attr).to_parquet(buf, index=False)
            write_atomically(out / name, buf.getvalue())
        write_atomically(out / "summary.json", json.dumps(self.summary, indent=1) + "\n")
        if self.scenario.record.trace == "perfetto":
            from .perfetto import TRACE_FILE, write_trace

            write_trace(self, out / TRACE_FILE)
        mark(out, "run", run_id)
        self.source = out
        return out

    @classmethod
    def load(cls, path: str | Path) -> Results:
        """Read a results directory written by :meth:`save` (or ``pvsim run``).

        Raises
        ------
        PvsimError
            Naming the file and what is wrong with it: missing, truncated or not
            Parquet/JSON, not UTF-8, the wrong columns or keys, from another run.
        """
        path = Path(path)
        if not path.is_dir():
            what = "not a directory" if path.exists() else "no such directory"
            raise PvsimError(f"{path}: {what}; give a results directory written by pvsim run")
        summary_file = path / "summary.json"
        if not summary_file.is_file():
            marker = read_marker(path) or {}
            if marker.get("kind") == "compare":
                runs = sorted(p.name for p in path.iterdir() if (p / "summary.json").is_file())
                raise PvsimError(
                    f"{path}: a pvsim compare directory; give one of its runs: "
                    f"{', '.join(str(path / r) for r in runs) or '(none)'}"
                )
            raise PvsimError(
                f"{path}: not a results directory (no summary.json; an interrupted run leaves none)"
            )
        summary = _read_summary(summary_file)
        tables = {
            attr: _read_table(path / name, columns, OLDER.get(attr, {}))
            for attr, (name, columns) in TABLES.items()
        }
        with as_recorded():  # a trace is taken as the run recorded it (it may have moved)
            scenario = load_scenario(str(path / "scenario.resolved.yaml"))
        _check_same_run(path, scenario, summary)
        return cls(scenario, summary, source=path, **tables)

    # --- display -----------------------------------------------------------------------
    def overview(self) -> pd.DataFrame:
        """One row per guest: mode, CPU ms (its vCPUs' and the driver domain's work on
        its behalf), the virtualization shares (``virt_share``, ``virt_share_own``:
        :mod:`analysis.shares`), driver-domain ms, I/O figures (``mbit_s``: bytes over
        the measured time of the run; the latency per stream is in
        :meth:`latency_percentiles`)."""
        rows = {}
        for g, v in self.summary["guests"].items():
            cpu = v["cpu_s"]
            total = sum(cpu.values())
            io_ = v.get("io", {})
            rows[g] = {
                "mode": v["mode"],
                "cpu_ms": 1e3 * total,
                "virt_share": virtualization_share(cpu),
                "virt_share_own": own_virtualization_share(cpu),
                "driver_domain_ms": 1e3 * cpu.get("driver_domain", 0.0),
                "io_requests": io_.get("requests", 0),
                "mbit_s": io_.get("throughput_mbps", float("nan")),
            }
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("guest")

    def _headline(self) -> str:
        s = self.summary
        return (
            f"pvsim results: {s['scenario']} on {s['hardware']}, {s['sim_time_s']:.3f} s "
            f"simulated, seed {s['seed']}, {len(s['guests'])} guests, "
            f"{len(s['devices'])} devices, host CPU busy {s['host']['busy_fraction']:.0%}"
        )

    def __repr__(self) -> str:
        return f"{self._headline()}\n{self.overview().to_string(float_format='{:.3f}'.format)}"

    def _repr_html_(self) -> str:
        dev = pd.DataFrame.from_dict(
            {
                d: {
                    "utilization": v["utilization"],
                    "mean_queue": v["mean_queue"],
                    "completed": v["completed"],
                }
                for d, v in self.summary["devices"].items()
            },
            orient="index",
        )
        html = f"<p><b>{self._headline()}</b></p>" + self.overview().to_html(
            float_format="{:.3f}".format
        )
        if len(dev):
            html += "<p>devices</p>" + dev.to_html(float_format="{:.3f}".format)
        return html


def resolved_yaml(s: Scenario) -> str:
    """The text of a results directory's ``scenario.resolved.yaml``: the scenario's comment
    header (:attr:`Scenario.header <model.scenario.Scenario.header>`, the question it asks)
    as comments, then the scenario with every default filled in.

    Examples
    --------
    >>> from model.scenario import parse_scenario
    >>> s = parse_scenario("# Is it fast?\\nname: t\\nguests: [{name: a, workload: "
    ...                    "{profile: spin}}]")
    >>> print(resolved_yaml(s)[:30])
    # Is it fast?
    <BLANKLINE>
    name: t
    seed: 0
    """
    body = yaml.safe_dump(s.resolved(), sort_keys=False)
    head = as_comments(s.header)
    return f"{head}\n{body}" if head else body


# --- reading defensively ---------------------------------------------------------------------
def _read_summary(f: Path) -> dict:
    """summary.json as a dict, or a :class:`PvsimError` saying what is wrong with it."""
    try:
        if f.stat().st_size > MAX_SUMMARY_BYTES:
            raise PvsimError(
                f"{f}: {f.stat().st_size:,} bytes, not a pvsim summary (a run's is a few kB)"
            )
        raw = f.read_bytes()
    except OSError as e:
        raise PvsimError(f"{f}: cannot read: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PvsimError(
            f"{f}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset "
            f"{e.start}); the file is damaged: {_AGAIN}"
        ) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise PvsimError(
            f"{f}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno}; "
            f"truncated?): {_AGAIN}"
        ) from None
    except RecursionError:
        raise PvsimError(f"{f}: JSON nested too deeply; not a pvsim summary") from None
    if not isinstance(doc, dict):
        raise PvsimError(
            f"{f}: a JSON {type(doc).__name__}, not an object: not a pvsim summary; {_AGAIN}"
        )
    for key, kind in SUMMARY_KEYS.items():
        if key not in doc:
            raise PvsimError(f"{f}: no {key!r}: not a complete pvsim summary; {_AGAIN}")
        if not isinstance(doc[key], kind) or isinstance(doc[key], bool):
            raise PvsimError(
                f"{f}: {key!r} is a {type(doc[key]).__name__}, not what pvsim writes; {_AGAIN}"
            )
    for section, needs in (
        ("guests", ("mode", "cpu_s")),
        ("devices", ("utilization", "mean_queue", "completed")),
    ):
        for name, v in doc[section].items():
            if not isinstance(v, dict) or any(k not in v for k in needs):
                raise PvsimError(
                    f"{f}: {section}.{name} lacks {', '.join(needs)}: not what "
                    f"pvsim writes; {_AGAIN}"
                )
    return doc


def _read_table(f: Path, columns: tuple[str, ...],
                older: dict[str, str] | None = None) -> pd.DataFrame:
    """One Parquet table, checked to have ``columns``, or a :class:`PvsimError`; a column
    of ``older`` (column -> the one it is filled from) may be missing, as in a table
    written before it existed."""
    if not f.is_file():
        raise PvsimError(f"{f}: missing: the results directory is incomplete; {_AGAIN}")
    try:
        df = pd.read_parquet(f)
    except (pa.ArrowException, OSError, ValueError, TypeError, EOFError) as e:
        why = (str(e).splitlines() or [type(e).__name__])[0]
        why = re.sub(r"^Could not open Parquet input source .*?.: ", "", why).split(". ")[0][:100]
        raise PvsimError(
            f"{f}: not a readable Parquet file (truncated or damaged? {why}); {_AGAIN}"
        ) from None
    for col, source in (older or {}).items():
        if col not in df.columns and source in df.columns:
            df[col] = df[source]
    if set(df.columns) != set(columns):
        missing = [c for c in columns if c not in df.columns]
        extra = [str(c) for c in df.columns if c not in columns]
        raise PvsimError(
            f"{f}: not the {f.stem} table: "
            + "; ".join(
                p
                for p in (
                    f"missing columns {_few(missing)}" if missing else "",
                    f"unexpected columns {_few(extra)}" if extra else "",
                )
                if p
            )
            + f"; {_AGAIN}"
        )
    text = {c for c in columns if empty((c,))[c].dtype == object}
    for c in columns:
        ok = (
            not pd.api.types.is_numeric_dtype(df[c])
            if c in text
            else pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])
        )
        if not ok and len(df):
            raise PvsimError(f"{f}: column {c!r} is {df[c].dtype}, not what pvsim writes; {_AGAIN}")
    return df[list(columns)]


def _few(names: list[str], n: int = 4) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def _check_same_run(path: Path, scenario: Scenario, summary: dict) -> None:
    """The resolved scenario and summary.json are from one run (as far as can be told)."""
    if summary["scenario"] != scenario.name or (
        summary.get("pvsim_version") == __version__
        and summary["scenario_hash"] != scenario_hash(scenario)
    ):
        raise PvsimError(
            f"{path}: summary.json and scenario.resolved.yaml are from "
            f"different runs ({summary['scenario']!r}, {scenario.name!r}); "
            f"{_AGAIN}"
        )
