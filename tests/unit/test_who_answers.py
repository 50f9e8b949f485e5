"""Who tests what, answered from a real coverage data file and real cell records (no kernel needed to write them)."""

from __future__ import annotations

from pathlib import Path

import coverage
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbcov import query, report
from nbcov.cells import CellRecord, CellStore

CELL = "def f(x):\n    if x:\n        return 1\n    return 2\n"


@pytest.fixture
def measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> coverage.Coverage:
    """A data file as a kernel writes it: cell 2 of nb.ipynb and a module, per-test contexts."""
    monkeypatch.chdir(tmp_path)
    cell = CellStore(tmp_path).save(CellRecord(CELL, CELL, notebook="nb.ipynb", cell_index=2, cell_id="c2", key="c2"))
    module = str(tmp_path / "units.py")
    data = coverage.CoverageData(basename=str(tmp_path / ".coverage"))
    for context, cell_lines, module_lines in (
        ("", [1], [1]),  # the cell's definitions ran outside any test
        ("nb.ipynb::test_yes", [2, 3], [1, 2, 3]),
        ("nb.ipynb::test_no", [2, 4], [1, 2]),
        ("nb.ipynb::test_again", [2, 3], []),
    ):
        data.set_context(context)
        data.add_lines({cell: cell_lines, module: module_lines})
    data.add_file_tracers({cell: "nbcov.NbcovPlugin"})
    data.write()
    return report.open_coverage(str(tmp_path / ".coverage"))


def test_which_tests_ran_a_line(measured: coverage.Coverage) -> None:
    assert query.answer(measured, "nb.ipynb:2:3", None, False) == "nb.ipynb::test_again\nnb.ipynb::test_yes"
    assert query.answer(measured, "units.py:3", None, False) == "nb.ipynb::test_yes"
    assert query.answer(measured, "nb.ipynb:2:1", None, False) == "No test ran nb.ipynb · cell 2 line 1."


def test_which_lines_a_test_ran(measured: coverage.Coverage) -> None:
    assert query.answer(measured, None, "nb.ipynb::test_yes", False) == "nb.ipynb · cell 2: 2-3\nunits.py: 1-3"
    with pytest.raises(query.QueryError, match="Did you mean: nb.ipynb::test_again, nb.ipynb::test_no"):
        query.answer(measured, None, "test_", False)


def test_redundant_tests_and_all_tests(measured: coverage.Coverage) -> None:
    assert query.answer(measured, None, None, True) == "nb.ipynb::test_again"
    assert query.answer(measured, None, None, False) == "nb.ipynb::test_again\nnb.ipynb::test_no\nnb.ipynb::test_yes"


@pytest.mark.parametrize("location, says", [
    ("nonsense", "is not NOTEBOOK:CELL:LINE"), ("nb.ipynb:9:1", "No measured file matches"), ("other.py:1", "Measured: "),
])
def test_questions_the_data_cannot_answer(measured: coverage.Coverage, location: str, says: str) -> None:
    with pytest.raises(query.QueryError, match=says):
        query.answer(measured, location, None, False)


def test_line_runs_are_consecutive_lines_only() -> None:
    assert query.line_runs([7, 1, 2, 3, 9, 8, 3]) == "1-3, 7-9"
    assert query.line_runs([]) == ""


@given(st.sets(st.integers(min_value=1, max_value=200)))
def test_line_runs_name_exactly_the_lines(lines: set[int]) -> None:
    named: set[int] = set()
    for run in filter(None, query.line_runs(lines).split(", ")):
        first, _, last = run.partition("-")
        named.update(range(int(first), int(last or first) + 1))
    assert named == lines
