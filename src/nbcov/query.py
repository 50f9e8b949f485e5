"""Who tests what: which tests ran a line, which lines a test ran, which tests add nothing, and the answers in words."""

# No IPython here (nor anything importing it): `nbcov who` answers in a plain process; `%nbcov who` calls `answer`.

from __future__ import annotations

import dataclasses
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

import coverage

from nbcov.cells import CellRecord, is_cell_name, load_record, record_search_dirs
from nbcov.cov_plugin import display_record


class QueryError(Exception):
    """A location or test the data does not know."""


@dataclasses.dataclass(frozen=True)
class Place:
    """A measured file as people name it: a notebook cell, or a module path."""

    name: str  # the name in the data file
    label: str
    notebook: str | None = None
    cell_index: int | None = None


def places(cov: coverage.Coverage) -> list[Place]:
    """Every measured file, cells with their notebook position."""
    data = cov.get_data()
    search_dirs = record_search_dirs(str(cov.get_option("run:data_file")))
    out = []
    for name in sorted(data.measured_files()):
        if is_cell_name(name):
            record: CellRecord = display_record(load_record(name, search_dirs), name)
            out.append(Place(name, record.label(), record.notebook, record.cell_index))
        else:
            shown = os.path.relpath(name) if name.startswith(os.getcwd() + os.sep) else name
            out.append(Place(name, shown))
    return out


def tests_for_line(cov: coverage.Coverage, location: str) -> tuple[Place, int, list[str]]:
    """The tests that ran `location`: `NOTEBOOK:CELL:LINE` (e.g. analysis.ipynb:4:7) or `MODULE:LINE`."""
    place, line = resolve(cov, location)
    contexts = cov.get_data().contexts_by_lineno(place.name).get(line, [])
    return place, line, sorted(c for c in contexts if c)


def resolve(cov: coverage.Coverage, location: str) -> tuple[Place, int]:
    match = re.fullmatch(r"(?P<path>.+?):(?:(?P<cell>\d+):)?(?P<line>\d+)", location.strip())
    if not match:
        raise QueryError(f"{location!r} is not NOTEBOOK:CELL:LINE or MODULE:LINE")
    path, line = match["path"], int(match["line"])
    cell = int(match["cell"]) if match["cell"] else None
    candidates = [
        p
        for p in places(cov)
        if (cell is not None and p.cell_index == cell and p.notebook and _same_path(p.notebook, path))
        or (cell is None and p.notebook is None and _same_path(p.label, path))
    ]
    if not candidates:
        known = ", ".join(p.label for p in places(cov)) or "nothing"
        raise QueryError(f"No measured file matches {location!r}. Measured: {known}")
    # Several versions of one cell (combined runs): prefer the one with data on that line.
    data = cov.get_data()
    with_line = [p for p in candidates if line in (data.lines(p.name) or [])]
    return (with_line or candidates)[0], line


def _same_path(known: str, asked: str) -> bool:
    known, asked = Path(known).as_posix(), Path(asked).as_posix()
    return known == asked or known.endswith("/" + asked)


def lines_for_test(cov: coverage.Coverage, test: str) -> dict[str, list[int]]:
    """Every line (by cell or module) that `test` ran."""
    data = cov.get_data()
    if test not in data.measured_contexts():
        close = [c for c in sorted(data.measured_contexts()) if test in c]
        hint = f" Did you mean: {', '.join(close[:5])}?" if close else ""
        raise QueryError(f"No test {test!r} in the data.{hint}")
    data.set_query_contexts([f"^{re.escape(test)}$"])
    try:
        return {p.label: sorted(lines) for p in places(cov) if (lines := data.lines(p.name))}
    finally:
        data.set_query_contexts(None)


def redundant_tests(cov: coverage.Coverage) -> list[str]:
    """Tests that ran no line that some other test did not also run."""
    data = cov.get_data()
    ran: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for name in data.measured_files():
        for line, contexts in data.contexts_by_lineno(name).items():
            for context in contexts:
                if context:
                    ran[context].add((name, line))
    counts = Counter(point for points in ran.values() for point in points)
    return sorted(test for test, points in ran.items() if all(counts[p] > 1 for p in points))


def tests(cov: coverage.Coverage) -> list[str]:
    """Every recorded test (context), sorted."""
    return sorted(c for c in cov.get_data().measured_contexts() if c)


def answer(cov: coverage.Coverage, location: str | None, test: str | None, redundant: bool) -> str:
    """The text answer to a who-tests-what question (shared by `%nbcov who` and `nbcov who`)."""
    if redundant:
        found = redundant_tests(cov)
        return "\n".join(found) if found else "No redundant tests: each test ran a line no other test ran."
    if test is not None:
        ran = lines_for_test(cov, test)
        return "\n".join(f"{label}: {line_runs(lines)}" for label, lines in ran.items()) or f"{test} ran no measured line."
    if location is not None:
        place, line, found = tests_for_line(cov, location)
        return "\n".join(found) if found else f"No test ran {place.label} line {line}."
    names = tests(cov)
    return "\n".join(names) if names else "No tests were recorded in this data (run tests with %%covtest)."


def line_runs(lines: Iterable[int]) -> str:
    """`1-3, 7`: runs of consecutive line numbers (not coverage.py's statement-aware ranges,
    which would join lines across those the test did not run)."""
    runs: list[list[int]] = []
    for line in sorted(set(lines)):
        if runs and line == runs[-1][-1] + 1:
            runs[-1].append(line)
        else:
            runs.append([line])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)
