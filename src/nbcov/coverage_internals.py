"""The coverage.py names nbcov uses that are not coverage.py's documented API, each probed once.

coverage.py documents `Coverage`, `CoverageData`, plugins and reporters; anything else may move in a
minor release. Each function here says which coverage.py versions it was checked on and falls back
to coverage.py's own documented behaviour when a probe fails.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any


@functools.cache
def _analyze_takes_file_reporter() -> bool:
    import coverage

    return "file_reporter" in inspect.signature(coverage.Coverage._analyze).parameters


def analyze(cov: Any, name: str, file_reporter: Any) -> Any:
    """coverage.py's `Analysis` of one measured file, with the file reporter already asked for.

    Checked on coverage 7.10-7.17: `_analyze(morf, file_reporter=...)` from 7.16; before, `_analyze(morf)`
    asks `_get_file_reporter(morf)` again, whose one-entry cache returns the same reporter.
    """
    if _analyze_takes_file_reporter():
        return cov._analyze(name, file_reporter=file_reporter)
    return cov._analyze(name)


def close_data(data: Any) -> None:
    """Close a `CoverageData`'s SQLite connections now, so the file is complete and unlocked.

    `CoverageData.close()` exists from coverage 7.11 (checked on 7.10 and 7.17); before it, the
    connections close when the object is garbage-collected, which `del` does at once in CPython.
    """
    close = getattr(data, "close", None)
    if close is not None:
        close()


def copy_config(config: Any) -> Any:
    """A copy of a `CoverageConfig`, to change for other processes without touching this one's.

    Through coverage.py's own serialization (what `patch = subprocess` hands children):
    `CoverageConfig.deserialize` in later 7.x, `coverage.config.deserialize_config` in 7.10
    (checked on 7.10.6 and 7.17).
    """
    from coverage import config as config_module

    text = config.serialize()
    deserialize = getattr(config_module.CoverageConfig, "deserialize", None)
    if deserialize is None:
        deserialize = config_module.deserialize_config
    return deserialize(text)


@functools.cache
def _erase_keeps_memory_data() -> bool:
    """Whether `erase()` on an in-memory `CoverageData` leaves its rows in the database (probed once)."""
    from coverage import CoverageData

    probe = CoverageData(no_disk=True)
    probe.add_lines({"/nbcov-probe.py": [1]})
    probe.erase()
    copy = CoverageData(no_disk=True)
    copy.update(probe)  # reads the database itself, not the object's cache of file names
    kept = bool(copy.measured_files())
    close_data(probe)
    close_data(copy)
    return kept


def erase_memory_data(data: Any) -> None:
    """Empty an in-memory `CoverageData` (what `Coverage.get_data()` returns when there is no data file).

    coverage 7.10.6 (checked) `erase()` forgets only its cache of file names and keeps the SQLite
    connection, so the rows stay and the next `update()` from it copies them again, under the
    kernel's raw cell file names ("No source for code" at report time). Closing the connection
    first ends the in-memory database, as `erase()` itself does in later 7.x (checked on 7.17).
    """
    if _erase_keeps_memory_data():
        data.close(force=True)
    data.erase()


def close_memory_data(data: Any) -> None:
    """Close an in-memory `CoverageData` now, with the databases it attached.

    `CoverageData.update(other)` ATTACHes `other`'s database and, before coverage 7.17, never
    DETACHes it (checked on 7.14.0 and 7.16.0; 7.17.0 detaches): while the updated data stays open,
    an in-memory `other` keeps its rows through `erase()`. `close()` alone leaves in-memory
    databases open; `force=True` (7.10.6-7.17) closes them.
    """
    data.close(force=True)
