"""The ``pvsim`` command line.

Every command's errors are one line on stderr and exit status 2; no traceback. Each
command imports what it needs (the simulation engine, pandas, the plotting stack, rich)
when it runs, so ``--version``, ``--help`` and a bad argument are answered without loading
them (``benchmarks/cli_startup.py`` measures it): the names of the engine's components
that a help lists are looked up only when it is printed (:mod:`analysis.cliparse`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from model import __version__
from model.errors import PvsimError, valid_choices
from model.fidelity import FIDELITIES

from .cliparse import Later, Parser, RawEpilog, os_kinds
from .metric_catalog import describe as describe_metrics
from .reproducibility import invoked_as

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from .tablerows import TextTable


def _overrides(args: argparse.Namespace) -> list[str]:
    """The command's ``--set`` overrides, and ``--fidelity`` as one."""
    return [*args.set, *([f"fidelity={args.fidelity}"] if args.fidelity else [])]


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _output(args: argparse.Namespace, name: str, suffix: str = "") -> Path:
    """Where a run's results directory goes: ``-o`` (checked now, before the run, so a
    refusal is immediate) or a new ``results/NAME-TIME[SUFFIX]``."""
    from .resultsdir import default_dir, preflight

    if args.output is None:
        return preflight(default_dir("results", name, suffix), unique=True)
    return preflight(Path(args.output), args.force)


@contextmanager
def _one_file(path: str | Path) -> Iterator[Path]:
    """Write one output file (atomically, in the block): an ``OSError`` becomes one line
    saying whether the previous file is unchanged."""
    from .resultsdir import remove_stale_temps

    p = Path(path)
    existed = p.exists()
    remove_stale_temps(p.parent, p.name)
    try:
        yield p
    except OSError as e:
        raise PvsimError(f"{p}: cannot write: {e.strerror or e}; "
                         + ("the previous file is unchanged" if existed else "nothing written")
                         ) from None


def _bench(args: argparse.Namespace, out: Console) -> int:
    from rich.table import Table

    from model.categories import NAMES
    from model.errors import UnsupportedModeError
    from model.hardware import DEFAULT_PROFILE, load_profile
    from model.microbench import OPS, run_bench
    from model.modes import MODES, baseline_mode, is_modified

    from .reproducibility import reproducibility
    from .resultsdir import write_atomically

    hardware = DEFAULT_PROFILE if args.hardware is None else args.hardware
    hw = load_profile(hardware)
    modes = _csv(args.modes) if args.modes else list(MODES)
    for m in modes:
        if m not in MODES:
            raise PvsimError(f"unknown mode {m!r}; {valid_choices(m, MODES)}")
    for m in modes:  # a mode that cannot run the OS at all is an error (pv: a modified one)
        problem = MODES[m].problem(modified_os=is_modified(args.os))
        if problem is not None:
            raise UnsupportedModeError(problem)
    ops = _csv(args.ops) if args.ops else list(OPS)
    for op in ops:
        if op not in OPS:
            raise PvsimError(f"unknown op {op!r}; {valid_choices(op, OPS)}")
    skipped = []
    for m in modes:
        problem = MODES[m].problem(hw)
        if problem is not None:
            if args.modes:  # asked for explicitly: an error, not a silent skip
                raise UnsupportedModeError(problem)
            skipped.append((m, problem))
    t = time.perf_counter()
    results = run_bench(hardware, [m for m in modes if m not in dict(skipped)], ops)
    wall = time.perf_counter() - t
    table = Table(title=f"pvsim bench on {hw.name} ({hw.description})")
    for col in ("op", "mode", "latency us", "cycles", "vs native"):
        table.add_column(col, justify="left" if col in ("op", "mode") else "right")
    cats = [c for c in NAMES if c != "idle" and any(r.breakdown.get(c) for r in results)]
    for c in cats:
        table.add_column(c, justify="right")
    base = baseline_mode()
    native = {r.op: r.cycles for r in results if r.mode == base}
    for r in sorted(results, key=lambda r: (ops.index(r.op), modes.index(r.mode))):
        rel = f"{r.cycles / native[r.op]:.2f}x" if native.get(r.op) else ""
        table.add_row(r.op, r.mode, f"{r.latency_us:.3f}", f"{r.cycles:,.0f}", rel,
                      *[f"{r.breakdown.get(c, 0):,.0f}" for c in cats])
    out.print(table)
    for m, why in skipped:
        out.print(f"[yellow]skipped mode {m}:[/] {why}")
    if args.plot and base in modes and len(modes) > 1:
        rows = [{"subject": r.op, "metric": "cycles per operation", "mode": r.mode,
                 "value": r.cycles, "relative": native[r.op] / r.cycles}
                for r in results if native.get(r.op) and r.cycles]
        with _one_file(args.plot) as f:
            import pandas as pd

            from .plots import relative_performance, save_figure
            save_figure(relative_performance(pd.DataFrame(rows), title=(
                f"pvsim bench on {hw.name}: performance relative to native")), f)
        out.print(f"wrote {args.plot}")
    if args.json:
        from model.record import EXACT  # bench runs the instruction-level engine

        doc = {"hardware": hw.name, "pvsim_version": __version__,
               "results": [r.as_dict() for r in results],
               "skipped": [{"mode": m, "reason": why} for m, why in skipped],
               "engine": {"wall_s": wall, "runs": len(results)},
               "reproducibility": reproducibility(EXACT).to_dict()}
        with _one_file(args.json) as f:
            write_atomically(f, json.dumps(doc, indent=1) + "\n")
        out.print(f"wrote {args.json}")
    return 0


def _validate(args: argparse.Namespace, out: Console) -> int:
    from .validate import validate
    from .validate_render import render

    checks = validate(sets=args.set)
    render(checks, out)
    return 0 if all(c.ok for c in checks) else 1


def _progress(label: str, total: float, unit: str = "s"):
    """A progress bar with the time left on stderr when it is a terminal, otherwise
    quiet (:func:`analysis.progress.progress_bar`)."""
    from .progress import progress_bar

    return progress_bar(label, total, unit, show=sys.stderr.isatty())


def _run(args: argparse.Namespace, out: Console) -> int:
    from model.scenario import load_scenario

    scenario = load_scenario(args.scenario, _overrides(args))

    from .plots import save_all
    from .results import TABLES
    from .resultsdir import staged
    from .run import simulate
    from .tablerows import device_lines, io_table, request_table, run_table
    dest = _output(args, scenario.name)
    with _progress(f"simulating {scenario.name}", scenario.duration, "s simulated") as update:
        results = simulate(scenario, args.seed,
                           progress=lambda f: update(f * scenario.duration))
    summary = results.summary
    with staged(dest, force=args.force, unique=args.output is None) as st:
        results.write_files(st.path, st.run_id)
        plots = save_all(results, st.path)
    dest = results.source = st.dest
    out.print(_rich(run_table(results)))
    for table in (io_table(summary), request_table(summary)):
        if table is not None:
            out.print(_rich(table))
    for line in device_lines(summary):
        out.print(line)
    _report_stalls(summary, out)
    trace = ", trace.json.gz" if scenario.record.trace == "perfetto" else ""
    out.print(f"wrote {dest}/ (summary.json, scenario.resolved.yaml, "
              f"{', '.join(f for f, _ in TABLES.values())}{trace}, {len(plots)} plots)")
    return 0


def _rich(t: TextTable) -> Table:
    """A :class:`~analysis.tablerows.TextTable` as rich prints it: numbers aligned right,
    running text wrapped, every cell as text (a metric ``io_p50_ms[ssd0:read]`` is not
    rich markup)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(t.title), caption=escape(t.caption) if t.caption else None)
    for head in t.columns:
        table.add_column(escape(head), justify="right" if head in t.right else "left",
                         overflow="fold" if head in t.prose else "ellipsis")
    for row in t.rows:
        table.add_row(*map(escape, row))
    return table


def _report_stalled_runs(table, out: Console) -> None:
    """Runs of a sweep or plan in which some vCPU stalled (their figures understate what
    the host can do for reasons that are not load)."""
    from .metrics import STALLED

    bad = table[table[STALLED] > 0] if STALLED in table else table.iloc[:0]
    if len(bad):
        out.print(f"[bold red]stalled:[/] {len(bad)} of {len(table)} runs ended with vCPUs "
                  "blocked that nothing would wake (host.stalled_vcpus > 0): pvsim run of "
                  "such a point names them and why")


def _report_stalls(summary: dict, out: Console, where: str = "") -> None:
    """A stalled vCPU serves nothing, which reads like overload: say so, loudly."""
    for s in summary["invariants"]["stalled"]:
        out.print(f"[bold red]stalled{where}:[/] {s['vcpu']} blocked since "
                  f"{s['blocked_since_s']:.6f} s: {s['why']}")


def _plot(args: argparse.Namespace, out: Console) -> int:
    from .results import Results

    results = Results.load(args.directory)  # a damaged directory is refused here
    from .plots import save_all

    plots = save_all(results, args.directory)
    out.print(f"wrote {len(plots)} plots to {Path(args.directory) / 'plots'}/: "
              f"{', '.join(p.name for p in plots)}")
    return 0


def _trace(args: argparse.Namespace, out: Console) -> int:
    from .perfetto import TraceLimits, trace_directory

    if args.max_requests is not None and args.max_requests < 0:
        raise PvsimError(f"--max-requests: {args.max_requests} is not a count (0 or more)")
    limits = TraceLimits(**({} if args.max_requests is None else
                            {"requests": args.max_requests}))
    with _one_file(args.output or Path(args.directory) / "trace.json.gz") as f:
        path = trace_directory(args.directory, f, limits, force=args.force)
    out.print(f"wrote {path} (open it in ui.perfetto.dev or chrome://tracing; no vCPU "
              "events: a results directory does not keep the event log)")
    return 0


def _compare(args: argparse.Namespace, out: Console) -> int:
    from model.scenario import load_scenario

    scenario = load_scenario(args.scenario, _overrides(args))
    from model.modes import MODES, baseline_mode

    from .compare import compare
    from .plots import cpu_breakdown_by_mode, relative_performance, save_figure
    from .resultsdir import staged, write_atomically
    from .tablerows import compare_table, skipped_line
    modes = _csv(args.modes) if args.modes is not None else list(MODES)
    dest = _output(args, scenario.name, "-compare")
    with _progress(f"comparing {scenario.name}", len(modes), "runs") as update:
        c = compare(scenario, modes, args.seed,
                    progress=lambda m, f: update(modes.index(m) + f))
    out.print(_rich(compare_table(c.table, scenario.name, modes)))
    for guest, mode, why in c.skipped:
        out.print(f"[yellow]{skipped_line(guest, mode, why)}[/]")
    for m, r in c.runs.items():
        _report_stalls(r.summary, out, f" in the {m} run")
    with staged(dest, force=args.force, kind="compare", unique=args.output is None) as st:
        for m, r in c.runs.items():
            r.write_files(st.path / m, st.run_id)
        write_atomically(st.path / "compare.csv", c.table.to_csv(index=False))
        base = baseline_mode()
        if (c.table["mode"] != base).any() and (c.table["mode"] == base).any():
            save_figure(relative_performance(c.table),
                        st.path / "plots" / "relative_performance.png")
        save_figure(cpu_breakdown_by_mode(c.runs),
                    st.path / "plots" / "cpu_breakdown_by_mode.png")
    dest = st.dest
    for m, r in c.runs.items():
        r.source = dest / m
    out.print(f"wrote {dest}/ (compare.csv, plots/, and one results directory per mode)")
    return 0


def _sweep(args: argparse.Namespace, out: Console) -> int:
    from model.scenario import load_scenario

    from .design import factorial, parse_vary, read_design

    scenario = load_scenario(args.scenario, _overrides(args))
    if bool(args.vary) == bool(args.design):
        raise PvsimError("give the points with --vary PATH=V1,V2 (repeatable) or with "
                         "--design FILE, not both")
    points = factorial([parse_vary(v) for v in args.vary]) if args.vary else read_design(
        args.design)

    from .plots.sweep import save_sweep_plots
    from .sweep import sweep
    from .tablerows import sweep_table
    dest = Path(args.output or f"results/{scenario.name}-sweep")  # re-running resumes
    total = len(points) * args.replications
    with _progress(f"sweeping {scenario.name}", total, "runs") as update:
        sw = sweep(scenario, points, args.replications, args.jobs, args.dask,
                   cache_dir=dest / "cache", progress=lambda done, _: update(done))
    sw.save(dest)
    plots = save_sweep_plots(sw, dest)
    out.print(_points_table(out, sweep_table(sw, scenario.name), len(sw.axes)))
    _report_damaged(sw, dest / "cache", out)
    _report_stalled_runs(sw.table, out)
    out.print(f"{sw.ran} runs computed, {sw.cached} read from the cache; wrote {dest}/ "
              f"(sweep.parquet, sweep_summary.csv, {len(plots)} plots)")
    return 0


def _points_table(out: Console, t: TextTable, n_axes: int) -> Table:
    """A sweep's table (its first ``n_axes`` columns the varied axes, a metric per column
    after them) as rich prints it, a point per row; if that is wider than ``out`` and a
    metric per row (a column per point) is not, the latter."""
    from .tablerows import TextTable

    table = _rich(t)
    wide = out.options.update_width(1 << 16)  # a table's natural width, not capped
    if out.measure(table, options=wide).maximum <= out.width:
        return table
    axes = t.columns[:n_axes]
    points = ["\n".join(f"{a}={v}" for a, v in zip(axes, row[:n_axes], strict=True))
              for row in t.rows]
    turned = _rich(TextTable(
        t.title, ["metric", *points],
        [[m, *[row[n_axes + i] for row in t.rows]] for i, m in enumerate(t.columns[n_axes:])],
        t.caption, right=set(points)))
    return turned if out.measure(turned, options=wide).maximum <= out.width else table


def _report_damaged(sw, cache: Path, out: Console) -> None:
    """Damaged cache entries were recomputed: say how many, and what was wrong."""
    if sw.recomputed:
        name, why = next(iter(sw.damaged.items()))
        n = sw.recomputed
        out.print(f"[yellow]{n} cache {'entries were' if n > 1 else 'entry was'} damaged and "
                  f"recomputed[/] (such as {cache / name}: {why})")


def _plan(args: argparse.Namespace, out: Console) -> int:
    from model.scenario import load_scenario

    scenario = load_scenario(args.scenario, _overrides(args))
    from .plan import parse_slo, plan
    from .plots.sweep import save_plan_plot
    from .progress import plan_progress
    from .tablerows import plan_lines
    slos = [parse_slo(t) for t in args.slo]
    dest = Path(args.output or f"results/{scenario.name}-plan")  # re-running resumes

    with _progress(f"planning {scenario.name}", 0, "values decided") as update:
        p = plan(scenario, args.vary, slos, args.start, args.limit, args.replications,
                 args.confidence, args.jobs, args.dask, cache_dir=dest / "cache",
                 progress=plan_progress(args.vary, args.limit, update, out.print))
    p.save(dest)
    plots = save_plan_plot(p, dest)
    _report_damaged(p.sweep, dest / "cache", out)
    _report_stalled_runs(p.sweep.table, out)
    outcome = plan_lines(p.to_dict())[-1]  # the capacity and its margins, or none
    if p.answer is None:
        out.print(f"[red]no capacity:[/]{outcome.removeprefix('no capacity:')}")
        return 0
    lead = f"capacity: {args.vary} = {p.answer}"
    out.print(f"[bold]{lead}[/]{outcome.removeprefix(lead)}")
    out.print(f"wrote {dest}/ (sweep.parquet, sweep_summary.csv, {len(plots)} plots)")
    return 0


def _diff(args: argparse.Namespace, out: Console) -> int:
    from .diff import diff, to_json
    from .diff_render import render
    from .resultsdir import write_atomically

    d = diff(args.a, args.b, args.confidence)
    render(d, out, show_all=args.all, top=args.top)
    if args.json:
        with _one_file(args.json) as f:
            write_atomically(f, to_json(d))
        out.print(f"wrote {args.json}")
    return 0 if d.identical else 1


def _report(args: argparse.Namespace, out: Console) -> int:
    from .report import REPORT_FILE, write_report

    with _one_file(args.output or Path(args.directory) / REPORT_FILE) as f:
        written = write_report(args.directory, f)
    out.print(f"wrote {written}")
    return 0


def _schema(args: argparse.Namespace, out: Console) -> int:
    if args.summary:
        from .summary_schema import describe

        print(describe())
        return 0
    from model.scenario import scenario_schema

    print(json.dumps(scenario_schema(), indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="pvsim", description="Simulate a virtualized server: PV, binary "
                     "translation and hardware-assisted guests on an emulated CPU/MMU.")
    parser.add_argument("--version", action="version", version=f"pvsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    b = sub.add_parser("bench", help="OS microbenchmarks in each virtualization mode")
    b.add_argument("--hardware", help="hardware profile ({profiles})")
    b.add_argument("--modes", help="comma-separated modes (default {modes})")
    b.add_argument("--ops", help="comma-separated ops (default all: {ops})")
    b.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    b.add_argument("--plot", metavar="PNG", help="also draw performance relative to native")
    b.add_argument("--os", choices=Later(os_kinds), default="modified", metavar="OS",
                   help="whether the guest kernel is paravirtualized: {os_kinds} "
                   "(default modified; pv needs modified)")
    v = sub.add_parser("validate", help="simulated versus published figures: AA06's "
                       "nanobenchmarks, and the native lmbench and forkwait targets")
    v.add_argument("--set", action="append", metavar="NAME",
                   help="only this set of figures (repeatable; default all: the sets of "
                   "analysis/published.yaml)")
    r = sub.add_parser("run", help="run a scenario file and write its results directory")
    r.add_argument("scenario", help="the scenario YAML file")
    r.add_argument("-o", "--output", help="results directory (default results/NAME-TIME); "
                   "replaced whole at the end of the run")
    r.add_argument("--force", action="store_true", help="replace the -o directory (and all "
                   "in it) even if it is not a pvsim results directory")
    r.add_argument("--seed", type=int, help="override the scenario's seed")
    r.add_argument("--fidelity", choices=FIDELITIES, help="the engine: exact (instruction "
                   "level, the default) or fast (request level; model/fast says what it runs)")
    r.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="override a scenario field, such as guests.web.count=8 (repeatable)")
    c = sub.add_parser("compare", help="run a scenario with every guest in each mode and "
                       "compare to native")
    c.add_argument("scenario", help="the scenario YAML file")
    c.add_argument("--modes", help="comma-separated modes (default {modes})")
    c.add_argument("-o", "--output", help="output directory (default results/NAME-compare-TIME)")
    c.add_argument("--force", action="store_true", help="replace the -o directory (and all "
                   "in it) even if it is not a pvsim results directory")
    c.add_argument("--seed", type=int, help="override the scenario's seed")
    c.add_argument("--fidelity", choices=FIDELITIES, help="the engine: exact (instruction "
                   "level, the default) or fast (request level; model/fast says what it runs)")
    c.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="override a scenario field (repeatable)")
    w = sub.add_parser("sweep", help="run a scenario over a design of points, replicated")
    w.add_argument("scenario", help="the scenario YAML file")
    w.add_argument("--vary", action="append", default=[], metavar="PATH=V1,V2,...",
                   help="an axis of a full factorial design (repeatable)")
    w.add_argument("--design", metavar="FILE", help="explicit points: CSV or YAML")
    plan_parser = sub.add_parser("plan", help="the largest value of an axis at which every "
                                 "SLO holds", epilog=describe_metrics(),
                                 formatter_class=RawEpilog)
    for q in (w, plan_parser):
        if q is not w:
            q.add_argument("scenario", help="the scenario YAML file")
            q.add_argument("--vary", required=True, metavar="PATH",
                           help="the integer axis, such as guests.web.count")
            q.add_argument("--slo", action="append", required=True, metavar="'METRIC < BOUND'",
                           help="a service-level objective on a headline metric, such as "
                           "'group.web.request_p99_ms < 50' or, with a unit, '< 50ms', "
                           "'host.busy_fraction < 80%%' (repeatable; the metrics and their "
                           "units are listed below)")
            q.add_argument("--start", type=int, help="first value (default: the scenario's)")
            q.add_argument("--limit", type=int, default=1024, help="largest value to try")
            q.add_argument("--confidence", type=float, default=0.95,
                           help="one-sided confidence of each decision (default 0.95)")
        q.add_argument("--replications", type=int, default=3 if q is not w else 1,
                       help="runs per point, each with its own seed")
        q.add_argument("--jobs", type=int, default=1, help="local worker processes")
        q.add_argument("--dask", metavar="ADDRESS",
                       help="a Dask scheduler address, or local:N for a local cluster")
        q.add_argument("-o", "--output", help="output directory (default under results/)")
        q.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                       help="override a scenario field (repeatable)")
        q.add_argument("--fidelity", choices=FIDELITIES,
                       help="the engine: exact (the default) or fast")
    g = sub.add_parser("plot", help="draw (again) the graphs of a results directory")
    g.add_argument("directory", help="a results directory written by pvsim run")
    t = sub.add_parser("trace", help="write the Perfetto / chrome://tracing timeline of a "
                       "results directory (trace.json.gz)")
    t.add_argument("directory", help="a results directory of a run with record.trace: true "
                   "or perfetto")
    t.add_argument("-o", "--output", help="the trace file (default DIR/trace.json.gz; "
                   "plain JSON unless it ends in .gz)")
    t.add_argument("--force", action="store_true", help="replace the trace file if it "
                   "exists")
    t.add_argument("--max-requests", type=int, metavar="N", help="I/O requests shown in "
                   "full, the first after the warm-up (default 10000; 1000 more are sampled)")
    rp = sub.add_parser("report", help="one self-contained HTML file for a results directory "
                        "(a run, a compare, a sweep or a plan)")
    rp.add_argument("directory", help="a results directory written by pvsim run, compare, "
                    "sweep or plan")
    rp.add_argument("-o", "--output", metavar="FILE",
                    help="the HTML file to write (default DIR/report.html)")
    h = sub.add_parser("schema", help="print the scenario file's JSON Schema (or, with "
                       "--summary, the keys of summary.json)")
    h.add_argument("--summary", action="store_true", help="instead, every key of a run's "
                   "summary.json with its unit and meaning")
    d = sub.add_parser("diff", help="two results directories (runs, compares or sweeps) side "
                       "by side, metric by metric; exit status 0 if no metric differs, 1 if "
                       "some do, 2 on an error")
    d.add_argument("a", help="results directory A (the reference)")
    d.add_argument("b", help="results directory B, of the same kind")
    d.add_argument("--all", action="store_true", help="show the identical metrics too")
    d.add_argument("--top", type=int, default=40,
                   help="most changed metrics shown per point (default 40; 0: all)")
    d.add_argument("--confidence", type=float, default=0.95,
                   help="a change is significant when Welch's p < 1 - this (default 0.95)")
    d.add_argument("--json", metavar="FILE", help="also write every metric as JSON")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if getattr(args, "seed", None) is not None and not 0 <= args.seed < 2**64:
        parser.error(f"argument --seed: must be 0 to {2**64 - 1:,} (got {args.seed})")
    from rich.console import Console

    out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    try:
        command = {"bench": _bench, "validate": _validate, "run": _run, "compare": _compare,
                   "sweep": _sweep, "plan": _plan, "plot": _plot, "trace": _trace,
                   "report": _report, "schema": _schema, "diff": _diff}[args.command]
        with invoked_as(["pvsim", *argv]):  # recorded in each run's reproducibility block
            return command(args, out)
    except PvsimError as e:
        print(f"pvsim: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file or directory that cannot be read or written
        where = f"{e.filename}: " if e.filename else ""
        print(f"pvsim: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
