"""Reading notebook files (the one reader every part of nbcov uses), and locating an executed cell in one."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from nbcov.cells import read_file

#: Set by anyone to name the notebook explicitly (`nbcov run` gives its kernels `JPY_SESSION_NAME`, as Jupyter does).
NOTEBOOK_ENV = "NBCOV_NOTEBOOK"


def session_notebook(user_ns: dict[str, Any] | None = None) -> Path | None:
    """The notebook this kernel runs, if anything tells us.

    jupyter_server gives the kernel `JPY_SESSION_NAME` (the notebook's path; ipykernel also puts it
    in `__session__`), VS Code sets `__vsc_ipynb_file__`. Terminal IPython has none of them.
    """
    user_ns = user_ns or {}
    candidates = [
        os.environ.get(NOTEBOOK_ENV),
        user_ns.get("__vsc_ipynb_file__"),
        os.environ.get("JPY_SESSION_NAME"),
        user_ns.get("__session__"),
    ]
    for candidate in candidates:
        if not candidate or not isinstance(candidate, str) or not candidate.endswith(".ipynb"):
            continue
        path = Path(candidate)
        if path.is_absolute():
            if path.exists():
                return path
            continue
        # A relative session name is relative to the server's root, which the kernel does not know;
        # the kernel starts in the notebook's folder, so try the name, then its last component.
        for guess in (Path.cwd() / path, Path.cwd() / path.name):
            if guess.exists():
                return guess
    return None


class NotebookError(Exception):
    """A file that cannot be read as a notebook: one line, naming the file."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class NotebookCell:
    """One readable cell of a notebook file, as nbformat 4 describes it."""

    position: int  # 1-based among *all* cells of the file, damaged ones included, as reports number them
    cell_type: str  # "code", "markdown", "raw" (or whatever the file says: shown as raw)
    source: str
    cell_id: str | None = None
    execution_count: int | None = None
    outputs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    attachments: dict[str, Any] = dataclasses.field(default_factory=dict)
    tags: tuple[str, ...] = ()  # metadata.tags (papermill's `parameters`, nbclient's `skip-execution`)


@dataclasses.dataclass(frozen=True)
class SkippedCell:
    """A cell of the file that is not a cell nbcov can use, and why (for messages and tests)."""

    position: int
    reason: str


@dataclasses.dataclass(frozen=True)
class Notebook:
    """A notebook file as read: its usable cells in order and the damaged cells it skipped."""

    path: str
    nbformat: int
    nbformat_minor: int
    cells: list[NotebookCell]
    skipped: list[SkippedCell]
    raw: dict[str, Any] = dataclasses.field(repr=False)  # the JSON as written (`nbcov run` validates it)
    text: str = dataclasses.field(repr=False)  # the file's text (`nbcov run` hands it to nbformat)

    def code_cell_with_id(self, cell_id: str) -> NotebookCell | None:
        """The first code cell saved with this id (ids are unique in a valid file; the first wins if not)."""
        return next((c for c in self.cells if c.cell_type == "code" and c.cell_id == cell_id), None)

    def cell_at(self, position: int) -> NotebookCell | None:
        """The readable cell at a 1-based position of the file (None where a damaged cell was skipped)."""
        return next((c for c in self.cells if c.position == position), None)


def read_notebook(path: str | os.PathLike[str]) -> Notebook:
    """The notebook file at `path`, or NotebookError saying in one line why it cannot be read."""
    try:
        raw = read_file(os.fspath(path))
    except OSError as exc:
        raise NotebookError(path, f"cannot read the notebook: {exc.strerror or _first_line(exc)}") from exc
    return parse_notebook(raw, path)


def parse_notebook(raw: bytes, path: str | os.PathLike[str]) -> Notebook:
    """A notebook from the bytes of its file (named `path` in errors).

    One behaviour for damage, whoever reads: a file that is not a notebook at all (not UTF-8, not
    JSON, no nbformat version, no list of cells) is a NotebookError; a damaged *cell* (not an object,
    no cell type, no source, a source that is not text) is skipped with its reason, and the other
    cells keep their positions. Optional fields of the wrong type (id, execution count, outputs,
    attachments) count as absent. Plain JSON, not nbformat, for nbformat 4: importing nbformat (and
    jsonschema) in every kernel costs seconds; older formats are converted by nbformat.
    """
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError as exc:
        raise NotebookError(path, f"cannot read the notebook: {_first_line(exc)}") from exc
    except ValueError as exc:
        raise NotebookError(path, f"not a notebook (not valid JSON): {_first_line(exc)}") from exc
    except RecursionError as exc:
        raise NotebookError(path, "not a notebook (JSON nested too deeply to read)") from exc
    if not isinstance(data, dict) or not isinstance(data.get("nbformat"), int) or isinstance(data["nbformat"], bool):
        raise NotebookError(path, "not a notebook (no nbformat version)")
    major, minor = data["nbformat"], data.get("nbformat_minor", 0)
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise NotebookError(path, "not a valid notebook: nbformat_minor is not a number")
    if major not in (1, 2, 3, 4):
        raise NotebookError(path, f"unsupported nbformat version {major}")
    cells = data.get("cells") if major == 4 else _upgraded_cells(data, path)
    if not isinstance(cells, list):
        raise NotebookError(path, 'not a valid notebook: "cells" is missing or not a list')
    readable: list[NotebookCell] = []
    skipped: list[SkippedCell] = []
    for position, cell in enumerate(cells, start=1):
        read = _read_cell(position, cell)
        if isinstance(read, SkippedCell):
            skipped.append(read)
        else:
            readable.append(read)
    return Notebook(os.fspath(path), major, minor, readable, skipped, data, text)


def _upgraded_cells(data: dict[str, Any], path: str | os.PathLike[str]) -> Any:
    """The cells of an nbformat 1-3 notebook, converted to version 4 by nbformat (rare: paid only then)."""
    import nbformat

    try:
        return nbformat.convert(nbformat.from_dict(data), 4).get("cells")
    except Exception as exc:  # nbformat's conversion of a malformed old notebook raises anything
        raise NotebookError(path, f"not a valid notebook: {_first_line(exc)}") from exc


# A lone surrogate (valid in JSON, not in UTF-8) would fail every later encode: it becomes U+FFFD.
_SURROGATES = re.compile("[\ud800-\udfff]")


def _read_cell(position: int, cell: Any) -> NotebookCell | SkippedCell:
    """The cell, or why it is skipped."""
    if not isinstance(cell, dict):
        return SkippedCell(position, f"not a JSON object but {_json_type(cell)}")
    cell_type, source = cell.get("cell_type"), cell.get("source")
    if not isinstance(cell_type, str):
        return SkippedCell(position, "no cell_type" if cell_type is None else "cell_type is not a string")
    if source is None:
        return SkippedCell(position, "no source")
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        source = "".join(source)
    if not isinstance(source, str):
        return SkippedCell(position, "source is not a string nor a list of strings")
    count, outputs, attachments = cell.get("execution_count"), cell.get("outputs"), cell.get("attachments")
    metadata = cell.get("metadata")
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    return NotebookCell(
        position=position,
        cell_type=cell_type,
        source=_SURROGATES.sub("\ufffd", source),
        cell_id=cell.get("id") if isinstance(cell.get("id"), str) else None,
        execution_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        outputs=[o for o in outputs if isinstance(o, dict)] if isinstance(outputs, list) else [],
        attachments=attachments if isinstance(attachments, dict) else {},
        tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
    )


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "true or false", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@dataclasses.dataclass(frozen=True)
class Located:
    """Where an executed cell sits in its notebook file."""

    index: int  # 1-based, among all cells
    cell_id: str | None  # the id saved in the file (None for nbformat < 4.5)


class NotebookIndex:
    """Locates executed cells in a notebook file on disk.

    By cell id when the frontend sent one that the file has; otherwise by matching the executed source
    against the code cells, preferring the first match after the previously located cell so that two
    cells with the same source stay two cells during a top-to-bottom run.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: float | None = None
        self._cells: list[NotebookCell] = []
        self._last_index = 0
        #: Why the file could not be read the last time it was tried (None when it was read).
        self.problem: str | None = None

    def _load(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            self._cells = []
            return
        if mtime == self._mtime:
            return
        try:
            self._cells = [c for c in read_notebook(self.path).cells if c.cell_type == "code"]
            self.problem = None
        except NotebookError as exc:  # an unreadable notebook only means positions are unknown
            self._cells, self.problem = [], exc.reason
        self._mtime = mtime

    def locate(self, source: str, cell_id: str | None) -> Located | None:
        self._load()
        found = self._by_id(cell_id) if cell_id else None
        if found is None:
            found = self._by_source(source)
        if found is not None:
            self._last_index = found.index
        return found

    def _by_id(self, cell_id: str) -> Located | None:
        cell = next((c for c in self._cells if c.cell_id == cell_id), None)
        return Located(cell.position, cell_id) if cell else None

    def _by_source(self, source: str) -> Located | None:
        matches = [c for c in self._cells if _same_source(c.source, source)]
        if not matches:
            return None
        after = [c for c in matches if c.position > self._last_index]
        cell = (after or matches)[0]
        return Located(cell.position, cell.cell_id)


def _same_source(saved: str, executed: str) -> bool:
    # Frontends strip nothing, but files written by other tools may differ in trailing newlines.
    return saved == executed or saved.rstrip() == executed.rstrip()


#: The tag papermill gives the cell of parameters it adds to its output notebook.
PAPERMILL_INJECTED = "injected-parameters"
#: Notebooks read at most, looking for the one a kernel runs (a kernel started in a huge folder).
_MOST_CANDIDATES = 200


@dataclasses.dataclass(frozen=True)
class Found:
    """The notebook a kernel runs, as `NotebookFinder` found it."""

    path: Path
    #: Sources of the cells papermill added to its output (in none of `path`'s cells).
    injected: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class _Candidate:
    """A notebook a kernel might run, as read."""

    cells: list[NotebookCell]  # its code cells
    stands_for: Path  # itself, or the input notebook of a papermill output
    injected: frozenset[str]  # sources of the cells papermill added
    tier: int  # how it was named to the runner (`NotebookFinder.around`): a lower tier wins a tie


class NotebookFinder:
    """Which notebook a kernel runs when nobody told it: the one whose code cells hold what it runs.

    For runners that start kernels for notebooks without saying which (papermill, `jupyter execute`,
    nbmake, nbval, testbook under `nbcov exec`). They run a notebook's cells from the top, in a kernel
    started in the notebook's folder (papermill: where it runs) or told of it on the command line: the
    candidates. A papermill output notebook (written before its kernel starts) stands for the input
    notebook its metadata names, so cells are named after the notebook the user wrote.
    """

    def __init__(self, candidates: list[tuple[Path, int]]) -> None:
        self._candidates = candidates  # (notebook, tier): a lower tier wins a tie (`around`)
        self._read: list[_Candidate] | None = None

    @classmethod
    def around(cls, folder: Path, named: Iterable[str]) -> NotebookFinder:
        """The notebooks `named` (files, or notebooks below folders), then those below `folder` (a
        kernel's working folder: testbook's kernels start where pytest runs, not beside the notebook).

        A notebook named itself wins a tie over one below a named folder (`--output-dir executed`),
        which wins over one found below the working folder.
        """
        seen: dict[str, tuple[Path, int]] = {}
        for entry in [*named, None]:
            path = Path(entry) if entry is not None else folder
            tier = 2 if entry is None else 1 if path.is_dir() else 0
            for notebook in _notebooks_below(path) if path.is_dir() else [path]:
                if len(seen) >= _MOST_CANDIDATES:
                    break
                key = os.path.realpath(notebook)
                if notebook.suffix == ".ipynb" and notebook.is_file() and (key not in seen or tier < seen[key][1]):
                    seen[key] = (notebook, tier)
        return cls(list(seen.values()))

    def find(self, source: str) -> Found | None:
        """The one notebook with a code cell that is `source`, preferring those where it comes first.

        None when no notebook has it (code a test injects) or several do equally (a copy of the
        notebook): a wrong notebook would put lines on someone else's cells. The next cell is tried.
        """
        best: dict[str, tuple[tuple[int, int], Found]] = {}
        for candidate in self._notebooks():
            cells = candidate.cells
            positions = [i for i, c in enumerate(cells) if _same_source(c.source, source)]
            if not positions:
                continue
            key = os.path.realpath(candidate.stands_for)
            injected = candidate.injected
            rank = (0 if _first_run(cells) in positions else 1, candidate.tier)
            if key in best:  # a papermill output and its input: one notebook
                rank, injected = min(rank, best[key][0]), injected | best[key][1].injected
            best[key] = (rank, Found(candidate.stands_for, injected))
        if not best:
            return None
        top = min(rank for rank, _ in best.values())
        winners = [found for rank, found in best.values() if rank == top]
        return winners[0] if len(winners) == 1 else None

    def _notebooks(self) -> list[_Candidate]:
        """Each readable candidate, read once."""
        if self._read is None:
            self._read = []
            for path, tier in self._candidates:
                try:
                    notebook = read_notebook(path)
                except NotebookError:
                    continue  # an unreadable candidate is not the one a kernel runs
                cells = [c for c in notebook.cells if c.cell_type == "code"]
                injected = frozenset(c.source for c in cells if PAPERMILL_INJECTED in c.tags)
                stands_for = _papermill_input(notebook, path) or path
                self._read.append(_Candidate(cells, stands_for, injected, tier))
        return self._read


#: How deep below a folder notebooks are looked for, and folders never looked in.
_DEPTH = 3
_NOT_THERE = {"node_modules", "site-packages", "__pycache__", "htmlcov", "build", "dist"}


def _notebooks_below(folder: Path) -> Iterator[Path]:
    """Notebooks in `folder` first, then below it (sorted, not too deep, no hidden, checkpoint or
    environment folders): a bounded walk, for a kernel started at the top of a big project."""
    level = [folder]
    for _ in range(_DEPTH):
        below: list[Path] = []
        for where in level:
            try:
                entries = sorted(os.scandir(where), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith(".") or entry.name in _NOT_THERE:
                    continue
                if entry.name.endswith(".ipynb") and entry.is_file():
                    yield Path(entry.path)
                elif entry.is_dir(follow_symlinks=False) and not (Path(entry.path) / "pyvenv.cfg").exists():
                    below.append(Path(entry.path))
        level = below


def _first_run(cells: list[NotebookCell]) -> int:
    """The index of the first code cell a runner executes (nbclient skips blank ones)."""
    return next((i for i, c in enumerate(cells) if c.source.strip() and "skip-execution" not in c.tags), -1)


def _papermill_input(notebook: Notebook, path: Path) -> Path | None:
    """The input notebook of a papermill output notebook, where it still exists.

    papermill writes the input path as it was given (relative to where papermill ran, which is the
    kernel's folder unless `--cwd` moved it); tried from there, then beside the output.
    """
    meta = notebook.raw.get("metadata")
    papermill = meta.get("papermill") if isinstance(meta, dict) else None
    given = papermill.get("input_path") if isinstance(papermill, dict) else None
    if not isinstance(given, str) or not given.endswith(".ipynb"):
        return None
    for guess in (Path.cwd() / given, path.parent / given, path.parent / Path(given).name):
        if guess.is_file():
            return guess.absolute()
    return None
