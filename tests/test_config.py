"""The user's coverage configuration is honoured in the kernel, under every core."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

import nbformat

from conftest import CORES, cells_by_index, execute_notebook, make_notebook, nbcov_cli, report_json

BRANCHY = "def sign(x):\n    if x > 0:\n        return 1\n    while x < -5:\n        x += 1\n    return -1 if x else 0\n"


def _package(root: Path) -> None:
    (root / "mypkg").mkdir()
    (root / "mypkg" / "__init__.py").write_text("")
    (root / "mypkg" / "core.py").write_text("def add(a, b):\n    if a < 0:\n        return 0\n    return a + b\n")
    (root / "other.py").write_text("def sub(a, b):\n    return a - b\n")


def test_source_limits_modules_but_never_drops_cells(tmp_path: Path) -> None:
    _package(tmp_path)
    (tmp_path / ".coveragerc").write_text("[run]\nsource = mypkg\n")
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        ["%load_ext nbcov", "from mypkg.core import add\nfrom other import sub\nr = add(1, 2) + sub(3, 1)"],
    )
    execute_notebook(nb)
    report = report_json(tmp_path)
    assert cells_by_index(report)[2]["executed_lines"] == [1, 2, 3]
    modules = {Path(name).name: entry for name, entry in report["files"].items()}
    assert set(modules) == {"__init__.py", "core.py"}  # other.py is outside `source`
    assert modules["core.py"]["missing_lines"] == [3]


def test_include_and_omit_patterns(tmp_path: Path) -> None:
    _package(tmp_path)
    (tmp_path / ".coveragerc").write_text("[run]\ninclude = */mypkg/*\nomit = */__init__.py\n")
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        ["%load_ext nbcov", "from mypkg.core import add\nfrom other import sub\nadd(1, 2)"],
    )
    execute_notebook(nb)
    report = report_json(tmp_path)
    assert cells_by_index(report)[2]["executed_lines"] == [1, 2, 3]
    assert [Path(n).name for n in report["files"]] == ["core.py"]


def test_branch_and_partial_branches_from_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [tool.coverage.run]
            branch = true
            [tool.coverage.report]
            partial_branches = ["# always true"]
            """
        )
    )
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        ["%load_ext nbcov", BRANCHY, "sign(3)\nsign(-2)", "n = 3\nwhile n:  # always true\n    n -= 1\n    if n == 1:\n        break"],
    )
    execute_notebook(nb)
    report = report_json(tmp_path)
    assert report["meta"]["branch_coverage"] is True
    cells = cells_by_index(report)
    assert cells[2]["missing_branches"] == [[4, 5]]  # the loop body never ran
    assert cells[4]["missing_branches"] == []  # "while n:" is marked as a partial branch on purpose
    assert cells[4]["missing_lines"] == []


def _run_with_core(tmp_path: Path, core: str, monkeypatch: pytest.MonkeyPatch, branch: bool) -> dict:
    monkeypatch.setenv("COVERAGE_CORE", core)
    folder = tmp_path / core
    folder.mkdir()
    if branch:
        (folder / ".coveragerc").write_text("[run]\nbranch = true\n")
    nb = make_notebook(
        folder / "nb.ipynb",
        ["%load_ext nbcov", BRANCHY, "sign(3)\nsign(-9)", "%nbcov status", "[i * i for i in range(3) if i]"],
    )
    executed = execute_notebook(nb)
    status = "".join(o.get("text", "") for o in executed.cells[3].outputs)
    monkeypatch.delenv("COVERAGE_CORE")
    return {"status": status, "report": report_json(folder)}


@pytest.mark.parametrize("branch", [False, True], ids=["line", "branch"])
def test_same_cells_same_numbers_under_every_core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, branch: bool) -> None:
    runs = {core: _run_with_core(tmp_path, core, monkeypatch, branch) for core in CORES}
    keys = ["executed_lines", "missing_lines", "excluded_lines", "executed_branches", "missing_branches"]
    shapes = {
        core: [{k: c.get(k) for k in keys} for c in run["report"]["cells"] if c["cell_index"] != 4]
        for core, run in runs.items()
    }
    assert shapes["ctrace"][0]["executed_lines"] == [1, 2, 3, 4, 5, 6]
    for core in CORES:
        assert shapes[core] == shapes["ctrace"], core
    assert "core: the C tracer" in runs["ctrace"]["status"]
    if "sysmon" in runs:
        # sys.monitoring measures lines; branches on 3.12/3.13 (where coverage.py's sysmon core cannot)
        # are measured by nbcov's sys.monitoring engine.
        expected = "nbcov's branch engine" if branch and sys.version_info < (3, 14) else "sys.monitoring"
        assert f"core: {expected}" in runs["sysmon"]["status"]


def test_core_choice_for_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Line coverage on 3.12/3.13 uses sys.monitoring unless a core was chosen or a setting needs a tracer."""
    import coverage

    from nbcov import core

    def chosen(**kwargs: object) -> bool:
        cov = coverage.Coverage(data_file=None, config_file=False)
        for name, value in kwargs.items():
            cov.set_option(f"run:{name}", value)
        return core.prefer_sysmon(cov)[0]

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COVERAGE_CORE", raising=False)
    assert chosen() is core.SYSMON_LINES
    assert chosen(branch=True) is False  # the branch engine decides (nbcov.engine)
    assert chosen(core="ctrace") is False
    assert chosen(timid=True) is False
    assert chosen(dynamic_context="test_function") is False
    assert chosen(concurrency=["gevent"]) is False
    monkeypatch.setenv("COVERAGE_CORE", "ctrace")
    assert chosen() is False  # the environment variable counts as a choice too

    # In real kernels of `nbcov run` (which records each cell as a context): the core `%nbcov status`
    # reports, with no configuration and with `core = ctrace`, and no warning in any cell's output.
    monkeypatch.delenv("COVERAGE_CORE")
    statuses = {}
    for name, rc in (("none", ""), ("ctrace", "[run]\ncore = ctrace\n")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / ".coveragerc").write_text(rc)
        make_notebook(folder / "nb.ipynb", ["x = 1", "y = 2", "%nbcov status"])
        nbcov_cli("run", "nb.ipynb", "--output-notebook", "out", cwd=folder)
        executed = nbformat.read(str(folder / "out" / "nb.ipynb"), as_version=4)
        texts = ["".join(o.get("text", "") for o in cell.outputs) for cell in executed.cells]
        assert texts[:2] == ["", ""], texts  # e.g. coverage.py's no-sysmon-context warning
        statuses[name] = texts[2]
        assert cells_by_index(report_json(folder))[2]["executed_lines"] == [1]
        assert "nb.ipynb|cell 2" in nbcov_cli("who", "nb.ipynb:2:1", cwd=folder).stdout
    assert ("core: sys.monitoring" if core.SYSMON_LINES else "core: the C tracer") in statuses["none"]
    assert "core: the C tracer" in statuses["ctrace"]
