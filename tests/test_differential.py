"""Differential tests: a module run by coverage.py and the same code run as notebook cells by nbcov agree.

Every sample of the corpus is real Python: the modules in `tests/differential/` (together they use
every kind of statement, each ending with a driver that takes some branches and not others) and
pure-Python standard-library modules copied from the running interpreter, followed by a driver
written here. `tests/differential/gaps/` holds minimal reproductions of places where nbcov and
coverage.py disagree, each a strict xfail (see KNOWN_GAPS); fixed ones move to the corpus, as
regression tests (the small samples there whose docstrings say "Fixed").

Each sample is measured twice, with the same `.coveragerc`:

* as a `.py` file under plain coverage.py (its default core), run as `__main__`;
* split into notebook cells at top-level statement boundaries (the module docstring, and each def
  or class with its decorators, in a cell of its own; other top-level statements in groups of up
  to three; comments right above a statement kept with it; or where a sample puts `# %%` lines),
  run in a real kernel after `%load_ext nbcov` (where the code runs in `__main__` too), and
  reported by `nbcov report --format json`.

For every cell, the module's executed, missing and excluded lines inside the cell's line range,
moved to cell-relative numbers, must equal the cell's.

With branch coverage, the module's executed and missing branches that start inside the cell must
equal the cell's, as sets of (from, to) pairs, after one normalization. nbcov reports a cell's
arcs as if the cell had run as a module of its own: where the module goes on into a later cell,
or ends, the cell exits (to -1). So a module arc whose destination lies outside the cell's lines
(a statement of a later cell, or the module's exit -1) is compared as the cell's exit, -1. Every
other destination is moved to cell-relative numbers like any line, including the negative exits
of functions and classes defined in the cell (-first line: -L in the module is -(L - start + 1)
in the cell). Where two of the module's ways out of a line become the same arc that way (a cell
that is only a one-line `def`: on to the next cell, and the function's own exit, are both -1),
the cell has one way out: that arc counts as taken if either was, and a line left with one way
out is no branch, as coverage.py analyses the cell's code. The cell's arcs are compared as
reported. Nothing else is normalized.

To stay fast, each mode runs all samples in a few notebooks executed side by side (each sample
starts from a namespace cleared of the previous sample's names), and the reference runs every
sample in one coverage.py process per mode (always coverage.py's default core, the C tracer before
3.14). Modes: line coverage under `ctrace` and under `sysmon` (Python 3.12+, and what nbcov picks
for lines on 3.12/3.13 when no core is chosen), and branch coverage under nbcov's default choice
(its engine on 3.12/3.13; coverage.py measures branches with sysmon only from Python 3.14).
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import json
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Any

import coverage
import nbformat
import pytest
from coverage import CoverageData
from nbclient import NotebookClient

from conftest import cells_by_index, make_notebook, report_json, run_once
from nbcov import engine
from nbcov.cells import CellRecord, CellStore
from nbcov.report import analyse, open_coverage

CORPUS_DIR = Path(__file__).parent / "differential"
OWN_SAMPLES = sorted(p.stem for p in CORPUS_DIR.glob("*.py"))

#: Pure-Python standard-library modules (path below the stdlib folder) and the driver run after each.
STDLIB_SAMPLES: dict[str, tuple[str, str]] = {
    "textwrap": (
        "textwrap.py",
        """\
        wrapper = TextWrapper(width=20, max_lines=3, placeholder=" ...")
        print(wrapper.fill("The quick brown fox jumps over the lazy dog " * 3))
        print(wrap("Hello world, this is a test of wrapping", width=12))
        print(shorten("Hello  world!", width=12))
        print(indent("a\\n\\nb\\n", "> "))
        print(dedent("    x\\n      y\\n"))
        """,
    ),
    "colorsys": (
        "colorsys.py",
        """\
        print(rgb_to_hsv(0.2, 0.4, 0.4), hsv_to_rgb(0.5, 0.5, 0.4))
        print(rgb_to_hls(1.0, 0.0, 0.0), hls_to_rgb(0.0, 0.5, 1.0))
        print(rgb_to_yiq(0.1, 0.2, 0.3), yiq_to_rgb(0.5, 0.1, 0.1))
        """,
    ),
    "fnmatch": (
        "fnmatch.py",
        """\
        print(fnmatch("foo.py", "*.py"), fnmatchcase("Foo.PY", "*.py"))
        print(filter(["a.py", "b.txt", "c.py"], "*.py"))
        print(translate("[!a-c]?*.[ch]"), translate("[]x]"), translate("a[b"))
        """,
    ),
    "graphlib": (
        "graphlib.py",
        """\
        sorter = TopologicalSorter({"b": {"a"}, "c": {"a", "b"}})
        print(tuple(sorter.static_order()))
        cyclic = TopologicalSorter()
        cyclic.add(1, 2)
        cyclic.add(2, 1)
        try:
            cyclic.prepare()
        except CycleError as exc:
            print("cycle", exc.args[1])
        stepwise = TopologicalSorter({"x": set()})
        stepwise.prepare()
        while stepwise.is_active():
            for node in stepwise.get_ready():
                stepwise.done(node)
        """,
    ),
    "html": (
        "html/__init__.py",
        """\
        print(escape("<a href='x'>&</a>"), escape("<b>", quote=False))
        print(unescape("&lt;p&gt; &amp;amp; &#62; &#x3e; &copy &notanentity; &#0;"))
        print(unescape("no entities"))
        """,
    ),
    "string": (
        "string.py",
        """\
        print(capwords("hello   world"), capwords("a-b", "-"))
        template = Template("$who likes ${what}")
        print(template.substitute(who="tim", what="kung pao"), template.safe_substitute(who="x"))
        print(Template("$$ $x").get_identifiers())
        print(Formatter().format("{0}-{name!r:>5}", 1, name="n"))
        """,
    ),
}

GAPS_DIR = CORPUS_DIR / "gaps"
GAP_SAMPLES = sorted(p.stem for p in GAPS_DIR.glob("*.py"))

CORPUS = OWN_SAMPLES + [f"stdlib_{name}" for name in STDLIB_SAMPLES] + [f"gap_{name}" for name in GAP_SAMPLES]

#: (coverage mode, core the kernels measure with).
# Line coverage under both cores nbcov measures with (on 3.12/3.13 it picks sysmon when no core is
# chosen, nbcov.core); branches under the default choice (nbcov's engine on 3.12/3.13).
MODES = [("line", "ctrace"), ("branch", "default"), ("line", "sysmon")]

ALL_MODES = set(MODES)
BRANCH_MODE = {("branch", "default")}

#: Where nbcov and coverage.py disagree, found by this test: sample -> (modes it fails in, why).
#: Each is a strict xfail: when nbcov changes so that the sample passes, the mark has to go and the
#: sample moves from gaps/ to the corpus, as a regression test. The samples in gaps/ are minimal
#: reproductions; list a corpus sample here only while one of those gaps makes it fail, naming the gap.
KNOWN_GAPS: dict[str, tuple[set[tuple[str, str]], str]] = {
    "gap_oneline_def_first_in_cell": (
        BRANCH_MODE,
        "a one-line `def f(): ...` on line 1 of a cell, with more code after it: the function's exit "
        "(1->-1 in the cell) is the very arc the def statement's own code object records as it "
        "ends (IPython runs each top-level statement as a module, whose exit is -1 too), so "
        "nbcov cannot tell whether the function ran and reports its exit taken. Compiling that "
        "module with another co_firstlineno (line table rewritten to the same positions) tells them "
        "apart, but IPython's tracebacks through its frame (stack_data/executing) then lose the line",
    ),
}
assert set(KNOWN_GAPS) <= {*OWN_SAMPLES, *(f"stdlib_{n}" for n in STDLIB_SAMPLES), *(f"gap_{n}" for n in GAP_SAMPLES)}

EXIT = -1  # where a cell goes when the module goes on in a later cell, or ends

KEEP_CELL = "_DIFFERENTIAL_KEEP = set(globals()) | {'_DIFFERENTIAL_KEEP'}"


# -- the corpus and its cells ---------------------------------------------------------------------


@dataclasses.dataclass
class Cell:
    start: int  # the module line of the cell's line 1
    text: str
    index: int = 0  # 1-based position in the notebook

    @property
    def end(self) -> int:
        return self.start + len(self.text.splitlines()) - 1

    def __contains__(self, line: int) -> bool:
        return self.start <= line <= self.end

    def relative(self, line: int) -> int:
        return line - self.start + 1


@dataclasses.dataclass
class Sample:
    name: str
    source: str
    cells: list[Cell]
    reset_index: int = 0  # the notebook cell that clears the namespace before the sample


def sample_source(name: str) -> str:
    if name.startswith("gap_"):
        return (GAPS_DIR / f"{name.removeprefix('gap_')}.py").read_text(encoding="utf-8")
    if not name.startswith("stdlib_"):
        return (CORPUS_DIR / f"{name}.py").read_text(encoding="utf-8")
    path, driver = STDLIB_SAMPLES[name.removeprefix("stdlib_")]
    module = (Path(sysconfig.get_paths()["stdlib"]) / path).read_text(encoding="utf-8")
    return module.rstrip("\n") + "\n\n\n" + textwrap.dedent(driver)


def split_cells(source: str) -> list[Cell]:
    """Cut a module into cells at top-level statements.

    A sample may choose its cells with `# %%` lines (jupytext's percent format): each cell is then
    the code between two markers. Otherwise the module's docstring, and each def or class (with its
    decorators), is a cell of its own, and other statements are grouped up to three per cell, so
    that top-level branches sit first, in the middle and last in their cells. The comment lines
    right above a statement go with it; blank lines between cells are left out.
    """
    lines = source.splitlines()
    tree = ast.parse(source)
    markers = [n for n, text in enumerate(lines, start=1) if text.strip() == "# %%"]
    groups: list[list[ast.stmt]] = []
    if markers:
        bounds = [0, *markers, len(lines) + 1]
        for above, below in zip(bounds, bounds[1:]):
            group = [node for node in tree.body if above < node.lineno < below]
            if group:
                groups.append(group)
    else:
        current: list[ast.stmt] = []
        body = list(tree.body)
        if ast.get_docstring(tree, clean=False) is not None:
            groups.append([body.pop(0)])  # the module's docstring: a first cell of its own, as a title
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if current:
                    groups.append(current)
                groups.append([node])
                current = []
                continue
            current.append(node)
            if len(current) == 3:
                groups.append(current)
                current = []
        if current:
            groups.append(current)

    cells: list[Cell] = []
    previous_end = 0
    for group in groups:
        first = group[0]
        start = min([first.lineno, *(d.lineno for d in getattr(first, "decorator_list", []))])
        floor = max([previous_end, *(m for m in markers if m < start)])
        while start - 1 > floor and lines[start - 2].lstrip().startswith("#"):
            start -= 1  # the comment lines right above a statement go with it
        end = group[-1].end_lineno or group[-1].lineno
        cells.append(Cell(start, "\n".join(lines[start - 1 : end])))
        previous_end = end
    # Nothing the module measures may fall between cells: only blank and comment lines do.
    covered = {line for cell in cells for line in range(cell.start, cell.end + 1)}
    for number, text in enumerate(lines, start=1):
        assert number in covered or not text.strip() or text.lstrip().startswith("#"), (number, text)
    return cells


# -- running both sides ---------------------------------------------------------------------------

#: Notebooks run side by side in each mode, in kernels of their own: shorter notebooks (nbcov's
#: save after each cell grows with the cells measured so far) and both cores busy.
NOTEBOOKS_PER_MODE = 2

REFERENCE_SCRIPT = """\
import json, os, runpy, sys
import coverage
for folder in json.loads(sys.argv[1]):
    os.chdir(folder)
    path = os.path.join(folder, "sample.py")
    cov = coverage.Coverage(data_file=os.path.join(folder, ".coverage"), config_file=".coveragerc")
    cov.start()
    try:
        runpy.run_path(path, run_name="__main__")
    finally:
        cov.stop()
    cov.save()
    cov.json_report(morfs=[path], outfile=os.path.join(folder, "coverage.json"))
    with open("core.txt", "w") as f:
        f.write(dict(cov.sys_info())["core"])
"""


def coveragerc(mode: str) -> str:
    return "[run]\nbranch = true\n" if mode == "branch" else "[run]\nbranch = false\n"


def start_reference(root: Path, samples: list[Sample], mode: str) -> subprocess.Popen[str]:
    """Run each sample as a .py file under plain coverage.py, all in one fresh process."""
    folders = []
    for sample in samples:
        folder = root / sample.name
        folder.mkdir(parents=True)
        (folder / "sample.py").write_text(sample.source, encoding="utf-8")
        (folder / ".coveragerc").write_text(coveragerc(mode))
        folders.append(str(folder))
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}  # plain: the default core
    return subprocess.Popen(
        [sys.executable, "-c", REFERENCE_SCRIPT, json.dumps(folders)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def reference_reports(
    process: subprocess.Popen[str], root: Path, samples: list[Sample]
) -> tuple[dict[str, Any], str]:
    """coverage.py's JSON report of each sample, and the core that measured them."""
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    reports = {}
    for sample in samples:
        files = json.loads((root / sample.name / "coverage.json").read_text())["files"]
        assert len(files) == 1, list(files)
        reports[sample.name] = next(iter(files.values()))
    cores = {(root / sample.name / "core.txt").read_text() for sample in samples}
    assert len(cores) == 1, cores
    return reports, cores.pop()


def notebook_cells(samples: list[Sample], with_status: bool) -> list[str]:
    """The notebook's cells; fills in each sample cell's position."""
    cells: list[str] = ["%load_ext nbcov", *(["%nbcov status"] if with_status else []), KEEP_CELL]
    for sample in samples:
        # Each sample starts in a namespace without the names the previous samples left.
        cells.append(
            f"_DIFFERENTIAL_SAMPLE = {sample.name!r}\n"
            "for _name in [n for n in globals() if n not in _DIFFERENTIAL_KEEP]:\n"
            "    del globals()[_name]"
        )
        sample.reset_index = len(cells)
        for cell in sample.cells:
            cells.append(cell.text)
            cell.index = len(cells)
    return cells


def execute_notebooks(paths: list[Path], timeout: int = 60) -> list[Any]:
    """Run notebooks in parallel kernels, each as conftest's `execute_notebook` runs one.

    Each kernel gets the environment of the test (so COVERAGE_CORE reaches it) plus its notebook
    in JPY_SESSION_NAME, given to the kernel rather than set in this process.
    """
    from jupyter_client.manager import AsyncKernelManager

    from nbcov.kernel import CURRENT_PYTHON, CurrentPythonKernelSpecs

    async def run_all() -> list[Any]:
        clients = [
            NotebookClient(
                nbformat.read(str(path), as_version=4),
                km=AsyncKernelManager(kernel_name=CURRENT_PYTHON, kernel_spec_manager=CurrentPythonKernelSpecs()),
                timeout=timeout,
                resources={"metadata": {"path": str(path.parent)}},
                allow_errors=True,  # a cell that fails is reported with its sample, not for all
            )
            for path in paths
        ]
        runs = [c.async_execute(env={**os.environ, "JPY_SESSION_NAME": str(p)}) for c, p in zip(clients, paths)]
        return list(await asyncio.gather(*runs))

    return asyncio.run(run_all())


def batches(samples: list[Sample], count: int) -> list[list[Sample]]:
    """Samples dealt into `count` notebooks of about the same number of cells, in corpus order."""
    bins: list[list[Sample]] = [[] for _ in range(min(count, len(samples)))]
    for sample in sorted(samples, key=lambda s: -len(s.cells)):
        min(bins, key=lambda b: sum(len(s.cells) for s in b)).append(sample)
    return [sorted(b, key=lambda s: CORPUS.index(s.name)) for b in bins]


@dataclasses.dataclass
class Run:
    samples: dict[str, Sample]
    reference: dict[str, dict[str, Any]]
    cells: dict[str, dict[int, dict[str, Any]]]  # by sample: nbcov's cells by notebook position
    errors: dict[str, list[str]]  # by sample: the errors its cells raised in the kernel
    core: str  # the coverage.py core that measured in the kernels
    reference_core: str  # the core plain coverage.py used

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        samples = {
            name: Sample(**{**sample, "cells": [Cell(**cell) for cell in sample["cells"]]})
            for name, sample in data["samples"].items()
        }
        cells = {name: {int(i): cell for i, cell in by_index.items()} for name, by_index in data["cells"].items()}
        return cls(samples, data["reference"], cells, data["errors"], data["core"], data["reference_core"])


class Runs:
    """Each mode runs once, when its first test needs it, with the environment that test set.

    Under pytest-xdist the workers share one folder: the first worker to need a mode runs it
    (holding a lock) and saves the outcome; the others wait for it and read it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.done: dict[tuple[str, str], Run] = {}

    def get(self, mode: str, core: str) -> Run:
        key = (mode, core)
        if key not in self.done:
            folder = self.root / f"{mode}-{core}"
            self.done[key] = run_once(self.root, f"{mode}-{core}", lambda: self._run(folder, mode), Run.from_json)
        return self.done[key]

    @staticmethod
    def _run(root: Path, mode: str) -> Run:
        samples = {name: Sample(name, src, split_cells(src)) for name in CORPUS for src in [sample_source(name)]}
        reference = start_reference(root / "reference", list(samples.values()), mode)
        groups = batches(list(samples.values()), NOTEBOOKS_PER_MODE)
        # The notebooks share a folder, so their kernels share a data file (and one report reads it).
        folder = root / "notebooks"
        folder.mkdir(parents=True)
        (folder / ".coveragerc").write_text(coveragerc(mode))
        paths = [
            make_notebook(folder / f"differential{number}.ipynb", notebook_cells(group, number == 0))
            for number, group in enumerate(groups)
        ]
        executed = execute_notebooks(paths)
        errors: dict[str, list[str]] = {}
        for group, nb in zip(groups, executed):
            raised = {
                index: f"cell {index}: {out['ename']}: {out['evalue']}"
                for index, cell in enumerate(nb.cells, start=1)
                for out in cell.get("outputs", [])
                if out.get("output_type") == "error"
            }
            setup = [message for index, message in raised.items() if index < group[0].reset_index]
            assert not setup, setup
            for sample in group:
                own = [sample.reset_index] + [cell.index for cell in sample.cells]
                errors[sample.name] = [raised[i] for i in own if i in raised]
        status = "".join(o.get("text", "") for o in executed[0].cells[1].outputs)
        core = re.search(r"core: (.+)", status)
        assert core, status
        report = report_json(folder)
        assert report["meta"]["branch_coverage"] == (mode == "branch")
        cells: dict[str, dict[int, dict[str, Any]]] = {}
        for group, path in zip(groups, paths):
            by_index = cells_by_index({"cells": [c for c in report["cells"] if c["notebook"] == path.name]})
            for sample in group:
                cells[sample.name] = {c.index: by_index[c.index] for c in sample.cells if c.index in by_index}
        reference_data, reference_core = reference_reports(reference, root / "reference", list(samples.values()))
        return Run(samples, reference_data, cells, errors, core[1], reference_core)


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    base = tmp_path_factory.getbasetemp()
    # xdist workers each get a folder below the session's: share that one.
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "differential"
    root.mkdir(exist_ok=True)
    return Runs(root)


# -- comparing ------------------------------------------------------------------------------------


def _as_from_7_14(module: dict[str, Any], source: str) -> dict[str, Any]:
    """The module's report as coverage.py 7.14 and later make it, which nbcov's cells follow on every version.

    coverage.py 7.10-7.13 also list lines that ran but are not statements (a docstring, an excluded
    line) as executed in a .py file's report; from 7.14 executed lines are statements only.
    """
    if coverage.version_info >= (7, 14):
        return module
    from coverage.parser import PythonParser

    parser = PythonParser(text=source)
    parser.parse_source()
    excluded = set(module["excluded_lines"])
    executed = [n for n in module["executed_lines"] if n in parser.statements and n not in excluded]
    return {**module, "executed_lines": executed}


def module_view(module: dict[str, Any], cell: Cell) -> dict[str, Any]:
    """The module's report restricted to the cell's lines, in the cell's numbers (see the docstring)."""

    def lines(key: str) -> list[int]:
        return sorted(cell.relative(n) for n in module[key] if n in cell)

    def destination(to: int) -> int:
        if to > 0:
            return cell.relative(to) if to in cell else EXIT
        return -cell.relative(-to) if -to in cell else EXIT

    def arcs(key: str) -> list[tuple[int, int]]:
        return sorted({(cell.relative(a), destination(b)) for a, b in module.get(key, []) if a in cell})

    view: dict[str, Any] = {k: lines(k) for k in ("executed_lines", "missing_lines", "excluded_lines")}
    if "executed_branches" in module:
        executed, missing = arcs("executed_branches"), arcs("missing_branches")
        # Two ways out of a line may become one in the cell (on to the next cell, and the exit of a
        # function starting on the cell's line 1, are both -1): one arc, taken if either was. A
        # line left with one way out is no branch, as in coverage.py's analysis of the cell's code.
        ways = {a: {b for start, b in executed + missing if start == a} for a, _ in executed + missing}
        branch = {a for a, to in ways.items() if len(to) > 1}
        view["executed_branches"] = [arc for arc in executed if arc[0] in branch]
        view["missing_branches"] = [arc for arc in missing if arc[0] in branch and arc not in executed]
    return view


def cell_view(cell: dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {k: sorted(cell[k]) for k in ("executed_lines", "missing_lines", "excluded_lines")}
    if "executed_branches" in cell:
        view.update({k: sorted({tuple(arc) for arc in cell[k]}) for k in ("executed_branches", "missing_branches")})
    return view


# -- without a kernel: the reporter's view of the cell that follows --------------------------------


EXCLUDED_IF = "if flag is None:  # pragma: no cover\n    result = 2"


@pytest.mark.parametrize(
    ("following", "branches"),
    [
        ([EXCLUDED_IF], ([], [])),  # the arc into it is no arc: the `if` has one way on
        (["# a comment", EXCLUDED_IF], ([], [])),  # a cell without a statement is passed over
        (["result = 2"], ([(2, 3)], [(2, -1)])),
        ([], ([(2, 3)], [(2, -1)])),  # the last cell: the module ends there
    ],
)
def test_a_cell_followed_by_an_excluded_statement_has_no_way_on_into_it(
    following: list[str], branches: tuple[list[tuple[int, int]], list[tuple[int, int]]], tmp_path: Path
) -> None:
    """As coverage.py drops a module's arcs into excluded lines, the cell's exit, its way on into the
    next cell, is no arc when that cell starts with an excluded statement: its last `if` is no branch."""
    cell = "flag = True\nif flag:\n    result = 1"
    make_notebook(tmp_path / "nb.ipynb", ["%load_ext nbcov", cell, *following])
    record = CellRecord(source=cell, code=cell, notebook="nb.ipynb", cell_index=2, cell_id="cell-2", key="cell-2")
    name = CellStore(tmp_path).save(record)
    data = CoverageData(basename=str(tmp_path / ".coverage"))
    data.add_arcs({name: [(-1, 1), (1, 2), (2, 3), (3, -1)]})
    data.add_file_tracers({name: "nbcov.NbcovPlugin"})
    data.write()
    entry = analyse(open_coverage(str(tmp_path / ".coverage"), config_file=False), [name]).files[0].entry
    reported = [sorted(tuple(arc) for arc in entry[key]) for key in ("executed_branches", "missing_branches")]
    assert tuple(reported) == branches


def params() -> list[Any]:
    out = []
    for name in CORPUS:
        for mode, core in MODES:
            marks = []
            if core == "sysmon" and sys.version_info < (3, 12):
                marks.append(pytest.mark.skip(reason="sys.monitoring needs Python 3.12+"))
            failing, reason = KNOWN_GAPS.get(name, (set(), ""))
            if (mode, core) in failing:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            out.append(pytest.param(name, mode, core, id=f"{name}-{mode}-{core}", marks=marks))
    return out


@pytest.mark.parametrize(("name", "mode", "core"), params())
def test_cells_measure_like_the_module(
    name: str, mode: str, core: str, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    if core != "default":
        monkeypatch.setenv("COVERAGE_CORE", core)  # after conftest's fixture removed it
    run = runs.get(mode, core)
    # The kernels measured with the core asked for, or the one plain coverage.py chose — except
    # branches on 3.12/3.13, which nbcov's engine measures (the reference is then the C tracer's data).
    if core != "default":
        expected = {"sysmon": "sys.monitoring", "ctrace": "the C tracer"}[core]
    elif mode == "branch" and engine.SUPPORTED:
        expected = "nbcov's branch engine"
    else:  # what `%nbcov status` calls the core plain coverage.py chose (its `sys_info()` class name)
        expected = {"CTracer": "the C tracer", "SysMonitor": "sys.monitoring", "PyTracer": "the Python tracer"}[run.reference_core]
    assert run.core == expected
    sample = run.samples[name]
    module = run.reference[name]
    if not name.startswith("gap_"):
        assert module["executed_lines"] and module["missing_lines"], "the driver must leave some lines missed"
        if mode == "branch":
            assert module["executed_branches"] and module["missing_branches"], "the driver must miss some branches"
    # Every line of code the module reports lies in a cell: the comparison below leaves nothing out.
    # (coverage.py's `...` exclusion may reach into the blank or comment lines between cells.)
    code_lines = {n for n, text in enumerate(sample.source.splitlines(), start=1) if text.strip()[:1] not in ("", "#")}
    for key in ("executed_lines", "missing_lines", "excluded_lines"):
        stray = [n for n in module[key] if n in code_lines and not any(n in cell for cell in sample.cells)]
        assert not stray, f"{key} outside every cell: {stray}"

    assert not run.errors[name], "cells failed in the kernel:\n" + "\n".join(run.errors[name])
    module = _as_from_7_14(module, sample.source)
    reported = run.cells[name]
    differences = []
    for cell in sample.cells:
        assert cell.index in reported, f"cell {cell.index} ({name} line {cell.start}) is not reported"
        expected = module_view(module, cell)
        actual = cell_view(reported[cell.index])
        if expected != actual:
            differences.append(
                f"module lines {cell.start}-{cell.end} = notebook cell {cell.index}:\n"
                + textwrap.indent(cell.text, "    | ")
                + "".join(
                    f"\n  {key}: module {expected[key]} != cell {actual[key]}"
                    for key in expected
                    if expected[key] != actual[key]
                )
            )
    assert not differences, "\n".join(differences)
