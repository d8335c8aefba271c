"""The command line answers what needs no simulation without loading the engine: its
version, its help, and a bad argument (one line, status 2). ``benchmarks/cli_startup.py``
times it; here, what is imported is checked, which does not depend on the machine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Loaded by the engine, the scenario model, the tables, the graphs or the terminal output.
HEAVY = ("numpy", "numba", "simpy", "pydantic", "pandas", "pyarrow", "matplotlib", "rich",
         "yaml", "model.scenario", "model.modes", "model.microbench", "analysis.run")

_PROBE = """
import json, sys
from analysis.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(json.dumps({"status": code, "loaded": sorted(sys.modules)}))
"""


def probe(*args: str) -> tuple[int, list[str], str]:
    """``pvsim ARGS`` in a fresh interpreter: its exit status, the heavy modules it
    loaded, and its stderr."""
    r = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True,
                       timeout=120)
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    heavy = [m for m in doc["loaded"] if m in HEAVY or m.split(".")[0] in HEAVY]
    return doc["status"], heavy, r.stderr


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["run", "--help"],
                                  ["plan", "--help"], ["sweep", "--help"]])
def test_version_and_help_load_nothing_heavy(args):
    status, heavy, _ = probe(*args)
    assert status == 0 and heavy == []


@pytest.mark.parametrize(("args", "message"), [
    (["run", "--seed", "x", "s.yaml"], "argument --seed: invalid int value: 'x'"),
    (["run"], "the following arguments are required: scenario"),
    (["run", "s.yaml", "--seed", "-1"], "argument --seed: must be 0 to"),
    (["bench", "--os", "win95"],
     "argument --os: invalid choice: 'win95' (choose from 'modified', 'unmodified')"),
    (["plan", "s.yaml", "--vary", "guests.web.count"], "required: --slo"),
    (["frobnicate"], "argument command: invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: command"),
])
def test_a_bad_argument_is_one_line_and_status_2_before_the_engine_loads(args, message):
    status, heavy, err = probe(*args)
    assert status == 2 and message in err
    assert err.startswith("pvsim: error: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    if args[:2] == ["bench", "--os"]:  # checking --os needs the OS kinds, of model.modes
        top = {m.split(".")[0] for m in heavy}
        assert "model.modes" in heavy and "model.microbench" not in heavy
        assert not {"pydantic", "pandas", "matplotlib", "rich"} & top
    else:
        assert heavy == []


def test_a_command_s_help_still_names_the_engine_s_components():
    r = subprocess.run([sys.executable, "-m", "analysis.cli", "bench", "--help"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    from model.hardware import profile_names
    from model.microbench import OPS
    from model.modes import MODES

    assert f"comma-separated modes (default {','.join(MODES)})" in text
    assert "modified or unmodified" in text and profile_names()[0] in text
    assert all(op in r.stdout.replace("\n", "").replace(" ", "") for op in OPS)


def test_the_defaults_looked_up_late_mean_what_they_meant(tmp_path, capsys):
    """bench without --hardware runs the default profile, compare without --modes every
    mode (both defaults are None in the parser, so that it needs no engine)."""
    import pandas as pd

    from analysis.cli import main
    from model.hardware import DEFAULT_PROFILE
    from model.modes import MODES

    assert main(["bench", "--modes", "native", "--ops", "null_syscall", "--json",
                 str(tmp_path / "b.json")]) == 0
    assert json.loads((tmp_path / "b.json").read_text())["hardware"] == DEFAULT_PROFILE
    f = tmp_path / "t.yaml"
    f.write_text("name: t\nduration: 5ms\nguests: [{name: a, workload: {profile: spin}}]\n")
    assert main(["compare", str(f), "-o", str(tmp_path / "c")]) == 0
    assert set(pd.read_csv(tmp_path / "c" / "compare.csv")["mode"]) == set(MODES)
