"""Combining data files: coverage.py's combine, plus the cell records each data file keeps beside it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import coverage
from coverage.exceptions import CoverageException

from nbcov import coverage_internals
from nbcov.cells import STORE_DIRNAME, is_cell_name, store_tail
from nbcov.data import DataFileError, check_data_file


def combine(
    target: Path, inputs: Sequence[Path], rcfile: str | bool = True, keep: bool = False, append: bool = False
) -> int:
    """Merge `inputs` (data files, or folders holding `<data file>.*` pieces) into `target`.

    Like `coverage combine`, and more: data files from another folder or machine name their cells by
    records in *their* `.nbcov/`; those records are copied beside `target` and the cells renamed to
    the copies, so the combined file reports anywhere. Returns how many data files were combined.
    """
    target = target.resolve()
    files = _data_files(target, inputs)
    if not files:
        raise DataFileError(f"No data files to combine for {target} (looked for {target.name}.* pieces and named files).")
    store = target.parent / STORE_DIRNAME
    if not append:
        target.unlink(missing_ok=True)  # as `coverage combine`: the result is the inputs, no more
    combined = coverage.CoverageData(basename=str(target))
    combined.read()
    cov = coverage.Coverage(data_file=str(target), config_file=rcfile)
    aliases = cov.config.paths
    for path in files:
        data = check_data_file(path)
        source_store = path.resolve().parent / STORE_DIRNAME

        def move(name: str, source_store: Path = source_store) -> str:
            if not is_cell_name(name):
                return name
            tail = store_tail(name)
            record = Path(name) if Path(name).exists() else source_store / tail
            copy = store / tail
            if record.exists() and record.resolve() != copy.resolve():
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(record, copy)
            return str(copy)

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


def _data_files(target: Path, inputs: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for path in inputs or [target.parent]:
        if path.is_dir():
            found += sorted(p for p in path.glob(target.name + ".*") if p.is_file())
        elif path.exists():
            found.append(path)
        else:
            raise DataFileError(f"{path}: no such data file or folder")
    return [p for p in dict.fromkeys(p.resolve() for p in found) if p != target]


def _with_aliases(move: Callable[[str], str], aliases: dict[str, list[str]]) -> Callable[[str], str]:
    """coverage.py's `[paths]` remapping for modules, nbcov's record moving for cells."""
    if not aliases:
        return move
    from coverage.files import PathAliases

    mapper = PathAliases(relative=False)
    for paths in aliases.values():
        result = paths[0]
        for pattern in paths[1:]:
            mapper.add(pattern, result)

    def both(name: str) -> str:
        return move(name) if is_cell_name(name) else mapper.map(name)

    return both

