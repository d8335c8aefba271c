"""The reproducibility block: every summary.json (and a sweep's or plan's directory) says
which pvsim, libraries, platform and command line made it, and nothing else in a summary
depends on the machine but it and the engine block."""

from __future__ import annotations

import dataclasses
import json
import platform
import shutil
import subprocess
from pathlib import Path

import numpy
import pytest

from analysis.cli import main
from analysis.reproducibility import (
    LIBRARIES,
    MACHINE_BLOCKS,
    ROOT,
    Reproducibility,
    git_commit,
    invoked_as,
)
from analysis.run import simulate
from analysis.summary import Summary
from analysis.sweep import factorial, parse_vary, sweep
from model import __version__
from model.scenario import parse_scenario

TINY = "name: t\nduration: 5ms\nguests: [{name: a, workload: {profile: spin}}]\n"
SHA = "0123456789abcdef0123456789abcdef01234567"
KEYS = ["pvsim_version", "git_commit", "python", *LIBRARIES, "platform", "command", "fidelity"]


def test_a_summary_carries_the_block_after_the_engine_with_every_version():
    s = simulate(parse_scenario(TINY)).summary
    keys = list(s)
    assert keys[keys.index("engine") + 1] == "reproducibility"
    r = s["reproducibility"]
    assert list(r) == KEYS == [f.name for f in dataclasses.fields(Reproducibility)]
    assert r["pvsim_version"] == __version__ == s["pvsim_version"]
    assert r["python"] == platform.python_version() and r["numpy"] == numpy.__version__
    assert all(isinstance(r[k], str) and r[k] for k in ("python", *LIBRARIES, "platform"))
    assert r["git_commit"] is None or len(r["git_commit"]) in (40, 64)
    assert r["command"] is None  # from the Python API
    assert r["fidelity"] == "exact"  # the instruction-level engine made it
    assert json.loads(json.dumps(s))["reproducibility"] == r  # plain JSON


def test_the_block_reads_back_and_a_summary_without_one_still_loads():
    r = simulate(parse_scenario(TINY))
    assert Summary.from_dict(json.loads(json.dumps(r.summary))) == r.typed_summary
    older = {k: v for k, v in r.summary.items() if k != "reproducibility"}
    typed = Summary.from_dict(older)  # a summary.json written before the block existed
    assert typed.reproducibility is None and typed.to_dict() == older
    block = {k: v for k, v in r.summary["reproducibility"].items() if k != "fidelity"}
    typed = Summary.from_dict({**r.summary, "reproducibility": block})  # before its fidelity
    assert typed.reproducibility.fidelity is None


def test_only_the_machine_blocks_differ_between_two_runs_of_one_seed():
    a, b = (simulate(parse_scenario(TINY)) for _ in range(2))
    with invoked_as(["pvsim", "run", "elsewhere.yaml"]):
        c = simulate(parse_scenario(TINY))
    assert c.summary["reproducibility"]["command"] == ["pvsim", "run", "elsewhere.yaml"]
    assert not a.equals(c) and a.equals(c, engine=False) and a.equals(b, engine=False)
    assert MACHINE_BLOCKS == ("engine", "reproducibility")
    differ = {k for k in a.summary if a.summary[k] != c.summary[k]}
    assert differ <= set(MACHINE_BLOCKS) and "reproducibility" in differ


def test_the_command_line_is_recorded_by_run_and_by_each_run_of_compare(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text(TINY)
    run = ["run", str(f), "--set", "record.trace=false", "-o", str(tmp_path / "r")]
    assert main(run) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["reproducibility"]["command"] == ["pvsim", *run]
    compare = ["compare", str(f), "--modes", "native,pv", "-o", str(tmp_path / "c")]
    assert main(compare) == 0
    for mode in ("native", "pv"):
        s = json.loads((tmp_path / "c" / mode / "summary.json").read_text())
        assert s["reproducibility"]["command"] == ["pvsim", *compare]


def test_a_sweep_writes_its_block_beside_its_table(tmp_path):
    sw = sweep(parse_scenario(TINY), factorial([parse_vary("guests.a.count=1,2")]))
    sw.save(tmp_path)
    doc = json.loads((tmp_path / "reproducibility.json").read_text())
    assert list(doc) == KEYS and doc["command"] is None and doc["numba"]
    f = tmp_path / "t.yaml"
    f.write_text(TINY)
    for args in (["sweep", str(f), "--vary", "guests.a.count=1,2"],
                 ["plan", str(f), "--vary", "guests.a.count", "--slo", "host.busy_fraction < 2",
                  "--limit", "2", "--replications", "1"]):
        out = tmp_path / args[0]
        assert main([*args, "-o", str(out)]) == 0
        doc = json.loads((out / "reproducibility.json").read_text())
        assert doc["command"] == ["pvsim", *args, "-o", str(out)]


# --- the git commit, read from .git's files ----------------------------------------------
def _repo(top: Path, head: str, refs: dict[str, str] | None = None, packed: str = "") -> Path:
    git = top / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text(head + "\n")
    for name, sha in (refs or {}).items():
        (git / name).write_text(sha + "\n")
    if packed:
        (git / "packed-refs").write_text(packed)
    return git


def test_the_commit_is_read_from_a_branch_a_packed_ref_or_a_detached_head(tmp_path):
    _repo(tmp_path / "loose", "ref: refs/heads/main", {"refs/heads/main": SHA})
    assert git_commit(tmp_path / "loose") == SHA
    _repo(tmp_path / "packed", "ref: refs/heads/main",
          packed=f"# pack-refs with: peeled fully-peeled sorted\n{'f' * 40} refs/heads/other\n"
                 f"{SHA} refs/heads/main\n")
    assert git_commit(tmp_path / "packed") == SHA
    _repo(tmp_path / "detached", SHA)
    assert git_commit(tmp_path / "detached") == SHA
    _repo(tmp_path / "unborn", "ref: refs/heads/main")  # no commit yet
    assert git_commit(tmp_path / "unborn") is None
    _repo(tmp_path / "garbage", "ref: refs/heads/main", {"refs/heads/main": "not a sha"})
    assert git_commit(tmp_path / "garbage") is None
    assert git_commit(tmp_path) is None  # not a checkout (an installed pvsim)


def test_a_linked_worktree_reads_its_own_head_and_the_shared_branches(tmp_path):
    main_git = _repo(tmp_path / "main", "ref: refs/heads/main",
                     {"refs/heads/main": "e" * 40, "refs/heads/feature": SHA})
    private = main_git / "worktrees" / "wt"
    private.mkdir(parents=True)
    (private / "HEAD").write_text("ref: refs/heads/feature\n")
    (private / "commondir").write_text("../..\n")
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / ".git").write_text(f"gitdir: {private}\n")
    assert git_commit(tmp_path / "wt") == SHA


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="pvsim is not running from a git checkout")
def test_the_checkout_s_commit_is_what_git_says_its_head_is():
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert git_commit(ROOT) == head
