"""The runners people already use, measured: `nbcov exec -- papermill | jupyter execute | nbconvert`,
`pytest --nbcov-kernels` with nbmake, nbval and testbook; cell by cell the numbers of `nbcov run`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from conftest import NBCOV, make_notebook, nbcov_cli, report_json

CORPUS = Path(__file__).parent / "corpus"
#: Notebooks written as projects write them (nbdev; pandas with blank-led cells), and their helpers.
NOTEBOOKS = ["00_core.ipynb", "pandas_analysis.ipynb"]
HELPERS = ["nbtesting.py", "mathtools.py"]
BIN = Path(sys.executable).parent  # papermill, jupyter, pytest of this environment

pytestmark = pytest.mark.slow


def project(folder: Path) -> Path:
    """A copy of the corpus notebooks and their helpers, the data file's folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in [*NOTEBOOKS, *HELPERS]:
        shutil.copy(CORPUS / name, folder / name)
    return folder


def run(cwd: Path, *command: str | os.PathLike[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    return subprocess.run([os.fspath(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=600, env=full_env)


def with_path(folder: Path) -> dict[str, str]:
    """`folder` importable (the notebooks' helpers), in front of what the environment has."""
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)}


def per_cell(report: dict[str, Any]) -> dict[tuple[str, int | None, str], tuple[list[int], list[int]]]:
    """(notebook file name, cell, source) -> (run lines, missed lines): what must agree between runners."""
    cells = {}
    for c in report["cells"]:
        key = (Path(c["notebook"] or "").name, c["cell_index"], c["source"])
        assert key not in cells, f"two records of {key}"
        cells[key] = (c["executed_lines"], c["missing_lines"])
    return cells


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int | None, str], tuple[list[int], list[int]]]:
    """`nbcov run`'s cells for the corpus notebooks."""
    folder = project(tmp_path_factory.mktemp("reference"))
    nbcov_cli("run", *NOTEBOOKS, cwd=folder)
    cells = per_cell(report_json(folder))
    assert len(cells) > 15
    return cells


def test_nbcov_exec_jupyter_execute_measures_as_nbcov_run(tmp_path: Path, reference: dict[Any, Any]) -> None:
    folder = project(tmp_path)
    result = run(folder, *NBCOV, "exec", "--", "jupyter", "execute", *NOTEBOOKS)
    assert result.returncode == 0, result.stderr
    assert per_cell(report_json(folder)) == reference
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith(f"nbcov: {len(reference)} cells of 2 notebooks from 2 data files") and "data in .coverage" in summary


def test_nbcov_exec_nbconvert_names_the_notebooks_not_their_executed_copies(tmp_path: Path, reference: dict[Any, Any]) -> None:
    folder = project(tmp_path)
    command = ["jupyter", "nbconvert", "--to", "notebook", "--execute", "--output-dir", "executed", *NOTEBOOKS]
    result = run(folder, *NBCOV, "exec", "--", *command)
    assert result.returncode == 0, result.stderr
    assert per_cell(report_json(folder)) == reference
    assert all(not c["notebook"].startswith("executed/") for c in report_json(folder)["cells"])
    # Run again: the executed copies now lie beside the notebooks, the same cells in both. The
    # notebooks named on the command line win; nothing is guessed.
    result = run(folder, *NBCOV, "exec", "--", *command)
    assert result.returncode == 0, result.stderr
    assert per_cell(report_json(folder)) == reference


PARAMETERIZED = [
    ("md", "# Threshold report"),
    "threshold = 10\nverbose = False",  # tagged `parameters` below
    "\n\ndef grade(value):\n    if value > threshold:\n        return 'high'\n    return 'low'\n",
    "grades = [grade(v) for v in range(0, 20, 7)]\nif verbose:\n    print(grades)",
]


def parameterized_notebook(path: Path) -> Path:
    make_notebook(path, PARAMETERIZED)
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_nbcov_exec_papermill_names_the_input_notebook_and_its_parameters_cell(tmp_path: Path) -> None:
    parameterized_notebook(tmp_path / "report.ipynb")
    (tmp_path / "runs").mkdir()
    nbcov_cli("run", "report.ipynb", cwd=tmp_path)
    expected = per_cell(report_json(tmp_path))
    result = run(tmp_path, *NBCOV, "exec", "--", "papermill", "--no-progress-bar", "report.ipynb", "runs/out.ipynb",
                 "-p", "verbose", "True", env={"TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    report = report_json(tmp_path)
    cells = {c["name"]: c for c in report["cells"]}
    assert set(cells) == {"report.ipynb · papermill parameters", "report.ipynb · cell 2", "report.ipynb · cell 3",
                          "report.ipynb · cell 4"}
    assert cells["report.ipynb · papermill parameters"]["source"] == "# Parameters\nverbose = True\n"
    # The parameters changed one branch: `print(grades)` ran; the rest is as `nbcov run` measured it.
    assert cells["report.ipynb · cell 4"]["executed_lines"] == [1, 2, 3]
    assert per_cell(report)[("report.ipynb", 3, PARAMETERIZED[2])] == expected[("report.ipynb", 3, PARAMETERIZED[2])]
    # Nothing of nbcov's is left behind: not the startup file, not a piece, not the output's name.
    assert not list(tmp_path.glob("nbcov-exec-*")) and not list(tmp_path.glob(".coverage.*"))
    assert "out.ipynb" not in json.dumps(report)


def test_nbcov_exec_passes_the_exit_code_on_and_keeps_what_ran(tmp_path: Path) -> None:
    make_notebook(tmp_path / "fails.ipynb", ["def f(x):\n    return x + 1\nf(1)", "raise ValueError('stop here')", "f(2)"])
    result = run(tmp_path, *NBCOV, "exec", "--", "jupyter", "execute", "fails.ipynb")
    assert result.returncode == 1 and "stop here" in result.stderr
    cells = {c["cell_index"]: c for c in report_json(tmp_path)["cells"]}
    assert cells[1]["executed_lines"] == [1, 2, 3] and cells[2]["executed_lines"] == [1] and 3 not in cells
    # A command killed by a signal: 128 + N, as shells say, and the data is still combined.
    result = run(tmp_path, *NBCOV, "exec", "--", sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    assert result.returncode == 128 + 15 and "no kernel measured anything" in result.stderr


def test_pytest_nbmake_and_nbval_with_pytest_cov_one_report(tmp_path: Path, reference: dict[Any, Any]) -> None:
    folder = project(tmp_path)
    (folder / "tests").mkdir()
    (folder / "tests" / "test_unit.py").write_text("from mathtools import collatz_len\n\ndef test_one():\n    assert collatz_len(1) == 1\n")
    for plugin, options in (("nbmake", ["--nbmake"]), ("nbval", ["--nbval-lax", "-p", "no:nbmake"])):
        result = run(folder, sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", *options,
                     "--nbcov-kernels", "--cov=mathtools", "--cov-report=term", "tests", *NOTEBOOKS,
                     env=with_path(folder))
        assert result.returncode == 0, plugin + result.stdout + result.stderr
        assert "00_core.ipynb · cell 4" in result.stdout and "mathtools.py" in result.stdout, plugin + result.stdout
        # pytest-cov combined the kernels' pieces: nbcov reports the cells as `nbcov run` measured them.
        assert per_cell(report_json(folder)) == reference, plugin
        assert not list(folder.glob(".coverage.*")), plugin


def test_pytest_nbmake_under_xdist(tmp_path: Path, reference: dict[Any, Any]) -> None:
    folder = project(tmp_path)
    result = run(folder, sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-n", "2",
                 "--nbmake", "--nbcov-kernels", "--cov=mathtools", *NOTEBOOKS, env=with_path(folder))
    assert result.returncode == 0, result.stdout + result.stderr
    assert per_cell(report_json(folder)) == reference


TESTBOOK_TESTS = '''\
from testbook import testbook


@testbook("notebooks/prices.ipynb", execute=True)
def test_discount(tb):
    discount = tb.ref("discount")
    assert discount(100, member=True) == 90


@testbook("notebooks/prices.ipynb", execute=True)
def test_no_discount(tb):
    tb.inject("assert discount(100, member=False) == 100")
'''


def test_testbook_tests_are_who_tests_what(tmp_path: Path) -> None:
    make_notebook(tmp_path / "notebooks" / "prices.ipynb", [
        "def discount(price, member):\n    if member:\n        return price * 0.9\n    return price",
        "discount(10, member=False)",
    ])
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_prices.py").write_text(TESTBOOK_TESTS)
    result = run(tmp_path, sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "--nbcov-kernels", "tests")
    assert result.returncode == 0, result.stdout + result.stderr
    who = lambda where: nbcov_cli("who", where, cwd=tmp_path).stdout.splitlines()  # noqa: E731
    # Line 3 ran only for the member's discount; line 4 also ran in cell 2, which both tests executed.
    assert who("notebooks/prices.ipynb:1:3") == ["tests/test_prices.py::test_discount"]
    assert who("notebooks/prices.ipynb:1:4") == ["tests/test_prices.py::test_discount", "tests/test_prices.py::test_no_discount"]
    # The tests' own code (tb.ref's call, tb.inject's assert) is theirs, not a cell of the notebook.
    assert {c["name"] for c in report_json(tmp_path)["cells"]} == {"notebooks/prices.ipynb · cell 1", "notebooks/prices.ipynb · cell 2"}


def test_a_kernel_without_nbcov_is_said_and_the_command_goes_on(tmp_path: Path) -> None:
    # A kernel spec whose Python cannot import nbcov (as another environment's kernel).
    spec = tmp_path / "jupyter" / "kernels" / "elsewhere"
    spec.mkdir(parents=True)
    launcher = "import sys; sys.modules['nbcov'] = None; from ipykernel import kernelapp; kernelapp.launch_new_instance()"
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": [sys.executable, "-c", launcher, "-f", "{connection_file}"], "display_name": "elsewhere", "language": "python"}
    ))
    make_notebook(tmp_path / "nb.ipynb", ["x = 1"])
    result = run(tmp_path, *NBCOV, "exec", "--", "jupyter", "execute", "--kernel_name=elsewhere", "nb.ipynb",
                 env={"JUPYTER_PATH": str(tmp_path / "jupyter")})
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith("nbcov:")]
    assert said == [f"nbcov: a kernel was not measured: nbcov is not installed for {sys.executable}",
                    "nbcov: no kernel measured anything (.coverage not written)"], result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["exec"], "nbcov: error: nbcov exec: no command to run (nbcov exec [options] -- COMMAND [ARGS...])"),
        (["exec", "--", "no-such-command-nbcov"], "nbcov: error: nbcov exec: no-such-command-nbcov: command not found"),
        (["exec", "--source", f"a{os.pathsep}b", "--", "true"], "contains"),
    ],
)
def test_bad_exec_commands_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = nbcov_cli(*args, cwd=tmp_path, check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / ".coverage").exists()
