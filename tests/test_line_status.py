"""One line classification (`report.line_statuses`) behind the JSON/text, inline and HTML reports.

No kernel: coverage.py measures small modules in this process, and cell records are written as a
kernel writes them; each report is then asked what it says of each line.
"""

from __future__ import annotations

import importlib.util
import re
import textwrap
from pathlib import Path

import coverage
import pytest

from nbcov import inline, report
from nbcov.cells import CellRecord, CellStore
from nbcov.data import TRACER_NAME
from nbcov.html.data import analyse as html_entry
from nbcov.report import LineStatus

RUN, MISSED, PARTIAL, EXCLUDED, NOT_MEASURED = (
    LineStatus.RUN, LineStatus.MISSED, LineStatus.PARTIAL, LineStatus.EXCLUDED, LineStatus.NOT_MEASURED,
)

MODULE = textwrap.dedent(
    """\
    def f(x):
        if x:
            y = 1
        return (x,
                2)
    def g():
        return 1
    def h():  # pragma: no cover
        return 2
    def k(x):
        if x:
            return 3
    """
)


def _measured_module(tmp_path: Path, branch: bool) -> report.FileResult:
    """MODULE measured by a real Coverage in this process, with f(1) called: one analysed file."""
    path = tmp_path / "mod.py"
    path.write_text(MODULE)
    cov = coverage.Coverage(data_file=str(tmp_path / ".coverage"), branch=branch, source=[str(tmp_path)], config_file=False)
    cov.start()
    try:
        spec = importlib.util.spec_from_file_location("nbcov_line_status_mod", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.f(1)
    finally:
        cov.stop()
    cov.save()
    (result,) = report.analyse(cov).files
    return result


@pytest.mark.parametrize("branch", [False, True])
def test_each_line_of_a_module_gets_one_status(tmp_path: Path, branch: bool) -> None:
    result = _measured_module(tmp_path, branch)
    statuses = report.line_statuses(result.analysis, result.reporter)
    # Line 5 continues line 4's statement; line 2's branch to line 4 is never taken; line 11 never
    # ran, so none of its branches did either: missed, not partial.
    assert statuses.by_line == {
        1: RUN, 2: PARTIAL if branch else RUN, 3: RUN, 4: RUN, 6: RUN, 7: MISSED, 8: EXCLUDED, 9: EXCLUDED,
        10: RUN, 11: MISSED, 12: MISSED,
    }
    assert statuses.missing_arcs == ({2: [4], 11: [-10, 12]} if branch else {})
    assert statuses.lines(EXCLUDED) == [8, 9]


def _cell(tmp_path: Path, code: str, ran: list[int]) -> report.FileResult:
    """A cell run before measuring began (`premeasured`), with `ran` measured, as a kernel records it."""
    name = CellStore(tmp_path).save(CellRecord(source=code, code=code, premeasured=True))
    data = coverage.CoverageData(basename=str(tmp_path / ".coverage"))
    data.add_lines({name: ran})
    data.add_file_tracers({name: TRACER_NAME})
    data.write()
    (result,) = report.analyse(report.open_coverage(str(tmp_path / ".coverage"), config_file=False)).files
    return result


CELL = "def f():\n    return 1\nx = f()\ndef g():\n    return 2  # pragma: no cover\n"


def test_not_measured_wins_over_coverage_pys_excluded(tmp_path: Path) -> None:
    result = _cell(tmp_path, CELL, [2])
    statuses = report.line_statuses(result.analysis, result.reporter)
    # coverage.py counts the lines that ran at definition as excluded; they read "not measured".
    assert {1, 3, 4} <= result.analysis.excluded
    assert statuses.by_line == {1: NOT_MEASURED, 2: RUN, 3: NOT_MEASURED, 4: NOT_MEASURED, 5: EXCLUDED}


def test_the_json_inline_and_html_reports_say_the_same_of_every_line(tmp_path: Path) -> None:
    (tmp_path / "cell").mkdir()
    cell = _cell(tmp_path / "cell", CELL, [2])
    module = _measured_module(tmp_path, branch=True)
    cell_json = report.build(report.open_coverage(str(tmp_path / "cell" / ".coverage"), config_file=False))["cells"][0]
    assert cell_json["not_measured_lines"] == [1, 3, 4] and cell_json["excluded_lines"] == [5]

    css = {RUN: "run", MISSED: "mis", PARTIAL: "par", EXCLUDED: "exc", NOT_MEASURED: "nm", None: ""}
    for result, data_dir in ((cell, tmp_path / "cell"), (module, tmp_path)):
        expected = report.line_statuses(result.analysis, result.reporter).by_line
        view = inline.file_view(result)
        assert {n: s for n, s, _ in view.lines if s is not None} == expected
        cov = report.open_coverage(str(data_dir / ".coverage"), config_file=False)
        entry = html_entry(cov, result.name, show_contexts=False)
        assert entry is not None
        shown = {n: c for c, n in re.findall(r'<p class="l ?([a-z ]*)" id="\x00L(\d+)"', entry.fragment)}
        for lineno in range(1, len(view.lines) + 1):
            # A continuation line is drawn in its statement's status ("... c"): module line 5.
            assert shown[str(lineno)].removesuffix(" c") == css[expected.get(lineno, expected.get(lineno - 1))], lineno
