"""Cell records: what nbcov knows about one executed cell, and where that knowledge is kept on disk."""

from __future__ import annotations

import dataclasses
import errno
import functools
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

#: The folder, beside the data file, that holds one JSON record per measured cell version.
STORE_DIRNAME = ".nbcov"
RECORD_FORMAT = 1
#: The key of the cell of parameters papermill adds to a notebook it runs: a cell of the notebook
#: in reports (`papermill parameters`), at no position of it, one version per data file as any cell.
PAPERMILL_PARAMETERS = "papermill-parameters"
#: The store's `.gitignore`: like `.pytest_cache`, the folder ignores itself, so nobody commits it by accident.
STORE_GITIGNORE = "# Created by nbcov: cell sources of coverage data.\n*\n"

# Cell ids are [a-zA-Z0-9-_]{1,64} in nbformat 4.5, but frontends may send anything: keep names path-safe.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
# Longest part of a record's path kept as it is: file systems allow 255 bytes, and a record's file
# name adds 22 to its key. Every name that worked before is kept, so older data files still match.
_LONGEST_PART = 200


def _path_part(text: str) -> str:
    """`text` made safe as one component of a record's path: path-safe characters, and a long text
    shortened to a prefix and a hash of the whole (a 300-character cell id once failed every save
    with "File name too long"). Stable, so the same cell gets the same name everywhere."""
    safe = _UNSAFE.sub("_", text)
    if len(safe) <= _LONGEST_PART:
        return safe
    # No "-" in the hash part: `sibling_versions` splits a record's stem at its last "-".
    return f"{safe[:_LONGEST_PART - 17]}_{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def digest(source: str) -> str:
    """A short, stable fingerprint of a cell's source as typed.

    It is part of the cell's name in the data file, so two runs of the same cell text merge on
    `coverage combine` and an edited cell never mixes its old line numbers with its new ones.
    """
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


@dataclasses.dataclass
class CellRecord:
    """One version of one cell: its text, where it sits in its notebook, and the code to analyse.

    `source` is the cell as the user typed it; `code` is valid Python with the same line numbers
    (IPython's transformed text, or a cell magic's body, padded to its place in the cell: IPython
    drops leading blank lines), which coverage.py's parser analyses.
    """

    source: str
    code: str
    notebook: str | None = None  # relative to the data file's folder when below it, else absolute
    cell_index: int | None = None  # 1-based position among all cells of the notebook
    cell_id: str | None = None
    key: str | None = None  # what identifies the cell across edits: its id, or its position
    execution_count: int | None = None
    premeasured: bool = False  # ran before measurement began: its top-level lines were never measured

    @property
    def digest(self) -> str:
        return digest(self.source)

    def label(self) -> str:
        """The name a person reads: `notebooks/analysis.ipynb · cell 4`, or `In [7]` without a notebook."""
        count = f"In [{self.execution_count}]" if self.execution_count is not None else "In [ ]"
        if self.notebook is None:
            return count
        if self.cell_index is not None:
            return f"{self.notebook} · cell {self.cell_index}"
        if self.key == PAPERMILL_PARAMETERS:
            return f"{self.notebook} · papermill parameters"
        return f"{self.notebook} · {count}"

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["format"] = RECORD_FORMAT
        data["digest"] = self.digest
        return data

    @classmethod
    def from_json(cls, data: Any) -> CellRecord:
        """The record a file holds; ValueError when it is not one (a damaged or foreign file would
        otherwise fail much later, deep inside coverage.py's analysis, with a traceback)."""
        if not isinstance(data, dict):
            raise ValueError(f"a record is a JSON object, not {type(data).__name__}")
        fields = {k: v for k, v in data.items() if k in _RECORD_FIELDS}
        for key, types in _RECORD_TYPES.items():
            if (key in fields and not isinstance(fields[key], types)) or (key in _REQUIRED and key not in fields):
                raise ValueError(f"{key!r} is missing or not {' or '.join(_JSON_NAMES[t] for t in types)}")
        return cls(**fields)


#: What a record file may set (newer nbcov versions may write more keys; older readers skip them).
_RECORD_FIELDS = frozenset(f.name for f in dataclasses.fields(CellRecord))
#: The types each key must have.
_RECORD_TYPES: dict[str, tuple[type, ...]] = {
    "source": (str,),
    "code": (str,),
    "notebook": (str, type(None)),
    "cell_index": (int, type(None)),
    "cell_id": (str, type(None)),
    "key": (str, type(None)),
    "execution_count": (int, type(None)),
    "premeasured": (bool,),
}
_REQUIRED = ("source", "code")
_JSON_NAMES = {str: "a string", int: "an integer", bool: "true or false", type(None): "null"}


class CellStore:
    """The `.nbcov/` folder beside a data file: one JSON file per measured cell version.

    The path of that JSON file *is* the cell's name in coverage data. It is derived only from the
    notebook's path relative to the data file, the cell's key and its source digest, so the same cell
    gets the same name in every kernel, run, machine and Python version; and because the name is a
    real file, coverage.py's `[paths]` remapping (which only maps to existing files) works for it.
    """

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(os.path.realpath(os.path.abspath(data_dir)))
        self.root = self.data_dir / STORE_DIRNAME / "cells"

    def notebook_ref(self, notebook: str | os.PathLike[str] | None) -> str | None:
        """How a record names its notebook: relative to the data folder if below it, else absolute."""
        if notebook is None:
            return None
        path = Path(os.path.realpath(os.path.abspath(notebook)))
        try:
            return path.relative_to(self.data_dir).as_posix()
        except ValueError:
            return path.as_posix()

    def path_for(self, record: CellRecord) -> Path:
        """The record's file, which is also the cell's name in the data file."""
        if record.notebook is None:
            folder = self.root / "_ipython"
        elif os.path.isabs(record.notebook):
            outside = hashlib.sha256(record.notebook.encode()).hexdigest()[:8]
            folder = self.root / "_outside" / f"{outside}-{_path_part(Path(record.notebook).name)}"
        else:
            folder = self.root.joinpath(*(_path_part(part) for part in record.notebook.split("/")))
        stem = record.digest if record.key is None else f"{_path_part(record.key)}-{record.digest}"
        return folder / f"{stem}.json"

    def save(self, record: CellRecord) -> str:
        """Write the record (atomically, so a reader never sees half a file) and return its name."""
        path = self.path_for(record)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_gitignore()
        payload = json.dumps(record.to_json(), indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(payload)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return str(path)

    def _write_gitignore(self) -> None:
        # Like .pytest_cache: the folder ignores itself, so nobody commits it by accident.
        ignore = self.data_dir / STORE_DIRNAME / ".gitignore"
        if not ignore.exists():
            ignore.write_text(STORE_GITIGNORE, encoding="utf-8")


def is_cell_name(name: str) -> bool:
    """Is this data-file name one of nbcov's cell records?"""
    # String tests, not pathlib: this runs for every file of the data file after every cell.
    return name.endswith(".json") and f"/{STORE_DIRNAME}/cells/" in name.replace(os.sep, "/")


def split_record_name(name: str) -> tuple[str, tuple[str, ...]] | None:
    """(the data folder, the parts below its `.nbcov/`) of a cell record's name, or None when the name
    has no `.nbcov/` folder. The one place that says where a record's data folder is: the folder above
    the *last* `.nbcov/` of the name (a data folder may itself lie below another one's `.nbcov/`).

    String operations, not pathlib: a report asks this for every one of a thousand records.
    """
    parts = name.replace(os.sep, "/").split("/")
    if STORE_DIRNAME not in parts:
        return None
    where = len(parts) - 1 - parts[::-1].index(STORE_DIRNAME)
    return os.sep.join(parts[:where]) or os.sep, tuple(parts[where + 1 :])


def record_data_dir(name: str) -> str | None:
    """The data folder of the record named `name` (records name their notebook relative to it)."""
    split = split_record_name(name)
    return split[0] if split else None


def record_tail(name: str, data_file: str | os.PathLike[str]) -> tuple[str, ...]:
    """The parts of a cell name below its `.nbcov/cells/`, refused unless they can only name a place there.

    A data file is input like any other: a name such as `/x/.nbcov/cells/../../package.json` must not
    make combine read or write outside a records folder, nor a report read one.
    """
    _, below = split_record_name(name) or ("", ())
    tail = below[1:]
    if below[:1] != ("cells",) or not tail or any(part in ("", ".", "..") or "\0" in part for part in tail):
        raise RecordError(f"{os.fspath(data_file)} names a cell record outside any {STORE_DIRNAME}/cells/ folder: {name!r}")
    return tail


def sibling_versions(name: str) -> tuple[str, str] | None:
    """(folder, key prefix) shared by every version of the same keyed cell, or None without a key.

    Used to drop older versions of an edited cell: they share the folder and key, not the digest.
    """
    folder, _, filename = name.rpartition("/")
    stem = filename[: -len(".json")] if filename.endswith(".json") else filename
    if "-" not in stem:
        return None
    return folder, stem.rsplit("-", 1)[0]


def record_places(name: str, search_dirs: Iterable[str | os.PathLike[str]] | None) -> Iterator[str]:
    """Where the record named `name` may be: there, then below each of `search_dirs` (its data
    folder moved). The other places are only worked out when asked for: a report looks up a thousand
    records, nearly always where their names say (string operations, not pathlib, for the same reason)."""
    yield name
    split = split_record_name(name) if search_dirs and name.endswith(".json") else None
    if search_dirs and split:
        for folder in search_dirs:
            yield os.path.join(folder, STORE_DIRNAME, *split[1])


def record_search_dirs(data_file: str | os.PathLike[str] | None) -> list[Path]:
    """Where a report looks for records whose data folder moved (a data file copied elsewhere with
    its `.nbcov/`): the data file's folder, then the current folder."""
    here = [Path.cwd()]
    return here if data_file is None else [Path(os.path.abspath(data_file)).parent, *here]


def load_record(name: str, search_dirs: list[Path] | None = None) -> CellRecord:
    """Read the record named `name`, looking under `search_dirs` too when the data folder moved."""
    for place in record_places(name, search_dirs):
        try:
            return _read_record(place, os.stat(place).st_mtime_ns)
        except FileNotFoundError:
            continue
    raise RecordError(
        f"No source is stored for the notebook cell {name!r}: its record is missing. "
        f"Keep the {STORE_DIRNAME}/ folder beside the data file (copy it along with the data when combining)."
    )


@functools.lru_cache(maxsize=4096)
def _read_record(path: str, mtime_ns: int) -> CellRecord:
    """Records are read again only when they change (reports in a live kernel read them often)."""
    try:
        return CellRecord.from_json(json.loads(read_file(path)))
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deeply
        raise RecordError(f"The cell record {path} is unreadable ({_reason(exc)}).") from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def read_file(path: str) -> bytes:
    """A whole file's bytes. Plain `os` calls: a report reads a thousand small records and sources,
    and a buffered (or decoding) file object costs about twice as much for each."""
    # O_NONBLOCK: a FIFO where a record or notebook should be would block the open (and the report) forever.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            kind = "a folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "not a regular file"
            raise OSError(errno.EISDIR if kind == "a folder" else errno.EINVAL, kind, path)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class RecordError(Exception):
    """A cell record is missing or unreadable."""
