"""Code IPython compiles from below a cell's first line (leading blank lines, cell magics' bodies) is
reported at the lines as typed, with coverage.py's numbers for the same code as a .py file, and runs
exactly as it runs without nbcov.

IPython drops a cell's leading blank lines before compiling it, and `%%time`, `%%capture`,
`%%covtest` and `%%ipytest` compile their body from its own first line. nbcov compiles all of it as
IPython does and moves the measured lines to the cell's when saving (`parser.Shift`).
"""

from __future__ import annotations

import ast
import json
import re
import runpy
from pathlib import Path
from typing import Any

import coverage
import pytest
from coverage import CoverageData
from coverage.parser import PythonParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import cells_by_index, execute_notebook, make_notebook, nbcov_cli, report_json
from kernels import LiveKernel
from nbcov import compiler
from nbcov.cells import CellRecord, CellStore
from nbcov.data import write_mapped
from nbcov.parser import Shift, module_arcs
from nbcov.report import analyse, open_coverage

ANSI = re.compile(r"\x1b\[[0-9;]*m")
FIELDS = ["executed_lines", "missing_lines", "excluded_lines"]
BRANCH_FIELDS = [*FIELDS, "executed_branches", "missing_branches"]


# -- the .py equivalent of a cell, and coverage.py's numbers for it ----------------------------------


def as_python(cell: str) -> str:
    """The cell as a .py file with the same lines: its magic lines blank (`%%` headers) or `pass`
    (a line magic is one statement on its line, as IPython rewrites it)."""
    out = []
    header = True
    for line in cell.split("\n"):
        text = line.strip()
        if header and (not text or text.startswith("%%")):
            out.append("")
            continue
        header = False
        out.append(line[: len(line) - len(line.lstrip())] + "pass" if text.startswith("%") else line)
    return "\n".join(out) + "\n"


def coverage_py(path: Path, source: str, branch: bool) -> dict[str, Any]:
    """coverage.py's JSON entry for `source` run as the .py file `path` (in this process)."""
    path.write_text(source)
    cov = coverage.Coverage(data_file=None, branch=branch, config_file=False)
    cov.start()
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        cov.stop()
    return analyse(cov, [str(path)]).files[0].entry


def nbcov_entry(folder: Path, cell: str) -> dict[str, Any]:
    """nbcov's JSON entry (coverage.py's, through the plugin) for a cell run without a notebook."""
    name = CellStore(folder).path_for(CellRecord(source=cell, code=""))
    cov = open_coverage(str(folder / ".coverage"), config_file=False)
    return analyse(cov, [str(name)]).files[0].entry


def same_numbers(ours: dict[str, Any], theirs: dict[str, Any], branch: bool) -> dict[str, Any]:
    """The fields that differ, each as (nbcov's, coverage.py's)."""
    fields = BRANCH_FIELDS if branch else FIELDS
    ours, theirs = json.loads(json.dumps(ours)), json.loads(json.dumps(theirs))  # as JSON reports have them
    return {f: (ours[f], theirs[f]) for f in fields if ours[f] != theirs[f]}


# -- without a kernel: the moved arcs are coverage.py's --------------------------------------------

SNIPPETS = [
    "def f():\n    return 1\nf()\n",
    "def f():\n    return 1\n",
    "class A:\n    x = 1\n    def m(self):\n        return 2\nA().m()\n",
    "@staticmethod\ndef g():\n    return 1\n",
    "@dataclass\n@dataclass\nclass D:\n    x: int = 1\nD()\n",
    "def f(\n    a,\n):\n    return a\nf(1)\n",
    "f = lambda: 1\nf()\n",
    "x = (lambda: (\n    1))()\n",
    "s = sum(x for x in range(3))\n",
    "s = sum(\n    x\n    for x in range(3)\n)\nt = 1\n",
    "t = {k: v for k, v in\n    [(1, 2)]}\n",
    "s = [x for x in range(3) if x]\n",
    "x = 1\nif x:\n    y = 2\nelse:\n    y = 3\n",
    "def g(n):\n    for i in range(n):\n        yield i\nlist(g(2))\n",
    "# a comment first\ndef f():\n    return 1\nf()\n",
    "import os\ndef f(x):\n    if x:\n        return 1\n    return 2\nf(0)\n",
    "class B: pass\nb = B()\n",
    "try:\n    1/0\nexcept ZeroDivisionError:\n    z = 1\n",
    "async def co():\n    return 1\nimport asyncio\nasyncio.run(co())\n",
]


def run_as_ipython(code: str, path: Path) -> set[tuple[int, int]]:
    """The arcs coverage.py records for `code` run as IPython runs a cell: each top-level statement
    compiled as a module of its own (so every one of them starts at -1)."""
    path.write_text(code)
    namespace: dict[str, Any] = {"__name__": "__main__", "dataclass": __import__("dataclasses").dataclass}
    cov = coverage.Coverage(data_file=None, branch=True, config_file=False)
    cov.start()
    try:
        for node in ast.parse(code).body:
            exec(compile(ast.Module([node], []), str(path), "exec"), namespace)
    finally:
        cov.stop()
    return set(cov.get_data().arcs(str(path)) or ())


@pytest.mark.unit
@pytest.mark.parametrize("code", SNIPPETS)
def test_moved_arcs_are_what_coverage_py_records_for_the_code_as_typed(code: str, tmp_path: Path) -> None:
    for offset in (1, 4):
        typed = "\n" * offset + code
        parser = PythonParser(text=typed)
        parser.parse_source()

        def analysed(arcs: set[tuple[int, int]]) -> set[tuple[int, int]]:
            # What coverage.py's analysis of the cell uses: its possible arcs that ran.
            return parser.translate_arcs(module_arcs(typed, arcs)) & parser.arcs()

        moved = Shift(offset, code).arcs(run_as_ipython(code, tmp_path / "compiled.py"))
        assert analysed(moved) == analysed(run_as_ipython(typed, tmp_path / "typed.py")), offset


@pytest.mark.unit
def test_a_one_line_function_on_line_one_is_the_one_arc_measurement_cannot_tell() -> None:
    """`def f(): return 1` on the compiled line 1: entering f and entering the module's statement
    are both (-1, 1), and leaving both (1, -1). nbcov gives both meanings, as coverage.py does for the
    code as compiled: the function reads as called even when it was not (never as missed)."""
    assert Shift(2, "def f(): return 1\nx = 2\n").arcs({(-1, 1), (1, -1), (-1, 2), (2, -1)}) == {
        (-1, 3), (3, -1), (-3, 3), (3, -3), (-1, 4), (4, -1),
    }
    # Anywhere else there is nothing to tell apart: -N moves with its code, the module's -1 stays.
    assert Shift(2, "x = 1\ndef f(): return 1\n").arcs({(-1, 1), (1, -1), (-2, 2), (2, -2)}) == {
        (-1, 3), (3, -1), (-4, 4), (4, -4),
    }


@pytest.mark.unit
@pytest.mark.parametrize(
    "text, dropped",
    [("x = 1", 0), ("\n\nx = 1", 2), ("  \n\t\n\nx = 1\n\ny = 2", 3), ("\n\n%%time\n\nx = 1", 2), ("\n \n", 0), ("", 0)],
)
def test_dropped_lines_are_the_lines_ipython_drops(text: str, dropped: int) -> None:
    from IPython.core.inputtransformer2 import TransformerManager

    transformer = TransformerManager()  # what an IPython shell has as its input_transformer_manager
    assert compiler.dropped_lines(transformer, text) == dropped
    if text.strip() and "%%" not in text:  # IPython compiles the rest, line for line
        rest = "".join(text.splitlines(keepends=True)[dropped:])
        assert transformer.transform_cell(text) == rest + "\n"[: not rest.endswith("\n")]


@pytest.mark.unit
def test_a_magic_body_is_recognised_as_ipython_hands_it_over() -> None:
    """IPython's cleanup empties lines of only spaces before a cell magic gets its body; a body
    that nbcov did not recognise became a cell of its own, its lines counted from its top."""
    from nbcov.runstack import magic_body, same_lines as _same_lines

    typed = "%%capture\n   \nx0 = 0"
    body, header = magic_body(typed) or ("", 0)
    assert header == 1 and _same_lines(body, "\nx0 = 0\n")
    assert not _same_lines(body, "\nx0 = 1\n")


@pytest.mark.unit
def test_write_mapped_moves_each_context_and_keeps_the_rest(tmp_path: Path) -> None:
    measured = CoverageData(no_disk=True)
    measured.set_context("")
    measured.add_arcs({
        "/k/body.py": [(-1, 1), (1, 2), (2, -1)],  # a magic's body: its line 1 is the cell's line 4
        "/k/head.py": [(-1, 1), (1, -1)],  # the cell's own line, the magic call: not moved
        "/k/mod.py": [(-1, 1), (1, -1)],
    })
    measured.set_context("nb.ipynb::test_a")
    measured.add_arcs({"/k/body.py": [(-1, 2), (2, -1)]})
    target = tmp_path / ".coverage"
    cell = str(tmp_path / ".nbcov" / "cells" / "_ipython" / "abc.json")
    names = {"/k/body.py": cell, "/k/head.py": cell}
    write_mapped(measured, target, names, shifts={"/k/body.py": Shift(3, "x = 1\ny = 2\n")})
    out = CoverageData(basename=str(target))
    out.read()
    assert out.measured_contexts() == {"", "nb.ipynb::test_a"}
    out.set_query_context("nb.ipynb::test_a")
    assert sorted(out.arcs(cell) or []) == [(-1, 5), (5, -1)]
    out.set_query_context("")
    assert sorted(out.arcs(cell) or []) == [(-1, 1), (-1, 4), (1, -1), (4, 5), (5, -1)]
    assert sorted(out.arcs("/k/mod.py") or []) == [(-1, 1), (1, -1)]
    assert out.file_tracer(cell) == "nbcov.NbcovPlugin"


# -- real kernels: reports at the lines as typed -----------------------------------------------------

LEADING = "\n\n# the first line IPython compiles\ndef f(x):\n    if x:\n        return 1\n    return 2\nf(1)"
TIMED = "%%time\n\n\ndef g(x):\n    if x:\n        return 1\n    return 2\ng(0)"
CAPTURED = "\n%%capture out\n\n\ndef h(x):\n    for i in range(x):\n        x -= 1\n    return x\nh(0)"
NESTED = "%%time\n\n%%capture\n\nk = 1\nif k > 5:\n    k = 2"
IPYTEST = "%%ipytest\n\n\ndef test_f():\n    assert f(1) == 1\n\ndef unused():\n    return 3"
COVTEST = "%%covtest\n\n\ndef test_g():\n    value = g(0)\n    assert value == 2"


def test_cells_and_magic_bodies_after_blank_lines_report_coverage_pys_numbers(tmp_path: Path) -> None:
    (tmp_path / ".coveragerc").write_text("[run]\nbranch = true\n")
    cells = [
        "%load_ext nbcov",
        "import ipytest\nipytest.autoconfig()",
        LEADING, TIMED, CAPTURED, NESTED, IPYTEST, COVTEST,
    ]
    nb = make_notebook(tmp_path / "nb.ipynb", cells)
    executed = execute_notebook(nb)
    for index in (7, 8):  # the tests passed (their output says so), and pytest had nothing to warn about
        text = "".join(o.get("text", "") for o in executed.cells[index - 1].outputs)
        assert re.search(r"\b1 passed", ANSI.sub("", text)) and "Warning" not in text, text
    report = cells_by_index(report_json(tmp_path))
    for index in (3, 4, 5, 6):
        cell = cells[index - 1]
        expected = coverage_py(tmp_path / f"cell{index}.py", as_python(cell), branch=True)
        assert same_numbers(report[index], expected, branch=True) == {}, (index, cell)
    # Test cells: what pytest ran, at the lines as typed.
    assert (report[7]["executed_lines"], report[7]["missing_lines"]) == ([4, 5, 7], [8])
    assert (report[8]["executed_lines"], report[8]["missing_lines"]) == ([4, 5, 6], [])
    assert report[3]["missing_lines"] == [7] and report[4]["missing_lines"] == [6]
    # Per-test contexts are moved with their lines: the test's own line, and the line it ran in g.
    assert nbcov_cli("who", "nb.ipynb:8:5", cwd=tmp_path).stdout.split() == ["nb.ipynb::test_g"]
    assert nbcov_cli("who", "nb.ipynb:4:7", cwd=tmp_path).stdout.split() == ["nb.ipynb::test_g"]

    # The HTML page marks the same lines.
    nbcov_cli("html", "-q", "-d", "htmlcov", cwd=tmp_path)
    page = next(p for p in (tmp_path / "htmlcov").glob("*.html") if p.name != "index.html" and "nb" in p.name)
    shown = html_lines(page.read_text())
    for index in (3, 4, 5, 6, 7, 8):
        run = sorted(n for n, status in shown.get(index, {}).items() if status in ("run", "par"))
        missed = sorted(n for n, status in shown.get(index, {}).items() if status == "mis")
        assert (run, missed) == (report[index]["executed_lines"], report[index]["missing_lines"]), index


def html_lines(page: str) -> dict[int, dict[int, str]]:
    """Each annotated line of a notebook page: {cell position: {line: status}}."""
    found: dict[int, dict[int, str]] = {}
    for status, cell, line in re.findall(r'<p class="l (\w+)[^"]*" id="cell-(\d+)-L(\d+)"', page):
        found.setdefault(int(cell), {})[int(line)] = status
    return found


# -- real kernels: nothing the notebook sees changes ------------------------------------------------

BEHAVIOUR = [
    "\n\ndef f():\n    return 1\nprint(f.__code__.co_firstlineno)",
    "\n\ndef k():\n    raise ValueError('boom')\nk()",
    "%%time\n\n\ndef g():\n    return 2\nprint(g.__code__.co_firstlineno)\n1/0",
    "%%capture cap\n\n\ndef h():\n    return 3\nprint(h.__code__.co_firstlineno)\nh()",
    "print(cap.stdout)",
    "import inspect\nprint(inspect.getsource(h))",
    "import ipytest\nipytest.autoconfig()",
    "%%ipytest -qq\n\n\ndef test_x():\n    a = 1\n    assert a == 2\n",
    "%%ipytest -qq\n\ndef test_fine():\n    assert True\n",
]


def normalized(text: str) -> str:
    """An output without what differs between any two runs: timings, the kernel's PID, ipytest's
    random module name; and the file name of the body `%%time` compiles (see the test)."""
    text = ANSI.sub("", text)
    text = re.sub(r"(CPU times|Wall time):.*", r"\1: T", text)
    text = re.sub(r"in \d+\.\d+s", "in Ts", text)
    text = re.sub(r"ipykernel_\d+/", "ipykernel_PID/", text)
    text = re.sub(r"t_[0-9a-f]{32}", "t_X", text)
    return re.sub(r"File (<timed exec>|\S+/ipykernel_PID/[0-9a-f]+-body\d+\.py):", "File <timed body>:", text)


def run_behaviour(folder: Path, load: str) -> list[str]:
    kernel = LiveKernel(folder)
    try:
        kernel.run(load)  # the same number of cells before, so In [N] agree
        outputs = []
        for cell in BEHAVIOUR:
            reply = kernel.run(cell)
            errors = ["\n".join(o["traceback"]) for o in reply["outputs"] if o["type"] == "error"]
            outputs.append(normalized(reply["text"] + "\n".join(errors)))
        return outputs
    finally:
        kernel.shutdown()


def test_notebooks_run_as_they_run_without_nbcov(tmp_path: Path) -> None:
    """Same outputs, tracebacks, `co_firstlineno`, source lookups and pytest results.

    One difference is left: coverage.py never measures code compiled under a name like
    `<timed exec>`, so the body `%%time` compiles is named after its cell, and a traceback through it
    names that file instead (same line numbers, same source lines).
    """
    (tmp_path / "plain").mkdir()
    (tmp_path / "measured").mkdir()
    plain = run_behaviour(tmp_path / "plain", "pass")
    measured = run_behaviour(tmp_path / "measured", "%load_ext nbcov")
    for cell, a, b in zip(BEHAVIOUR, plain, measured):
        assert b == a, cell
    assert plain[0].strip() == "1" and "ValueError: boom" in plain[1] and plain[2].startswith("1\n")
    assert ">       assert a == 2" in plain[7] and "PytestAssertRewriteWarning" not in measured[7]
    assert "warning" not in measured[8].lower()
    # And nbcov measured them, at the lines as typed.
    first = nbcov_entry(tmp_path / "measured", BEHAVIOUR[0])
    assert (first["executed_lines"], first["missing_lines"]) == ([3, 5], [4])


def test_covtest_failures_name_the_line_as_typed(tmp_path: Path) -> None:
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        ["%load_ext nbcov", "%%covtest\n\n\n# a comment\ndef test_bad():\n    value = 0\n    assert value == 1"],
    )
    executed = execute_notebook(nb, allow_errors=True)
    text = ANSI.sub("", "".join(o.get("text", "") for o in executed.cells[1].outputs))
    assert "nb.ipynb · cell 2:7: AssertionError" in text  # the cell's line 7, as typed
    assert ">       assert value == 1" in text and "???" not in text


# -- property: generated cells, one kernel -----------------------------------------------------------

# Statements a cell body is made of ({n}: a number unique in the cell, {k}: a small int). A lambda
# is called where it is made: one never called on the compiled line 1 is the case measurement
# cannot tell (test_a_one_line_function_on_line_one_is_the_one_arc_measurement_cannot_tell).
STATEMENTS = [
    "x{n} = {k}",
    "if {k} > 1:\n    y{n} = 1\nelse:\n    y{n} = 2",
    "def f{n}(v):\n    if v:\n        return 1\n    return 0",
    "def f{n}(v):\n    if v > 1:\n        return 1\n    return 0\nf{n}({k})",
    "for i{n} in range({k}):\n    z{n} = i{n}",
    "class C{n}:\n    a = 1\n    def m(self):\n        return {k}\nC{n}().m()",
    "@staticmethod\ndef s{n}():\n    return 1",
    "w{n} = (lambda a: a + {k})(1)",
    "g{n} = sum(i for i in range({k}))",
    "try:\n    q{n} = 1 / {k}\nexcept ZeroDivisionError:\n    q{n} = 0",
    "while {k} > 5:\n    break",
]
DECORATIONS = ["", "   ", "# a comment", "%pwd"]
HEADERS = [[], ["%%time"], ["%%capture"], ["%%capture out"], ["%%time", "%%capture"]]


@st.composite
def generated_cells(draw: Any) -> str:
    lines: list[str] = draw(st.lists(st.sampled_from(["", "  ", "\t"]), max_size=3))
    for header in draw(st.sampled_from(HEADERS)):
        lines.append(header)
        lines += draw(st.lists(st.sampled_from(["", " "]), max_size=2))
    statements = draw(st.lists(st.tuples(st.sampled_from(DECORATIONS), st.sampled_from(STATEMENTS), st.integers(0, 3)), min_size=1, max_size=4))
    for n, (decoration, statement, k) in enumerate(statements):
        if decoration:
            lines.append(decoration)
        lines += statement.format(n=n, k=k).split("\n")
    return "\n".join(lines)


@pytest.mark.parametrize("branch", [False, True], ids=["lines", "branches"])
def test_generated_cells_report_coverage_pys_numbers_for_the_same_py(branch: bool, tmp_path: Path) -> None:
    """Cells with random leading blank lines, comments, cell and line magics, each run in one live
    kernel: per cell, nbcov's lines (and branches) equal coverage.py's for the same code as a .py."""
    kernel = LiveKernel(tmp_path, env={"NBCOV_BRANCH": "1" if branch else "0"})
    seen: dict[str, int] = {}
    try:
        kernel.run("%load_ext nbcov")

        @settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
        @given(generated_cells())
        def check(cell: str) -> None:
            reply = kernel.run(cell)
            assert reply["status"] == "ok", reply
            number = seen.setdefault(cell, len(seen))
            expected = coverage_py(tmp_path / f"ref{number}.py", as_python(cell), branch)
            assert same_numbers(nbcov_entry(tmp_path, cell), expected, branch) == {}, cell

        check()
    finally:
        kernel.shutdown()
