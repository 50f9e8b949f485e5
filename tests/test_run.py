"""`nbcov run`: headless runs in CI, faults survived, data combined across runs and Pythons."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import NBCOV, ROOT, cells_by_index, coverage_cli, make_notebook, nbcov_cli, report_json

UNITS = "def kind(x):\n    if x > 0:\n        return 'pos'\n    return 'neg'\n"


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One run over notebooks that pass, raise, time out, exit hard, get killed, or do not parse."""
    root = tmp_path_factory.mktemp("run")
    (root / "nbs").mkdir()
    (root / "nbs" / "units.py").write_text(UNITS)
    make_notebook(root / "nbs" / "good.ipynb", ["from units import kind", "kind(1)", "kind(1)"])
    make_notebook(root / "nbs" / "raises.ipynb", ["a = 1\nif a:\n    b = 2", "1 / 0", "never = 1"])
    make_notebook(root / "nbs" / "slow.ipynb", ["x = 1", "import time\nn = 0\nwhile True:\n    n += 1\n    time.sleep(0.05)"])
    make_notebook(root / "nbs" / "exits.ipynb", ["y = 1", "import os\nos._exit(3)", "never = 1"])
    make_notebook(root / "nbs" / "killed.ipynb", ["z = 1", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"])
    make_notebook(root / "nbs" / "syntax.ipynb", ["w = 1", "def broken(:\n    pass"])
    make_notebook(root / "nbs" / "sub.ipynb", ["import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'import units; units.kind(-1)'], check=True)"])
    result = nbcov_cli("run", "nbs", "--timeout", "4", "-j", "2", "--report", "text", "--report", "json",
                       "--output-notebook", "out", cwd=root, check=False)
    return root, result


def test_each_fault_is_reported_and_the_run_goes_on(faulty) -> None:
    root, result = faulty
    assert result.returncode == 1, result.stderr
    lines = {line.split()[1]: line.split()[0] for line in result.stdout.splitlines() if line.startswith(("PASSED", "FAILED", "TIMEOUT", "DIED"))}
    assert lines == {
        "nbs/good.ipynb": "PASSED", "nbs/sub.ipynb": "PASSED", "nbs/raises.ipynb": "FAILED",
        "nbs/syntax.ipynb": "FAILED", "nbs/slow.ipynb": "TIMEOUT", "nbs/exits.ipynb": "DIED", "nbs/killed.ipynb": "DIED",
    }
    assert "nbs/raises.ipynb · cell 2:" in result.stdout and "ZeroDivisionError" in result.stdout
    assert "\x1b[" not in result.stdout  # ipykernel's colours are not for logs
    assert "2 died, 2 failed, 2 passed, 1 timeout (7 notebooks)" in result.stdout


def test_coverage_of_every_finished_cell_is_kept(faulty) -> None:
    root, _ = faulty
    report = report_json(root)
    cells = {(c["notebook"], c["cell_index"]): c for c in report["cells"]}
    assert cells[("nbs/raises.ipynb", 1)]["executed_lines"] == [1, 2, 3]
    assert cells[("nbs/raises.ipynb", 2)]["executed_lines"] == [1]  # the cell that raised
    assert ("nbs/raises.ipynb", 3) not in cells  # never ran
    assert cells[("nbs/exits.ipynb", 1)]["executed_lines"] == [1]
    assert cells[("nbs/killed.ipynb", 1)]["executed_lines"] == [1]
    assert cells[("nbs/syntax.ipynb", 1)]["executed_lines"] == [1]
    # The cell that timed out was interrupted, so even it was saved.
    assert cells[("nbs/slow.ipynb", 2)]["executed_lines"] == [1, 2, 3, 4, 5]
    # Cell ids are sent: two cells with the same source are two cells, each with its id.
    assert cells[("nbs/good.ipynb", 2)]["cell_id"] == "cell-2" and cells[("nbs/good.ipynb", 3)]["cell_id"] == "cell-3"
    # The module, measured in the kernels and in a subprocess a notebook started.
    units = next(v for k, v in report["files"].items() if k.endswith("units.py"))
    assert units["missing_lines"] == []
    assert not list(root.glob(".coverage.*"))  # the kernels' pieces were combined


def test_contexts_say_which_notebook_cell_ran_module_lines(faulty) -> None:
    root, _ = faulty
    who = nbcov_cli("who", "nbs/units.py:3", cwd=root).stdout.splitlines()
    assert who == ["nbs/good.ipynb|cell 2", "nbs/good.ipynb|cell 3"]


def test_reports_and_executed_notebooks_are_written(faulty) -> None:
    root, result = faulty
    assert "TOTAL" in result.stdout
    data = json.loads((root / "coverage.json").read_text())
    assert data["meta"]["format"] == 1
    executed = nbformat.read(str(root / "out" / "nbs" / "good.ipynb"), as_version=4)
    assert executed.cells[1].execution_count == 2  # no hidden cells: counts as the author sees them


def test_bad_input_exits_2_with_one_message(tmp_path: Path) -> None:
    (tmp_path / "notjson.ipynb").write_text("{oops")
    (tmp_path / "invalid.ipynb").write_text('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": 7}')
    for args, message in (
        (["missing.ipynb"], "missing.ipynb: no such file or folder"),
        (["notjson.ipynb"], "not a notebook (not valid JSON)"),
        (["invalid.ipynb"], "not a valid notebook: \"cells\" is missing or not a list"),
        (["--kernel", "nosuch", "missing.ipynb"], "no kernel named 'nosuch'"),
    ):
        result = nbcov_cli("run", *args, cwd=tmp_path, check=False)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


#: A kernel that fails to start the first time (exit 3 before binding anything) and is ipykernel after.
_FLAKY_KERNEL = """
import os, runpy, sys
marker, always = sys.argv.pop(1), sys.argv.pop(1) == "always"
with open(marker, "a") as f:
    f.write("start ")
if always or os.path.getsize(marker) == len("start "):
    sys.exit(3)
sys.argv[0] = "ipykernel_launcher"
runpy.run_module("ipykernel_launcher", run_name="__main__")
"""


def _kernel_spec(root: Path, name: str, *args: str) -> dict[str, str]:
    folder = root / "share" / "jupyter" / "kernels" / name
    folder.mkdir(parents=True)
    argv = [sys.executable, "-c", _FLAKY_KERNEL, *args, "-f", "{connection_file}"]
    (folder / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": name, "language": "python"}))
    return {**os.environ, "JUPYTER_PATH": str(root / "share" / "jupyter")}


def test_a_kernel_that_does_not_start_is_tried_again_then_reported(tmp_path: Path) -> None:
    # Once: jupyter_client picks the ports before the kernel binds them, and another process can take
    # one in between ("Address already in use"). Started again, the notebook runs and is measured.
    make_notebook(tmp_path / "a.ipynb", ["x = 1"])
    env = _kernel_spec(tmp_path, "flaky", str(tmp_path / "flaky.log"), "once")
    result = subprocess.run([*NBCOV, "run", "a.ipynb", "--kernel", "flaky"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "flaky.log").read_text() == "start start "
    assert cells_by_index(report_json(tmp_path))[1]["executed_lines"] == [1]

    # Always: both notebooks are reported in one line each, and the run ends normally.
    make_notebook(tmp_path / "b.ipynb", ["y = 2"])
    env = _kernel_spec(tmp_path, "dies", str(tmp_path / "dies.log"), "always")
    result = subprocess.run([*NBCOV, "run", "a.ipynb", "b.ipynb", "--kernel", "dies"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stdout.count("before the first cell: the kernel did not start: Kernel died before replying") == 2
    assert "Traceback" not in result.stdout + result.stderr and "2 died (2 notebooks)" in result.stdout
    assert (tmp_path / "dies.log").read_text() == "start " * 4


def test_fail_under_and_other_report_formats(tmp_path: Path) -> None:
    make_notebook(tmp_path / "nb.ipynb", ["def f(x):\n    if x:\n        return 1\n    return 2", "f(1)"])
    result = nbcov_cli("run", "nb.ipynb", "--branch", "--fail-under", "90", "--report", "xml", "--report", "lcov",
                       cwd=tmp_path, check=False)
    assert result.returncode == 1 and "under 90" in result.stderr
    assert "nb.ipynb · cell 1" in (tmp_path / "coverage.xml").read_text()
    assert "ipykernel" not in (tmp_path / "coverage.lcov").read_text()
    assert cells_by_index(report_json(tmp_path))[1]["missing_branches"] == [[2, 4]]


def _other_python() -> Path:
    mine = f"{sys.version_info.major}.{sys.version_info.minor}"
    for version in ("3.11", "3.13", "3.12"):
        python = ROOT / (".venv" if version == "3.12" else f".venv-{version}") / "bin" / "python"
        if version != mine and python.exists():
            return python
    raise AssertionError("make test creates .venv-3.11 and .venv-3.13; run it to get a second Python")


def test_combine_across_two_python_versions(tmp_path: Path) -> None:
    make_notebook(tmp_path / "nb.ipynb", ["import sys\ndef f(x):\n    if x:\n        return 1\n    return 2", "f(sys.version_info >= (3, 12))"])
    (tmp_path / ".coveragerc").write_text("[run]\nplugins = nbcov\n")
    for python, name in ((Path(sys.executable), "a"), (_other_python(), "b")):
        run = subprocess.run([str(python), "-m", "nbcov.cli", "run", "nb.ipynb", "--data-file", f".coverage.{name}"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
    coverage_cli("combine", cwd=tmp_path)
    cells = cells_by_index(report_json(tmp_path))
    assert set(cells) == {1, 2}  # the same cells from both Pythons merged, not listed twice
    newer = sys.version_info >= (3, 12)
    other_newer = "3.11" not in str(_other_python())
    if newer != other_newer:
        assert cells[1]["missing_lines"] == []  # one Python took each branch


def test_kernels_talk_over_encrypted_sockets(tmp_path: Path) -> None:
    """Where jupyter_client and the kernel support CurveZMQ, the cells' code and outputs are encrypted."""
    from nbcov.kernel import _curve_available, kernel_manager

    km = kernel_manager(blocking=True)
    if not _curve_available(km):
        pytest.skip("this jupyter_client or pyzmq has no CurveZMQ provisioning")
    km.start_kernel()
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive("6 * 7", timeout=60, output_hook=lambda msg: None)
        assert reply["content"]["status"] == "ok"
        info = json.loads(Path(km.connection_file).read_text())
        assert info.get("curve_publickey") and info.get("curve_secretkey")
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
    make_notebook(tmp_path / "nb.ipynb", ["x = 1"])
    result = nbcov_cli("run", "nb.ipynb", cwd=tmp_path)
    assert "without encryption" not in result.stderr, result.stderr
