"""What every run shares, whoever starts its kernels (`nbcov run`, `nbcov exec`, pytest): one run per
data file, the pieces to combine, the coverage configuration the kernels read.

Kept apart from runner.py, which brings nbclient and nbformat: `nbcov exec` needs none of them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nbcov.cells import STORE_DIRNAME
from nbcov.data import pieces_of


class RunLockedError(Exception):
    """Another run writes the same data file."""


@contextlib.contextmanager
def run_lock(data_file: Path) -> Iterator[None]:
    """Hold the data file for one run: its start deletes stale pieces and its end combines all pieces,
    so a second run into the same data file would delete the first one's pieces in flight, or take
    them into its own result. The second run is refused instead (an flock: released if the holder dies).
    """
    lock_path = data_file.parent / STORE_DIRNAME / f"{data_file.name}.run.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            raise RunLockedError(
                f"another nbcov run (pid {holder}) is writing {data_file}; wait for it, or give this run "
                "another --data-file"
            ) from None
        try:
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def usable_pieces(data_file: Path, warn: Any) -> list[Path]:
    """The pieces to combine; one that cannot be read is left out with a warning, not the whole run.

    A process a notebook started that was killed while it saved (SIGKILL, or the save limit) can
    leave a half-written piece; the kernels' pieces and every other process's are still good.
    """
    from nbcov.data import DataFileError, check_data_file

    usable = []
    for piece in pieces_of(data_file):
        try:
            check_data_file(piece)
        except DataFileError as exc:
            warn(f"left out of the combined data: {exc}")
        else:
            usable.append(piece)
    return usable


def kernel_rcfile(data_file: Path) -> Path:
    """The coverage configuration file the kernels should read.

    The user's, found from here as coverage.py finds it; else an empty one (coverage.py measures
    subprocesses only when it has a configuration file to hand them).
    """
    import coverage

    found = coverage.Coverage().config.config_file
    if found:
        return Path(found).resolve()
    folder = Path(tempfile.mkdtemp(prefix="nbcov-rc-"))
    rc = folder / ".coveragerc"
    rc.write_text("# nbcov run: no coverage configuration was found\n[run]\n", encoding="utf-8")
    return rc


def start_over(data_file: Path, *, append: bool = False) -> None:
    """Begin a run: delete the pieces an earlier run left (stopped before combining: none runs now,
    the caller holds the data file), and the data file itself unless the run adds to it."""
    for stale in pieces_of(data_file):
        stale.unlink()
    if not append:
        data_file.unlink(missing_ok=True)
