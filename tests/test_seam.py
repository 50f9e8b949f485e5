"""One seam for coverage.py: its undocumented names only in coverage_internals.py, fallbacks that keep measuring, cores in words."""

from __future__ import annotations

import ast
import os
import re
import sys
import textwrap
from pathlib import Path

import coverage
import nbformat
import pytest

import nbcov
from nbcov import core, coverage_internals, engine
from tests.conftest import CLASSIFY, cells_by_index, execute_notebook, make_notebook, nbcov_cli, report_json

SRC = Path(nbcov.__file__).parent
SEAM = SRC / "coverage_internals.py"

#: coverage.py's documented API (coverage.readthedocs.io, "API"): what any nbcov module may use.
DOCUMENTED_MODULES = {"coverage", "coverage.exceptions", "coverage.numbits", "coverage.plugin", "coverage.types"}
DOCUMENTED_TOP = {"Coverage", "CoverageData", "CoveragePlugin", "FileReporter", "FileTracer", "CoverageException",
                  "version_info", "__version__", "process_startup"}

def _coverage_private_names() -> set[str]:
    """Every underscore name coverage.py defines or uses on its objects (dunders aside)."""
    names = set()
    for path in Path(coverage.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = node.name
            elif isinstance(node, ast.Attribute):
                name = node.attr
            else:
                continue
            if name.startswith("_") and not name.endswith("__"):
                names.add(name)
    return names


def coverage_uses(tree: ast.AST, private: set[str]) -> set[str]:
    """The coverage.py names outside its documented API that a module's syntax tree uses."""
    found: set[str] = set()
    other_modules = set()  # names bound to modules that are not coverage.py's (os._exit is fine)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "coverage" or alias.name.startswith("coverage."):
                    if alias.name not in DOCUMENTED_MODULES:
                        found.add(alias.name)
                else:
                    other_modules.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "coverage":
                found.update(f"coverage.{a.name}" for a in node.names if a.name not in DOCUMENTED_TOP)
            elif node.module.startswith("coverage.") and node.module not in DOCUMENTED_MODULES:
                found.add(node.module)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            base = node.value
            if isinstance(base, ast.Name) and base.id == "coverage" and node.attr not in DOCUMENTED_TOP \
                    and f"coverage.{node.attr}" not in DOCUMENTED_MODULES:
                found.add(f"coverage.{node.attr}")
            elif node.attr in private and not (isinstance(base, ast.Name) and base.id in {"self", "cls", *other_modules}):
                found.add(f".{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) > 1:
            name = node.args[1]
            if node.func.id in {"getattr", "hasattr", "setattr", "delattr"} and isinstance(name, ast.Constant) \
                    and name.value in private:
                found.add(f".{name.value}")
    return found


def test_coverage_internals_are_used_only_in_the_seam() -> None:
    private = _coverage_private_names()
    unexpected = {}
    for path in sorted(SRC.rglob("*.py")):
        if path == SEAM:
            continue
        uses = coverage_uses(ast.parse(path.read_text(encoding="utf-8")), private)
        if uses:
            unexpected[path.relative_to(SRC).as_posix()] = sorted(uses)
    assert unexpected == {}, "use coverage.py internals through nbcov.coverage_internals"


def test_the_checker_sees_each_kind_of_use() -> None:
    """The checker itself: each way a module can reach into coverage.py is caught, documented API is not."""
    private = _coverage_private_names()
    code = textwrap.dedent("""
        import os, coverage, coverage.sysmon
        from coverage import collector, Coverage
        from coverage.report_core import get_analysis_to_report
        from coverage.exceptions import NoSource
        cov._collector.tracers
        getattr(cov, "_inorout", None)
        coverage.results
        os._exit(0)
        self._core = coverage.Coverage()
    """)
    assert coverage_uses(ast.parse(code), private) == {
        "coverage.sysmon", "coverage.collector", "coverage.report_core", "._collector", "._inorout", "coverage.results",
    }


def test_the_seam_says_which_versions_each_function_was_checked_on() -> None:
    tree = ast.parse(SEAM.read_text(encoding="utf-8"))
    unchecked = [
        node.name for node in tree.body
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and node.name not in ("notice", "notices")
        and not re.search(r"\b7\.\d+", ast.get_docstring(node) or "")
    ]
    assert unchecked == []


# -- the core in words ---------------------------------------------------------------------------------


def _unstarted(**options: object) -> coverage.Coverage:
    cov = coverage.Coverage(data_file=None, config_file=False)
    for name, value in options.items():
        cov.set_option(f"run:{name}", value)
    return cov


@pytest.mark.parametrize("chosen", ["ctrace", "pytrace", "sysmon"])
def test_coverage_pys_own_core_in_words(tmp_path: Path, chosen: str) -> None:
    if chosen == "sysmon" and sys.version_info < (3, 12):
        pytest.skip("sys.monitoring is 3.12+")
    cov = _unstarted(core=chosen)
    assert core.in_use(cov) is None and core.describe(cov) == "stopped"
    cov.start()
    try:
        described = core.describe(cov)
    finally:
        cov.stop()
    assert described == {"ctrace": "the C tracer", "pytrace": "the Python tracer", "sysmon": "sys.monitoring"}[chosen]


@pytest.mark.skipif(not engine.SUPPORTED, reason="nbcov's tracers measure on 3.12 and 3.13")
def test_nbcovs_tracers_are_known_from_nbcovs_record_not_class_names(tmp_path: Path) -> None:
    branches = _unstarted(branch=True)
    assert engine.install(branches, mark_imports=False)
    branches.start()
    try:
        assert core.in_use(branches) is core.Core.BRANCH_ENGINE
        assert core.describe(branches) == "nbcov's branch engine"
        # coverage.py's own debug output (`coverage debug sys`) names each tracer by its class, as it is.
        assert dict(branches.sys_info())["core"] == engine.ENGINE_NAME == "BranchMonitor"
    finally:
        branches.stop()
    lines = _unstarted(core="sysmon")
    assert engine.install_lines(lines)
    lines.start()
    try:
        assert type(coverage_internals.tracers(lines)[0]).__qualname__ == "LineMonitor"
        assert core.in_use(lines) is core.Core.SYSMON and core.in_use(lines).rearmed_per_context
        assert dict(lines.sys_info())["core"] == "LineMonitor"
    finally:
        lines.stop()


def _status(cells: list[str], folder: Path) -> str:
    make_notebook(folder / "nb.ipynb", cells)
    executed = execute_notebook(folder / "nb.ipynb")
    return "".join(o.get("text", "") for o in executed.cells[-1].outputs)


def test_status_and_covtest_name_the_core_in_words(tmp_path: Path) -> None:
    (tmp_path / ".coveragerc").write_text("[run]\nbranch = true\n")
    expected = "nbcov's branch engine" if engine.SUPPORTED else "the C tracer"
    status = _status(["%load_ext nbcov", "x = 1", "%nbcov status"], tmp_path)
    assert f"core: {expected}" in status
    for class_name in ("CTracer", "SysMonitor", "PyTracer", "LineMonitor", engine.ENGINE_NAME):
        assert class_name not in status
    make_notebook(tmp_path / "t.ipynb", ["%load_ext nbcov", CLASSIFY, "%%covtest\ndef test_pos():\n    assert classify(1) == 'pos'"])
    executed = execute_notebook(tmp_path / "t.ipynb")
    html = "".join(str(o.get("data", {}).get("text/html", "")) for o in executed.cells[2].outputs)
    assert f"measured by {expected}".replace("'", "&#x27;") in html or f"measured by {expected}" in html


# -- fallbacks: coverage.py without the internals nbcov probes ------------------------------------------

#: A coverage.py where one private method has another name (as a future release may): its own code
#: calls it by the new name, so coverage.py works as before, but nbcov's probe for the old one fails.
RENAMED = """\
import importlib

_owner = getattr(importlib.import_module({module!r}), {owner!r})
setattr(_owner, {new!r}, _owner.__dict__[{old!r}])
delattr(_owner, {old!r})
for _function in list(vars(_owner).values()):
    _code = getattr(_function, "__code__", None)
    if _code is not None and {old!r} in _code.co_names:
        _function.__code__ = _code.replace(co_names=tuple({new!r} if n == {old!r} else n for n in _code.co_names))
"""


def _renamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, owner: str, old: str) -> None:
    """Every Python the test starts (kernels, `nbcov run`) gets that coverage.py (a sitecustomize)."""
    site = tmp_path / "site"
    site.mkdir()
    code = RENAMED.format(module=module, owner=owner, old=old, new=f"{old}_renamed")
    (site / "sitecustomize.py").write_text(code)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(SRC.parent), os.environ.get("PYTHONPATH", "")]))


def _renamed_core_builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _renamed(tmp_path, monkeypatch, "coverage.control", "Coverage", "_init_for_start")


def test_probe_fails_in_this_process_without_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit: the core-swap probe says no (once, in one line) for a coverage.py that moved the name."""
    monkeypatch.delattr(coverage.Coverage, "_init_for_start")
    coverage_internals._core_swappable.cache_clear()
    monkeypatch.setattr(coverage_internals, "_said", {})
    try:
        cov = coverage.Coverage(data_file=None, config_file=False, branch=True)
        assert not coverage_internals.core_swappable(cov, "X is slower")
        assert not coverage_internals.core_swappable(cov, "X is slower")
        if engine.SUPPORTED:
            assert engine.decide(cov)[0] is False
            assert not engine.install_lines(coverage.Coverage(data_file=None, config_file=False))
    finally:
        coverage_internals._core_swappable.cache_clear()
    said = coverage_internals.notices()
    assert said and all("slower" in message for message in said)
    assert len([message for message in said if "X is slower" in message]) == 1


@pytest.mark.skipif(not engine.SUPPORTED, reason="nbcov swaps cores only on 3.12 and 3.13")
@pytest.mark.parametrize("branch", [True, False])
def test_load_ext_measures_with_coverage_pys_core_when_the_swap_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, branch: bool
) -> None:
    _renamed_core_builder(tmp_path, monkeypatch)
    (tmp_path / ".coveragerc").write_text(f"[run]\nbranch = {str(branch).lower()}\n")
    make_notebook(tmp_path / "nb.ipynb", ["%load_ext nbcov", CLASSIFY, "classify(1)\nclassify(-1)", "%nbcov status"])
    executed = execute_notebook(tmp_path / "nb.ipynb")
    said = [line for o in executed.cells[0].outputs for line in o.get("text", "").splitlines()]
    assert len(said) == 1 and said[0].startswith("nbcov: ") and "slower" in said[0], said
    status = "".join(o.get("text", "") for o in executed.cells[3].outputs)
    assert ("core: the C tracer" if branch else "core: sys.monitoring") in status
    cell = cells_by_index(report_json(tmp_path))[2]
    assert cell["missing_lines"] == [6]
    if branch:
        assert cell["summary"]["num_partial_branches"] == 1


@pytest.mark.skipif(not engine.SUPPORTED, reason="nbcov swaps cores only on 3.12 and 3.13")
def test_nbcov_run_measures_when_the_swap_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _renamed_core_builder(tmp_path, monkeypatch)
    (tmp_path / ".coveragerc").write_text("[run]\nbranch = true\n")
    make_notebook(tmp_path / "nb.ipynb", [CLASSIFY, "classify(1)\nclassify(-1)", "%nbcov status"])
    result = nbcov_cli("run", "nb.ipynb", "--output-notebook", "out", cwd=tmp_path)
    assert "Traceback" not in result.stdout + result.stderr
    # The kernels say it before any cell, where no one sees it: the command says it, once.
    warnings = [line for line in result.stderr.splitlines() if line.startswith("nbcov: warning: ")]
    assert len(warnings) == 1 and "slower" in warnings[0], result.stderr
    out = nbformat.read(str(tmp_path / "out" / "nb.ipynb"), as_version=4)
    status = "".join(o.get("text", "") for o in out.cells[2].outputs)
    assert "core: the C tracer" in status
    fallbacks = [line for line in status.splitlines() if line.strip().startswith("fallback:")]
    assert len(fallbacks) == 1 and "C tracer" in fallbacks[0] and "slower" in fallbacks[0], status
    cell = cells_by_index(report_json(tmp_path))[1]
    assert cell["missing_lines"] == [6] and cell["summary"]["num_partial_branches"] == 1


def test_load_ext_measures_when_the_collectors_flush_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """coexist.py's hook into another measurement's flush: without it only that recovery is lost."""
    _renamed(tmp_path, monkeypatch, "coverage.collector", "Collector", "mapped_file_dict")
    make_notebook(tmp_path / "nb.ipynb", ["%load_ext nbcov", CLASSIFY, "classify(1)\nclassify(-1)", "%nbcov status"])
    executed = execute_notebook(tmp_path / "nb.ipynb")
    said = [line for o in executed.cells[0].outputs for line in o.get("text", "").splitlines()]
    assert len(said) == 1 and said[0].startswith("nbcov: ") and "another sys.settrace measurement" in said[0], said
    status = "".join(o.get("text", "") for o in executed.cells[3].outputs)
    assert "measuring: True" in status and "fallback: " in status
    assert cells_by_index(report_json(tmp_path))[2]["missing_lines"] == [6]


def test_reporting_helpers_fall_back_when_coverage_moves_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit: each wrapped reporting helper gives coverage.py's answer; without its module, a plain one
    (and where something is lost, one notice saying what), never an exception."""
    ci = coverage_internals
    source = "def f(x):\n    if x:\n        return 1\n"
    assert ci.human_sorted(["t10", "t2"]) == ["t2", "t10"]
    assert [region.name for region in ci.code_regions(source)] == ["f"]
    assert ci.source_token_lines(source)[0][0] == ("key", "def")
    assert ci.format_lines([1, 2, 3, 5], [2, 3], arcs=[(1, [5])]) == "1->5, 2-3"
    assert ci.join_regex(["a", "b"]) == "(?:a)|(?:b)"
    assert ci.report_matcher(["*/b.py"], "report_omit")("/x/b.py")
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "a.py").write_text("")  # coverage.py remaps only to a file that exists
    aliases = [("/old/", f"{tmp_path}/new/")]
    assert ci.path_mapper(aliases)("/old/a.py") == f"{tmp_path}/new/a.py"
    flat = ci.flat_rootname("/x/y.py")
    monkeypatch.setattr(ci, "_said", {})
    for module in ("coverage.files", "coverage.misc", "coverage.results", "coverage.phystokens", "coverage.regions"):
        monkeypatch.setitem(sys.modules, module, None)  # `from coverage.x import y` raises ImportError
    assert ci.human_sorted(["t2", "t10"]) == ["t10", "t2"]
    assert ci.code_regions(source) == []
    assert ci.source_token_lines(source)[1] == [("txt", "    if x:")]
    assert ci.format_lines([1, 2, 3, 5], [2, 3], arcs=[(1, [5])]) == "2, 3, 1->5"
    assert ci.join_regex(["a", "b"]) == "(?:a)|(?:b)" and ci.join_regex(["a"]) == "a"
    assert ci.report_matcher(["*/b.py"], "report_omit")("/x/b.py")
    assert ci.path_mapper(aliases)("/old/a.py") == "/old/a.py"
    assert ci.flat_rootname("/x/y.py") != flat and ci.flat_rootname("/x/y.py").endswith("y_py")
    said = ci.notices()
    assert len(said) == 4 and all(message.startswith(f"coverage.py {coverage.__version__}: ") for message in said), said
