#!/usr/bin/env python
"""How fast `nbcov html` is: a 1000-cell notebook plus 50 measured modules, full and incremental.

The data is synthesized directly (no kernel): a notebook of 1000 code cells (and a markdown cell
every tenth), realistic cell and module sizes (cells of 3 to 30 lines, modules of 100 to 400 lines
with functions, branches and loops), cell records written with nbcov's own `CellStore` and a
coverage data file that names nbcov's plugin for every cell, exactly as a kernel leaves them.

Measured, each as the median of several runs, each run a fresh process as on the command line (the
time a fresh Python takes to import nbcov's report, 0.15-0.2 s here, most of it coverage.py's own
import, is printed too):
- full report: `nbcov.html.write_html` into an empty folder (target: <= 2 s);
- incremental: one cell of the notebook edited and re-run (a new cell version in the data file and
  the notebook file rewritten), then `write_html` into the same folder (target: <= 0.3 s), as a
  command and in a live session (a process that stays up and reports on request, as `%nbcov html`
  does in a kernel: no start-up);
- the same two for coverage.py's own `coverage html` on equivalent `.py` files (every cell written
  out as a module, with the same measured lines), for comparison.

    python bench/html_bench.py            # line coverage, 5 repetitions
    python bench/html_bench.py --branch   # branch coverage
    python bench/html_bench.py --contexts # 20 test contexts and --show-contexts

Always exits 0: a benchmark reports, it does not fail.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import shutil
import statistics
import subprocess
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

import nbformat
from coverage import CoverageData
from coverage.parser import PythonParser
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from nbcov.cells import CellRecord, CellStore
from nbcov.data import TRACER_NAME

FULL_TARGET = 2.0
INCREMENTAL_TARGET = 0.3


# -- synthetic code -----------------------------------------------------------------------------------


def _function(rng: random.Random, name: str) -> list[str]:
    """A function of 4 to 14 lines with a branch, a loop or both, like hand-written helpers."""
    lines = [f"def {name}(items, limit={rng.randint(1, 9)}):", f'    """Summarize items up to {name}."""']
    lines.append("    total = 0")
    if rng.random() < 0.7:
        lines += ["    for item in items:", "        if item > limit:", "            total += item * 2",
                  "        else:", "            total -= 1"]
    if rng.random() < 0.5:
        lines += ["    if total < 0:", "        return None"]
    if rng.random() < 0.4:
        lines += ["    while total > 1000:", "        total //= 2"]
    lines.append(f"    return round(total / {rng.randint(2, 7)}, 2)")
    return lines


def cell_source(rng: random.Random, i: int) -> str:
    """A notebook cell of 3 to 30 lines: data set-up, a helper or two, a call."""
    kind = rng.random()
    if kind < 0.3:
        lines = [f"data_{i} = [x * {rng.randint(1, 5)} for x in range({rng.randint(5, 50)})]",
                 f"selected_{i} = [x for x in data_{i} if x % {rng.randint(2, 5)}]",
                 f"len(selected_{i})"]
    else:
        lines = []
        for k in range(1 if kind < 0.8 else 2):
            lines += _function(rng, f"helper_{i}_{k}") + [""]
        lines += [f"result_{i} = helper_{i}_0(range({rng.randint(3, 30)}))", f"print(result_{i})"]
    return "\n".join(lines)


def module_source(rng: random.Random, i: int) -> str:
    """A module of 100 to 400 lines: imports, constants, functions, a class."""
    lines = [f'"""Synthetic module {i}."""', "", "import math", "import os", "", f"LIMIT = {i}", ""]
    target = rng.randint(100, 400)
    k = 0
    while len(lines) < target:
        if k % 5 == 4:
            lines += [f"class Model{k}:", "    def __init__(self, size):", "        self.size = size", "",
                      "    def grow(self, n):", "        if n < 0:", "            raise ValueError(n)",
                      "        self.size += n", "        return self.size", ""]
        else:
            lines += _function(rng, f"func_{k}") + [""]
        k += 1
    return "\n".join(lines) + "\n"


def _measured(rng: random.Random, source: str, branch: bool, share: float = 0.85):
    """Lines (or arcs) a run could have produced: most statements, as coverage.py would record them."""
    parser = PythonParser(text=source)
    parser.parse_source()
    if branch:
        arcs = sorted(parser.arcs())
        return [a for a in arcs if rng.random() < share]
    statements = sorted(parser.statements)
    return [n for n in statements if rng.random() < share]


def _png(seed: int) -> str:
    """A tiny valid PNG (8x8, one colour), base64, as a plot output would be stored."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([seed % 256, 90, 200]) * 8 for _ in range(8))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


class Project:
    """A folder with a notebook, modules, cell records and a data file, as nbcov leaves them."""

    def __init__(self, root: Path, n_cells: int = 1000, n_modules: int = 50, branch: bool = False,
                 contexts: int = 0, seed: int = 5) -> None:
        self.root = root
        self.branch = branch
        self.contexts = contexts
        self.rng = random.Random(seed)
        self.notebook = root / "notebooks" / "big.ipynb"
        self.data_file = root / ".coverage"
        self.store = CellStore(root)
        self.sources = [cell_source(self.rng, i) for i in range(n_cells)]
        self.modules = {root / "pkg" / f"mod_{i:02d}.py": module_source(self.rng, i) for i in range(n_modules)}
        self.names: list[str] = []
        self._write()

    def _cells(self) -> list[dict]:
        cells = []
        code_index = 0
        for i, source in enumerate(self.sources):
            if i % 10 == 0:
                md = new_markdown_cell(f"## Part {i // 10}\n\nSome *notes* about `step {i}`, with a [link](https://example.org/{i}).\n\n- one\n- two\n")
                md["id"] = f"md-{i}"
                cells.append(md)
            cell = new_code_cell(source, execution_count=code_index + 1)
            cell["id"] = f"c-{i}"
            if i % 7 == 0:
                cell.outputs = [new_output("stream", name="stdout", text=f"{i * 3.5}\n")]
            elif i % 50 == 1:
                cell.outputs = [new_output("display_data", data={"image/png": _png(i), "text/plain": "<Figure>"})]
            code_index += 1
            cells.append(cell)
        return cells

    def _write(self) -> None:
        for path, text in self.modules.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        cells = self._cells()
        nbformat.write(new_notebook(cells=cells), str(self.notebook.parent.mkdir(parents=True, exist_ok=True) or self.notebook))
        data = CoverageData(basename=str(self.data_file))
        measured = {}
        position = 0
        for cell in cells:
            position += 1
            if cell.cell_type != "code":
                continue
            record = CellRecord(source=cell.source, code=cell.source, notebook="notebooks/big.ipynb",
                                cell_index=position, cell_id=cell.id, key=cell.id,
                                execution_count=cell.execution_count)
            name = self.store.save(record)
            self.names.append(name)
            measured[name] = _measured(self.rng, cell.source, self.branch)
        for path, text in self.modules.items():
            measured[str(path)] = _measured(self.rng, text, self.branch)
        self._add(data, measured)
        data.add_file_tracers({n: TRACER_NAME for n in self.names})
        data.write()

    def _add(self, data: CoverageData, measured: dict) -> None:
        if not self.contexts:
            (data.add_arcs if self.branch else data.add_lines)(measured)
            return
        for k in range(self.contexts):
            data.set_context(f"tests/test_big.py::test_case_{k}")
            part = {name: [x for j, x in enumerate(v) if j % self.contexts == k] for name, v in measured.items()}
            (data.add_arcs if self.branch else data.add_lines)({n: v for n, v in part.items() if v})

    def edit_one_cell(self, which: int = 500) -> None:
        """The user edits cell `which` and runs it again: a new version replaces the old one."""
        from nbcov.data import drop_files

        nb = nbformat.read(str(self.notebook), as_version=4)
        code_cells = [c for c in nb.cells if c.cell_type == "code"]
        cell = code_cells[which]
        cell.source = cell.source + "\nprint('edited')"
        nbformat.write(nb, str(self.notebook))
        position = nb.cells.index(cell) + 1
        old = self.names[which]
        record = CellRecord(source=cell.source, code=cell.source, notebook="notebooks/big.ipynb",
                            cell_index=position, cell_id=cell.id, key=cell.id, execution_count=len(code_cells) + 1)
        name = self.store.save(record)
        data = CoverageData(basename=str(self.data_file))
        data.read()
        self._add(data, {name: _measured(self.rng, cell.source, self.branch)})
        data.add_file_tracers({name: TRACER_NAME})
        data.write()
        drop_files(str(self.data_file), [old])
        Path(old).unlink()
        self.names[which] = name

    def as_python_files(self, folder: Path) -> Path:
        """The same code as .py files with the same measured lines, for coverage.py's own report."""
        data_file = folder / ".coverage"
        data = CoverageData(basename=str(data_file))
        ours = CoverageData(basename=str(self.data_file))
        ours.read()
        mapped = {}
        for i, name in enumerate(self.names):
            path = folder / "cells" / f"cell_{i:04d}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.sources[i] + "\n")
            mapped[name] = str(path)
        for path in self.modules:
            target = folder / "pkg" / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
            mapped[str(path)] = str(target)
        for context in sorted(ours.measured_contexts()) or [""]:
            ours.set_query_contexts([f"^{context}$"] if context else None)
            data.set_context(context or None)
            if self.branch:
                data.add_arcs({mapped[n]: ours.arcs(n) for n in ours.measured_files() if ours.arcs(n)})
            else:
                data.add_lines({mapped[n]: ours.lines(n) for n in ours.measured_files() if ours.lines(n)})
        data.write()
        return data_file


# -- timing -------------------------------------------------------------------------------------------


def _time(fn) -> tuple[float, float]:
    """Wall time and CPU time (this process and the worker processes it waited for)."""
    t0, c0 = time.perf_counter(), os.times()
    fn()
    t1, c1 = time.perf_counter(), os.times()
    cpu = (c1.user + c1.system + c1.children_user + c1.children_system) - (
        c0.user + c0.system + c0.children_user + c0.children_system
    )
    return t1 - t0, cpu


#: What `nbcov html` runs, in a fresh process of its own (nothing of this script imported there).
_CHILD = """
import sys
from pathlib import Path
from nbcov.html import write_html
from nbcov.report import open_coverage
data_file, out, contexts, jobs = sys.argv[1:]
write_html(open_coverage(data_file), Path(out), show_contexts=contexts == "1", jobs=int(jobs) or None)
"""


def nbcov_html(project: Project, out: Path, show_contexts: bool, jobs: int | None) -> None:
    """`nbcov html` as a user runs it: a fresh process (imports, no parser cached from a previous run)."""
    cmd = [sys.executable, "-c", _CHILD, str(project.data_file), str(out), "1" if show_contexts else "0", str(jobs or 0)]
    subprocess.run(cmd, cwd=project.root, check=True)


#: A long-lived process that writes the report on request, as `%nbcov html` does in a live kernel.
_SESSION = """
import sys
from pathlib import Path
from nbcov.html import write_html
from nbcov.report import open_coverage
data_file, out, contexts = sys.argv[1:]
for _ in sys.stdin:
    write_html(open_coverage(data_file), Path(out), show_contexts=contexts == "1")
    print("done", flush=True)
"""


class Session:
    """`%nbcov html` in a kernel that stays up: no start-up, and what the process already imported."""

    def __init__(self, project: Project, out: Path, show_contexts: bool) -> None:
        cmd = [sys.executable, "-c", _SESSION, str(project.data_file), str(out), "1" if show_contexts else "0"]
        self.process = subprocess.Popen(cmd, cwd=project.root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def report(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("report\n")
        self.process.stdin.flush()
        if self.process.stdout.readline().strip() != "done":
            raise RuntimeError("the session process failed")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


def coverage_html(data_file: Path, out: Path, show_contexts: bool) -> None:
    """coverage.py's `coverage html`, in a fresh process too."""
    cmd = [sys.executable, "-m", "coverage", "html", f"--data-file={data_file}", "-d", str(out), "--title=bench",
           "--rcfile=/dev/null"] + (["--show-contexts"] if show_contexts else [])
    subprocess.run(cmd, cwd=data_file.parent, check=True, stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--modules", type=int, default=50)
    parser.add_argument("--branch", action="store_true")
    parser.add_argument("--contexts", type=int, nargs="?", const=20, default=0,
                        help="record this many test contexts (default 20) and show them")
    parser.add_argument("--jobs", type=int, help="processes for nbcov's analysis (default: one per CPU)")
    args = parser.parse_args(argv)
    show = bool(args.contexts)
    # Commands and kernels run with Python's bytecode cache, as an installed nbcov (whose .pyc files
    # pip writes) runs for users; PYTHONDONTWRITEBYTECODE would make every fresh process compile
    # nbcov's modules again (~40 ms each, more in kernels).
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        print("(PYTHONDONTWRITEBYTECODE unset for the measured processes: bytecode is cached as after pip install)")

    with tempfile.TemporaryDirectory(prefix="nbcov-html-bench-") as tmp:
        tmp_path = Path(tmp)
        start = time.perf_counter()
        project = Project(tmp_path / "project", args.cells, args.modules, args.branch, args.contexts)
        reference = project.as_python_files(tmp_path / "reference")
        lines = sum(s.count("\n") + 1 for s in project.sources) + sum(t.count("\n") for t in project.modules.values())
        load = os.getloadavg()[0]
        print(f"nbcov html benchmark, Python {sys.version.split()[0]}, {'branch' if args.branch else 'line'} coverage"
              f"{f', {args.contexts} contexts' if args.contexts else ''}: {args.cells} cells + {args.modules} modules,"
              f" {lines} lines (synthesized in {time.perf_counter() - start:.1f} s)")
        print(f"{len(os.sched_getaffinity(0))} CPUs, load average {load:.1f} when starting"
              + ("  (a busy machine: wall times are inflated, CPU times are the steadier measure)" if load > 1.5 else ""))

        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in ("full", "incr", "session", "cov_full", "cov_incr", "floor")}
        floor = [sys.executable, "-c", "import nbcov.html, nbcov.report"]
        subprocess.run(floor, check=True)  # warm-up: writes the bytecode cache
        session = Session(project, tmp_path / "html-session", show)
        session.report()  # the session's first report: everything is new to it
        for r in range(args.repeat):
            runs["floor"].append(_time(lambda: subprocess.run(floor, check=True)))
            out = tmp_path / f"html-{r}"
            runs["full"].append(_time(lambda: nbcov_html(project, out, show, args.jobs)))
            project.edit_one_cell((100 + r) % args.cells)
            runs["incr"].append(_time(lambda: nbcov_html(project, out, show, args.jobs)))
            project.edit_one_cell((200 + r) % args.cells)
            runs["session"].append(_time(session.report))
            cov_out = tmp_path / f"htmlcov-{r}"
            runs["cov_full"].append(_time(lambda: coverage_html(reference, cov_out, show)))
            (reference.parent / "cells" / f"cell_{(100 + r) % args.cells:04d}.py").write_text(project.sources[(100 + r) % args.cells] + f"\nx = {r}\n")
            runs["cov_incr"].append(_time(lambda: coverage_html(reference, cov_out, show)))
        session.close()

        def med(key: str, i: int) -> float:
            return statistics.median(t[i] for t in runs[key])

        print(f"medians of {args.repeat} (wall / CPU seconds; coverage.py's `coverage html` on the same code as .py files):")
        for label, ours, theirs, target in (
            ("full report", "full", "cov_full", FULL_TARGET),
            ("one notebook changed (incremental)", "incr", "cov_incr", INCREMENTAL_TARGET),
        ):
            wall, cpu = med(ours, 0), med(ours, 1)
            verdict = "ok" if wall <= target else ("ok in CPU time" if cpu <= target else "OVER TARGET")
            print(f"  {label:<36} nbcov {wall:6.3f} / {cpu:6.3f}   coverage html {med(theirs, 0):6.3f} / {med(theirs, 1):6.3f}"
                  f"   ratio {wall / med(theirs, 0):5.2f}x   target <= {target} s: {verdict}")
        floor_wall = med("floor", 0)
        session_wall = med("session", 0)
        print(f"  start-up of a fresh process importing nbcov's report (included above): {floor_wall:.3f} s"
              f" (coverage.py's import is most of it; `coverage html` pays it too)")
        print(f"  one notebook changed, in a live session (`%nbcov html` in a kernel, no start-up): {session_wall:.3f} s"
              f"   target <= {INCREMENTAL_TARGET} s: {'ok' if session_wall <= INCREMENTAL_TARGET else 'OVER TARGET'}")
        print(f"  incremental / full (nbcov, wall): {med('incr', 0) / med('full', 0):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
