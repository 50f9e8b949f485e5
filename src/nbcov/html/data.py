"""What the HTML report shows of each measured file, computed with coverage.py's own analysis.

One *entry* per file of the data file (a cell version or a module): its numbers (coverage.py's
`Numbers`, so every page agrees with `nbcov report --format json`), where a cell sits in its notebook,
its annotated source already rendered as an HTML fragment, its missed lines for the jump list and,
with contexts, which tests ran it (`Entry`). The incremental report keeps them between runs
(`state.py`), keyed by a fingerprint of everything they were made from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import coverage
from coverage.exceptions import NotPython

from nbcov import coverage_internals
from nbcov.cells import read_file, record_data_dir, record_places
from nbcov.cov_plugin import CellFileReporter, display_record
from nbcov.html.render import code_lines, summary
from nbcov.report import LineStatus, line_statuses

#: Bumped whenever an entry's shape or its fragment's markup changes: old entries are not reused.
ENTRY_FORMAT = 2

#: coverage.py's data schema that `fingerprints` reads in one pass (else it asks file by file).
_SCHEMA = 7


@dataclasses.dataclass
class Stub:
    """What the report knows of every file on every run: the columns the state keeps of its entry."""

    name: str  # the file's name in the data file
    fp: str | None  # fingerprint of its inputs (`fingerprints`); None: cannot tell, never reused
    kind: str  # "cell" or "module"
    notebook_path: str | None  # a cell's notebook, absolute (`notebook_path`)
    notebook: str | None  # a cell's notebook as shown (`cov_plugin.display_record`)
    label: str  # as `nbcov report` names the file


@dataclasses.dataclass
class Entry(Stub):
    """One measured file (a cell version or a module) as its pages show it."""

    nums: coverage_internals.Numbers  # coverage.py's, so every page agrees with `nbcov report --format json`
    fragment: str  # the annotated source, rendered (`render.code_lines`, anchors left as `render.ANCHOR`)
    summary: str  # the numbers, rendered (`render.summary`)
    missed: list[tuple[int, str]]  # (line, "mis" or "par") for the jump list
    contexts: list[str]  # the contexts that ran any line, in the fragment's order
    tests: dict[str, int]  # test -> statements it ran
    cell_index: int | None = None
    cell_id: str | None = None
    execution_count: int | None = None
    digest: str | None = None  # of the cell's source as measured


def report_files(cov: coverage.Coverage) -> list[str]:
    """The measured files to report, after `[report] include/omit`, as coverage.py selects them."""
    files = sorted(cov.get_data().measured_files())
    config = cov.config
    if config.report_include:
        included = coverage_internals.report_matcher(config.report_include, "report_include")
        files = [f for f in files if included(f)]
    if config.report_omit:
        omitted = coverage_internals.report_matcher(config.report_omit, "report_omit")
        files = [f for f in files if not omitted(f)]
    return files


# -- fingerprints: has anything an entry was made from changed? ---------------------------------------


def fingerprints(cov: coverage.Coverage, files: list[str], search_dirs: list[Path]) -> dict[str, str | None]:
    """A hash per file of its measured data, tracer and source (the cell record or the .py file).

    An entry whose fingerprint is unchanged is reused without asking coverage.py to analyse the file
    again. None means "cannot tell": the file is always analysed.
    """
    data_hashes = _data_hashes(cov, files)
    out: dict[str, str | None] = {}
    for name in files:
        source = _source_bytes(name, search_dirs)
        if source is None:
            out[name] = None
            continue
        h = hashlib.sha256(source)
        h.update(b"\0" + data_hashes[name].digest())
        out[name] = h.hexdigest()[:32]
    return out


def _data_hashes(cov: coverage.Coverage, files: list[str]) -> dict[str, Any]:
    """A hash of every row of data of each file (tracer, lines or arcs, per context).

    One ordered SQL pass per table over coverage.py's documented schema when it is the one nbcov
    knows and the data is on disk (thousands of files, tens of contexts: milliseconds), else
    coverage.py's API, file by file and context by context.
    """
    data = cov.get_data()
    path = data.data_filename()
    hashes = {f: hashlib.sha256() for f in files}
    if coverage_internals.data_schema_version() == _SCHEMA and path and os.path.isfile(path) and not cov.config.paths:
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
                for (name, tracer) in con.execute(
                    "select f.path, t.tracer from tracer t join file f on f.id = t.file_id order by f.path"
                ):
                    if name in hashes:
                        hashes[name].update(f"t\x1f{tracer}\x1e".encode())
                for (name, context, numbits) in con.execute(
                    "select f.path, c.context, l.numbits from line_bits l join file f on f.id = l.file_id"
                    " join context c on c.id = l.context_id order by f.path, c.context"
                ):
                    if name in hashes:
                        hashes[name].update(f"l\x1f{context}\x1f".encode() + bytes(numbits) + b"\x1e")
                for (name, context, arcs) in con.execute(
                    "select f.path, c.context, group_concat(a.fromno || ',' || a.tono, ' ')"
                    " from (select * from arc order by file_id, context_id, fromno, tono) a"
                    " join file f on f.id = a.file_id join context c on c.id = a.context_id"
                    " group by f.path, c.context order by f.path, c.context"
                ):
                    if name in hashes:
                        hashes[name].update(f"a\x1f{context}\x1f{arcs}\x1e".encode())
            return hashes
        except sqlite3.Error:
            hashes = {f: hashlib.sha256() for f in files}
    contexts = sorted(data.measured_contexts()) or [""]
    try:
        for context in contexts:
            data.set_query_contexts([f"^{re.escape(context)}$"] if len(contexts) > 1 else None)
            for name in files:
                measured = sorted(data.arcs(name) or data.lines(name) or ())
                hashes[name].update(f"{context}\x1f{measured}\x1e".encode())
    finally:
        data.set_query_contexts(cov.config.report_contexts)
    for name in files:
        hashes[name].update(f"t\x1f{data.file_tracer(name) or ''}\x1e".encode())
    return hashes


def _source_bytes(name: str, search_dirs: list[Path]) -> bytes | None:
    """The bytes the file's report is made from: its cell record (where `load_record` finds it), or
    the module's file."""
    for place in record_places(name, search_dirs):
        try:
            return read_file(place)
        except OSError:
            continue
    return None


# -- analysing a file into an entry ---------------------------------------------------------------------


def analyse(cov: coverage.Coverage, name: str, show_contexts: bool) -> Entry | None:
    """The entry of one measured file, or None when coverage.py would skip it (`ignore_errors`).

    Errors are handled as coverage.py's own reports handle them (`get_analysis_to_report`).
    """
    config = cov.config
    fr = coverage_internals.file_reporter(cov, name)
    try:
        analysis = coverage_internals.analyze(cov, name, fr)
    except NotPython:
        if fr.should_be_python() and not config.ignore_errors:
            raise
        if fr.should_be_python():
            coverage_internals.warn(cov, f"Couldn't parse Python file '{fr.filename}'", slug="couldnt-parse")
        return None
    except Exception as exc:
        if not config.ignore_errors:
            raise
        coverage_internals.warn(cov, f"Couldn't parse '{fr.filename}': {exc}".rstrip(), slug="couldnt-parse")
        return None
    return _entry(cov, fr, analysis, show_contexts)


def _entry(cov: coverage.Coverage, fr: Any, analysis: coverage_internals.Analysis, show_contexts: bool) -> Entry:
    data = cov.get_data()
    has_arcs = data.has_arcs()
    statuses = line_statuses(analysis, fr)
    status_of, missing_arcs = statuses.by_line, statuses.missing_arcs
    parser = getattr(fr, "parser", None)
    multiline = coverage_internals.multiline_map(parser)
    branch_stats = analysis.branch_stats() if has_arcs else {}
    arcs_executed = analysis.arcs_executed if has_arcs else []
    by_line = data.contexts_by_lineno(analysis.filename) if show_contexts else {}

    contexts = coverage_internals.human_sorted({c for cs in by_line.values() for c in cs})
    context_ids = {c: i for i, c in enumerate(contexts)}
    tests: dict[str, int] = {}
    lines: list[tuple[str, list[tuple[str, str]], str, list[str], list[int]]] = []
    missed: list[tuple[int, str]] = []
    for lineno, tokens in enumerate(fr.source_token_lines(), start=1):
        notes: list[str] = []
        line_status = status_of.get(lineno)
        if line_status is not None:
            status = _CSS_CLASS[line_status]
            if line_status is LineStatus.PARTIAL:
                targets = missing_arcs[lineno]
                if len(targets) == branch_stats[lineno][0]:
                    notes.append(f"line {lineno} didn't jump anywhere: it always raised an exception.")
                else:
                    notes += [fr.missing_arc_description(lineno, b, arcs_executed) for b in targets]
        elif (first := multiline.get(lineno)) is not None and first != lineno and first in status_of:
            # A continuation line of a statement takes that statement's status, drawn lighter.
            status = _CSS_CLASS[status_of[first]] + " c"
        else:
            status = ""
        if status in ("mis", "par"):
            missed.append((lineno, status))
        ctx: list[int] = []
        if status and by_line.get(lineno):
            ctx = sorted(context_ids[c] for c in by_line[lineno])
            if lineno in analysis.statements:
                for c in by_line[lineno]:
                    if c:  # "" is data measured outside any context
                        tests[c] = tests.get(c, 0) + 1
        short = [_short_note(lineno, t) for t in missing_arcs.get(lineno, ())] if status == "par" else []
        lines.append((status, tokens, ", ".join(short), notes, ctx))

    entry = Entry(
        name=fr.filename,
        fp=None,  # set by the report, which fingerprints files apart from analysing them
        kind="module",
        notebook_path=None,
        notebook=None,
        label="",
        nums=analysis.numbers,
        fragment=code_lines(lines, contexts),
        summary=summary(analysis.numbers, has_arcs),
        missed=missed,
        contexts=contexts,
        tests=dict(sorted(tests.items())),
    )
    if isinstance(fr, CellFileReporter):
        record = fr.record
        shown = display_record(record, fr.filename)
        entry.kind, entry.label, entry.notebook = "cell", shown.label(), shown.notebook
        entry.notebook_path = notebook_path(record.notebook, fr.filename)
        entry.cell_index, entry.cell_id = record.cell_index, record.cell_id
        entry.execution_count, entry.digest = record.execution_count, record.digest
    else:
        entry.label = fr.relative_filename()
    return entry


#: A line status as the pages' CSS classes name it (`files/nbcov.css`, `files/nbcov.js`).
_CSS_CLASS = {
    LineStatus.RUN: "run",
    LineStatus.MISSED: "mis",
    LineStatus.PARTIAL: "par",
    LineStatus.EXCLUDED: "exc",
    LineStatus.NOT_MEASURED: "nm",
}


def _short_note(lineno: int, target: int) -> str:
    # U+202F narrow no-break space, U+219B rightwards arrow with stroke: "12 ↛ 15", as coverage.py.
    return f"{lineno}\u202f\u219b\u202f{'exit' if target < 0 else target}"


def notebook_path(notebook: str | None, name: str) -> str | None:
    """The absolute path of a record's notebook: records keep it relative to their data folder,
    which is the folder above `.nbcov/` in the cell's name (as `cov_plugin.display_record` reads it)."""
    if notebook is None:
        return None
    if os.path.isabs(notebook):
        return os.path.normpath(notebook)
    return os.path.normpath(os.path.join(record_data_dir(name) or os.getcwd(), notebook))


def numbers(entries: Iterable[Entry], precision: int) -> coverage_internals.Numbers:
    """coverage.py's Numbers summed over entries (a notebook's cells, a whole report)."""
    total = coverage_internals.Numbers(precision=precision)
    for entry in entries:
        total += entry.nums
    return total


def analyse_all(cov: coverage.Coverage, names: Iterable[str], show_contexts: bool) -> Iterator[tuple[str, Entry | None]]:
    """Entries for `names`, keeping one connection to the data file open for all of them."""
    data = cov.get_data()
    with coverage_internals.connection_held(data), tokenized_once():
        for name in names:
            yield name, analyse(cov, name, show_contexts)


#: coverage.py tokenizing each file once per report (moved to the seam; the name stays for callers).
tokenized_once = coverage_internals.tokenized_once
