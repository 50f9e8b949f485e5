"""`pytest --nbcov`: notebooks as test items; with pytest-cov, one report of package and cells."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import make_notebook, nbcov_cli

CALC = "def add(a, b):\n    return a + b\n\n\ndef sign(x):\n    if x > 0:\n        return 1\n    return -1\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "calc.py").write_text(CALC)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_calc.py").write_text("from mypkg.calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n")
    nbs = tmp_path / "notebooks"
    make_notebook(nbs / "uses.ipynb", ["import sys\nsys.path.insert(0, '..')\nfrom mypkg.calc import sign", "sign(5)"])
    make_notebook(nbs / "broken.ipynb", ["x = 1", "y = [1, 2][5]", "z = 3"])
    skipped = make_notebook(nbs / "skipped.ipynb", ["raise SystemExit('never run')"])
    nb = nbformat.read(str(skipped), as_version=4)
    nb.metadata["nbcov"] = {"skip": True}
    nbformat.write(nb, str(skipped))
    return tmp_path


def pytest_run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )


def test_with_pytest_cov_one_report_covers_package_and_cells(project: Path) -> None:
    result = pytest_run(project, "--nbcov", "--cov=mypkg", "--cov-report=term-missing", "tests", "notebooks")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "1 failed, 2 passed, 1 skipped" in out
    # The failure names the cell, shows its source and the traceback.
    assert "broken.ipynb · cell 2: failed" in out and "y = [1, 2][5]" in out and "IndexError" in out
    # One report: the package from the unit test (add) and the notebook (sign), and the cells.
    calc = next(line for line in out.splitlines() if line.startswith("mypkg/calc.py"))
    assert calc.split()[1:4] == ["6", "1", "83%"] and calc.split()[-1] == "8"
    assert "notebooks/uses.ipynb · cell 2" in out and "notebooks/broken.ipynb · cell 1" in out
    # Each cell is a context: which notebook cell ran sign()'s first branch?
    who = nbcov_cli("who", "mypkg/calc.py:7", cwd=project).stdout.splitlines()
    assert who == ["notebooks/uses.ipynb|cell 2"]


def test_under_xdist_nothing_is_lost_or_counted_twice(project: Path) -> None:
    result = pytest_run(project, "--nbcov", "--cov=mypkg", "--cov-report=term-missing", "-n", "2", "tests", "notebooks")
    out = result.stdout
    calc = next(line for line in out.splitlines() if line.startswith("mypkg/calc.py"))
    assert calc.split()[1:4] == ["6", "1", "83%"], out
    cells = [line for line in out.splitlines() if line.startswith("notebooks/") and "· cell" in line]
    assert len(cells) == len(set(cells)) == 4  # uses: 2 cells; broken: 2 cells ran


def test_without_pytest_cov_the_data_file_is_written(project: Path) -> None:
    result = pytest_run(project, "--nbcov", "notebooks/uses.ipynb", "--nbcov-timeout", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    report = nbcov_cli("report", cwd=project).stdout
    assert "notebooks/uses.ipynb · cell 2" in report and "mypkg/calc.py" in report


def test_a_cell_over_the_timeout_fails_the_item(project: Path) -> None:
    make_notebook(project / "notebooks" / "slow.ipynb", ["import time\ntime.sleep(60)"])
    result = pytest_run(project, "--nbcov", "--nbcov-timeout", "2", "notebooks/slow.ipynb")
    assert result.returncode == 1
    assert "slow.ipynb · cell 1: timeout" in result.stdout
