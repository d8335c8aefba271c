"""Results directories written safely and read defensively (issue 10: M2, M4, M5, M6 and
the bench --json fault). The scenarios are the reproducers, in tests/data/reliability/."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import analysis.cli
import analysis.compare
import analysis.plots
import analysis.resultsdir
import analysis.run
from analysis.cli import main
from analysis.results import TABLES, Results
from analysis.resultsdir import MARKER, read_marker
from model.errors import PvsimError

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "reliability"
TINY = str(DATA / "cli_tiny.yaml")
SPIN = str(DATA / "cli_spin.yaml")
WS = str(DATA / "default_outdir_same_second.yaml")
LONG_NAME = str(DATA / "scenario_name_300_chars_default_outdir.yaml")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # this worktree's packages first


def one_error(capsys) -> str:
    """The single ``pvsim: error:`` line on stderr (and no traceback)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pvsim: error: "), err
    return lines[0]


def complete(d: Path, scenario: str | None = None) -> Results:
    """``d`` is a whole results directory of one run: it loads, its manifest is exactly
    its files, and no temporary file is in it."""
    r = Results.load(d)
    marker = read_marker(d)
    files = sorted(p.relative_to(d).as_posix() for p in d.rglob("*")
                   if p.is_file() and p.name != MARKER)
    assert marker is not None and marker["files"] == files
    assert not [f for f in files if f.endswith(".tmp")]
    if scenario:
        assert r.summary["scenario"] == scenario
    return r


def staging_dirs(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".pvsim-" in p.name)


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """F-CLI-4's good directory: cli_tiny run with its plots."""
    d = tmp_path_factory.mktemp("good") / "good"
    assert main(["run", TINY, "-o", str(d)]) == 0
    return d


@pytest.fixture(scope="module")
def spin_run(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("spin") / "spin"
    assert main(["run", SPIN, "-o", str(d)]) == 0
    return d


def copy_of(d: Path, tmp_path: Path, name: str = "r") -> Path:
    out = tmp_path / name
    shutil.copytree(d, out)
    return out


# --- M2: pvsim plot on damaged directories -------------------------------------------------
def _truncate(f: Path) -> None:
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])


DAMAGE = {  # F-CLI-4, and a few more: how to damage it -> (the file named, what is said)
    "trunc_parquet": (lambda d: _truncate(d / "requests.parquet"),
                      "requests.parquet", "not a readable Parquet file"),
    "garbage_parquet": (lambda d: (d / "timeseries.parquet").write_text("garbage\n"),
                        "timeseries.parquet", "not a readable Parquet file"),
    "trunc_summary": (lambda d: _truncate(d / "summary.json"), "summary.json",
                      "not valid JSON"),
    "summary_list": (lambda d: (d / "summary.json").write_text("[1, 2]\n"), "summary.json",
                     "a JSON list, not an object"),
    "summary_bad_utf8": (lambda d: (d / "summary.json").write_bytes(b"\xff\xfe{}"),
                         "summary.json", "not UTF-8"),
    "wrong_columns": (lambda d: shutil.copy(d / "cpu.parquet", d / "requests.parquet"),
                      "requests.parquet", "not the requests table"),
    "missing_table": (lambda d: (d / "guests.parquet").unlink(), "guests.parquet", "missing"),
    "summary_no_guests": (lambda d: (d / "summary.json").write_text(json.dumps(
        {k: v for k, v in json.loads((d / "summary.json").read_text()).items()
         if k != "guests"})), "summary.json", "no 'guests'"),
    "summary_empty": (lambda d: (d / "summary.json").write_text(""), "summary.json",
                      "not valid JSON"),
    "wrong_dtype": (lambda d: pd.read_parquet(d / "cpu.parquet").astype({"cycles": str})
                    .to_parquet(d / "cpu.parquet"), "cpu.parquet", "column 'cycles'"),
    "other_runs_scenario": (lambda d: (d / "scenario.resolved.yaml").write_text(
        (d / "scenario.resolved.yaml").read_text().replace("name: tiny", "name: other", 1)),
        "", "from different runs"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_plot_of_a_damaged_directory_is_one_line_naming_the_file(damage, good, tmp_path,
                                                                 capsys):
    d = copy_of(good, tmp_path)
    spoil, file, says = DAMAGE[damage]
    spoil(d)
    assert main(["plot", str(d)]) == 2
    line = one_error(capsys)
    assert f"{d / file}" in line and says in line, line
    with pytest.raises(PvsimError, match=says):
        Results.load(d)


def test_plot_of_a_damaged_directory_is_quick_and_small(good, tmp_path):
    d = copy_of(good, tmp_path)
    (d / "requests.parquet").write_bytes(os.urandom(1 << 20))
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-c", "import sys\n"
                        "from analysis.cli import main\n"
                        "rc = main(['plot', sys.argv[1]])\n"
                        "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])\n"
                        "raise SystemExit(rc)", str(d)],
                       capture_output=True, text=True, env=ENV, timeout=60)
    assert time.monotonic() - t < 5 + 3  # 5 s, and the interpreter's start
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert int(r.stdout.split()[-1]) < 300 * 1024  # peak RSS, kB (this process only)


def test_plot_of_a_compare_directory_names_its_runs(tmp_path, capsys):
    assert main(["compare", SPIN, "--modes", "native,pv", "-o", str(tmp_path / "c")]) == 0
    assert main(["plot", str(tmp_path / "c")]) == 2
    line = one_error(capsys)
    assert "a pvsim compare directory" in line and str(tmp_path / "c" / "pv") in line
    complete(tmp_path / "c" / "pv", "spin")
    assert read_marker(tmp_path / "c")["kind"] == "compare"
    assert main(["plot", str(tmp_path / "c" / "pv")]) == 0  # a run of it: its own manifest
    assert main(["compare", SPIN, "--modes", "native", "-o", str(tmp_path / "c")]) == 0
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        MARKER, "compare.csv", "native", "plots"]


def test_plot_redraws_and_keeps_the_manifest(spin_run, tmp_path):
    d = copy_of(spin_run, tmp_path)
    for p in (d / "plots").glob("*.png"):
        p.unlink()
    (d / "plots" / ".topology.png.tmp-999999999-abc.tmp").write_text("a killed redraw's")
    assert main(["plot", str(d)]) == 0
    complete(d, "spin")  # stale temporary files of dead processes removed too
    assert main(["run", SPIN, "-o", str(d)]) == 0  # still pvsim's to replace


# --- M4: the directory is replaced whole, or not at all ------------------------------------
def test_a_rerun_replaces_the_whole_directory(spin_run, good, tmp_path):
    d = copy_of(good, tmp_path)
    assert main(["run", SPIN, "-o", str(d)]) == 0
    r = complete(d, "spin")
    assert {p.name for p in (d / "plots").glob("*.png")} == {"cpu_breakdown.png",
                                                             "topology.png"}
    assert len(r.requests) == 0 and staging_dirs(tmp_path) == []


def test_a_rerun_swaps_by_two_renames_where_exchange_is_missing(good, tmp_path,
                                                                monkeypatch):
    monkeypatch.setattr(analysis.resultsdir, "_exchange", lambda a, b: False)
    d = copy_of(good, tmp_path)
    assert main(["run", SPIN, "-o", str(d)]) == 0
    complete(d, "spin")
    assert staging_dirs(tmp_path) == []


def test_a_failed_run_leaves_the_previous_results_untouched(good, tmp_path, monkeypatch,
                                                            capsys):
    d = copy_of(good, tmp_path)
    before = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}

    def fail(*a, **k):
        raise PvsimError("the simulation failed")
    monkeypatch.setattr(analysis.run, "simulate", fail)
    assert main(["run", SPIN, "-o", str(d)]) == 2
    assert "the simulation failed" in one_error(capsys)
    assert {p: p.read_bytes() for p in d.rglob("*") if p.is_file()} == before


def test_an_interrupt_while_writing_leaves_the_previous_results(good, tmp_path, monkeypatch):
    """A kill half-way through writing, as an exception raised from the plot writer."""
    d = copy_of(good, tmp_path)
    before = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}

    def killed(r, directory, dpi=120):
        assert (Path(directory) / "summary.json").is_file()  # after the summary: M4's case
        raise KeyboardInterrupt
    monkeypatch.setattr(analysis.plots, "save_all", killed)
    with pytest.raises(KeyboardInterrupt):
        main(["run", SPIN, "-o", str(d)])
    assert {p: p.read_bytes() for p in d.rglob("*") if p.is_file()} == before
    complete(d, "tiny")
    assert staging_dirs(tmp_path) == []


def test_a_full_disk_midway_leaves_the_previous_results(good, tmp_path, monkeypatch, capsys):
    d = copy_of(good, tmp_path)
    before = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    real, calls = pd.DataFrame.to_parquet, []

    def to_parquet(self, *a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, *a, **k)
    monkeypatch.setattr(pd.DataFrame, "to_parquet", to_parquet)
    assert main(["run", SPIN, "-o", str(d)]) == 2
    line = one_error(capsys)
    assert f"{d}: cannot write the results: No space left on device" in line
    assert "previous contents are untouched" in line
    assert {p: p.read_bytes() for p in d.rglob("*") if p.is_file()} == before
    assert staging_dirs(tmp_path) == []


def test_a_killed_rerun_shows_the_old_run_whole_and_its_litter_goes(spin_run, tmp_path):
    """stale_plots_after_kill.py: SIGKILL a re-run after it has written summary.json;
    the directory is still the first run, whole (no plot of either run mixed in)."""
    d = copy_of(spin_run, tmp_path)
    p = subprocess.Popen([sys.executable, "-m", "analysis.cli", "run", WS, "-o", str(d)],
                         cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    killed = False
    try:
        deadline = time.monotonic() + 120
        while p.poll() is None and time.monotonic() < deadline:
            if any((tmp_path / s / "summary.json").is_file() for s in staging_dirs(tmp_path)):
                os.killpg(p.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.002)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    if not killed:  # it finished first: then the new run, whole
        complete(d, "ws")
        pytest.skip("the run finished before it could be killed")
    complete(d, "spin")
    litter = staging_dirs(tmp_path)
    assert litter and all(".r.pvsim-tmp-" in s for s in litter)  # obviously garbage
    assert main(["run", SPIN, "-o", str(d)]) == 0
    assert staging_dirs(tmp_path) == []  # the next run into the parent removes it


def test_a_swap_killed_between_its_renames_is_undone(spin_run, tmp_path, monkeypatch):
    """Without an atomic exchange the swap is two renames; killed between them, the old
    directory is aside: the next run into the parent puts it back first."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    shutil.copytree(spin_run, tmp_path / f".r.pvsim-old-{dead.pid}-0123abcd")

    def killed(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(analysis.plots, "save_all", killed)
    with pytest.raises(KeyboardInterrupt):
        main(["run", SPIN, "-o", str(tmp_path / "r")])
    complete(tmp_path / "r", "spin")
    assert staging_dirs(tmp_path) == []


# --- M5: default output directories --------------------------------------------------------
def test_default_directories_in_the_same_second_are_distinct(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(analysis.resultsdir, "default_dir",  # which pvsim run looks up
                        lambda parent, name, suffix="": Path(parent) / f"{name}-19700101-000000")
    for seed in (1, 2):
        assert main(["run", SPIN, "--seed", str(seed)]) == 0
    dirs = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert dirs == ["spin-19700101-000000", "spin-19700101-000000-2"]
    assert [complete(tmp_path / "results" / n).summary["seed"] for n in dirs] == [1, 2]


def test_concurrent_default_runs_all_survive(tmp_path):
    """F-CLI-9: runs started together (the same second, usually) each keep their
    directory."""
    procs = [subprocess.Popen([sys.executable, "-m", "analysis.cli", "run", WS, "--seed",
                               str(i)], cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in (1, 2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    dirs = sorted((tmp_path / "results").iterdir())
    assert sorted(complete(d, "ws").summary["seed"] for d in dirs) == [1, 2]


def test_a_300_character_name_gets_a_legal_default_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", LONG_NAME]) == 0
    (d,) = (tmp_path / "results").iterdir()
    assert len(d.name.encode()) <= 255 and d.name.startswith("a" * 100)
    complete(d)


def test_an_unusable_default_parent_is_refused_before_the_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(analysis.run, "simulate", _never)
    (tmp_path / "results").write_text("not a directory\n")
    assert main(["run", SPIN]) == 2
    assert "cannot create the results directory (results: File exists)" in one_error(capsys)


# --- M6: -o into a directory that is not pvsim's ---------------------------------------------
def _user_dir(tmp_path: Path) -> Path:
    d = tmp_path / "userdir"
    (d / "plots").mkdir(parents=True)
    (d / "summary.json").write_text("mine\n")
    (d / "plots" / "schedule_timeline.png").write_text("mine\n")
    return d


def _never(*a, **k):
    raise AssertionError("refused only after simulating")


def test_a_directory_that_is_not_pvsims_is_refused_before_the_run(tmp_path, monkeypatch,
                                                                  capsys):
    d = _user_dir(tmp_path)
    monkeypatch.setattr(analysis.run, "simulate", _never)
    monkeypatch.setattr(analysis.compare, "compare", _never)
    for cmd in (["run", SPIN], ["compare", SPIN, "--modes", "native,pv"]):
        assert main([*cmd, "-o", str(d)]) == 2
        line = one_error(capsys)
        assert f"{d}: not a pvsim results directory" in line and "--force" in line
    assert (d / "summary.json").read_text() == "mine\n"
    assert (d / "plots" / "schedule_timeline.png").read_text() == "mine\n"


def test_force_replaces_the_directory_as_a_whole(tmp_path):
    d = _user_dir(tmp_path)
    assert main(["run", SPIN, "-o", str(d), "--force"]) == 0
    complete(d, "spin")
    assert not (d / "plots" / "schedule_timeline.png").exists()


def test_a_users_file_in_a_results_directory_is_not_deleted(spin_run, tmp_path, capsys):
    d = copy_of(spin_run, tmp_path)
    (d / "notes.txt").write_text("mine\n")
    assert main(["run", SPIN, "-o", str(d)]) == 2
    line = one_error(capsys)
    assert "has files pvsim did not write (notes.txt)" in line and "--force" in line
    assert (d / "notes.txt").read_text() == "mine\n"


def test_a_results_directory_from_before_markers_is_replaced(spin_run, tmp_path):
    d = copy_of(spin_run, tmp_path)
    (d / MARKER).unlink()
    assert main(["run", SPIN, "-o", str(d)]) == 0
    complete(d, "spin")


def test_an_empty_directory_is_used(tmp_path):
    (tmp_path / "r").mkdir()
    assert main(["run", SPIN, "-o", str(tmp_path / "r")]) == 0
    complete(tmp_path / "r", "spin")


@pytest.mark.parametrize("target", ["file", "link", "cwd"])
def test_never_replaced_even_with_force(target, spin_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(analysis.run, "simulate", _never)
    monkeypatch.chdir(tmp_path)
    if target == "file":
        (tmp_path / "x").write_text("mine\n")
        out, says = "x", "exists and is not a directory"
    elif target == "link":
        (tmp_path / "x").symlink_to(spin_run)
        out, says = "x", "is a symbolic link"
    else:
        out, says = ".", "will not replace the working directory"
    for force in ([], ["--force"]):
        assert main(["run", SPIN, "-o", out, *force]) == 2
        assert says in one_error(capsys)
    assert (tmp_path / "x").exists() or target == "cwd"


def test_results_save_follows_the_same_rules(spin_run, tmp_path):
    r = Results.load(spin_run)
    d = _user_dir(tmp_path)
    with pytest.raises(PvsimError, match="not a pvsim results directory"):
        r.save(d)
    assert r.save(tmp_path / "new") == tmp_path / "new"
    assert Results.load(r.save(tmp_path / "new")).equals(r)  # replaced
    assert r.save(d, force=True) == d and Results.load(d).equals(r)
    assert {f for f, _ in TABLES.values()} <= set(read_marker(d)["files"])


# --- bench --json and --plot: one file, atomically --------------------------------------------
def test_bench_json_on_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch, capsys):
    """F-FAULT-1, with the full disk simulated: the write fails half-way."""
    out = tmp_path / "b.json"
    out.write_text('{"previous": 1}\n')
    real = os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *a, **k: Full(real(fd, mode)))
    assert main(["bench", "--modes", "native,pv", "--ops", "null_syscall",
                 "--json", str(out)]) == 2
    line = one_error(capsys)
    assert line == (f"pvsim: error: {out}: cannot write: No space left on device; "
                    "the previous file is unchanged")
    assert out.read_text() == '{"previous": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json"]


def test_bench_json_removes_what_a_killed_bench_left(tmp_path):
    out = tmp_path / "b.json"
    litter = tmp_path / ".b.json.tmp-999999999-x1y2.tmp"
    litter.write_text("{")
    assert main(["bench", "--modes", "native", "--ops", "null_syscall",
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["results"] and not litter.exists()
