"""Another coverage.py measurement in a measured kernel (ipytest, pytest-cov, the user's own) works as without nbcov."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import Any

import coverage
import coverage.data
import nbformat
import pytest

from conftest import CLASSIFY, CORES, cells_by_index, execute_notebook, make_notebook, nbcov_cli, report_json
from kernels import LiveKernel
from nbcov import coexist
from nbcov.data import TRACER_NAME

IPYTEST_COV_CELLS = [  # `--cov` by hand: pytest-cov without ipytest's plugin
    "import ipytest\nipytest.autoconfig()",
    CLASSIFY,
    "%%ipytest --cov\n\ndef test_pos():\n    assert classify(1) == 'pos'",
    "print(classify(-1))",
]

IPYTEST_CELLS = [
    "import ipytest\nipytest.autoconfig(coverage=True)",
    CLASSIFY,
    "%%ipytest\n\ndef test_pos():\n    assert classify(1) == 'pos'",
    "print(classify(-1))",
]

OWN_COVERAGE_CELLS = [
    "import coverage\nimport mod",
    CLASSIFY,
    # The user's own measurement, with coverage.py's defaults: `.coverage` in the working folder.
    "cov = coverage.Coverage()\ncov.start()\nclassify(1)\nmod.f(1)\ncov.stop()\ncov.save()\n"
    "cov.report(show_missing=True, ignore_errors=True)",
    "print(classify(-1))",
]

MOD = "def f(x):\n    if x:\n        return 1\n    return 2\n"


def _shown(nb: Any) -> list[str]:
    """What each cell showed, without what differs between any two runs (kernel pid, timings) or nbcov's notices.

    stdout and stderr apart: how a kernel's two streams interleave is a matter of timing.
    """
    texts = []
    for cell in nb.cells:
        outputs = [o for o in cell.get("outputs", []) if not o.get("text", "").startswith("nbcov: ")]
        by_stream = sorted(outputs, key=lambda o: o.get("name") == "stderr")
        text = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in by_stream)
        texts.append(_normal(text))
    return texts


def _normal(text: str) -> str:
    """Output as any two runs print it: the kernel's pid (and the column widths its digits set), timings."""
    text = re.sub(r"ipykernel_\d+", "ipykernel_N", text)
    text = re.sub(r"in \d+\.\d+s", "in Ts", text)
    return re.sub(r"-{3,}", "---", re.sub(r" {2,}", " ", text))


def _without_nbcov(folder: Path, cells: list[str], files: dict[str, str]) -> list[str]:
    """Run the notebook as nbclient would, with no nbcov in the kernel: what the other tool shows alone."""
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return _shown(execute_notebook(make_notebook(folder / "nb.ipynb", cells)))


def _with_nbcov_run(
    folder: Path, cells: list[str], files: dict[str, str], *options: str
) -> tuple[list[str], dict[str, Any]]:
    """`nbcov run`: what the cells showed (nbcov's own stderr lines left out) and nbcov's report."""
    shown, _, report = _nbcov_run(folder, cells, files, *options)
    return shown, report


def _nbcov_run(
    folder: Path, cells: list[str], files: dict[str, str], *options: str
) -> tuple[list[str], list[str], dict[str, Any]]:
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    make_notebook(folder / "nb.ipynb", cells)
    result = nbcov_cli("run", "nb.ipynb", "--output-notebook", "out", *options, cwd=folder, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    nb = nbformat.read(str(folder / "out" / "nb.ipynb"), as_version=4)
    notices = [
        line
        for cell in nb.cells
        for o in cell.get("outputs", [])
        if o.get("name") == "stderr"
        for line in o["text"].splitlines()
        if line.startswith("nbcov: ")
    ]
    return _shown(nb), notices, report_json(folder)


@pytest.mark.parametrize("cells", [IPYTEST_CELLS, IPYTEST_COV_CELLS], ids=["autoconfig", "cov-flag"])
def test_ipytest_coverage_under_nbcov_run(tmp_path: Path, cells: list[str]) -> None:
    """`ipytest.autoconfig(coverage=True)` or `%%ipytest --cov`: pytest-cov in the kernel, on `.coverage`."""
    alone = _without_nbcov(tmp_path / "alone", cells, {})
    shown, report = _with_nbcov_run(tmp_path / "nbcov", cells, {})
    assert "1 passed" in alone[2] and "tests coverage" in alone[2], alone[2]
    assert shown == alone  # pytest's output and pytest-cov's report, exactly
    cells = cells_by_index(report)
    # classify(1) ran only inside the ipytest run, while pytest-cov measured.
    assert 3 in cells[2]["executed_lines"] and cells[2]["missing_lines"] == [6], cells[2]
    assert cells[3]["missing_lines"] == [] and cells[3]["executed_lines"], cells[3]


def test_own_coverage_object_under_nbcov_run(tmp_path: Path) -> None:
    """The user's own `coverage.Coverage()` started, saved and reported in a cell."""
    alone = _without_nbcov(tmp_path / "alone", OWN_COVERAGE_CELLS, {"mod.py": MOD})
    shown, report = _with_nbcov_run(tmp_path / "nbcov", OWN_COVERAGE_CELLS, {"mod.py": MOD})
    assert "mod.py 4 2 50% 1, 4" in alone[2], alone[2]
    assert shown == alone
    cells = cells_by_index(report)
    assert 3 in cells[2]["executed_lines"] and cells[2]["missing_lines"] == [6], cells[2]
    assert cells[3]["missing_lines"] == [], cells[3]  # every line, also those the user's measurement saw
    assert report["files"]["mod.py"]["executed_lines"] == [1, 2, 3]


def test_what_nbcov_could_not_see_is_said_in_one_line(tmp_path: Path) -> None:
    """Branch coverage while pytest-cov measures lines: beside it on 3.12+, one notice where both need settrace."""
    shown, notices, report = _nbcov_run(tmp_path / "nbcov", IPYTEST_CELLS, {}, "--branch")
    assert "1 passed" in shown[2]
    cells = cells_by_index(report)
    if sys.version_info >= (3, 12):  # nbcov's branch engine uses sys.monitoring: it measured all along
        assert notices == []
        assert 3 in cells[2]["executed_lines"], cells[2]
    else:
        assert len(notices) == 1 and "nb.ipynb · cell 3" in notices[0] and "branches" in notices[0], notices
    assert [c["cell_index"] for c in report["cells"]] == [1, 2, 3, 4]


def _live(folder: Path, cells: list[str], load_nbcov: bool) -> tuple[list[str], str]:
    kernel = LiveKernel(folder)
    try:
        if load_nbcov:
            assert kernel.run("%load_ext nbcov")["status"] == "ok"
        outputs, errors = [], ""
        for i, cell in enumerate(cells):
            reply = kernel.run(cell, cell_id=f"cell-{i + 1}", timeout=120)
            assert reply["status"] == "ok", reply
            text = "".join(
                o.get("text", "") or o.get("data", {}).get("text/plain", "")
                for o in reply["outputs"]
                if o.get("name") != "stderr"
            )
            outputs.append(_normal(text))
            errors += "".join(o.get("text", "") for o in reply["outputs"] if o.get("name") == "stderr")
    finally:
        kernel.shutdown()
    return outputs, errors


def _measured(data_file: Path) -> dict[str, str]:
    """The files a data file measured (the kernel's pid and the folder left out) and their tracers."""
    data = coverage.CoverageData(str(data_file))
    data.read()
    folder = str(data_file.parent)
    return {
        re.sub(r"ipykernel_\d+", "ipykernel_N", f).replace(folder, "."): data.file_tracer(f) or ""
        for f in data.measured_files()
    }


OWN_ACROSS_CELLS = [  # started in one cell, stopped in another: nbcov's hooks run while it measures
    "import coverage\nimport mod",
    CLASSIFY,
    "cov = coverage.Coverage()\ncov.start()",
    "classify(1)\nmod.f(1)",
    "cov.stop()\ncov.save()\ncov.report(show_missing=True, ignore_errors=True)",
    "print(classify(-1))",
]


@pytest.mark.parametrize(
    "cells", [IPYTEST_CELLS, OWN_COVERAGE_CELLS, OWN_ACROSS_CELLS], ids=["ipytest", "own", "own-across-cells"]
)
def test_live_kernel_gives_the_data_file_to_the_other_tool(tmp_path: Path, cells: list[str]) -> None:
    """`%load_ext nbcov` in JupyterLab: both want `.coverage` in the notebook's folder."""
    alone, nb_alone = tmp_path / "alone", tmp_path / "nbcov"
    for folder in (alone, nb_alone):
        folder.mkdir()
        (folder / "mod.py").write_text(MOD)
        make_notebook(folder / "nb.ipynb", cells)
    shown_alone, _ = _live(alone, cells, load_nbcov=False)
    shown, notices = _live(nb_alone, cells, load_nbcov=True)
    assert shown == shown_alone
    # The other tool's data file holds its data only, as without nbcov.
    assert _measured(nb_alone / ".coverage") == _measured(alone / ".coverage")
    assert TRACER_NAME not in _measured(nb_alone / ".coverage").values()
    # nbcov's data moved beside it, whole, and one line said where.
    assert notices.count("nbcov: ") == 1 and ".coverage-nbcov" in notices, notices
    report = report_json(nb_alone, ".coverage-nbcov")
    # (No notebook here: the cells are named `In [N]`, in the order they ran.)
    missing = [c["missing_lines"] for c in report["cells"]]
    assert missing == [[6] if cell == CLASSIFY else [] for cell in cells], report["cells"]
    assert len(report["cells"]) == len(cells)

    # A restarted kernel goes on where nbcov's data went, and leaves the other tool's file alone.
    theirs = (nb_alone / ".coverage").read_bytes()
    _, notices = _live(nb_alone, [cells[0], cells[1]], load_nbcov=True)
    assert notices == "" and (nb_alone / ".coverage").read_bytes() == theirs
    assert len(report_json(nb_alone, ".coverage-nbcov")["cells"]) == len(cells)


# -- the guard alone, in this process (no kernel) --------------------------------------------------


@dataclasses.dataclass
class _Host:
    """The little of a Session the guard uses, around a real Coverage."""

    cov: coverage.Coverage | None
    target: str
    measuring: bool = True
    relocated: list[str] = dataclasses.field(default_factory=list)

    def relocate(self, reason: str) -> None:
        self.relocated.append(reason)
        self.target += "-nbcov"

    def is_cell_file(self, path: str) -> bool:
        return False

    def running_cell_label(self) -> str:
        return "cell 3"


@pytest.fixture
def guarded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    made: list[coexist.Guard] = []

    def make(target: str, cov: coverage.Coverage | None = None) -> tuple[coexist.Guard, _Host]:
        host = _Host(cov or coverage.Coverage(data_file=None), str(tmp_path / target))
        guard = coexist.Guard(host)
        guard.install()
        made.append(guard)
        return guard, host

    yield make
    for guard in made:
        guard.uninstall()


@pytest.mark.unit
def test_pieces_are_hidden_from_other_combines_and_erases(guarded: Any, tmp_path: Path) -> None:
    guard, host = guarded(".coverage.nb0-abcd")
    for name in (".coverage.nb0-abcd", ".coverage.nb0-abcd.host.1.X1x", ".coverage.theirs"):
        (tmp_path / name).write_text("")
    assert [Path(p).name for p in coverage.data.combinable_files(str(tmp_path / ".coverage"))] == [".coverage.theirs"]
    coverage.CoverageData(str(tmp_path / ".coverage")).erase(parallel=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".coverage.nb0-abcd", ".coverage.nb0-abcd.host.1.X1x"]
    guard.uninstall()
    assert len(coverage.data.combinable_files(str(tmp_path / ".coverage"))) == 2


@pytest.mark.unit
def test_a_coverage_on_our_data_file_makes_nbcov_move(guarded: Any, tmp_path: Path) -> None:
    _, host = guarded(".coverage")
    coverage.Coverage(data_file=str(tmp_path / "other.coverage")).erase()
    theirs = coverage.Coverage()  # coverage.py's default: `.coverage` in the working folder
    theirs.get_option("run:branch")  # made to read its settings only: the file is not touched
    assert host.relocated == []
    theirs.erase()  # pytest-cov's first step: before it deletes the file, nbcov is gone from it
    assert len(host.relocated) == 1 and host.target.endswith(".coverage-nbcov")
    assert str(coexist._PACKAGE) in " ".join(theirs.get_option("run:omit"))


def _run_me(x: int) -> int:
    if x:
        return 1
    return 2


@pytest.mark.unit
@pytest.mark.parametrize("saved", [True, False], ids=["saved", "stopped-only"])
@pytest.mark.parametrize("core", CORES)
def test_lines_run_under_another_measurement_are_nbcovs_too(
    guarded: Any, core: str, saved: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beside it under sys.monitoring; taken back from its data where both need sys.settrace."""
    monkeypatch.setenv("COVERAGE_CORE", core)
    ours = coverage.Coverage(data_file=None, include=[__file__])
    monkeypatch.setenv("COVERAGE_CORE", "ctrace")  # the other tool: coverage.py's default core
    guard, host = guarded(".coverage", ours)
    ours.start()
    try:
        theirs = coverage.Coverage(data_file=None, include=[__file__])
        theirs.start()
        _run_me(1)
        theirs.stop()
        if saved:
            theirs.get_data()
        notice = guard.end_of_cell("cell 3")
    finally:
        ours.stop()
    first = _run_me.__code__.co_firstlineno
    assert {first + 1, first + 2} <= set(ours.get_data().lines(__file__) or [])
    assert set(theirs.get_data().lines(__file__) or []) >= {first + 1, first + 2}  # theirs: as ever
    if core == "ctrace":  # taken back, but `include` narrowed what the other one measured: said
        assert notice is not None and "cell 3" in notice and "source/include" in notice
    else:
        assert notice is None


@pytest.mark.unit
def test_exactly_one_line_when_nbcov_could_not_see_everything(guarded: Any) -> None:
    guard, _ = guarded(".coverage")
    guard.pending.cells.append("nb.ipynb · cell 3")
    guard._incomplete("the branches (it measured lines only)")
    line = guard.end_of_cell("nb.ipynb · cell 3")
    assert line is not None and "\n" not in line and "nb.ipynb · cell 3" in line and "branches" in line
    assert guard.end_of_cell("nb.ipynb · cell 4") is None


@pytest.mark.unit
def test_nbcovs_own_reports_in_the_kernel_are_not_another_tool(guarded: Any, tmp_path: Path) -> None:
    """`%nbcov report` opens nbcov's data file on purpose: nbcov does not move away from itself."""
    from nbcov.report import open_coverage

    _, host = guarded(".coverage")
    data = coverage.CoverageData(host.target)
    data.add_lines({str(tmp_path / "m.py"): [1]})
    data.write()
    mine = open_coverage(host.target)
    assert host.relocated == [] and mine.get_data().measured_files() == {str(tmp_path / "m.py")}
    assert not any("nbcov" in pattern for pattern in mine.get_option("run:omit") or [])
