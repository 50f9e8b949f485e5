"""Line coverage under sysmon with nbcov's LineMonitor: coverage.py's data exactly, per context too.

LineMonitor removes a code object's events once every line it has was recorded (engine/lines.py).
These tests prove that this never loses a line: the lines it waits for include every line a LINE
event can report, and its data (per context) equals coverage.py's C tracer's and SysMonitor's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from conftest import make_notebook, nbcov_cli
from nbcov import engine

HERE = Path(__file__).parent
SCRIPT = HERE / "branch_corpus" / "_lines.py"
TARGETS = [
    *(f"corpus:{p.stem}" for p in sorted((HERE / "branch_corpus").glob("c_*.py"))),
    "stdlib:textwrap=test.test_textwrap",
    "stdlib:shlex=test.test_shlex",
    "stdlib:fractions=test.test_fractions",
    "stdlib:html.parser=test.test_htmlparser",
]

pytestmark = pytest.mark.skipif(not engine.SUPPORTED, reason="LineMonitor is used on Python 3.12 and 3.13")


def probe(mode: str) -> dict[str, Any]:
    """tests/branch_corpus/_lines.py in a fresh process (see its docstring)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "NBCOV_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent / "src"), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, str(SCRIPT), mode, *TARGETS], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_every_line_an_event_reports_is_waited_for() -> None:
    found = probe("events")
    assert found["unsafe"] == []  # a line missing here could be lost once the events are removed
    assert found["codes"] > 150
    assert found["complete"] > 0.8 * found["codes"]  # most fully-run code does go quiet


def test_lines_per_context_equal_coverage_pys() -> None:
    runs = {mode: probe(mode) for mode in ("ctrace", "sysmon", "nbcov")}
    assert runs["nbcov"]["tracer"] == "LineMonitor" and runs["nbcov"]["core"] == "LineMonitor"
    assert runs["sysmon"]["tracer"] == "SysMonitor" and runs["ctrace"]["core"] == "CTracer"
    reference = runs["ctrace"]["files"]
    assert len(reference) == len(TARGETS)
    assert all(set(contexts) == {"first", "second"} for contexts in reference.values())
    assert runs["sysmon"]["files"] == reference
    assert runs["nbcov"]["files"] == reference  # the second context records code that went quiet in the first


def test_cells_that_ran_every_line_are_recorded_again_in_the_next_cells_context(tmp_path: Path) -> None:
    """`nbcov run` records each cell as a context: a function fully run by cell 3 went quiet, and
    cell 4 running it again must still be recorded as running each of its lines."""
    make_notebook(
        tmp_path / "nb.ipynb",
        ["def f(x):\n    y = x * 2\n    return y", "f(1)\nf(2)", "f(3)", "%nbcov status"],
    )
    nbcov_cli("run", "nb.ipynb", "--output-notebook", "out", cwd=tmp_path)
    status = "".join(o.get("text", "") for o in nbformat.read(str(tmp_path / "out" / "nb.ipynb"), as_version=4).cells[3].outputs)
    assert "core: sys.monitoring" in status
    for line in (1, 2, 3):
        who = nbcov_cli("who", f"nb.ipynb:1:{line}", cwd=tmp_path).stdout.splitlines()
        expected = ["nb.ipynb|cell 1"] if line == 1 else ["nb.ipynb|cell 2", "nb.ipynb|cell 3"]
        assert who == expected, line
