"""The notebook corpus (tests/corpus/) run plainly and under nbcov: same behaviour, every run line counted.

The corpus imitates what real projects keep in their repositories (see tests/corpus/make_notebooks.py):
nbdev library notebooks, ipytest notebooks (one failing, one with ipytest's own coverage on),
data-science notebooks (pandas, matplotlib, %timeit, %prun, %%time) and notebooks that start
processes (shell commands, subprocess, every multiprocessing start method, ProcessPoolExecutor,
os.fork).

Each notebook runs once per mode, in a fresh copy of the corpus:

* plain: nbclient, no nbcov (the reference);
* `nbcov run`;
* `pytest --nbcov`;
* live: a kernel driven message by message as JupyterLab drives it, `%load_ext nbcov` first, then
  each cell with its cell id.

Under nbcov, a notebook must pass or fail as it does plainly (failing at the same cell) and show the
same outputs, apart from timings, addresses, pids and temporary paths (`pytest --nbcov` keeps no
outputs). nbcov's report must list every code cell that ran and has statements; a cell's executed
and missing lines together must be the statements coverage.py finds in the cell's code, read as a
`.py` file (so no blank or comment line is ever run or missed); the lines that run only in other
processes (marked `# runs in a worker`) must be counted; and the HTML report must not call a
comment-only cell that ran "not run while measuring".

The notebooks sit in two folders, each run (and reported) on its own: ipytest's coverage writes
pytest-cov's data into the kernel's folder (tests/corpus/make_notebooks.py says why that one lives
apart).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import nbformat
import pytest
from coverage.exceptions import NotPython
from coverage.parser import PythonParser
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from conftest import nbcov_cli, run_once
from kernels import LiveKernel
from nbcov.kernel import kernel_manager

CORPUS_DIR = Path(__file__).parent / "corpus"
#: Notebooks by path below the corpus folder; each folder is a group run and reported on its own.
NOTEBOOKS = sorted(p.relative_to(CORPUS_DIR).as_posix() for p in CORPUS_DIR.rglob("*.ipynb"))
GROUPS = sorted({Path(nb).parent.as_posix() for nb in NOTEBOOKS})

PLAIN = "plain"
MODES = ["nbcov-run", "pytest-nbcov", "live"]
#: The modes that keep the executed notebook's outputs.
OUTPUT_MODES = ["nbcov-run", "live"]

#: Notebooks that fail when run as written, and the cell (1-based position) that fails.
EXPECTED_FAILURES = {"ipytest_failing.ipynb": 3}

#: Lines that run only in processes the notebook starts end with this comment.
WORKER_MARK = "# runs in a worker"
#: The modules whose marked lines each notebook runs in other processes.
WORKER_MODULES = {
    "process_pools.ipynb": ["workers.py"],
    "subprocesses.ipynb": ["report_tool.py", "mathtools.py"],
}

#: Cell magics that run their body as cell code, where coverage.py can see it (IPython's own, and
#: ipytest's `%%ipytest`, which runs it with `run_cell`). `%%timeit` and `%%prun` compile their body
#: as `<magic-timeit>` / `<string>`, which no coverage tool traces: there the header's call is the statement.
PYTHON_BODY_MAGICS = {"time", "capture", "ipytest"}

CELL_TIMEOUT = 120


# -- what coverage.py says a cell's statements are --------------------------------------------------


def expected_statements(source: str) -> set[int]:
    """The statements of a cell as typed, as coverage.py's parser finds them in its Python code.

    The Python code is IPython's transformation of the cell (magics and `!shell` lines become calls,
    line for line); IPython drops the leading blank lines before compiling, so the lines are counted
    from the cell's top again. A cell magic that runs its body as Python contributes the body's
    statements, at the body's lines; any other cell magic is one call on its header line.
    """
    lines = source.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return set()
    if lines[first].startswith("%%"):
        if lines[first][2:].split()[0] not in PYTHON_BODY_MAGICS:
            return {first + 1}
        body = "\n".join(lines[first + 1 :])
        return {first + 1 + n for n in expected_statements(body)}
    code = TransformerManager().transform_cell(source)
    return {n + first for n in python_statements(code)}


def python_statements(code: str) -> set[int]:
    """coverage.py's statements of `code` read as a .py file.

    A cell may `await` at top level, which a module may not: such code is read as the body of an
    `async def` on a line above it (its statements keep their lines).
    """
    try:
        parser = PythonParser(text=code)
        parser.parse_source()
        return set(parser.statements)
    except NotPython:
        wrapped = "async def _cell():\n" + textwrap.indent(code, "    ")
        parser = PythonParser(text=wrapped)
        parser.parse_source()
        return {n - 1 for n in parser.statements if n > 1}


def worker_lines(source: str) -> set[int]:
    return {n for n, line in enumerate(source.splitlines(), start=1) if line.rstrip().endswith(WORKER_MARK)}


def is_blank_or_comment(line: str) -> bool:
    return not line.strip() or line.lstrip().startswith("#")


# -- outputs, compared apart from what changes from run to run --------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_VARIABLE: list[tuple[re.Pattern[str], str]] = [
    # Timings: %timeit, %%time, pytest's "in 0.12s".
    (re.compile(r"\d+(?:\.\d+)?\s?(?:ns|µs|μs|us|ms|s|sec)\b"), "<time>"),
    (re.compile(r"0x[0-9a-fA-F]+"), "0x<addr>"),
    (re.compile(r"\bpid[= ]\d+"), "pid=<pid>"),
    # ipykernel's cell files (/tmp/ipykernel_<pid>/<hash>.py) and any other Python file in the
    # temporary folder (nbcov's own cell files, for one).
    (re.compile(re.escape(tempfile.gettempdir()) + r"/[^\s:'\"]+\.py"), "<cell file>"),
    (re.compile(r"\b(In|Out) ?\[\d+\]"), r"\1[<n>]"),  # the live kernel ran `%load_ext nbcov` first
    (re.compile(r"\bt_[0-9a-f]{32}\b"), "t_<module>"),  # ipytest's module name for each run
    # pytest pads its rules and progress lines to the terminal's width around text that changed
    # length above (a timing, a path), and pytest-cov pads its table to the longest file name.
    (re.compile(r"^([-=_])\1{2,}|([-=_])\2{2,}$", re.MULTILINE), r"\1\2\1\2\1\2"),
    (re.compile(r" {2,}(\[ *\d+%\])$", re.MULTILINE), r" \1"),
    # (A name may hold a space: "<cell file>" above.)
    (re.compile(r"^(\S.*?) +(\d+|Stmts) +(\d+|Miss) +(\d+%|Cover)$", re.MULTILINE), r"\1 \2 \3 \4"),
    (re.compile(r"[ \t]+$", re.MULTILINE), ""),
]


def normalise(text: str, root: Path | None = None) -> str:
    """Text output without what varies between runs: colours, timings, addresses, pids, temp paths."""
    text = _ANSI.sub("", text)
    if root is not None:
        text = text.replace(str(root), "<root>")
    for pattern, replacement in _VARIABLE:
        text = pattern.sub(replacement, text)
    return text


def output_view(outputs: list[dict[str, Any]], root: Path | None = None) -> list[str]:
    """A cell's outputs as comparable lines.

    Each stream is joined into one text: the kernel splits streams wherever it flushes, and the
    order of stdout against stderr depends on two buffers' timers, not on the code. Rich outputs
    and errors keep their order; images are compared by digest.
    """
    streams: dict[str, str] = {}
    rich: list[str] = []
    for out in outputs:
        kind = out.get("output_type") or out.get("type")
        if kind == "stream":
            streams[out["name"]] = streams.get(out["name"], "") + out["text"]
        elif kind in ("execute_result", "display_data"):
            for mime, value in sorted(out["data"].items()):
                if not isinstance(value, str):
                    value = json.dumps(value, sort_keys=True)
                if mime.startswith("image/") and mime != "image/svg+xml":
                    value = hashlib.sha256(value.encode()).hexdigest()[:16]
                rich.append(f"{kind} {mime}: {normalise(value, root)}")
        elif kind == "error":
            traceback = normalise("\n".join(out["traceback"]), root)
            rich.append(f"error {out['ename']}: {normalise(out['evalue'], root)}\n{traceback}")
    return [f"{name}: {normalise(text, root)}" for name, text in sorted(streams.items())] + rich


# -- running the corpus -----------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    """How one notebook ran in one mode."""

    failed_cell: int | None  # the 1-based position of the cell that failed; None: it passed
    outputs: dict[int, list[str]] | None = None  # normalised outputs by cell position (if kept)
    error: str | None = None  # the runner itself failed


@dataclasses.dataclass
class ModeRun:
    outcomes: dict[str, Outcome]  # by notebook
    reports: dict[str, Any] = dataclasses.field(default_factory=dict)  # by group: nbcov's JSON report
    report_errors: dict[str, str] = dataclasses.field(default_factory=dict)  # by group: why there is none
    unrun_labels: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # by notebook: see html_labels

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModeRun:
        outcomes = {}
        for name, raw in data["outcomes"].items():
            outputs = {int(k): v for k, v in raw["outputs"].items()} if raw["outputs"] is not None else None
            outcomes[name] = Outcome(raw["failed_cell"], outputs, raw["error"])
        return cls(outcomes, data["reports"], data["report_errors"], data["unrun_labels"])


def read(root: Path, notebook: str) -> Any:
    return nbformat.read(str(root / notebook), as_version=4)


def tagged_raises(cell: Any) -> bool:
    return "raises-exception" in cell.get("metadata", {}).get("tags", [])


def failed_cell(nb: Any) -> int | None:
    """The first cell whose error stopped the notebook (cells tagged `raises-exception` may raise)."""
    for position, cell in enumerate(nb.cells, start=1):
        if cell.cell_type == "code" and not tagged_raises(cell):
            if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
                return position
    return None


def executed_outputs(nb: Any, root: Path) -> dict[int, list[str]]:
    return {
        position: output_view(cell.get("outputs", []), root)
        for position, cell in enumerate(nb.cells, start=1)
        if cell.cell_type == "code" and cell.get("execution_count") is not None
    }


def run_plain(root: Path) -> ModeRun:
    """nbclient with no nbcov anywhere, two kernels at a time."""

    async def one(notebook: str, gate: asyncio.Semaphore) -> tuple[str, Outcome]:
        nb = read(root, notebook)
        path = root / notebook
        client = NotebookClient(nb, km=kernel_manager(), timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(path.parent)}})
        async with gate:
            try:
                await client.async_execute(env={**os.environ, "JPY_SESSION_NAME": str(path)})
            except CellExecutionError:
                pass  # the failing cell holds the error
        return notebook, Outcome(failed_cell(nb), executed_outputs(nb, root))

    async def run_all() -> dict[str, Outcome]:
        gate = asyncio.Semaphore(2)
        return dict(await asyncio.gather(*(one(nb, gate) for nb in NOTEBOOKS)))

    return ModeRun(asyncio.run(run_all()))


def group_notebooks(group: str) -> list[str]:
    return [nb for nb in NOTEBOOKS if Path(nb).parent.as_posix() == group]


#: `nbcov run`'s summary line for a notebook: status, path, seconds and, when it failed, where.
_SUMMARY_LINE = re.compile(r"^(passed|failed|timeout|died|skipped)\s+(\S+\.ipynb)\s+[\d.]+s(?:\s+cell (\d+))?\s*$", re.MULTILINE)


def run_nbcov_run(root: Path) -> ModeRun:
    outcomes = {}
    for group in GROUPS:
        folder = root / group
        out = root.parent / "executed" / group
        names = [Path(nb).name for nb in group_notebooks(group)]
        args = ["run", *names, "-j", "2", "--timeout", str(CELL_TIMEOUT), "--output-notebook", str(out)]
        result = nbcov_cli(*args, cwd=folder, check=False)
        statuses = {name: (status, cell) for status, name, cell in _SUMMARY_LINE.findall(result.stdout)}
        assert sorted(statuses) == sorted(names), result.stdout + result.stderr
        # Exit 1 says a notebook failed; any other failure (exit 2) is the run's, so every notebook's.
        error = None if result.returncode in (0, 1) else f"nbcov run exited {result.returncode}: {result.stderr.strip()}"
        for name in names:
            status, cell = statuses[name]
            failed = None if status == "passed" else int(cell or 0)
            nb = nbformat.read(str(out / name), as_version=4)
            outcomes[(Path(group) / name).as_posix()] = Outcome(failed, executed_outputs(nb, root), error)
    return ModeRun(outcomes)


_FAILED_AT = re.compile(r"· cell (\d+): failed")


def run_pytest_nbcov(root: Path) -> ModeRun:
    outcomes: dict[str, Outcome] = {}
    for group in GROUPS:
        folder = root / group
        names = [Path(nb).name for nb in group_notebooks(group)]
        junit = root.parent / f"junit-{group.replace('/', '_')}.xml"
        workers = ["-n", "2"] if len(names) > 2 else []
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "--rootdir", str(folder),
             "--nbcov", f"--nbcov-timeout={CELL_TIMEOUT}", f"--junitxml={junit}", *workers, *names],
            cwd=folder, capture_output=True, text=True, timeout=600,
        )
        assert result.returncode in (0, 1) and junit.exists(), result.stdout + result.stderr
        for case in ET.parse(junit).getroot().iter("testcase"):
            failure = case.find("failure")
            failed = None
            if failure is not None:
                found = _FAILED_AT.search(failure.get("message", "") + (failure.text or ""))
                failed = int(found[1]) if found else 0  # 0: failed, but not at a cell
            outcomes[(Path(group) / case.get("name", "")).as_posix()] = Outcome(failed)
    assert sorted(outcomes) == NOTEBOOKS, sorted(outcomes)
    return ModeRun(outcomes)


def run_live(root: Path) -> ModeRun:
    """Each notebook in a kernel of its own, cell by cell with its id after `%load_ext nbcov`, two at a time."""

    def one(notebook: str) -> Outcome:
        path = root / notebook
        nb = read(root, notebook)
        kernel = LiveKernel(path.parent, env={"JPY_SESSION_NAME": str(path)})
        outputs: dict[int, list[str]] = {}
        failed = None
        try:
            loaded = kernel.run("%load_ext nbcov")
            assert loaded["status"] == "ok", loaded
            for position, cell in enumerate(nb.cells, start=1):
                if cell.cell_type != "code" or not cell.source.strip():  # as nbclient, and JupyterLab, skip them
                    continue
                reply = kernel.run(cell.source, cell_id=cell.get("id"), timeout=CELL_TIMEOUT)
                outputs[position] = output_view(
                    [{**o, "output_type": o["type"]} for o in reply["outputs"]], root
                )
                if reply["status"] != "ok" and not tagged_raises(cell):
                    failed = position
                    break
        finally:
            kernel.shutdown()
        return Outcome(failed, outputs)

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        return ModeRun(dict(zip(NOTEBOOKS, pool.map(one, NOTEBOOKS))))


RUNNERS = {PLAIN: run_plain, "nbcov-run": run_nbcov_run, "pytest-nbcov": run_pytest_nbcov, "live": run_live}


def html_labels(folder: Path, report_dir: Path) -> dict[str, list[int]]:
    """Per notebook of the folder, the code cells nbcov's HTML report calls "not run while measuring"."""
    nbcov_cli("html", "-d", str(report_dir), "-q", cwd=folder)
    index = (report_dir / "index.html").read_text(encoding="utf-8")
    labels = {}
    for page, shown in re.findall(r'<a href="([^"]+)">([^<]+\.ipynb)</a>', index):
        html = (report_dir / page).read_text(encoding="utf-8")
        sections = re.split(r'(?=<section class="cell )', html)
        labels[shown] = [
            int(found[1])
            for section in sections
            if "not run while measuring" in section
            for found in [re.match(r'<section class="cell code[^"]*" id="cell-(\d+)"', section)]
            if found
        ]
    return labels


def measure_reports(run: ModeRun, root: Path) -> None:
    """nbcov's JSON and HTML reports of each group, in fresh processes after the kernels are gone."""
    for group in GROUPS:
        folder = root / group
        result = nbcov_cli("report", "--format", "json", cwd=folder, check=False)
        if result.returncode != 0:
            run.report_errors[group] = (result.stderr or result.stdout).strip()
            continue
        run.reports[group] = json.loads(result.stdout)
        for shown, cells in html_labels(folder, root.parent / f"html-{group.replace('/', '_')}").items():
            run.unrun_labels[(Path(group) / shown).as_posix()] = cells


class Runs:
    """Each mode runs the corpus once, when its first test needs it.

    Under pytest-xdist the workers share one folder: the first worker to need a mode runs it
    (holding a lock) and saves the outcome; the others wait for it and read it (as
    tests/test_differential.py shares its runs).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.done: dict[str, ModeRun] = {}

    def get(self, mode: str) -> ModeRun:
        if mode not in self.done:
            self.done[mode] = run_once(self.root, mode, lambda: self._run(mode), ModeRun.from_json)
        return self.done[mode]

    def _run(self, mode: str) -> ModeRun:
        root = self.root / mode / "corpus"
        shutil.copytree(CORPUS_DIR, root, ignore=shutil.ignore_patterns("make_notebooks.py", "__pycache__"))
        run = RUNNERS[mode](root)
        if mode != PLAIN:
            measure_reports(run, root)
        return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "corpus"
    root.mkdir(exist_ok=True)
    return Runs(root)


# -- the checks -------------------------------------------------------------------------------------


def code_cells(notebook: str) -> dict[int, Any]:
    """The notebook's code cells with some source, by 1-based position among all cells."""
    nb = nbformat.read(str(CORPUS_DIR / notebook), as_version=4)
    return {i: c for i, c in enumerate(nb.cells, start=1) if c.cell_type == "code" and c.source.strip()}


def ran_cells(notebook: str, outcome: Outcome) -> dict[int, Any]:
    """The code cells that ran: all of them, or up to the one that failed."""
    return {i: c for i, c in code_cells(notebook).items() if outcome.failed_cell is None or i <= outcome.failed_cell}


def reported_cells(run: ModeRun, notebook: str) -> list[dict[str, Any]]:
    group = Path(notebook).parent.as_posix()
    assert group in run.reports, f"no report for {group or 'the corpus folder'}: {run.report_errors.get(group)}"
    return [c for c in run.reports[group]["cells"] if c["notebook"] == Path(notebook).name]


#: Checks that fail on today's code, and why: (check, notebook, mode) -> (reason, strict). Each is an
#: xfail; a strict one must fail (when a fix makes it pass, its entry has to go), a loose one is a
#: race that fails only sometimes.
KNOWN_BUGS: dict[tuple[str, str, str], tuple[str, bool]] = {}

MOVED_DATA = (
    "ipytest's coverage opens .coverage, so a live kernel moves nbcov's data to .coverage-nbcov and says so "
    "in one stderr line (README, Other coverage tools in the kernel); the corpus reads .coverage only"
)


def known_bug(check: str, notebooks: list[str], modes: list[str], why: str, *, strict: bool = True) -> None:
    for notebook in notebooks:
        for mode in modes:
            KNOWN_BUGS[(check, notebook, mode)] = (why, strict)


IPYTEST_COV_NB = "ipytest_coverage/ipytest_coverage.ipynb"
known_bug("outputs", [IPYTEST_COV_NB], ["live"], MOVED_DATA)
for check in ("reported", "blank-or-comment", "statements"):
    known_bug(check, [IPYTEST_COV_NB], ["live"], MOVED_DATA)

def cases(check: str, modes: list[str], notebooks: list[str] | None = None) -> list[Any]:
    out = []
    for notebook in notebooks if notebooks is not None else NOTEBOOKS:
        for mode in modes:
            why, strict = KNOWN_BUGS.get((check, notebook, mode), ("", True))
            # raises=AssertionError: a run that breaks (pytest.fail in Runs.get) is never taken for the bug.
            marks = [pytest.mark.xfail(strict=strict, raises=AssertionError, reason=why)] if why else []
            out.append(pytest.param(notebook, mode, id=f"{notebook}-{mode}", marks=marks))
    return out


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_plain_run_is_as_written(notebook: str, runs: Runs) -> None:
    """The reference: plainly, each notebook passes, or fails where it is meant to."""
    assert runs.get(PLAIN).outcomes[notebook].failed_cell == EXPECTED_FAILURES.get(Path(notebook).name)


@pytest.mark.parametrize(("notebook", "mode"), cases("outcome", MODES))
def test_passes_or_fails_as_plainly(notebook: str, mode: str, runs: Runs) -> None:
    assert runs.get(mode).outcomes[notebook].error is None
    assert runs.get(mode).outcomes[notebook].failed_cell == runs.get(PLAIN).outcomes[notebook].failed_cell


@pytest.mark.parametrize(("notebook", "mode"), cases("outputs", OUTPUT_MODES))
def test_outputs_as_plainly(notebook: str, mode: str, runs: Runs) -> None:
    plain = runs.get(PLAIN).outcomes[notebook].outputs
    measured = runs.get(mode).outcomes[notebook].outputs
    assert plain is not None and measured is not None
    assert sorted(measured) == sorted(plain), "other cells ran"
    differences = [
        f"cell {position}:\n  plain:    {plain[position]!r}\n  {mode}: {measured[position]!r}"
        for position in sorted(plain)
        if plain[position] != measured[position]
    ]
    assert not differences, "\n".join(differences)


@pytest.mark.parametrize(("notebook", "mode"), cases("reported", MODES))
def test_every_run_cell_with_statements_is_reported(notebook: str, mode: str, runs: Runs) -> None:
    run = runs.get(mode)
    cells = reported_cells(run, notebook)
    ran = ran_cells(notebook, run.outcomes[notebook])
    expected = sorted(i for i, cell in ran.items() if expected_statements(cell.source))
    # Only the notebook's cells that ran: never the `%load_ext nbcov` the live kernel ran first.
    assert sorted(c["cell_index"] for c in cells) == expected


@pytest.mark.parametrize(("notebook", "mode"), cases("blank-or-comment", MODES))
def test_no_blank_or_comment_line_is_run_or_missed(notebook: str, mode: str, runs: Runs) -> None:
    sources = code_cells(notebook)
    wrong = []
    for cell in reported_cells(runs.get(mode), notebook):
        lines = sources[cell["cell_index"]].source.splitlines() if cell["cell_index"] in sources else []
        for key in ("executed_lines", "missing_lines", "not_measured_lines", "excluded_lines"):
            for n in cell[key]:
                if n > len(lines) or is_blank_or_comment(lines[n - 1]):
                    wrong.append(f"cell {cell['cell_index']} {key}: line {n} {lines[n - 1] if n <= len(lines) else '(past the end)'!r}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("notebook", "mode"), cases("statements", MODES))
def test_cell_lines_are_coverage_py_statements(notebook: str, mode: str, runs: Runs) -> None:
    sources = code_cells(notebook)
    wrong = []
    for cell in reported_cells(runs.get(mode), notebook):
        expected = sorted(expected_statements(sources[cell["cell_index"]].source))
        executed, missing = set(cell["executed_lines"]), set(cell["missing_lines"])
        reported = sorted(executed | missing | set(cell["not_measured_lines"]))
        if reported != expected or executed & missing:
            wrong.append(f"cell {cell['cell_index']}: statements {expected}, executed {sorted(executed)}, missing {sorted(missing)}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("notebook", "mode"), cases("workers", MODES, sorted(WORKER_MODULES)))
def test_lines_run_in_other_processes_are_counted(notebook: str, mode: str, runs: Runs) -> None:
    run = runs.get(mode)
    cells = {c["cell_index"]: c for c in reported_cells(run, notebook)}
    missed = []
    for position, cell in code_cells(notebook).items():
        lines = worker_lines(cell.source)
        if lines:
            got = set(cells[position]["executed_lines"]) if position in cells else set()
            missed += [f"cell {position} line {n}" for n in sorted(lines - got)]
    files = run.reports[Path(notebook).parent.as_posix()]["files"]
    for module in WORKER_MODULES[notebook]:
        lines = worker_lines((CORPUS_DIR / module).read_text(encoding="utf-8"))
        got = set(files[module]["executed_lines"]) if module in files else set()
        missed += [f"{module} line {n}" for n in sorted(lines - got)]
    assert not missed, "run in other processes, not counted: " + ", ".join(missed)


def comment_only_cells(notebook: str) -> list[int]:
    return [i for i, cell in code_cells(notebook).items() if not expected_statements(cell.source)]


@pytest.mark.parametrize(
    ("notebook", "mode"), cases("labels", MODES, [nb for nb in NOTEBOOKS if comment_only_cells(nb)])
)
def test_comment_only_cells_that_ran_are_not_called_unrun(notebook: str, mode: str, runs: Runs) -> None:
    run = runs.get(mode)
    ran = ran_cells(notebook, run.outcomes[notebook])
    assert notebook in run.unrun_labels, f"no HTML page for {notebook}"
    labelled = [i for i in comment_only_cells(notebook) if i in ran and i in run.unrun_labels[notebook]]
    assert not labelled, f"cells {labelled} ran but are labelled 'not run while measuring'"


# -- the pieces, without kernels ------------------------------------------------------------------


@pytest.mark.unit
def test_expected_statements_count_lines_as_typed() -> None:
    assert expected_statements("#|export\ndef f(x):\n    # why\n\n    return x") == {2, 5}
    # IPython drops leading blank lines; the statements stay at their typed lines.
    assert expected_statements("\n\n# pasted\nx = 1\n%time y = 2\n!ls") == {4, 5, 6}
    # A %%time body counts from the line under its header, blank lines included; the header is no statement.
    assert expected_statements("%%time\n\n\ntotal = 0\nfor i in range(3):\n    total += i") == {4, 5, 6}
    assert expected_statements("%%ipytest -q\n# only one\n\ndef test_x():\n    assert True") == {4, 5}
    assert expected_statements("%%capture out\n%%time\nx = 1") == {3}
    # A cell magic that runs no Python is its header's call.
    assert expected_statements("%%bash\necho hi\nls") == {1}
    assert expected_statements("#|default_exp core") == expected_statements("\n\n# scratch\n") == set()
    assert expected_statements("@dec\ndef f():\n    pass") == {1, 2, 3}
    assert expected_statements("import asyncio\n\nawait asyncio.sleep(0)\nif x:\n    y = 1") == {1, 3, 4, 5}


@pytest.mark.unit
def test_worker_lines_are_the_marked_ones() -> None:
    assert worker_lines(f"def f(x):\n    return x  {WORKER_MARK}\n") == {2}
    assert worker_lines((CORPUS_DIR / "workers.py").read_text())  # the marks are there


@pytest.mark.unit
def test_normalise_keeps_what_a_notebook_says_and_drops_what_varies() -> None:
    tmp = tempfile.gettempdir()
    assert normalise("1.44 ms ± 0 ns per loop (mean ± std. dev. of 1 run, 1 loop each)") == (
        "<time> ± <time> per loop (mean ± std. dev. of 1 run, 1 loop each)"
    )
    assert normalise("CPU times: user 132 μs, sys: 33 μs, total: 165 μs\nWall time: 1.2 s") == (
        "CPU times: user <time>, sys: <time>, total: <time>\nWall time: <time>"
    )
    assert normalise("[<matplotlib.lines.Line2D at 0x7f43cda59520>]") == "[<matplotlib.lines.Line2D at 0x<addr>>]"
    assert normalise(f"{tmp}/ipykernel_10967/2073308440.py:2: DeprecationWarning: This process (pid=10967)") == (
        "<cell file>:2: DeprecationWarning: This process (pid=<pid>)"
    )
    assert normalise("\x1b[31mFAILED\x1b[0m t_558888fb55934cdd986d0e846420a2b6.py::test_x") == "FAILED t_<module>.py::test_x"
    assert normalise("Cell In[9], line 1") == "Cell In[<n>], line 1"
    assert normalise("/work/x/nb.ipynb", Path("/work/x")) == "<root>/nb.ipynb"
    # pytest-cov's table, padded to its longest name, and pytest's rules: only the padding goes.
    assert normalise("Name    Stmts   Miss  Cover\na.py       3      1    67%\n--------------") == (
        "Name Stmts Miss Cover\na.py 3 1 67%\n---"
    )
    assert normalise("==== 1 passed in 0.01s ====\n.F     [100%]") == "=== 1 passed in <time> ===\n.F [100%]"
    assert normalise("    def f():\n        x = [1,  2]  # a  comment") == "    def f():\n        x = [1,  2]  # a  comment"
    # What the code printed stays.
    for kept in ("exit code 0", "line 1 of 3", "[0, 1, 8, 27, 64]", "pip 26.3 from /x/pip (python 3.12)", "assert 3 == 2.5"):
        assert normalise(kept) == kept


@pytest.mark.unit
def test_output_view_joins_streams_and_keeps_the_rest_in_order() -> None:
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": "a"},
        {"output_type": "stream", "name": "stderr", "text": "warn\n"},
        {"output_type": "stream", "name": "stdout", "text": "b\n"},
        {"output_type": "display_data", "data": {"text/plain": "<Figure>", "image/png": "iVBOR"}},
        {"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": ["tb"]},
    ]
    view = output_view(outputs)
    assert view[:2] == ["stderr: warn\n", "stdout: ab\n"]
    assert view[2].startswith("display_data image/png: ") and "iVBOR" not in view[2]
    assert view[3:] == ["display_data text/plain: <Figure>", "error ZeroDivisionError: division by zero\ntb"]


@pytest.mark.unit
def test_run_summary_and_failed_cell_are_read_as_nbcov_and_nbclient_write_them() -> None:
    summary = "passed   00_core.ipynb              1.6s\nfailed   ipytest_failing.ipynb      3.7s  cell 3\n1 failed"
    assert _SUMMARY_LINE.findall(summary) == [("passed", "00_core.ipynb", ""), ("failed", "ipytest_failing.ipynb", "3")]
    error = {"output_type": "error", "ename": "E", "evalue": "", "traceback": []}
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("1 / 0", metadata={"tags": ["raises-exception"]}, outputs=[error]),
        nbformat.v4.new_code_cell("x", outputs=[error]),
    ])
    assert failed_cell(nb) == 3  # the tagged cell may raise
