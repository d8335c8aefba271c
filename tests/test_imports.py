"""Each module a user may import first imports on its own, in a fresh interpreter (an
import cycle shows only in the order it is entered)."""

from __future__ import annotations

import subprocess
import sys

import pytest

FIRST = ["model", "model.io", "model.scenario", "model.workloads", "model.io.workloads",
         "model.workload_registry", "model.host", "model.scenario.format", "model.scenario.build",
         "analysis.cli", "analysis.run", "analysis.sweep", "model.app.trace"]


@pytest.mark.parametrize("module", FIRST)
def test_a_module_imports_first(module):
    r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
