"""`nbcov report` and the errors a person meets: clear message, exit code 2, nothing lost."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import coverage_cli, execute_notebook, make_notebook, nbcov_cli, report_json


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("measured")
    nb = make_notebook(
        folder / "analysis.ipynb",
        ["%load_ext nbcov", ("md", "# Analysis"), "def f(x):\n    if x:\n        return 1\n    return 2", "f(1)"],
    )
    execute_notebook(nb)
    return folder


def _copy(measured: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(measured, target)
    return target


def test_text_report_looks_like_coverage_report_m(measured: Path) -> None:
    out = nbcov_cli("report", cwd=measured).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["Name", "Stmts", "Miss", "Cover", "Missing"]
    assert lines[2].split() == ["analysis.ipynb", "·", "cell", "3", "4", "1", "75%", "4"]
    assert lines[3].split() == ["analysis.ipynb", "·", "cell", "4", "1", "0", "100%"]
    assert lines[-1].split() == ["TOTAL", "5", "1", "80%"]


def test_branch_text_report_names_missed_branches_like_coverage_report_m(tmp_path: Path) -> None:
    (tmp_path / ".coveragerc").write_text("[run]\nbranch = true\nplugins = nbcov\n")
    nb = make_notebook(tmp_path / "b.ipynb", ["%load_ext nbcov", "def f(x):\n    y = 0\n    if x > 0:\n        y = 1\n    return y", "f(1)"])
    execute_notebook(nb)
    ours = nbcov_cli("report", cwd=tmp_path).stdout.splitlines()
    theirs = coverage_cli("report", "-m", cwd=tmp_path).stdout.splitlines()
    row = next(line for line in ours if "cell 2" in line)
    assert row.split()[-2:] == ["86%", "3->5"]  # every line ran; the `if` never skipped its body
    assert row.split() == next(line for line in theirs if "cell 2" in line).split()


def test_json_schema(measured: Path) -> None:
    report = report_json(measured)
    assert report["meta"]["format"] == 1
    cell = report["cells"][0]
    for key in ("notebook", "cell_index", "cell_id", "execution_count", "executed_lines", "missing_lines",
                "excluded_lines", "not_measured_lines", "summary", "source"):
        assert key in cell, key
    assert (cell["notebook"], cell["cell_index"], cell["cell_id"]) == ("analysis.ipynb", 3, "cell-3")
    assert report["totals"]["num_statements"] == 5


def test_report_from_another_folder_shows_paths_from_there(measured: Path) -> None:
    report = report_json(measured.parent, "--data-file", str(measured / ".coverage"))
    assert report["cells"][0]["name"] == f"{measured.name}/analysis.ipynb · cell 3"


def test_missing_data_file(tmp_path: Path) -> None:
    result = nbcov_cli("report", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "No coverage data file at" in result.stderr and "Traceback" not in result.stderr


def test_corrupt_data_file(tmp_path: Path) -> None:
    (tmp_path / ".coverage").write_bytes(b"this is not sqlite" * 100)
    result = nbcov_cli("report", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "not a usable coverage data file" in result.stderr and "Traceback" not in result.stderr


def test_missing_cell_records(tmp_path: Path) -> None:
    execute_notebook(make_notebook(tmp_path / "nb.ipynb", ["%load_ext nbcov", "x = 1"]))
    shutil.rmtree(tmp_path / ".nbcov")
    folder = tmp_path
    result = nbcov_cli("report", cwd=folder, check=False)
    assert result.returncode == 2
    assert "Keep the .nbcov/ folder beside the data file" in result.stderr and "Traceback" not in result.stderr


def test_the_notebook_moving_or_vanishing_does_not_matter(measured: Path, tmp_path: Path) -> None:
    folder = _copy(measured, tmp_path)
    (folder / "analysis.ipynb").unlink()  # sources are kept with the data
    assert report_json(folder)["cells"][0]["source"].startswith("def f(x):")


def test_plugin_not_configured_in_our_own_api_gives_advice(measured: Path) -> None:
    code = (
        "import coverage, nbcov.report as r\n"
        "cov = coverage.Coverage()\ncov.load()\n"
        "try:\n    r.build(cov)\nexcept r.DataFileError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=measured, capture_output=True, text=True).stdout
    assert "Add `plugins = nbcov`" in out


def test_coverage_report_with_the_plugin_configured(measured: Path, tmp_path: Path) -> None:
    folder = _copy(measured, tmp_path)
    (folder / "setup.cfg").write_text("[coverage:run]\nplugins = nbcov\n")
    out = coverage_cli("report", "-m", cwd=folder).stdout
    assert "analysis.ipynb · cell 3" in out and "ipykernel" not in out


def test_fail_under(measured: Path) -> None:
    assert nbcov_cli("report", "--fail-under", "79", cwd=measured, check=False).returncode == 0
    result = nbcov_cli("report", "--fail-under", "81", cwd=measured, check=False)
    assert result.returncode == 1 and "under 81" in result.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert nbcov_cli(cwd=tmp_path, check=False).returncode == 2
    assert nbcov_cli("report", "--format", "yaml", cwd=tmp_path, check=False).returncode == 2


@pytest.mark.unit
@pytest.mark.parametrize("damage", ["not a data file", "a cell name outside .nbcov/cells"])
def test_a_damaged_kernel_piece_shows_a_question_mark_in_the_progress_line(tmp_path: Path, damage: str) -> None:
    """`nbcov run`'s per-notebook percentage reads the kernel's own piece: a damaged one is "?", and the
    run goes on to combine and report (where the problem is said once), not an nbcov bug (exit 3)."""
    from coverage import CoverageData

    from nbcov.cli import _piece_percent

    piece = tmp_path / ".coverage.kernel"
    if damage == "not a data file":
        piece.write_text("not a database")
    else:
        data = CoverageData(str(piece))
        data.add_lines({str(tmp_path / ".nbcov" / "cells" / ".." / ".." / "package.json"): [1]})
        data.write()
    assert _piece_percent(piece, True) == "?"
