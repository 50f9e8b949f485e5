"""Reports of a data file: nbcov's JSON schema (cells by notebook and position) and the text table."""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import os
from collections.abc import Sequence
from typing import Any, TextIO

import coverage
from coverage.exceptions import CoverageException
from coverage.plugin import FileReporter

from nbcov import __version__, coverage_internals
from nbcov.cells import RecordError, is_cell_name, record_tail
from nbcov.cov_plugin import CellFileReporter, display_record
from nbcov.data import DataFileError, check_data_file

JSON_FORMAT = 1


def open_coverage(data_file: str, config_file: str | bool = True) -> coverage.Coverage:
    """A Coverage object for reporting `data_file`, with the nbcov plugin configured.

    nbcov's own reports never need the user to configure the plugin; the user's configuration
    (exclusions, precision, other plugins) still applies.
    """
    for name in check_data_file(data_file).measured_files():
        if is_cell_name(name):
            record_tail(name, data_file)  # a damaged or hostile name (`..`) is refused, not followed
    cov = coverage.Coverage(data_file=data_file, config_file=config_file)
    plugins = list(cov.config.plugins)
    if "nbcov" not in plugins:
        cov.set_option("run:plugins", [*plugins, "nbcov"])
    try:
        cov.load()
    except CoverageException as exc:
        raise DataFileError(f"{data_file} is not a usable coverage data file: {exc}") from exc
    return cov


class LineStatus(enum.Enum):
    """What a line of a measured file is in every nbcov report (text/JSON, inline, HTML).

    A line with none of these (blank, a comment, a continuation of a statement) has no status.
    """

    RUN = "run"
    MISSED = "missed"
    PARTIAL = "partial"  # run, but a branch from it was never taken
    EXCLUDED = "excluded"
    NOT_MEASURED = "not measured"  # ran before measurement began: coverage.py counts it as excluded


@dataclasses.dataclass(frozen=True)
class LineStatuses:
    """The status of each line of one file that has one, and the branches its partial lines never took."""

    by_line: dict[int, LineStatus]
    missing_arcs: dict[int, list[int]]

    def lines(self, status: LineStatus) -> list[int]:
        return sorted(n for n, s in self.by_line.items() if s is status)


def line_statuses(analysis: coverage_internals.Analysis, reporter: FileReporter) -> LineStatuses:
    """Each line's status from coverage.py's analysis: the one classification all reports share.

    When a line is in several of coverage.py's sets, the first of not measured, excluded, missed,
    partial, run wins: a cell's lines that ran before measuring are excluded in coverage.py's
    analysis but must read "not measured", and an excluded or missed line is never partial.
    """
    missing_arcs = analysis.missing_branch_arcs() if analysis.has_arcs else {}
    # Lowest precedence first: each later set overrides what an earlier one said of a line.
    by_line = dict.fromkeys(analysis.statements, LineStatus.RUN)
    by_line.update(dict.fromkeys(missing_arcs, LineStatus.PARTIAL))
    by_line.update(dict.fromkeys(analysis.missing, LineStatus.MISSED))
    by_line.update(dict.fromkeys(analysis.excluded, LineStatus.EXCLUDED))
    if isinstance(reporter, CellFileReporter):
        by_line.update(dict.fromkeys(reporter.not_measured, LineStatus.NOT_MEASURED))
    return LineStatuses(by_line, missing_arcs)


@dataclasses.dataclass
class FileResult:
    """One measured file, cell or module: its reporter, coverage.py's analysis, its JSON entry."""

    reporter: FileReporter
    analysis: coverage_internals.Analysis
    json_reporter: coverage_internals.JsonReporter
    data: Any

    @functools.cached_property
    def entry(self) -> dict[str, Any]:
        """coverage.py's JSON for this file (made on demand: it also analyses functions and classes)."""
        return self.json_reporter.report_one_file(self.data, self.analysis, self.reporter)

    @property
    def is_cell(self) -> bool:
        return isinstance(self.reporter, CellFileReporter)

    @property
    def name(self) -> str:
        """The file's name in the data file."""
        return self.reporter.filename


@dataclasses.dataclass
class Results:
    files: list[FileResult]
    totals: dict[str, Any]
    branch: bool


def analyse(cov: coverage.Coverage, morfs: Sequence[str] | None = None) -> Results:
    """coverage.py's analysis of every measured file (or of `morfs`), with coverage.py's JSON entries.

    The one place nbcov's reports get their numbers from, so every number is coverage.py's.
    """
    data = cov.get_data()
    data.set_query_contexts(cov.config.report_contexts)
    reporter = coverage_internals.JsonReporter(cov)
    try:
        analysed = coverage_internals.analysis_to_report(cov, list(morfs) if morfs is not None else None)
    except KeyError as exc:
        raise DataFileError(_unconfigured_plugin_message(str(exc))) from exc
    except CoverageException as exc:
        raise DataFileError(f"Can't report {cov.get_option('run:data_file')}: {exc}") from exc
    files = [FileResult(fr, analysis, reporter, data) for fr, analysis in analysed]
    total = sum((analysis.numbers for _, analysis in analysed), coverage_internals.Numbers(precision=cov.config.precision))
    totals = reporter.make_summary(total)
    if data.has_arcs():
        totals.update(reporter.make_branch_summary(total))
    return Results(files, totals, data.has_arcs())


def build(cov: coverage.Coverage, morfs: Sequence[str] | None = None) -> dict[str, Any]:
    """The nbcov JSON report: coverage.py's JSON, with cells moved to a `cells` list.

    Each cell carries `notebook`, `cell_index`, `cell_id`, `execution_count` and its lines relative
    to the cell; modules keep exactly the fields coverage.py's JSON report gives them.
    """
    results = analyse(cov, morfs)
    cells: list[dict[str, Any]] = []
    modules: dict[str, Any] = {}
    for result in results.files:
        if result.is_cell:
            cells.append(_cell_entry(result.reporter, result.entry, line_statuses(result.analysis, result.reporter)))
        else:
            modules[result.reporter.relative_filename()] = result.entry
    cells.sort(key=lambda c: (c["notebook"] or "", c["cell_index"] or 0, c["execution_count"] or 0))
    meta = {
        "format": JSON_FORMAT,
        "nbcov_version": __version__,
        "coverage_version": coverage.__version__,
        "branch_coverage": results.branch,
        "data_file": os.path.abspath(str(cov.get_option("run:data_file"))),
    }
    return {"meta": meta, "cells": cells, "files": dict(sorted(modules.items())), "totals": results.totals}


def _unconfigured_plugin_message(plugin: str) -> str:
    return (
        f"The data file names the coverage plugin {plugin}, which is not configured. "
        "Add `plugins = nbcov` to the [run] section of your coverage configuration "
        "(or report with `nbcov report`)."
    )


def _cell_entry(fr: Any, entry: dict[str, Any], statuses: LineStatuses) -> dict[str, Any]:
    record = display_record(fr.record, fr.filename)
    cell = {
        "name": record.label(),
        "notebook": record.notebook,
        "cell_index": record.cell_index,
        "cell_id": record.cell_id,
        "execution_count": record.execution_count,
        "data_file_name": fr.filename,
        "source": record.source,
    }
    cell.update(entry)
    # coverage.py counts not-measured lines as excluded; nbcov's schema tells them apart.
    cell["not_measured_lines"] = statuses.lines(LineStatus.NOT_MEASURED)
    cell["excluded_lines"] = statuses.lines(LineStatus.EXCLUDED)
    return cell


def write_json(report: dict[str, Any], out: TextIO) -> None:
    json.dump(report, out, indent=2)
    out.write("\n")


def write_text(report: dict[str, Any], out: TextIO, show_missing: bool = True) -> None:
    """A table like `coverage report -m`, cells named by notebook and position, in notebook order."""
    branch = bool(report["meta"].get("branch_coverage"))
    rows: list[Sequence[str]] = []
    for cell in report["cells"]:
        rows.append(_row(cell["name"], cell, branch, show_missing))
    for name, entry in report["files"].items():
        rows.append(_row(_shown_path(name), entry, branch, show_missing))
    header = ["Name", "Stmts", "Miss"] + (["Branch", "BrPart"] if branch else []) + ["Cover"]
    if show_missing:
        header.append("Missing")
    totals = _row("TOTAL", {"summary": report["totals"]}, branch, False)
    _table(out, header, rows, totals)


def _shown_path(name: str) -> str:
    """Module paths as coverage.py shows them: relative to the current folder when below it."""
    here = os.getcwd() + os.sep
    return name[len(here) :] if name.startswith(here) else name


def _row(name: str, entry: dict[str, Any], branch: bool, show_missing: bool) -> list[str]:
    s = entry["summary"]
    row = [name, str(s["num_statements"]), str(s["missing_lines"])]
    if branch:
        row += [str(s.get("num_branches", 0)), str(s.get("num_partial_branches", 0))]
    row.append(s["percent_covered_display"] + "%")
    if show_missing:
        statements = set(entry.get("executed_lines", [])) | set(entry.get("missing_lines", []))
        # coverage.py's format_lines takes missing branches grouped by their start: (line, [ends]).
        exits: dict[int, list[int]] = {}
        for start, end in entry.get("missing_branches", []):
            exits.setdefault(start, []).append(end)
        arcs = list(exits.items())
        row.append(coverage_internals.format_lines(statements, entry.get("missing_lines", []), arcs=arcs) if entry.get("missing_lines") or arcs else "")
    return row


def _table(out: TextIO, header: list[str], rows: list[Sequence[str]], totals: list[str]) -> None:
    widths = [max(len(r[i]) if i < len(r) else 0 for r in [header, *rows, totals]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        if len(cells) == len(header) and header[-1] == "Missing":
            parts[-1] = cells[-1]  # the Missing column reads left to right
        if len(header) > len(cells):
            parts += [""] * (len(header) - len(cells))
        return "   ".join(parts).rstrip()

    rule = "-" * len(line(header))
    out.write(line(header) + "\n" + rule + "\n")
    for r in rows:
        out.write(line(r) + "\n")
    out.write(rule + "\n" + line(totals) + "\n")


def load_report(data_file: str, config_file: str | bool = True) -> dict[str, Any]:
    """Open `data_file` and build its nbcov report; errors are DataFileError or RecordError."""
    return build(open_coverage(data_file, config_file))


__all__ = [
    "DataFileError", "LineStatus", "LineStatuses", "RecordError", "build", "line_statuses", "load_report", "open_coverage",
    "write_json", "write_text",
]
