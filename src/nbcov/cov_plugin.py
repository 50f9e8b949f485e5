"""The coverage.py plugin: reports nbcov's cell records as notebook cells, in any process."""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

from coverage import CoveragePlugin, FileReporter
from coverage.exceptions import NotPython
from coverage.plugin import CodeRegion
from coverage.types import TArc, TConfigurable, TLineNo, TSourceTokenLines

from nbcov import coverage_internals
from nbcov import parser as cellparser
from nbcov.cells import CellRecord, load_record, record_data_dir, record_search_dirs


class NbcovPlugin(CoveragePlugin):
    """Gives coverage.py a file reporter for every file nbcov recorded as a cell.

    It only reports: measuring is left to coverage.py's own core, so it adds no cost while code runs
    and works under `sysmon`, where file-tracer plugins are disabled.
    """

    def __init__(self) -> None:
        self.exclude: str | None = None
        self.partial: str | None = None
        self.search_dirs: list[Path] = []

    def configure(self, config: TConfigurable) -> None:
        # Read, never change: the user's exclusions apply to cells exactly as to .py files.
        self.exclude = coverage_internals.join_regex(_regexes(config, "report:exclude_lines"))
        partial = _regexes(config, "report:partial_branches") + _regexes(config, "report:partial_branches_always")
        self.partial = coverage_internals.join_regex(partial)
        data_file = config.get_option("run:data_file")
        self.search_dirs = record_search_dirs(data_file if isinstance(data_file, str) else None)

    def file_reporter(self, filename: str) -> FileReporter:
        return CellFileReporter(filename, load_record(filename, self.search_dirs), self)

    def sys_info(self) -> Iterable[tuple[str, Any]]:
        from nbcov import __version__

        return [("nbcov", __version__)]


class CellFileReporter(FileReporter):
    """One cell version: coverage.py's own Python analysis, run on the source nbcov kept."""

    def __init__(self, filename: str, record: CellRecord, plugin: NbcovPlugin) -> None:
        super().__init__(filename)
        self.record = record
        self.plugin = plugin

    def __repr__(self) -> str:
        return f"<CellFileReporter {self.record.label()!r}>"

    def relative_filename(self) -> str:
        return display_record(self.record, self.filename).label()

    @cached_property
    def parser(self) -> coverage_internals.PythonParser:
        try:
            return cellparser.make_parser(self.record.code, self.plugin.exclude)
        except NotPython as exc:
            # A cell magic's body with a syntax error: IPython never ran it, so there is nothing
            # to analyse. Named by its cell (coverage.py would say '<code>'), and said once.
            problem = f"{self.relative_filename()} is left out of the report: {_why_unparsable(exc)}"
            if self.filename not in _WARNED:
                _WARNED.add(self.filename)
                print(f"nbcov: warning: {problem}", file=sys.stderr)
            raise NotPython(problem) from exc

    def should_be_python(self) -> bool:
        # Only when its code parses: for a cell whose code does not, coverage.py's reports (and
        # nbcov's) then leave that one cell out instead of failing as a whole.
        try:
            self.parser
        except NotPython:
            return False
        return True

    @cached_property
    def not_measured(self) -> set[TLineNo]:
        """Lines that ran before measurement began (only for cells run before `%load_ext nbcov`)."""
        if not self.record.premeasured:
            return set()
        return cellparser.run_at_definition(self.parser, self.record.code)

    def lines(self) -> set[TLineNo]:
        return self.parser.statements - self.not_measured

    def excluded_lines(self) -> set[TLineNo]:
        # Only lines the cell has: coverage.py's `...` exclusion also matches the newline that
        # ends a cell's code, and would name a line one past the cell's end.
        last = len(self.record.code.splitlines())
        return {n for n in self.parser.excluded if n <= last} | self.not_measured

    def translate_lines(self, lines: Iterable[TLineNo]) -> set[TLineNo]:
        # Only the cell's statements: coverage.py 7.10-7.13 (checked 7.10.6, 7.13.0) reports an
        # excluded line that ran (`if DEBUG:  # pragma: no cover`) as executed; 7.14 on drops it itself.
        return self.parser.translate_lines(lines) & self.lines()

    def translate_arcs(self, arcs: Iterable[TArc]) -> set[TArc]:
        # The data holds arcs as IPython ran the cell (one code object per top-level statement);
        # coverage.py's analysis expects the cell as one module.
        return self.parser.translate_arcs(cellparser.module_arcs(self.record.code, set(arcs)))

    def no_branch_lines(self) -> set[TLineNo]:
        return self.parser.lines_matching(self.plugin.partial) if self.plugin.partial else set()

    @cached_property
    def exits_into_excluded(self) -> set[TArc]:
        """The cell's ways on into the next cell, when the statement that begins it is excluded.

        coverage.py drops a .py file's arcs into excluded lines; a cell's way on to the next cell
        is its exit (-1). When the next code cell of the notebook starts with an excluded
        statement (`if debug:  # pragma: no cover`), those exits are no arcs either, as in the
        notebook written out as a .py file: a cell's last `if` is then no branch.
        """
        following = following_code(self.filename, self.record)
        if following is None or not cellparser.starts_excluded(following, self.plugin.exclude):
            return set()
        return cellparser.module_exits(self.parser, self.record.code)

    def arcs(self) -> set[TArc]:
        arcs = self.parser.arcs() - self.exits_into_excluded
        if not self.not_measured:
            return arcs
        skipped = self.not_measured
        return {(a, b) for a, b in arcs if abs(a) not in skipped}

    def exit_counts(self) -> dict[TLineNo, int]:
        counts = dict(self.parser.exit_counts())
        for line, _ in self.exits_into_excluded:
            if line in counts:
                counts[line] -= 1
        return {line: n for line, n in counts.items() if n and line not in self.not_measured}

    def missing_arc_description(
        self, start: TLineNo, end: TLineNo, executed_arcs: Iterable[TArc] | None = None
    ) -> str:
        return self.parser.missing_arc_description(start, end)

    def arc_description(self, start: TLineNo, end: TLineNo) -> str:
        return self.parser.arc_description(start, end)

    def source(self) -> str:
        return self.record.source

    def source_token_lines(self) -> TSourceTokenLines:
        return cellparser.token_lines(self.record.source, self.record.code)

    def code_regions(self) -> Iterable[CodeRegion]:
        return coverage_internals.code_regions(cellparser.analysable(self.record.code))

    def code_region_kinds(self) -> Iterable[tuple[str, str]]:
        return [("function", "functions"), ("class", "classes")]



def following_code(name: str, record: CellRecord) -> str | None:
    """The source of the code cell that follows the record's cell in its notebook (skipping cells
    without a statement), or None: no notebook, no such cell, or a notebook whose cell at the
    record's position is no longer the record's (edited since it ran)."""
    if record.notebook is None or record.cell_index is None:
        return None
    notebook = record.notebook
    if not os.path.isabs(notebook):
        data_dir = record_data_dir(name)
        if data_dir is None:
            return None
        notebook = os.path.join(data_dir, notebook)
    try:
        stat = os.stat(notebook)
    except OSError:
        return None
    cells = _code_cells(notebook, stat.st_mtime_ns, stat.st_size)
    if cells.get(record.cell_index) != record.source:
        return None
    return next((source for index, source in sorted(cells.items()) if index > record.cell_index
                 and cellparser.has_statements(source)), None)


@functools.lru_cache(maxsize=64)
def _code_cells(notebook: str, mtime_ns: int, size: int) -> dict[int, str]:
    """The notebook's code cells by position (1-based among all cells); read once per version."""
    from nbcov.notebook import NotebookError, read_notebook

    try:
        cells = read_notebook(notebook).cells
    except NotebookError:
        return {}
    return {cell.position: cell.source for cell in cells if cell.cell_type == "code"}


#: Cells already warned about in this process (a live kernel reports again after every test run).
_WARNED: set[str] = set()


def _why_unparsable(exc: NotPython) -> str:
    """Python's own words for the syntax error, with its line in the cell."""
    cause = exc.__cause__
    if isinstance(cause, SyntaxError) and cause.lineno:
        return f"its code does not parse ({cause.msg}, line {cause.lineno})"
    return f"its code does not parse ({exc})"


def display_record(record: CellRecord, name: str) -> CellRecord:
    """The record with its notebook path as seen from the current folder, for people to read.

    Records keep the path relative to their data file; a report made from another folder shows the
    path from there (`notebooks/analysis.ipynb`), as coverage.py does for .py files.
    """
    if record.notebook is None or os.path.isabs(record.notebook):
        return record
    data_dir = record_data_dir(name)
    if data_dir is None:
        return record
    shown = _shown_notebook(data_dir, record.notebook, os.getcwd())
    return record if shown is None else dataclasses.replace(record, notebook=shown)


@functools.lru_cache(maxsize=256)
def _shown_notebook(data_dir: str, notebook: str, cwd: str) -> str | None:
    """`notebook` (relative to `data_dir`) relative to `cwd`, or None when it is not below it.

    Cached: every cell of a notebook asks the same question, a thousand times in a large report.
    """
    full = Path(os.path.normpath(os.path.join(data_dir, notebook)))
    try:
        return full.relative_to(Path(cwd)).as_posix()
    except ValueError:
        return None


def _regexes(config: TConfigurable, name: str) -> list[str]:
    """A list-of-regexes setting (get_option's type is every kind of setting)."""
    value = config.get_option(name)
    return [str(regex) for regex in value] if isinstance(value, list) else []
