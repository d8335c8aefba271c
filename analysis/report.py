"""``pvsim report DIR``: one self-contained HTML file for a results directory, to read
or send to a colleague.

It works on the four kinds of results directory pvsim writes (:func:`kind_of` tells
them apart):

- a **run** (``pvsim run``): ``summary.json``, ``scenario.resolved.yaml``, the tables;
- a **compare** (``pvsim compare``): ``compare.csv`` and one run directory per mode;
- a **sweep** (``pvsim sweep``): ``sweep.parquet`` (one row per point and replication);
- a **plan** (``pvsim plan``): a sweep's files and ``plan.json`` (its decisions).

The report holds the question (the comment header the scenario's file opens with, as
``scenario.resolved.yaml`` records it), the resolved scenario (collapsed), the tables
the command printed (:mod:`analysis.tablerows`, the same cells), every PNG of the
directory embedded as a data URI with its file name as caption, and summary.json's
``engine`` and ``reproducibility`` blocks. Graphs are not drawn again: a directory
without them says so. Nothing in the file refers to the network; its style is inline.

Examples
--------
>>> write_report("results/quickstart-1")  # doctest: +SKIP
PosixPath('results/quickstart-1/report.html')
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pandas as pd

from model.errors import PvsimError
from model.scenario.header import comment_header

from . import report_html as h
from .resultsdir import (
    NotAResultsDirectory,
    read_marker,
    record_files,
    results_kind,
    write_atomically,
)
from .tablerows import (
    TextTable,
    compare_table,
    device_lines,
    io_table,
    plan_lines,
    request_table,
    run_table,
    skipped_line,
    stall_lines,
    sweep_table,
)

__all__ = ["REPORT_FILE", "ReportError", "build_report", "kind_of", "write_report"]

#: The report's file name in the directory, by default.
REPORT_FILE = "report.html"
RESOLVED = "scenario.resolved.yaml"
#: The graphs in the order they are shown (by file stem, or a sweep's by the start of
#: the stem): a run's in the order its results directory draws them; a sweep's hockey
#: stick, then its metrics by family; anything else after, by name.
_ORDER = ("cpu_breakdown", "topology", "device_timeline", "contention_heatmap",
          "latency_cdf", "latency_stages", "response_cdf", "response_decomposition",
          "schedule_timeline", "relative_performance", "cpu_breakdown_by_mode", "plan",
          "sweep-hockey_stick", "sweep-host.", "sweep-group.", "sweep-device.")


class ReportError(PvsimError):
    """The directory is not one ``pvsim report`` can describe (not a results directory
    of a run, a compare, a sweep or a plan)."""


def kind_of(directory: str | Path) -> str:
    """Which kind of results directory ``directory`` is: ``"run"``, ``"compare"``,
    ``"sweep"`` or ``"plan"``.

    Raises
    ------
    ReportError
        It is not a directory, or holds none of the files that make one of the four.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     kind_of(d)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    analysis.report.ReportError: ...: not a pvsim results directory: expected a run ...
    """
    try:
        return results_kind(directory)
    except NotAResultsDirectory as e:
        raise ReportError(str(e)) from None


def build_report(directory: str | Path) -> str:
    """The HTML report of results directory ``directory`` (see the module docstring).

    Raises
    ------
    ReportError
        ``directory`` is not a results directory (:func:`kind_of`).
    PvsimError
        One of its files is damaged (the message names it).
    """
    d = Path(directory)
    kind = kind_of(d)
    title, parts = {"run": _run, "compare": _compare, "sweep": _sweep, "plan": _plan}[kind](d)
    return h.page(title, parts)


def write_report(directory: str | Path, output: str | Path | None = None) -> Path:
    """Write the report of ``directory`` to ``output`` (default ``DIR/report.html``),
    atomically; a report inside a marked results directory joins its manifest (so the
    directory stays pvsim's to replace).

    Parameters
    ----------
    directory : str or Path
        A results directory of a run, a compare, a sweep or a plan.
    output : str or Path, optional
        The HTML file to write.

    Returns
    -------
    Path
        The file written.
    """
    d = Path(directory)
    text = build_report(d)
    out = Path(output) if output is not None else d / REPORT_FILE
    write_atomically(out, text)
    if out.resolve().parent == d.resolve():
        record_files(d, [d / out.name])
    return out


# --- pieces shared by every kind -----------------------------------------------------------
def _scenario_file(f: Path) -> tuple[str | None, str] | None:
    """The comment header of a resolved scenario file and the rest of it; None if the
    file is missing."""
    try:
        text = f.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise PvsimError(f"{f}: cannot read: {e.strerror}") from None
    header = comment_header(text)
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines)
                  if line.strip() and not line.lstrip().startswith("#")), len(lines))
    return header, "\n".join(lines[start:]) + "\n"


def _question(d: Path, f: Path) -> list[str]:
    """The question (the scenario's comment header) and the resolved scenario, collapsed."""
    got = _scenario_file(f)
    name = f.relative_to(d).as_posix()
    if got is None:
        return [h.section("The question", h.note(
            f"This directory records no scenario ({name} is missing): written before "
            "pvsim kept a sweep's scenario, or by the Python API."))]
    header, body = got
    q = h.pre(header, "question") if header else h.note(
        f"{name} opens with no comment: the scenario's file had no comment header, or "
        "the directory was written before pvsim recorded it.")
    return [h.section("The question", q),
            h.details(f"The resolved scenario ({name}: every default filled in)", h.pre(body))]


def _pngs(d: Path) -> list[Path]:
    """Every PNG file under ``d`` (not hidden ones): the top directory's first, each
    directory's in the order of :data:`_ORDER`."""
    def key(p: Path) -> tuple:
        rel = p.relative_to(d)
        order = next((i for i, o in enumerate(_ORDER) if p.stem == o
                      or (o.endswith(".") and p.stem.startswith(o))), len(_ORDER))
        return (len(rel.parts), rel.parent.as_posix(), order, p.name)

    return sorted((p for p in d.rglob("*.png") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(d).parts)),
                  key=key)


def _graphs(d: Path, pngs: list[Path], none: str) -> str:
    if not pngs:
        return h.section("Graphs", h.note(none))
    figs = []
    for p in pngs:
        try:
            figs.append(h.figure(p.relative_to(d).as_posix(), p.read_bytes()))
        except OSError as e:
            raise PvsimError(f"{p}: cannot read: {e.strerror}") from None
    return h.section(f"Graphs ({len(pngs)})", *figs)


def _blocks(summary: dict, where: str = "") -> list[str]:
    """summary.json's engine and reproducibility blocks (the latter if it has one)."""
    out = [h.key_values(summary.get("engine") or {}, f"engine{where} (summary.json engine: "
                        "wall-clock figures of the simulation itself)")]
    repro = summary.get("reproducibility")
    out.append(h.key_values(repro, f"reproducibility{where} (summary.json reproducibility)")
               if isinstance(repro, dict) else
               h.note(f"summary.json{where} has no reproducibility block (written before pvsim "
                      "recorded one)."))
    return out


def _meta(items: dict[str, object]) -> str:
    return h.note(" · ".join(f"{k} {v}" for k, v in items.items() if v not in (None, "")),
                  "meta")


def _read_json(f: Path) -> dict:
    try:
        doc = json.loads(f.read_bytes().decode("utf-8"))
    except OSError as e:
        raise PvsimError(f"{f}: cannot read: {e.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PvsimError(f"{f}: not valid JSON ({e}); the file is damaged") from None
    if not isinstance(doc, dict):
        raise PvsimError(f"{f}: not a JSON object; the file is damaged")
    return doc


def _read_parquet(f: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(f)
    except Exception as e:  # pyarrow raises several types for a damaged file
        why = (str(e).splitlines() or [type(e).__name__])[0][:120]
        raise PvsimError(f"{f}: not a readable Parquet file ({why})") from None


# --- a run -----------------------------------------------------------------------------------
def _run_tables(r, where: str = "") -> list[str]:
    out = [h.table(run_table(r))]
    for table in (io_table(r.summary), request_table(r.summary)):
        if table is not None:
            out.append(h.table(table))
    out.append(h.lines(device_lines(r.summary)))
    out.append(h.lines(stall_lines(r.summary, where), "warn"))
    return out


def _run(d: Path) -> tuple[str, list[str]]:
    from .results import Results

    r = Results.load(d)  # a damaged directory is refused here, naming the file
    s = r.summary
    marker = read_marker(d) or {}
    title = f"pvsim run {s['scenario']}"
    parts = [_meta({"hardware": s["hardware"], "simulated": f"{s['sim_time_s']:.3f} s",
                    "seed": s.get("seed"), "host CPU busy":
                    f"{s['host']['busy_fraction']:.1%}", "pvsim": s.get("pvsim_version"),
                    "run id": marker.get("run_id"), "directory": d}),
             *_question(d, d / RESOLVED),
             h.section("Summary", *_run_tables(r)),
             _graphs(d, _pngs(d), "This directory has no graphs (plots/ is empty or "
                     f"missing): pvsim plot {d} draws them."),
             h.section("Engine and reproducibility", *_blocks(s))]
    return title, parts


# --- a compare -------------------------------------------------------------------------------
def _compare(d: Path) -> tuple[str, list[str]]:
    from .compare import mode_problem
    from .results import Results

    f = d / "compare.csv"
    if not f.is_file():
        raise PvsimError(f"{f}: missing: the compare directory is incomplete")
    try:
        table = pd.read_csv(f)
    except (OSError, ValueError) as e:
        raise PvsimError(f"{f}: not a readable CSV file ({e})") from None
    missing = {"subject", "metric", "mode", "value", "relative"} - set(table.columns)
    if missing:
        raise PvsimError(f"{f}: not pvsim's compare table (no {', '.join(sorted(missing))})")
    dirs = sorted(p.parent.name for p in d.glob("*/summary.json"))
    modes = list(dict.fromkeys([*table["mode"], *dirs]))
    runs = {m: Results.load(d / m) for m in modes if m in dirs}
    first = next(iter(runs.values()), None)
    name = first.summary["scenario"] if first else d.name
    marker = read_marker(d) or {}
    notes = []
    for m, r in runs.items():  # a guest that could not run in a mode kept its own
        for i, g in enumerate(r.scenario.guests):
            why = mode_problem(r.scenario, i, m) if g.mode != m else None
            if why:
                notes.append(skipped_line(g.name, m, why))
    per_mode = []
    for m, r in runs.items():
        per_mode.append(h.details(f"the {m} run ({m}/): its guests, requests and engine",
                                  *_run_tables(r, f" in the {m} run"), *_blocks(r.summary,
                                                                               f" ({m})")))
    parts = [_meta({"modes": ", ".join(modes), "hardware": first.summary["hardware"]
                    if first else None, "simulated": f"{first.summary['sim_time_s']:.3f} s"
                    if first else None, "pvsim": marker.get("pvsim_version"),
                    "run id": marker.get("run_id"), "directory": d}),
             *_question(d, d / modes[0] / RESOLVED if modes else d / RESOLVED),
             *_mode_differences(d, modes),
             h.section("Performance relative to native",
                       h.table(compare_table(table, name, modes)), h.lines(notes)),
             h.section("Each mode's run", *per_mode),
             _graphs(d, _pngs(d), "This directory has no graphs (plots/ is empty or "
                     "missing).")]
    return f"pvsim compare {name}", parts


def _mode_differences(d: Path, modes: list[str]) -> list[str]:
    """Each mode's resolved scenario after the first as its differences from the first's
    (a unified diff: the modes, and the I/O paths a mode falls back to)."""
    first = _scenario_file(d / modes[0] / RESOLVED) if modes else None
    out = []
    for m in modes[1:]:
        got = _scenario_file(d / m / RESOLVED)
        if first is None or got is None:
            continue
        diff = "".join(difflib.unified_diff(
            first[1].splitlines(keepends=True), got[1].splitlines(keepends=True),
            f"{modes[0]}/{RESOLVED}", f"{m}/{RESOLVED}", n=2))
        out.append(h.details(f"The resolved scenario of the {m} run ({m}/{RESOLVED}): how it "
                             f"differs from the {modes[0]} run's",
                             h.pre(diff) if diff else h.note("No difference.")))
    return out


# --- a sweep and a plan ----------------------------------------------------------------------
def _load_sweep(d: Path):
    from .sweep import Sweep

    return Sweep.load(d)


def _every_metric(sw) -> str:
    """Every headline metric of the sweep: one row per metric, one column per point
    (mean ± the 95% confidence half-width)."""
    summary = sw.summary()
    points = [", ".join(str(row[a]) for a in sw.axes) for row in summary.to_dict("records")]
    rows = []
    for m in sw.metrics:
        mean, ci = summary[f"{m}.mean"], summary[f"{m}.ci"]
        if mean.isna().all():
            continue
        rows.append([m, *["" if pd.isna(x) else f"{x:.4g}" + ("" if pd.isna(c) else
                                                                f" ± {c:.2g}")
                          for x, c in zip(mean, ci, strict=True)]])
    return h.table(TextTable(f"every headline metric, per point ({', '.join(sw.axes)}): the "
                             "mean ± 95% CI half-width",
                             ["metric", *points], rows, right=set(points)))


def _sweep_meta(d: Path, sw) -> str:
    reps = int(sw.table.groupby("point").size().max()) if len(sw.table) else 0
    return _meta({"points": sw.table["point"].nunique(), "replications": reps,
                  "runs": len(sw.table), "axes": ", ".join(sw.axes), "directory": d})


def _sweep_blocks(d: Path) -> str:
    """A sweep's reproducibility.json (what ran it), if it has one; it has no engine
    block (it keeps each run's headline metrics, not its summary)."""
    f = d / "reproducibility.json"
    repro = (h.key_values(_read_json(f), "reproducibility (reproducibility.json: what ran "
                          "the sweep)") if f.is_file() else
             h.note("This directory has no reproducibility.json (written before pvsim "
                    "recorded one)."))
    return h.section("Engine and reproducibility", h.note(
        "A sweep's directory keeps each run's headline metrics (cache/), not its summary: "
        "there is no engine block. pvsim run of one point writes one."), repro)


def _scenario_name(d: Path, fallback: str) -> str:
    got = _scenario_file(d / RESOLVED)
    if got is None:
        return fallback
    for line in got[1].splitlines():
        if line.startswith("name:"):
            return line.split(":", 1)[1].strip().strip("'\"")
    return fallback


def _sweep(d: Path) -> tuple[str, list[str]]:
    sw = _load_sweep(d)
    name = _scenario_name(d, d.name)
    parts = [_sweep_meta(d, sw), *_question(d, d / RESOLVED),
             h.section("The points", h.table(sweep_table(sw, name)),
                       h.details("Every headline metric", _every_metric(sw))),
             _graphs(d, _pngs(d), "This directory has no graphs (plots/ is empty or "
                     "missing)."),
             _sweep_blocks(d)]
    return f"pvsim sweep {name}", parts


def _plan(d: Path) -> tuple[str, list[str]]:
    sw = _load_sweep(d)
    if sw.axes:  # its points in the order of the axis, not of the search
        sw.table["point"] = sw.table[sw.axes[0]].rank(method="dense").astype(int) - 1
    p = _read_json(d / "plan.json")
    for key in ("path", "slos", "answer", "stop", "limit", "verdicts"):
        if key not in p:
            raise PvsimError(f"{d / 'plan.json'}: no {key!r}: not a pvsim plan")
    name = _scenario_name(d, d.name)
    said = plan_lines(p)
    answer = said[-1]
    slos = p["slos"]
    conf = p.get("confidence")
    heads = ["value", "decision", *slos, "why it fails"]
    rows = []
    for v in sorted(p["verdicts"], key=lambda v: v["value"]):
        decision = "holds" if v["holds"] else "fails" if v["valid"] else "not a valid scenario"
        cells = []
        for s in slos:
            m = v["margins"].get(s)
            edge, slack = (None, None) if m is None else (m["bound_of_mean"], m["slack"])
            cells.append("" if m is None else ("n/a" if edge is None else f"{edge:.4g}")
                         + ("" if slack is None else f" ({slack:+.3g})"))
        rows.append([str(v["value"]), decision, *cells, "; ".join(v["reasons"])])
    decisions = TextTable(
        f"the decision at each value of {p['path']} evaluated"
        + (f" ({conf:.0%} one-sided confidence)" if conf else ""), heads, rows,
        caption="each SLO's column: the confidence bound of the metric's mean over the "
                "replications, and in brackets its slack to the SLO's bound (> 0: inside); "
                "a value holds when every SLO's bound is inside",
        right={"value", *slos}, prose={"why it fails"})
    metrics = [s.split()[0] for s in slos if s.split()[0] in sw.metrics]
    runs = sweep_table(sw, name, metrics or None)
    runs.title = runs.title.replace("pvsim sweep", "the runs of pvsim plan", 1)
    parts = [_sweep_meta(d, sw), *_question(d, d / RESOLVED),
             h.section("The answer",
                       h.note(answer, "ok" if p["answer"] is not None else "warn"),
                       h.lines([f"SLO: {s}" for s in slos]
                               + [f"searched {p['path']} up to {p['limit']}"]),
                       h.table(decisions)),
             h.section("The runs", h.table(runs),
                       h.details("Every headline metric", _every_metric(sw))),
             _graphs(d, _pngs(d), "This directory has no graphs (plots/ is empty or "
                     "missing)."),
             _sweep_blocks(d)]
    return f"pvsim plan {name}: {p['path']}", parts
