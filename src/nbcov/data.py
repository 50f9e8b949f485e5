"""Coverage data files: writing a kernel's data under stable cell names, and opening data files safely."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from coverage import CoverageData
from coverage.exceptions import CoverageException, DataError

from nbcov import coverage_internals
from nbcov.cells import STORE_DIRNAME, is_cell_name, sibling_versions
from nbcov.parser import Shift

#: The name coverage.py gives our plugin (`<module>.<class>`); data files record it for each cell.
TRACER_NAME = "nbcov.NbcovPlugin"

# Files mapped here are deleted right after the merge: `CoverageData.update` cannot skip files.
_DROP_PREFIX = "/nbcov-dropped/"

# The schema nbcov's file deletion was written against (coverage.py documents it as internal).
_KNOWN_SCHEMA = 7


class DataFileError(Exception):
    """A data file is missing, corrupt, or cannot take the data offered to it."""


def write_mapped(
    measured: CoverageData,
    target: str | os.PathLike[str],
    names: Mapping[str, str],
    drop: Iterable[str] = (),
    latest: Iterable[str] = (),
    shifts: Mapping[str, Shift] | None = None,
) -> bool:
    """Merge `measured` into the data file `target`, renaming cell files on the way.

    `names` maps the kernel's cell file names to stable cell names (several files may map to one
    cell: a cell magic's body joins its cell); `drop` lists measured files to leave out; `latest`
    lists the newest version of each keyed cell, so that older versions of the same cell (in this
    session or left by an earlier one) are removed instead of inflating totals; `shifts` moves the
    lines of code compiled from a line other than its cell's first (leading blank lines, magic
    bodies) to the cell's lines.

    The merge is additive and happens inside SQLite transactions under a lock, so several kernels
    may share one data file and a kernel killed mid-write leaves the previous state intact. Returns
    whether a write another process left unfinished had to be rolled back first (`roll_back_journal`).
    """
    target = os.fspath(target)
    dropped = set(drop)
    # Renamed in memory first: the cells' file tracer is recorded there, so that merging into a
    # file that already has them never sees two tracers for one file.
    mapped = CoverageData(no_disk=True)
    rename = lambda p: _DROP_PREFIX + p if p in dropped else names.get(p, p)  # noqa: E731
    mapped.update(measured, map_path=rename)
    if shifts:
        _move_lines(measured, mapped, rename, shifts)
    cell_names = set(names.values())
    if cell_names:
        mapped.add_file_tracers({n: TRACER_NAME for n in cell_names})

    with locked(target):
        recovered = roll_back_journal(target)
        out = CoverageData(basename=target)
        try:
            # Reading first matters: a CoverageData that is written before it was read erases its file.
            out.read()
            out.update(mapped, map_path=lambda p: p)
        except DataError as exc:
            raise DataFileError(f"Can't add this kernel's coverage to {target}: {exc}") from exc
        finally:
            coverage_internals.close_data(out)
            # It attached `measured`'s in-memory database, which would otherwise outlive the kernel's erase().
            coverage_internals.close_memory_data(mapped)
        newest = {sibling_versions(n): n for n in latest}
        newest.pop(None, None)
        doomed = [
            n
            for n in _measured_paths(target)
            if n.startswith(_DROP_PREFIX) or (is_cell_name(n) and newest.get(sibling_versions(n), n) != n)
        ]
        if doomed:
            drop_files(target, doomed)
    return recovered


def _move_lines(
    measured: CoverageData, mapped: CoverageData, rename: Callable[[str], str], shifts: Mapping[str, Shift]
) -> None:
    """Redo, with their lines moved, the cells of `mapped` that code in `shifts` was renamed to.

    `CoverageData.update` copies numbers as they are: those cells are emptied (`purge_files`) and
    copied again, context by context (per-test contexts must survive), from every measured file
    renamed to them (a magic cell's own line and its body's join one cell). Only those few files
    are copied that way: a save after many tests has as many contexts.
    """
    cells = {rename(p) for p in shifts}
    sources = [p for p in measured.measured_files() if rename(p) in cells]
    mapped.purge_files(cells)
    arcs = measured.has_arcs()
    try:
        for context in sorted(measured.measured_contexts()):
            measured.set_query_context(context)
            found: dict[str, set[Any]] = {}
            for path in sources:
                moved = _moved(measured, path, shifts.get(path), arcs)
                if moved:
                    found.setdefault(rename(path), set()).update(moved)
            mapped.set_context(context)
            if arcs:
                mapped.add_arcs(found)
            else:
                mapped.add_lines(found)
    finally:
        measured.set_query_contexts(None)


def _moved(measured: CoverageData, path: str, shift: Shift | None, arcs: bool) -> set[Any]:
    """One file's lines or arcs in the current query context, where the user typed them."""
    if arcs:
        found_arcs = measured.arcs(path) or []
        return shift.arcs(found_arcs) if shift else set(found_arcs)
    found_lines = measured.lines(path) or []
    return shift.lines(found_lines) if shift else set(found_lines)


def _measured_paths(path: str) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as con:
        return [row[0] for row in con.execute("select path from file")]


def drop_files(path: str | os.PathLike[str], names: Iterable[str]) -> None:
    """Delete files and all their data from a data file.

    coverage.py has no API for this, so it is done in SQL against the schema coverage.py documents;
    a schema nbcov does not know is refused rather than guessed at.
    """
    schema = coverage_internals.data_schema_version()
    if schema != _KNOWN_SCHEMA:
        raise DataFileError(
            f"nbcov {_KNOWN_SCHEMA=} does not know coverage.py's data schema {schema}; "
            "please upgrade nbcov."
        )
    names = list(names)
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as con, con:
        ids = []
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            marks = ",".join("?" * len(chunk))
            ids += [r[0] for r in con.execute(f"select id from file where path in ({marks})", chunk)]
        for table in ("line_bits", "arc", "tracer"):
            con.executemany(f"delete from {table} where file_id = ?", [(i,) for i in ids])
        con.executemany("delete from file where id = ?", [(i,) for i in ids])


@contextlib.contextmanager
def locked(target: str | os.PathLike[str]) -> Iterator[None]:
    """Serialize writers of one data file across processes (SQLite alone does not order our steps).

    The lock is taken through a new descriptor each time, so a process that tried to take it again
    while holding it (a signal handler saving inside a save) would wait for itself forever: the
    session holds SIGINT/SIGTERM while it saves for that reason.
    """
    lock_path = Path(target).parent / STORE_DIRNAME / "lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def roll_back_journal(path: str | os.PathLike[str]) -> bool:
    """Undo a write a killed process left half done; True if there was one. Call it under `locked`.

    Only nbcov's own `drop_files` writes with a rollback journal (coverage.py turns journaling
    off), so a hot `<data file>-journal` is an old cell version's deletion cut short by a SIGKILL.
    coverage.py refuses to open such a file (a read-write connection would act on it); SQLite
    rolling the journal back restores the file as it was before that deletion, which loses nothing
    measured. A journal naming a super-journal (written by multi-database transactions, never by
    nbcov) is not nbcov's and is left alone: SQLite would delete the file it names.
    """
    path = os.fspath(path)
    journal = f"{path}-journal"
    if not os.path.exists(journal) or not _journal_is_hot(path) or _names_super_journal(journal):
        return False
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as con:
        con.execute("select count(*) from sqlite_master").fetchall()  # SQLite rolls back on first read
    return not os.path.exists(journal) or not _journal_is_hot(path)


def recover(path: str | os.PathLike[str]) -> bool:
    """`roll_back_journal` for a process that does not hold the lock (a kernel starting)."""
    if not os.path.exists(f"{os.fspath(path)}-journal"):
        return False  # the usual case: no lock taken, nothing created beside a data file only read
    with locked(path):
        return roll_back_journal(path)


def _journal_is_hot(path: str) -> bool:
    """Would SQLite roll a journal back before reading `path`? Asked of SQLite itself: a read-only
    connection reports a hot journal instead of rolling it back (coverage.py probes the same way)."""
    uri = Path(os.path.abspath(path)).as_uri() + "?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as con:
            con.execute("select count(*) from sqlite_master").fetchall()
    except sqlite3.Error as exc:
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_READONLY_ROLLBACK
    return False


# The last 8 bytes of a rollback journal that names a super-journal (SQLite's file format, "aJournalMagic").
_JOURNAL_MAGIC = bytes([0xD9, 0xD5, 0x05, 0xF9, 0x20, 0xA1, 0x63, 0xD7])


def _names_super_journal(journal: str) -> bool:
    """Does the journal end with a super-journal's name (then it is not nbcov's to roll back)?"""
    with open(journal, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size < 8:
            return False
        f.seek(size - 8)
        return f.read(8) == _JOURNAL_MAGIC


def check_data_file(path: str | os.PathLike[str]) -> CoverageData:
    """Open an existing data file for reading, or raise a DataFileError a person can act on."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataFileError(
            f"No coverage data file at {path}. Run some cells after `%load_ext nbcov` first, "
            "or name the data file with --data-file."
        )
    if os.path.isdir(path):
        raise DataFileError(f"{path} is a folder, not a coverage data file.")
    data = CoverageData(basename=path)
    try:
        data.read()
        data.measured_files()
    except (CoverageException, sqlite3.Error) as exc:
        raise DataFileError(f"{path} is not a usable coverage data file: {exc}") from exc
    return data


def pieces_of(data_file: Path) -> list[Path]:
    """The parallel data files kernels (and the processes they started) wrote for `data_file`.

    One listing of its folder (a live kernel looks after every cell), and no glob: a data file's name
    may hold `[` or `*`.
    """
    prefix = data_file.name + "."
    try:
        with os.scandir(data_file.parent) as entries:
            return sorted(Path(e.path) for e in entries if e.name.startswith(prefix) and e.is_file())
    except FileNotFoundError:  # no folder, no pieces
        return []


def move_aside(path: str | os.PathLike[str], why: str) -> str:
    """Rename an unusable data file out of the way (never delete a user's data) and say where."""
    path = os.fspath(path)
    # Not `<data file>.something`: `coverage combine` would try to read that as a data file.
    aside = f"{path}-nbcov-{why}"
    n = 1
    while os.path.exists(aside):
        n += 1
        aside = f"{path}-nbcov-{why}{n}"
    os.replace(path, aside)
    return aside
