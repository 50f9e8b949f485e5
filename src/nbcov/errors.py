"""Turning the failures a person can cause (bad paths, damaged files) into one line; everything else is a bug."""

from __future__ import annotations

import json
import os
import sqlite3

from coverage.exceptions import ConfigError, CoverageException

from nbcov.cells import RecordError
from nbcov.data import DataFileError

#: Set to see the traceback of an unexpected error (a bug in nbcov) instead of its one-line summary.
TRACEBACK_ENV = "NBCOV_TRACEBACK"


class UsageError(Exception):
    """An option or argument that cannot work (checked before anything is written)."""


def not_a_file(folder: str | os.PathLike[str], option: str) -> None:
    """A folder to write into must not be a file (mkdir would say only "File exists")."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"{option} {os.fspath(folder)} is a file, not a folder")


def expected_errors() -> tuple[type[BaseException], ...]:
    """The failures of input and environment nbcov reports as one line: not bugs, nothing to debug.

    Imported when asked for: the notebook runner's errors come with nbclient, which `nbcov report`
    does not need.
    """
    from nbformat.reader import NotJSONError

    from nbcov.notebook import NotebookError
    from nbcov.runs import RunLockedError

    return (
        UsageError,
        DataFileError,
        RecordError,
        NotebookError,
        RunLockedError,
        CoverageException,
        ConfigError,  # a missing or invalid --rcfile / .coveragerc (a CoverageException only from coverage 7.11)
        OSError,  # paths: missing, a folder where a file is due, read-only, under a file
        json.JSONDecodeError,
        NotJSONError,
        sqlite3.Error,
        UnicodeError,
    )


def one_line(exc: BaseException) -> str:
    """A readable single line for an expected failure (OSError's own text repeats errno and quotes)."""
    if isinstance(exc, OSError) and exc.strerror:
        where = _name(exc.filename)
        if exc.filename2 is not None:
            where += f" -> {_name(exc.filename2)}"
        return f"{where}: {exc.strerror}" if where else exc.strerror
    lines = str(exc).strip().splitlines()
    return " ".join(line.strip() for line in lines) if lines else type(exc).__name__


def _name(filename: object) -> str:
    """An OSError's file name (a path, bytes, or a descriptor's number for calls given one)."""
    if filename is None:
        return ""
    return os.fsdecode(filename) if isinstance(filename, (str, bytes, os.PathLike)) else f"file descriptor {filename}"


def bug_line(exc: BaseException) -> str:
    """One line for an unexpected exception: visible, and saying it is nbcov's fault and how to see more."""
    return (
        f"internal error: {type(exc).__name__}: {one_line(exc)} — this is a bug in nbcov; "
        f"run again with {TRACEBACK_ENV}=1 for the traceback and please report it"
    )
