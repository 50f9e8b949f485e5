"""Differential tests: a module run by coverage.py and the same code run as notebook cells by nbcov agree.

Every sample of the corpus is real Python: the modules in `tests/differential/` (together they use
every kind of statement) and pure-Python standard-library modules copied from the running
interpreter, each followed by a driver that takes some branches and not others.

Each sample is measured twice, with the same `.coveragerc`:

* as a `.py` file under plain coverage.py (its default core), run as `__main__`;
* split into notebook cells at top-level statement boundaries (a def or class per cell, other
  top-level statements in groups of up to three, leading comments kept with their statement),
  run in a real kernel after `%load_ext nbcov`, and reported by `nbcov report --format json`.

For every cell, the module's executed, missing and excluded lines inside the cell's line range,
moved to cell-relative numbers, must equal the cell's. With branch coverage, the module's
executed and missing branches that start inside the cell must equal the cell's, after one
normalization: a cell is analysed as a module of its own, so where the module continues into a
later cell (or ends), the cell exits. A module arc whose destination lies outside the cell's
lines (a later statement, or the module's exit -1) is therefore compared as the cell's exit, -1;
every other destination, including the negative exits of functions and classes defined in the
cell (-first line), is moved to cell-relative numbers like any line. The cell's own arcs are
taken as reported (its exits are -1 already). Nothing else is normalized.

To stay fast, all samples run in one notebook per mode (one kernel), each sample starting from a
namespace cleared of the previous sample's names, and the reference runs in one process per mode.
Modes: line and branch coverage under the default core, and line coverage under `sysmon` (Python
3.12+; coverage.py only measures branches with sysmon from 3.14).
"""

from __future__ import annotations

import ast
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

import pytest

from conftest import cells_by_index, execute_notebook, make_notebook, report_json

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

CORPUS = OWN_SAMPLES + [f"stdlib_{name}" for name in STDLIB_SAMPLES]

#: (coverage mode, core): the default core in line and branch mode, and sysmon in line mode.
MODES = [("line", "default"), ("branch", "default"), ("line", "sysmon")]

#: Known gaps between nbcov and coverage.py: (sample, mode, core) -> (condition, reason).
KNOWN_GAPS: dict[tuple[str, str, str], tuple[bool, str]] = {}

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


def sample_source(name: str) -> str:
    if not name.startswith("stdlib_"):
        return (CORPUS_DIR / f"{name}.py").read_text(encoding="utf-8")
    path, driver = STDLIB_SAMPLES[name.removeprefix("stdlib_")]
    module = (Path(sysconfig.get_paths()["stdlib"]) / path).read_text(encoding="utf-8")
    return module.rstrip("\n") + "\n\n\n# -- driver (nbcov differential test) --\n" + textwrap.dedent(driver)


_SIMPLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Import, ast.ImportFrom, ast.Pass,
           ast.Global, ast.Assert, ast.Delete, ast.Raise)


def split_cells(source: str) -> list[Cell]:
    """Cut a module into cells at top-level statements.

    A def or class (with its decorators) is a cell of its own; other statements are grouped up to
    three per cell, so top-level branches sit first, in the middle and last in their cells. The
    comment lines right above a statement go with it; blank lines between cells are left out.
    """
    lines = source.splitlines()
    tree = ast.parse(source)
    groups: list[list[ast.stmt]] = []
    current: list[ast.stmt] = []
    for node in tree.body:
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
        while start - 1 > previous_end and lines[start - 2].lstrip().startswith("#"):
            start -= 1
        end = group[-1].end_lineno or group[-1].lineno
        cells.append(Cell(start, "\n".join(lines[start - 1 : end])))
        previous_end = end
    # Nothing the module measures may fall between cells: only blank and comment lines do.
    covered = {line for cell in cells for line in range(cell.start, cell.end + 1)}
    for number, text in enumerate(lines, start=1):
        assert number in covered or not text.strip() or text.lstrip().startswith("#"), (number, text)
    return cells


# -- running both sides ---------------------------------------------------------------------------

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
"""


def coveragerc(mode: str) -> str:
    return "[run]\nbranch = true\n" if mode == "branch" else "[run]\nbranch = false\n"


def run_reference(root: Path, samples: list[Sample], mode: str) -> dict[str, dict[str, Any]]:
    """coverage.py's JSON report for each sample run as a .py file, all in one fresh process."""
    folders = []
    for sample in samples:
        folder = root / sample.name
        folder.mkdir(parents=True)
        (folder / "sample.py").write_text(sample.source, encoding="utf-8")
        (folder / ".coveragerc").write_text(coveragerc(mode))
        folders.append(str(folder))
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}  # plain: default core
    result = subprocess.run(
        [sys.executable, "-c", REFERENCE_SCRIPT, json.dumps(folders)],
        capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    reports = {}
    for sample, folder in zip(samples, folders):
        files = json.loads((Path(folder) / "coverage.json").read_text())["files"]
        assert len(files) == 1, list(files)
        reports[sample.name] = next(iter(files.values()))
    return reports


def run_notebook(folder: Path, samples: list[Sample], mode: str) -> tuple[dict[int, dict[str, Any]], str]:
    """nbcov's cells, by notebook position, for all samples run in one notebook; and the core used."""
    cells: list[str] = ["%load_ext nbcov", "%nbcov status", KEEP_CELL]
    for sample in samples:
        # Each sample starts in a namespace without the names the previous samples left.
        cells.append(
            f"# differential: {sample.name}\n"
            "for _name in [n for n in globals() if n not in _DIFFERENTIAL_KEEP]:\n"
            "    del globals()[_name]"
        )
        for cell in sample.cells:
            cells.append(cell.text)
            cell.index = len(cells)
    (folder / ".coveragerc").write_text(coveragerc(mode))
    nb = execute_notebook(make_notebook(folder / "differential.ipynb", cells), timeout=60)
    status = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    core = re.search(r"core: (\w+)", status)
    assert core, status
    report = report_json(folder)
    assert report["meta"]["branch_coverage"] == (mode == "branch")
    return cells_by_index(report), core[1]


@dataclasses.dataclass
class Run:
    samples: dict[str, Sample]
    reference: dict[str, dict[str, Any]]
    cells: dict[int, dict[str, Any]]
    core: str


class Runs:
    """Each mode runs once, when its first test needs it, with the environment that test set."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.done: dict[tuple[str, str], Run] = {}

    def get(self, mode: str, core: str) -> Run:
        key = (mode, core)
        if key not in self.done:
            folder = self.root / f"{mode}-{core}"
            # Fresh Sample objects per run: notebook positions are filled in by run_notebook.
            samples = {name: Sample(name, src, split_cells(src)) for name in CORPUS for src in [sample_source(name)]}
            reference = run_reference(folder / "reference", list(samples.values()), mode)
            notebook_dir = folder / "notebook"
            notebook_dir.mkdir(parents=True)
            cells, used_core = run_notebook(notebook_dir, list(samples.values()), mode)
            self.done[key] = Run(samples, reference, cells, used_core)
        return self.done[key]


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(tmp_path_factory.mktemp("differential"))


# -- comparing ------------------------------------------------------------------------------------


def module_view(module: dict[str, Any], cell: Cell) -> dict[str, Any]:
    """The module's report restricted to the cell's lines, in the cell's numbers (see the docstring)."""

    def lines(key: str) -> list[int]:
        return sorted(cell.relative(n) for n in module[key] if n in cell)

    def destination(to: int) -> int:
        if to > 0:
            return cell.relative(to) if to in cell else EXIT
        return -cell.relative(-to) if -to in cell else EXIT

    def arcs(key: str) -> list[tuple[int, int]]:
        return sorted((cell.relative(a), destination(b)) for a, b in module.get(key, []) if a in cell)

    view: dict[str, Any] = {k: lines(k) for k in ("executed_lines", "missing_lines", "excluded_lines")}
    if "executed_branches" in module:
        view.update({k: arcs(k) for k in ("executed_branches", "missing_branches")})
    return view


def cell_view(cell: dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {k: sorted(cell[k]) for k in ("executed_lines", "missing_lines", "excluded_lines")}
    if "executed_branches" in cell:
        view.update({k: sorted(tuple(arc) for arc in cell[k]) for k in ("executed_branches", "missing_branches")})
    return view


def params() -> list[Any]:
    out = []
    for name in CORPUS:
        for mode, core in MODES:
            marks = []
            if core == "sysmon" and sys.version_info < (3, 12):
                marks.append(pytest.mark.skip(reason="sys.monitoring needs Python 3.12+"))
            gap = KNOWN_GAPS.get((name, mode, core))
            if gap is not None and gap[0]:
                marks.append(pytest.mark.xfail(strict=True, reason=gap[1]))
            out.append(pytest.param(name, mode, core, id=f"{name}-{mode}-{core}", marks=marks))
    return out


@pytest.mark.parametrize(("name", "mode", "core"), params())
def test_cells_measure_like_the_module(
    name: str, mode: str, core: str, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    if core == "sysmon":
        monkeypatch.setenv("COVERAGE_CORE", "sysmon")  # after conftest's fixture removed it
    run = runs.get(mode, core)
    assert run.core == ("sysmon" if core == "sysmon" else "ctrace")
    sample = run.samples[name]
    module = run.reference[name]
    assert module["executed_lines"] and module["missing_lines"], "the driver must leave some lines missed"
    if mode == "branch":
        assert module["executed_branches"] and module["missing_branches"], "the driver must miss some branches"

    differences = {}
    for cell in sample.cells:
        assert cell.index in run.cells, f"cell {cell.index} ({name} line {cell.start}) is not reported"
        expected = module_view(module, cell)
        actual = cell_view(run.cells[cell.index])
        if expected != actual:
            differences[f"module lines {cell.start}-{cell.end} (notebook cell {cell.index})"] = {
                key: {"module": expected[key], "cell": actual[key]}
                for key in expected
                if expected[key] != actual[key]
            }
    assert not differences, json.dumps(differences, indent=1)
