"""Combining data files: coverage.py's combine, plus the cell records each data file keeps beside it."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

import coverage
from coverage.exceptions import CoverageException

from nbcov import coverage_internals
from nbcov.cells import STORE_DIRNAME, STORE_GITIGNORE, CellRecord, CellStore, RecordError, is_cell_name, record_tail
from nbcov.data import DataFileError, check_data_file


def combine(
    target: Path, inputs: Sequence[Path], rcfile: str | bool = True, keep: bool = False, append: bool = False
) -> int:
    """Merge `inputs` (data files, or folders holding `<data file>.*` pieces) into `target`.

    Like `coverage combine`, and more: data files from another folder or machine name their cells by
    records in *their* `.nbcov/`; those records are copied beside `target` and the cells renamed to
    the copies, so the combined file reports anywhere. Returns how many data files were combined.

    Inputs may come from anywhere (CI artifacts): every record they name is read and checked before
    anything is written, so a damaged input, a missing record or a hostile name changes nothing,
    deletes no input, and is one DataFileError or RecordError. Where a record is copied to depends
    only on `target` and the record's checked place below `.nbcov/cells/`; no symbolic link is
    followed below the data folders (`_open_below`).
    """
    target = target.resolve()
    if target.is_dir():
        raise DataFileError(f"{target} is a folder, not a coverage data file.")
    files = _data_files(target, inputs)
    if not files:
        raise DataFileError(f"No data files to combine for {target} (looked for {target.name}.* pieces and named files).")
    store_parts = (STORE_DIRNAME, "cells")
    records: dict[tuple[str, ...], bytes] = {}
    # The pieces of one run name the same cells: each record is read (and rebased) once per folder.
    placed: dict[tuple[Path, tuple[str, ...]], tuple[str, ...]] = {}
    plans: list[tuple[Path, coverage.CoverageData, dict[str, str]]] = []
    for path in files:
        data = check_data_file(path)
        renames: dict[str, str] = {}
        for name in data.measured_files():
            if not is_cell_name(name):
                continue
            tail = record_tail(name, path)
            if (path.parent, tail) not in placed:
                found = _find_record(name, tail, [path.parent, target.parent])
                new_tail, payload = _rebased(tail, found, path.parent, target)
                records.setdefault(new_tail, payload)
                placed[path.parent, tail] = new_tail
            renames[name] = os.path.join(target.parent, *store_parts, *placed[path.parent, tail])
        plans.append((path, data, renames))

    if not append:
        target.unlink(missing_ok=True)  # as `coverage combine`: the result is the inputs, no more
    if records:
        _write_below(target.parent, (STORE_DIRNAME, ".gitignore"), STORE_GITIGNORE.encode(), only_if_missing=True)
    for tail, payload in records.items():
        _write_below(target.parent, (*store_parts, *tail), payload)
    combined = coverage.CoverageData(basename=str(target))
    combined.read()
    aliases = coverage.Coverage(data_file=str(target), config_file=rcfile).config.paths
    for path, data, renames in plans:

        def move(name: str, renames: dict[str, str] = renames) -> str:
            return renames.get(name, name)

        try:
            combined.update(data, map_path=_with_aliases(move, aliases))
        except CoverageException as exc:
            raise DataFileError(f"Can't combine {path}: {exc}") from exc
    coverage_internals.close_data(combined)
    if not keep:
        for path in files:
            if path != target:
                path.unlink()
    return len(files)


def _find_record(name: str, tail: tuple[str, ...], data_dirs: Sequence[Path]) -> bytes:
    """The record's bytes, from the first data folder's store that has it; checked to be a record."""
    for folder in data_dirs:
        where = (STORE_DIRNAME, "cells", *tail)
        payload = _read_below(folder, where)
        if payload is not None:
            try:
                CellRecord.from_json(json.loads(payload))
            except (ValueError, RecursionError) as exc:
                raise RecordError(f"The cell record {os.path.join(folder, *where)} is unreadable ({exc}).") from exc
            return payload
    raise RecordError(
        f"No record for the notebook cell {name!r} in {STORE_DIRNAME}/ beside {data_dirs[0]}: copy the "
        f"{STORE_DIRNAME}/ folder along with the data files (nothing was combined)."
    )


def _rebased(tail: tuple[str, ...], payload: bytes, source_dir: Path, target: Path) -> tuple[tuple[str, ...], bytes]:
    """The record as `target`'s store keeps it: (its checked place below `.nbcov/cells/`, its bytes).

    A record names its notebook relative to its own data file's folder. Combined into another folder
    (a notebook folder's data into the project root, beside pytest-cov's), that name would point
    nowhere, so it is re-expressed from the target's folder -- but only when the notebook is there to
    be found from the input's folder and not from the target's: data from another machine (CI
    artifacts) keeps the same relative layout, as coverage.py's does.
    """
    record = CellRecord.from_json(json.loads(payload))
    notebook, target_dir = record.notebook, target.parent
    if notebook is None or os.path.isabs(notebook) or os.path.samefile(source_dir, target_dir):
        return tail, payload
    here, there = source_dir / notebook, target_dir / notebook
    if not here.is_file() or there.is_file():
        return tail, payload
    store = CellStore(target_dir)
    moved = dataclasses.replace(record, notebook=store.notebook_ref(here))
    return record_tail(str(store.path_for(moved)), target), json.dumps(moved.to_json(), indent=1, sort_keys=True).encode()


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _open_below(base: Path, parts: Sequence[str], create: bool = False) -> int:
    """A descriptor of the folder `base/parts...`, no symbolic link followed below `base` (O_NOFOLLOW
    at every step: a link inside a store, even to another place in it, is never a way out)."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            if create:
                try:
                    os.mkdir(part, dir_fd=fd)
                except FileExistsError:
                    pass
            inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_below(base: Path, parts: Sequence[str]) -> bytes | None:
    """The regular file `base/parts...`, None when it is not there; a symbolic link or a special file
    on the way is an error, not followed."""
    try:
        fd = _open_below(base, parts[:-1])
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise RecordError(f"{os.path.join(base, *parts)}: {_why(exc)}") from exc
    try:
        exists, payload = _leaf(fd, parts[-1])
    except OSError as exc:
        raise RecordError(f"{os.path.join(base, *parts)}: {_why(exc)}") from exc
    finally:
        os.close(fd)
    if exists and payload is None:
        raise RecordError(f"{os.path.join(base, *parts)}: not a regular file")
    return payload


def _leaf(folder_fd: int, name: str) -> tuple[bool, bytes | None]:
    """(is there anything named `name`, its bytes when it is a regular file); a link is not followed."""
    try:
        # O_NONBLOCK: a FIFO planted as a record would otherwise block the open forever.
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder_fd)
    except FileNotFoundError:
        return False, None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return True, None
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return True, b"".join(chunks)
    finally:
        os.close(fd)


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symbolic link (records are not followed out of their folder)"
    return exc.strerror or str(exc)


def _write_below(base: Path, parts: Sequence[str], payload: bytes, only_if_missing: bool = False) -> None:
    """Write `base/parts...` atomically, creating folders, without following a symbolic link below `base`.

    The rename replaces whatever is at the last name — a link there is replaced, never written through.
    Skipped when the file already holds these bytes (combining the pieces of a run in its own folder).
    """
    try:
        fd = _open_below(base, parts[:-1], create=True)
    except OSError as exc:
        raise OSError(exc.errno, _why(exc), os.path.join(base, *parts)) from exc
    try:
        try:
            exists, current = _leaf(fd, parts[-1])
        except OSError:  # a link (ELOOP) or the like: replaced below, never written through
            exists, current = True, None
        if (exists and only_if_missing) or current == payload:
            return
        tmp = f".tmp-{secrets.token_hex(6)}"
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=fd)
        try:
            with os.fdopen(out, "wb") as f:
                f.write(payload)
            os.replace(tmp, parts[-1], src_dir_fd=fd, dst_dir_fd=fd)
        except BaseException:
            os.unlink(tmp, dir_fd=fd)
            raise
    finally:
        os.close(fd)


def _data_files(target: Path, inputs: Sequence[Path]) -> list[Path]:
    """The data files to combine, as found (absolute, links not resolved: deleting an input after the
    combine removes that file, never what a link points to); pieces in a folder only as regular files."""
    found: list[Path] = []
    for path in inputs or [target.parent]:
        if path.is_dir():
            found += sorted(p for p in path.glob(target.name + ".*") if p.is_file() and not p.is_symlink())
        elif path.exists():
            found.append(path)
        else:
            raise DataFileError(f"{path}: no such data file or folder")
    unique: dict[str, Path] = {}
    for path in found:
        unique.setdefault(os.path.realpath(path), Path(os.path.abspath(path)))
    return [p for real, p in unique.items() if real != str(target)]


def _with_aliases(move: Callable[[str], str], aliases: dict[str, list[str]]) -> Callable[[str], str]:
    """coverage.py's `[paths]` remapping for modules, nbcov's record moving for cells."""
    if not aliases:
        return move
    mapper = coverage_internals.path_mapper((pattern, paths[0]) for paths in aliases.values() for pattern in paths[1:])

    def both(name: str) -> str:
        return move(name) if is_cell_name(name) else mapper(name)

    return both

