"""Cells that are not ordinary code: nbcov's own magics, `exit`, comments only, magic bodies that do not parse."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from coverage import CoverageData
from coverage.config import DEFAULT_EXCLUDE
from coverage.exceptions import NotPython
from coverage.misc import join_regex

from conftest import cells_by_index, coverage_cli, execute_notebook, make_notebook, nbcov_cli, report_json
from kernels import LiveKernel
from nbcov import report
from nbcov.cells import CellRecord, CellStore
from nbcov.cov_plugin import CellFileReporter, NbcovPlugin
from nbcov.data import TRACER_NAME
from nbcov.parser import make_parser, module_arcs, nothing_to_measure

DEF_F = "def f(x):\n    return x"
BROKEN_CAPTURE = "%%capture\nx = (\n"
BROKEN_COVTEST = "%%covtest\ndef test_a(:\n    pass"


# -- nbcov's own magics, exit, comments ---------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("%load_ext nbcov", True),
        ("load_ext nbcov\n%nbcov report  # the table", True),
        ("%nbcov status\n\n%nbcov who a.ipynb:3:1", True),
        ("exit", True),
        ("quit()", True),
        ("#|default_exp core\n\n# comments only", True),
        ("", True),
        ("import nbcov\nnbcov.autoconfig()", False),  # Python code, measured as any
        ("%load_ext nbcov\nx = 1", False),
        ("%load_ext other", False),
        ("exit(1)", False),
        ("exit = 3", False),
        ("%time f(1)", False),
    ],
)
def test_which_cells_hold_nothing_to_measure(source: str, expected: bool) -> None:
    assert nothing_to_measure(source) is expected


def test_own_magic_and_exit_cells_are_not_measured_cells(tmp_path: Path) -> None:
    nb = make_notebook(
        tmp_path / "a.ipynb",
        ["%load_ext nbcov", "#|default_exp core\n# only comments", DEF_F, "f(1)", "%nbcov status", "%nbcov report", "exit"],
    )
    execute_notebook(nb)
    assert set(cells_by_index(report_json(tmp_path))) == {3, 4}
    # coverage.py's own reports (with the plugin) list the same cells.
    (tmp_path / ".coveragerc").write_text("[run]\nplugins = nbcov\n")
    listed = json.loads(coverage_cli("json", "-o", "-", cwd=tmp_path).stdout)["files"]
    assert sorted(listed) == ["a.ipynb · cell 3", "a.ipynb · cell 4"]


def test_nbcov_run_leaves_out_the_load_ext_cell(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "a.ipynb", ["%load_ext nbcov", DEF_F, "f(1)"])
    nbcov_cli("run", nb.name, cwd=tmp_path)
    assert set(cells_by_index(report_json(tmp_path))) == {2, 3}


def test_html_says_a_comment_cell_has_no_code(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "a.ipynb", ["%load_ext nbcov", "#|default_exp core", DEF_F, "x = 2"])
    execute_notebook(nb)
    edited = json.loads(nb.read_text())
    edited["cells"].append({**edited["cells"][3], "id": "cell-5", "source": "x = 3"})  # added after the run
    nb.write_text(json.dumps(edited))
    nbcov_cli("html", "-d", "out", cwd=tmp_path)
    page = next(p for p in (tmp_path / "out").glob("*.html") if 'id="cell-2"' in p.read_text()).read_text()
    sections = dict(re.findall(r'<section class="cell [^"]*" id="(cell-\d+)">(.*?)</section>', page, re.S))
    assert "no code to measure" in sections["cell-1"]  # %load_ext nbcov
    assert "no code to measure" in sections["cell-2"]
    assert "not run while measuring" in sections["cell-5"]
    assert "no code to measure" not in sections["cell-3"] + sections["cell-5"]


# -- a cell magic whose body does not parse ------------------------------------------------------------


def _data_with_cell(folder: Path, records: list[CellRecord]) -> Path:
    """A data file and records as a kernel leaves them: line 1 of each cell ran."""
    store = CellStore(folder)
    data_file = folder / ".coverage"
    data = CoverageData(basename=str(data_file))
    names = [store.save(r) for r in records]
    data.add_lines({name: [1] for name in names})
    data.add_file_tracers({name: TRACER_NAME for name in names})
    data.write()
    return data_file


@pytest.mark.unit
def test_unparsable_cell_is_left_out_with_one_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = CellRecord(source=BROKEN_CAPTURE, code="\nx = (\n", notebook="a.ipynb", cell_index=3, key="pos3")
    fine = CellRecord(source="x = 1", code="x = 1\n", notebook="a.ipynb", cell_index=2, key="pos2")
    data_file = _data_with_cell(tmp_path, [broken, fine])
    built = report.load_report(str(data_file))
    assert [c["name"] for c in built["cells"]] == ["a.ipynb · cell 2"]
    warning = capsys.readouterr().err
    assert warning == "nbcov: warning: a.ipynb · cell 3 is left out of the report: its code does not parse " \
                      "('(' was never closed, line 2)\n"
    report.load_report(str(data_file))
    assert capsys.readouterr().err == ""  # said once per process


@pytest.mark.unit
def test_unparsable_cell_reporter_names_its_cell() -> None:
    record = CellRecord(source=BROKEN_COVTEST, code="\ndef test_a(:\n    pass\n", notebook="a.ipynb", cell_index=5)
    reporter = CellFileReporter("/x/.nbcov/cells/a.ipynb/pos5-0.json", record, NbcovPlugin())
    assert reporter.should_be_python() is False
    with pytest.raises(NotPython, match=r"a\.ipynb · cell 5 is left out .*line 2"):
        reporter.lines()


def test_broken_magic_bodies_do_not_break_reports(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "a.ipynb", ["%load_ext nbcov", DEF_F, BROKEN_CAPTURE, BROKEN_COVTEST, "f(1)"])
    execute_notebook(nb, allow_errors=True)
    result = nbcov_cli("report", cwd=tmp_path)
    assert "a.ipynb · cell 2" in result.stdout and "a.ipynb · cell 5" in result.stdout
    assert result.stderr.splitlines() == [
        "nbcov: warning: a.ipynb · cell 3 is left out of the report: its code does not parse ('(' was never closed, line 2)",
        "nbcov: warning: a.ipynb · cell 4 is left out of the report: its code does not parse (invalid syntax, line 2)",
    ]
    (tmp_path / ".coveragerc").write_text("[run]\nplugins = nbcov\n")
    assert "a.ipynb · cell 2" in coverage_cli("report", cwd=tmp_path).stdout
    nbcov_cli("html", cwd=tmp_path)


def test_fixed_and_rerun_without_cell_ids_reports_normally(tmp_path: Path) -> None:
    """nbformat 4.4: JupyterLab sends random cell ids, cells are found by their source in the file."""
    nb = make_notebook(tmp_path / "a.ipynb", ["%load_ext nbcov", BROKEN_CAPTURE, "x = 1"], ids=False)
    kernel = LiveKernel(tmp_path, env={"JPY_SESSION_NAME": str(nb)})
    try:
        kernel.run("%load_ext nbcov", "random-1")
        assert kernel.run(BROKEN_CAPTURE, "random-2")["status"] == "error"
        assert report_json(tmp_path)["cells"] == []
        fixed = "%%capture\nx = (1,\n     2)\nif x:\n    y = 1\n"
        make_notebook(nb, ["%load_ext nbcov", fixed, "x = 1"], ids=False)  # edited and saved
        assert kernel.run(fixed, "random-2")["status"] == "ok"
    finally:
        kernel.shutdown()
    result = nbcov_cli("report", "--format", "json", cwd=tmp_path)
    assert result.stderr == ""  # the broken version is gone
    cell = cells_by_index(json.loads(result.stdout))[2]
    assert cell["executed_lines"] == [2, 4, 5] and cell["missing_lines"] == []


def test_nbcov_run_reports_the_notebook_failed_and_combines(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "a.ipynb", ["%load_ext nbcov", DEF_F, "f(1)", BROKEN_CAPTURE, "f(2)"])
    result = nbcov_cli("run", nb.name, cwd=tmp_path, check=False)
    assert result.returncode == 1, result.stderr
    assert "a.ipynb · cell 4:" in result.stdout  # the cell that raised
    assert "1 failed (1 notebooks)" in result.stdout  # the summary
    assert "a.ipynb · cell 2" in result.stdout  # the report
    assert result.stderr.count("nbcov: warning: a.ipynb · cell 4 is left out") == 1
    assert [p.name for p in tmp_path.glob(".coverage*")] == [".coverage"]  # its piece combined
    assert set(cells_by_index(report_json(tmp_path))) == {2, 3}


# -- cells analysed as pieces of one module (the differential gaps, tests/differential/gaps/) --------


@pytest.mark.unit
def test_a_string_before_more_code_is_a_statement() -> None:
    assert make_parser('"a string statement"\ny = 2\n', None).statements == {1, 2}
    assert make_parser('"""A title cell: the module\'s docstring."""\n', None).statements == set()


@pytest.mark.unit
def test_no_excluded_line_past_the_cell_s_end() -> None:
    plugin = NbcovPlugin()
    plugin.exclude = join_regex(DEFAULT_EXCLUDE)
    record = CellRecord(source="def stub():\n    ...", code="def stub():\n    ...\n")
    assert make_parser(record.code, plugin.exclude).excluded == {1, 2, 3}  # coverage.py's regex reaches line 3
    assert CellFileReporter("stub.json", record, plugin).excluded_lines() == {1, 2}


@pytest.mark.unit
def test_a_one_line_def_goes_on_to_the_next_statement() -> None:
    # As IPython runs the cell: each top-level statement a code object of its own (-1 in, -1 out).
    ran = {(-1, 1), (1, -1), (-1, 2), (2, -1), (-1, 3), (3, -1)}
    arcs = module_arcs("z = 3\ndef f(): return 1\nw = 4\n", ran)
    assert {(1, 2), (2, 3), (3, -1)} <= arcs and (2, -1) not in arcs and (2, -2) not in arcs
