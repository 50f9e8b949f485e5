"""Saving a kernel's measurements into its data file after every cell, never cut in half."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import coverage

from nbcov import coverage_internals, data, processes
from nbcov.cellnames import CellNames
from nbcov.cells import CellRecord
from nbcov.parser import Shift


class Saver:
    """Merges what coverage.py measured in memory into the data file, each cell under its record's name.

    Only the difference is kept in memory: each save then costs what the cell ran, not what the
    whole session ran (a long notebook would otherwise pay more after every cell).
    """

    def __init__(self, names: CellNames) -> None:
        self.names = names
        self.last_error: str | None = None  # why the last save failed (`%nbcov save` says it)
        self._saved_latest: set[str] = set()  # the newest cell versions as of the last save
        self._lock = threading.Lock()  # one save at a time (a handler on the main thread, a subshell)
        #: What the Pythons this kernel starts name their pieces after (`<children>.<host>.pid<N>.X…x`),
        #: folded into the data file at each save; None: no pieces of its own to fold.
        self.children: str | None = None

    def save(self, cov: coverage.Coverage, target: str, *, cell_finished: bool = False) -> None:
        """Merge everything measured so far into `target`. Errors are reported, never raised.

        SIGINT and SIGTERM wait until the save is over: a KeyboardInterrupt inside coverage.py's
        CoverageData left it closed but still in use (every later save of the kernel failed), and the
        SIGTERM handler, saving again, waited forever for the lock the interrupted save held. An
        interrupt that arrives while the save at the end of a cell runs came too late for the cell
        (ipykernel ignores SIGINT once a cell is over): it is said, not raised into nbcov's hook.
        """
        # Warnings name the code that asked for the save (the caller of `Session.save`).
        with signals_held() as arrived, self._lock:
            try:
                recovered = self._write(cov, target)
            except Exception as exc:  # a failing save must not break the user's cell
                self.last_error = f"nbcov could not save coverage data to {target}: {exc}"
                warn(self.last_error, stacklevel=4)
            else:
                self.last_error = None
                if recovered:
                    warn_recovered(target, stacklevel=4)
            if self.children is not None:
                fold_pieces(self.children, target)
        for signum in arrived:
            if signum == signal.SIGINT and cell_finished:
                print("nbcov: the interrupt came after the cell had finished, while nbcov saved its coverage; "
                      "nothing was interrupted.", file=sys.stderr)
            else:
                signal.raise_signal(signum)  # delivered now, to whatever handles it

    def forked(self) -> None:
        """In a forked child: the parent's newest cell versions are not this process's to name, nor
        its children's pieces this process's to fold."""
        self._saved_latest = set()
        self.children = None

    def _write(self, cov: coverage.Coverage, target: str) -> bool:
        """Merge what was measured since the last save into the data file, then forget it here.

        What a failed save could not write stays in memory and goes with the next one, records
        included: a cell's record is written before the data that names it and forgotten only once
        both are written, so the data file never names a record that does not exist (a full disk, a
        kill in between). Returns whether the data file had to be recovered from a killed writer first.
        """
        names = self.names
        assert names.store is not None
        measured = cov.get_data()
        latest = names.latest_names()
        files = measured.measured_files()
        if not files and not names.unsaved and latest == self._saved_latest and os.path.exists(target):
            return False  # e.g. a magic that ran no measured line
        renamed: dict[str, str] = {}
        shifts: dict[str, Shift] = {}
        drop: list[str] = []
        written: dict[str, CellRecord] = {}
        for path in files:
            entry = names.files.get(path) or names.adopt(path)
            if entry is not None:
                renamed[path] = entry.name
                if entry.shift is not None:
                    shifts[path] = entry.shift
                record = names.unsaved.get(entry.name)
                if record is not None and entry.name not in written:
                    names.store.save(record)
                    written[entry.name] = record
            elif os.path.dirname(path) == names.cell_dir:
                drop.append(path)  # e.g. a cell ipykernel's debugger dumped there
        recovered = data.write_mapped(measured, target, renamed, drop=drop, latest=latest, shifts=shifts)
        for name, record in written.items():
            if names.unsaved.get(name) is record:
                del names.unsaved[name]
        # coverage.py's collector goes on adding to this (now empty) in-memory data.
        coverage_internals.erase_memory_data(measured)
        self._saved_latest = latest
        return recovered


def fold_pieces(children: str, target: str) -> None:
    """Merge into `target` the finished pieces of `children` (the Pythons this kernel started), deleting each.

    So a live kernel's data file, its inline report and `nbcov report` show the lines its
    subprocesses and pool workers ran, with no `combine` to run. Only this kernel's own pieces:
    other kernels sharing the data file fold theirs. A piece that is still being written is left
    for a later save (`processes.finished_pieces`); one that can never be read is moved aside, said
    once. Never raises: a failure leaves the piece for the next save.
    """
    try:
        pieces = processes.finished_pieces(children)
    except OSError:
        return
    for piece in pieces:
        try:
            measured = data.check_data_file(piece)
        except data.DataFileError as exc:
            try:
                aside = data.move_aside(piece, "unreadable")
            except OSError:
                continue
            warn(f"{exc} It was moved to {aside}; what that process measured is not counted.", stacklevel=5)
            continue
        try:
            data.write_mapped(measured, target, {})
        except Exception:  # the piece stays, and the next save tries it again
            continue
        finally:
            coverage_internals.close_data(measured)
        # Merged twice (a kill between the write and this) would change nothing: lines are sets.
        with contextlib.suppress(OSError):
            piece.unlink(missing_ok=True)


@contextlib.contextmanager
def signals_held() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM for the block; yields the list of those that arrived meanwhile.

    Their handlers are swapped for one that only notes the signal, instead of blocking them with
    `pthread_sigmask`: that blocks a signal for the calling thread only, and a kernel has other
    threads, any of which would take it and have the main thread run its handler all the same.
    Handlers can only be set on the main thread; a save on another thread (a subshell) needs none,
    as Python runs signal handlers on the main thread.
    """
    arrived: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield arrived
        return

    def note(signum: int, frame: Any) -> None:
        if signum not in arrived:
            arrived.append(signum)

    previous: dict[int, Any] = {}
    try:
        for held in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(held)
            if handler not in (signal.SIG_IGN, None):  # None: set outside Python, left as it is
                previous[held] = signal.signal(held, note)
        yield arrived
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def prepare_target(target: str, branch: bool) -> None:
    """Keep an existing data file to add to, unless it cannot take this session's data."""
    if not os.path.exists(target):
        return
    if data.recover(target):
        warn_recovered(target)
    try:
        existing = data.check_data_file(target)
    except data.DataFileError as exc:
        aside = data.move_aside(target, "corrupt")
        warn(f"{exc} It was moved to {aside}; measuring into a new file.")
        return
    if existing.measured_files() and existing.has_arcs() != branch:
        kind = "branch" if existing.has_arcs() else "line"
        aside = data.move_aside(target, f"{kind}-data")
        warn(f"{target} held {kind} coverage; it was moved to {aside}.")


def moved(target: str) -> str:
    """Where nbcov's data goes once another measurement in the kernel uses `target` (`Session.relocate`)."""
    return f"{target}-nbcov"


def move_data(old: str, new: str) -> None:
    """Move a data file's content to `new`, adding to what `new` holds (an earlier kernel's)."""
    if not os.path.exists(old):
        return
    if not os.path.exists(new):
        os.replace(old, new)
        return
    held = coverage.CoverageData(basename=old)
    held.read()
    data.write_mapped(held, new, {})
    held.close()
    os.remove(old)


def warn_recovered(target: str, stacklevel: int = 3) -> None:
    warn(f"{target} was left half written by a process that was killed (deleting an edited "
         "cell's old version); that deletion was rolled back, the data kept.", stacklevel=stacklevel)


def warn(message: str, stacklevel: int = 3) -> None:
    """Say `message` under the running cell (stderr), and as a RuntimeWarning blaming the caller's caller."""
    warnings.warn(message, RuntimeWarning, stacklevel=stacklevel)
    print(f"nbcov: {message}", file=sys.stderr)
