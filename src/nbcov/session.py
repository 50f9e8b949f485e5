"""Measuring a live IPython shell: coverage.py runs in the kernel, nbcov names and saves what it measured."""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import linecache
import os
import signal
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import coverage

from nbcov import compiler, core, data, engine, processes
from nbcov.cells import CellRecord, CellStore
from nbcov.notebook import NotebookIndex, session_notebook
from nbcov.parser import analysable

# Set by `nbcov run` and the pytest plugin for the kernels they start (see `options_from_environment`).
ENV_DATA_FILE = "NBCOV_DATA_FILE"
ENV_BRANCH = "NBCOV_BRANCH"
ENV_SOURCE = "NBCOV_SOURCE"
ENV_CELL_CONTEXTS = "NBCOV_CELL_CONTEXTS"
ENV_SUBPROCESS = "NBCOV_SUBPROCESS"


def options_from_environment() -> dict[str, Any]:
    """Session options a runner passed to its kernel through the environment."""
    env = os.environ
    options: dict[str, Any] = {}
    if env.get(ENV_DATA_FILE):
        options["data_file"] = env[ENV_DATA_FILE]
        options["exact_data_file"] = True
    if env.get(ENV_BRANCH) in ("0", "1"):
        options["branch"] = env[ENV_BRANCH] == "1"
    if env.get(ENV_SOURCE):
        options["source"] = env[ENV_SOURCE].split(os.pathsep)
    options["cell_contexts"] = env.get(ENV_CELL_CONTEXTS) == "1"
    options["subprocess"] = env.get(ENV_SUBPROCESS) == "1"
    return options


# Names IPython's %%time gives the body it compiles; coverage.py never traces names starting with "<".
_TIMED_BODY_NAMES = ("<timed exec>", "<timed eval>")

_NBCOV_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclasses.dataclass
class _Compiled:
    """A file name the kernel compiled code under, and the cell (version) it belongs to."""

    record: CellRecord
    offset: int  # lines between the top of the cell as typed and line 1 of this code
    name: str = ""  # the cell's name in the data file (its record's path)

    @property
    def identity(self) -> tuple[Any, ...]:
        return (self.record.notebook, self.record.key, self.record.digest, self.offset)


@dataclasses.dataclass
class _Running:
    """One `run_cell` in progress (cell magics such as %%capture nest them)."""

    raw: str
    cell_id: str | None
    record: CellRecord | None = None
    offset: int = 0
    # Texts run as Python for this frame, with their offsets: the cell itself, and %%time bodies.
    texts: list[tuple[str, int]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.texts.append((self.raw, self.offset))


def magic_body(text: str) -> tuple[str, int] | None:
    """(body, lines before it) of a cell that starts with a cell magic, else None."""
    header = magic_header_lines(text)
    if header is None:
        return None
    return "\n".join(text.splitlines()[header:]), header


def magic_header_lines(raw: str) -> int | None:
    """How many lines precede a cell magic's body (blank lines, then `%%name`), or None."""
    for i, line in enumerate(raw.splitlines()):
        if line.startswith("%%"):
            return i + 1
        if line.strip():
            return None
    return None


class Session:
    """Measures the cells of one IPython shell and keeps the data file up to date after every cell.

    coverage.py measures the kernel's cell files like any other file (its fastest path, under every
    core, with no plugin in the loop); after each top-level cell the measured data is merged into the
    data file with each cell renamed to its stable record name, so a kernel that dies loses at most
    the cell that was running.
    """

    def __init__(self, shell: Any, **options: Any) -> None:
        self.shell = shell
        given = {k: v for k, v in options.items() if v is not None}
        self.options = {**options_from_environment(), **given}
        self.cov: coverage.Coverage | None = None
        self.target = ""
        self.store: CellStore | None = None
        self.cell_dir = ""
        self._files: dict[str, _Compiled] = {}
        self._latest: dict[tuple[str | None, str], str] = {}
        self._stack: list[_Running] = []
        self._shifted: dict[int, Any] = {}  # AST nodes already moved to their line in the cell
        self._unsaved: dict[str, CellRecord] = {}  # records new or changed since they were written
        self._saved_latest: set[str] = set()  # the newest cell versions as of the last save
        self._index: NotebookIndex | None = None
        self._notebook_path: Path | None = None
        self._uninstall_compiler: Any = None
        self._old_sigterm: Any = None
        self.last_error: str | None = None
        self.measuring = False
        self._core = "?"
        self._unmark_cells: Any = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start coverage.py in this process with the user's configuration, and hook the shell."""
        if self.cov is not None:
            return
        cov = coverage.Coverage(
            data_file=None,  # measured data stays in memory; nbcov writes the data file itself
            config_file=self.options.get("config_file", True),
            branch=self.options.get("branch"),
            source=self.options.get("source"),
        )
        configured_data_file = self.options.get("data_file") or cov.get_option("run:data_file")
        self.target = os.path.abspath(str(configured_data_file))
        if cov.get_option("run:parallel") and not self.options.get("exact_data_file"):
            self.target = f"{self.target}.{_parallel_suffix()}"
        self.store = CellStore(os.path.dirname(self.target))
        children = processes.take_over_patches(cov) or bool(self.options.get("subprocess"))

        self.cell_dir = self._find_cell_dir()
        self._include_cells(cov)
        # nbcov's own hooks run around every cell; they are not the user's code.
        cov.set_option("run:omit", [*(cov.get_option("run:omit") or []), os.path.join(_NBCOV_DIR, "*")])
        # Flushing after every cell would repeat these on each cell.
        # And under sysmon, switch_context() below makes per-context data exact (restart_events), so
        # coverage.py's "context data may be incomplete" would only be noise in the user's cell.
        quiet = ["module-not-imported", "no-data-collected", "module-not-measured", "no-sysmon-context"]
        cov.set_option("run:disable_warnings", [*(cov.get_option("run:disable_warnings") or []), *quiet])

        self._prepare_target(bool(cov.get_option("run:branch")))
        self._notebook_path = session_notebook(self.shell.user_ns)
        self._index = NotebookIndex(self._notebook_path) if self._notebook_path else None

        self._uninstall_compiler = compiler.install(self.shell, self)
        self.shell.events.register("pre_run_cell", self._pre_run_cell)
        self.shell.events.register("post_run_cell", self._post_run_cell)
        self.cov = cov
        # On 3.12/3.13: lines with coverage.py's sysmon core, branches with nbcov's sys.monitoring
        # engine, instead of the C tracer coverage.py would default to (core.py, engine/).
        core.choose(cov)
        if engine.install(cov, source_provider=self._cell_source):
            from nbcov.engine.markers import install_cell_markers  # only branch kernels need it

            self._unmark_cells = install_cell_markers(self.shell)
        else:
            engine.install_lines(cov)  # under sysmon: code with every line recorded stops paying for events
        if children:
            self._measure_subprocesses(cov)
        _first_start(cov)
        processes.follow_forks(self)
        self.measuring = True
        self._core = str(dict(cov.sys_info()).get("core", "?"))
        # After cov.start(): atexit runs handlers last-in first-out, and coverage.py's own handler
        # closes the in-memory data this one still has to save.
        atexit.register(self._at_exit)
        self._install_sigterm()

    def pause(self) -> None:
        """Save and stop measuring, keeping the hooks: cells run meanwhile are "not measured"."""
        if self.cov is not None and self.measuring:
            self.save()
            self.cov.stop()
            self.measuring = False

    def resume(self) -> None:
        if self.cov is not None and not self.measuring:
            self.cov.start()
            self.measuring = True

    @contextlib.contextmanager
    def measuring_only(self) -> Iterator[None]:
        """Measure only inside the `with` blocks entered through `measure()` while this one lasts.

        Used around a pytest run: pytest's own machinery (collection, reporting) is not the user's
        code, and under the C tracer it would pay the tracer's price on every call.
        """
        if self.cov is None or not self.measuring:
            yield
            return
        self.cov.stop()
        try:
            yield
        finally:
            self.cov.start()

    @contextlib.contextmanager
    def measure(self) -> Iterator[None]:
        """Measure the block (inside `measuring_only`)."""
        if self.cov is None or not self.measuring:
            yield
            return
        self.cov.start()
        try:
            yield
        finally:
            self.cov.stop()

    def switch_context(self, context: str) -> str:
        """Record what runs from now on under `context` (a test id); returns the previous one.

        coverage.py's `sysmon` core records each line once and then disables its event, so a
        second test running the same line would go unrecorded: re-enabling all events at each switch
        makes per-test data exact under every core.
        """
        if self.cov is None or not self.measuring:
            return ""
        previous = self.cov.switch_context(context) or ""
        if self.core in ("SysMonitor", engine.ENGINE_NAME):
            engine.restart(self.cov)
        return previous

    def erase(self) -> None:
        """Forget everything measured so far (`%nbcov reset`), and go on measuring."""
        if self.cov is None:
            return
        was_measuring = self.measuring
        if was_measuring:
            self.cov.stop()
        self.cov.erase()
        if os.path.exists(self.target):
            os.remove(self.target)
        if was_measuring:
            self.cov.start()

    def stop(self) -> None:
        """Stop measuring and save; the shell is left as it was before `start`."""
        if self.cov is None:
            return
        self.save()
        if self.measuring:
            self.cov.stop()
            self.measuring = False
        for name, hook in (("pre_run_cell", self._pre_run_cell), ("post_run_cell", self._post_run_cell)):
            try:
                self.shell.events.unregister(name, hook)
            except ValueError:
                pass
        if self._uninstall_compiler:
            self._uninstall_compiler()
        if self._unmark_cells is not None:
            self._unmark_cells()
            self._unmark_cells = None
        engine.uninstall(self.cov)
        atexit.unregister(self._at_exit)
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
        self.cov = None

    def _compiled(self, filename: str) -> _Compiled | None:
        """The cell compiled under `filename`, as the kernel or coverage.py (which resolves links) names it."""
        return self._files.get(filename) or self._files.get(os.path.realpath(filename))

    def _cell_source(self, filename: str) -> str | None:
        """The Python text of a cell file (not on disk), for the branch engine's analysis."""
        entry = self._compiled(filename)
        return analysable(entry.record.code) if entry is not None else None

    def cell_label(self, filename: str) -> str | None:
        """`nb.ipynb · cell 3` for a file name the kernel compiled a cell under, else None."""
        entry = self._compiled(filename)
        return entry.record.label() if entry is not None else None

    def running_cell_name(self) -> str | None:
        """The data-file name of the top-level cell running now (e.g. a `%%covtest` cell)."""
        if self.store is None or not self._stack or self._stack[0].record is None:
            return None
        return self._name_of(self._stack[0].record)

    @property
    def notebook_ref(self) -> str | None:
        """The notebook's path as records name it (relative to the data file's folder)."""
        if self.store is None or self._notebook_path is None:
            return None
        return self.store.notebook_ref(self._notebook_path)

    @property
    def core(self) -> str:
        """What measures: coverage.py's CTracer, PyTracer or SysMonitor, or nbcov's nbcov-branch engine."""
        return self._core if self.cov is not None else "stopped"

    def _measure_subprocesses(self, cov: coverage.Coverage) -> None:
        """Measure the Pythons the notebook starts, into parallel pieces of this kernel's data file.

        `nbcov run` and `coverage combine` pick those up (`processes.measure_children`).
        """
        problem = processes.measure_children(cov, self.target)
        if problem:
            self._warn(problem)

    def forked(self) -> None:
        """In a forked child (`processes`): add to the data file, never decide which cell versions are newest.

        The parent may have run newer versions of cells since the fork; a child naming its own
        newest versions would delete those from the data file.
        """
        self._latest.clear()
        self._saved_latest = set()

    def _find_cell_dir(self) -> str:
        """The folder the shell's cell file names live in (ipykernel: $TMPDIR/ipykernel_<pid>)."""
        proposed = self.shell.compile.get_code_name("", "", 0)
        if _traceable(proposed) and "IPYKERNEL_CELL_NAME" not in os.environ:
            folder = os.path.dirname(os.path.abspath(proposed))
        else:
            folder = os.path.join(tempfile.gettempdir(), f"nbcov_cells_{os.getpid()}")
        # coverage.py only accepts existing folders in `source`; cells are never written here.
        os.makedirs(folder, mode=0o700, exist_ok=True)
        return os.path.realpath(folder)

    def _include_cells(self, cov: coverage.Coverage) -> None:
        """Make sure the user's `source`/`include` settings do not filter the cells out."""
        source = cov.get_option("run:source")
        include = cov.get_option("run:include")
        if source:
            cov.set_option("run:source", [*source, self.cell_dir])
        elif include:
            cov.set_option("run:include", [*include, os.path.join(self.cell_dir, "*")])

    def _prepare_target(self, branch: bool) -> None:
        """Keep an existing data file to add to, unless it cannot take this session's data."""
        if not os.path.exists(self.target):
            return
        try:
            existing = data.check_data_file(self.target)
        except data.DataFileError as exc:
            aside = data.move_aside(self.target, "corrupt")
            self._warn(f"{exc} It was moved to {aside}; measuring into a new file.")
            return
        if existing.measured_files() and existing.has_arcs() != branch:
            kind = "branch" if existing.has_arcs() else "line"
            aside = data.move_aside(self.target, f"{kind}-data")
            self._warn(f"{self.target} held {kind} coverage; it was moved to {aside}.")

    # -- naming cells (called by the compiler hooks) ------------------------------------------------

    def code_name(self, name: str, raw: str, transformed: str, number: int) -> str:
        """Decide the file name a cell (or a %%capture-style body) is compiled under."""
        if not self._stack:
            return name
        frame = self._stack[-1]
        if frame.record is not None and frame.offset:
            record = frame.record
            self._body_code(record, frame.offset, transformed)  # _claim below marks it unsaved
        else:
            record = self._new_record(frame.raw, transformed, frame.cell_id, number)
            frame.record = record
            if self.options.get("cell_contexts") and len(self._stack) == 1:
                self.switch_context(cell_context(record))
        return self._claim(name, _Compiled(record, frame.offset))

    def compiling(self, filename: str, source: Any) -> tuple[str, Any]:
        """Shift magic bodies to their line in the cell, and give %%time's body a traceable name."""
        entry = self._files.get(filename)
        if entry is not None:
            if entry.offset:
                _show_in_tracebacks(filename, entry.record.source)
                source = compiler.shift_lines(source, entry.offset, self._shifted)
            return filename, source
        if filename in _TIMED_BODY_NAMES and self._stack:
            frame = self._stack[-1]
            header = magic_header_lines(frame.raw)
            if frame.record is not None and header is not None:
                offset = frame.offset + header
                body = "\n".join(frame.raw.splitlines()[header:])
                frame.texts.append((body, offset))
                self._body_code(frame.record, offset, self.shell.transform_cell(body))
                self._unsaved[self._name_of(frame.record)] = frame.record
                base = os.path.join(self.cell_dir, f"{frame.record.digest}-body{offset}.py")
                name = self._claim(base, _Compiled(frame.record, offset))
                _show_in_tracebacks(name, frame.record.source)
                return name, compiler.shift_lines(source, offset, self._shifted)
        return filename, source

    def _claim(self, proposed: str, entry: _Compiled) -> str:
        """Bind a traceable file name to one cell version; identical cells get distinct names."""
        if not _traceable(proposed) or "IPYKERNEL_CELL_NAME" in os.environ:
            proposed = os.path.join(self.cell_dir, f"{entry.record.digest}.py")
        entry.name = self._name_of(entry.record)
        self._unsaved[entry.name] = entry.record
        stem, ext = os.path.splitext(proposed)
        name, n = proposed, 0
        while name in self._files and self._files[name].identity != entry.identity:
            n += 1
            name = f"{stem}-{n}{ext}"
        self._files[os.path.realpath(name)] = entry
        self._files[name] = entry
        if entry.record.key is not None:
            self._latest[(entry.record.notebook, entry.record.key)] = entry.record.digest
        return name

    def _new_record(self, raw: str, code: str, cell_id: str | None, count: int | None) -> CellRecord:
        assert self.store is not None
        located = self._index.locate(raw, cell_id) if self._index else None
        record = CellRecord(
            source=raw,
            code=code,
            notebook=self.store.notebook_ref(self._notebook_path),
            cell_index=located.index if located else None,
            cell_id=(located.cell_id if located else None) or cell_id,
            execution_count=count,
        )
        if located is not None:
            record.key = located.cell_id or f"pos{located.index}"
        # A cell run while measurement is paused ran its top-level code unmeasured.
        record.premeasured = not self.measuring
        return record

    @staticmethod
    def _body_code(record: CellRecord, offset: int, transformed_body: str) -> None:
        """A cell magic ran its body as Python: analyse that body, at its place in the cell."""
        previous = len(record.code) - len(record.code.lstrip("\n"))
        if offset >= previous:
            record.code = "\n" * offset + transformed_body

    # -- running cells ----------------------------------------------------------------------------

    def _pre_run_cell(self, info: Any) -> None:
        raw = getattr(info, "raw_cell", "") or ""
        if self._stack and self._stack[-1].record is not None:
            parent = self._stack[-1]
            for text, offset in reversed(parent.texts):
                found = magic_body(text)
                if found is not None and found[0].rstrip() == raw.rstrip():
                    self._stack.append(_Running(raw, None, parent.record, offset + found[1]))
                    return
        self._stack.append(_Running(raw, getattr(info, "cell_id", None)))

    def _post_run_cell(self, result: Any) -> None:
        if self._stack:
            self._stack.pop()
        if not self._stack:
            self._shifted.clear()
            if self.options.get("cell_contexts"):
                self.switch_context("")
            self.save()

    # -- saving -----------------------------------------------------------------------------------

    def save(self) -> None:
        """Merge everything measured so far into the data file. Errors are reported, never raised."""
        if self.cov is None or self.store is None:
            return
        try:
            self._save()
        except Exception as exc:  # a failing save must not break the user's cell
            self.last_error = f"nbcov could not save coverage data to {self.target}: {exc}"
            self._warn(self.last_error)
        else:
            self.last_error = None

    def _save(self) -> None:
        """Merge what was measured since the last save into the data file, then forget it here.

        Only the difference is kept in memory: each save then costs what the cell ran, not what the
        whole session ran (a long notebook would otherwise pay more after every cell). What a failed
        save could not write stays in memory and goes with the next one.
        """
        assert self.cov is not None and self.store is not None
        measured = self.cov.get_data()
        latest = {
            entry.name
            for entry in self._files.values()
            if entry.record.key is not None
            and self._latest.get((entry.record.notebook, entry.record.key)) == entry.record.digest
        }
        files = measured.measured_files()
        if not files and not self._unsaved and latest == self._saved_latest and os.path.exists(self.target):
            return  # e.g. a magic that ran no measured line
        names: dict[str, str] = {}
        drop: list[str] = []
        for path in files:
            entry = self._files.get(path) or self._adopt(path)
            if entry is not None:
                names[path] = entry.name
                if entry.name in self._unsaved:
                    self.store.save(self._unsaved.pop(entry.name))
            elif os.path.dirname(path) == self.cell_dir:
                drop.append(path)  # e.g. a cell ipykernel's debugger dumped there
        data.write_mapped(measured, self.target, names, drop=drop, latest=latest)
        measured.erase()  # coverage.py's collector goes on adding to this (now empty) in-memory data
        self._saved_latest = latest

    def _name_of(self, record: CellRecord) -> str:
        assert self.store is not None
        return str(self.store.path_for(record))

    def _adopt(self, path: str) -> _Compiled | None:
        """A cell compiled before measurement started, whose code ran later (e.g. a function it defined)."""
        if os.path.dirname(path) != self.cell_dir:
            return None
        filename_map = getattr(self.shell.compile, "_filename_map", {})
        for name, count in list(filename_map.items()):
            if os.path.realpath(name) != path:
                continue
            raw_history = self.shell.history_manager.input_hist_raw
            raw = raw_history[count] if isinstance(count, int) and 0 < count < len(raw_history) else None
            lines = linecache.cache.get(name)
            code = "".join(lines[2]) if lines else None
            if raw is None or code is None:
                return None
            record = self._new_record(raw, code, None, count)
            record.premeasured = True
            self._claim(name, _Compiled(record, 0))
            return self._files[path]
        return None

    def _at_exit(self) -> None:
        if self.cov is not None and self.measuring:
            self.cov.stop()
            self.measuring = False
        self.save()

    def _install_sigterm(self) -> None:
        """Save on SIGTERM (jupyter_client's second shutdown step) before dying as asked."""
        if sys.platform == "win32":
            return
        try:
            self._old_sigterm = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:  # not the main thread: nothing to hook
            self._old_sigterm = None

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self._at_exit()
        old = self._old_sigterm
        if callable(old):
            old(signum, frame)
        else:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    @staticmethod
    def _warn(message: str) -> None:
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        print(f"nbcov: {message}", file=sys.stderr)

    def status(self) -> dict[str, Any]:
        """What `%nbcov status` shows."""
        cells = {id(e.record): e.record for e in self._files.values()}
        return {
            "measuring": self.measuring,
            "core": self.core,
            "data_file": self.target,
            "notebook": str(self._notebook_path) if self._notebook_path else None,
            "cells": len(cells),
            "branch": bool(self.cov.get_option("run:branch")) if self.cov else None,
            "last_error": self.last_error,
        }


def cell_context(record: CellRecord) -> str:
    """The coverage context a runner records a cell under: `notebooks/x.ipynb|cell 3`."""
    where = f"cell {record.cell_index}" if record.cell_index else f"In [{record.execution_count}]"
    return f"{record.notebook or 'ipython'}|{where}"


def _traceable(name: str) -> bool:
    return bool(name) and not name.startswith("<")


def _show_in_tracebacks(name: str, cell_source: str) -> None:
    """Shifted code reports cell lines; let tracebacks show those same lines of the cell."""
    lines = [line + "\n" for line in cell_source.splitlines()]
    linecache.cache[name] = (len(cell_source), None, lines, name)


def _first_start(cov: coverage.Coverage) -> None:
    """`cov.start()` the first time, without coverage.py's snapshot of the call stack.

    coverage.py's Collector keeps `short_stack()` as a debugging note of who created it; that calls
    `inspect.stack()`, which resolves the module of every loaded module's file (~0.06 s in a kernel,
    a fifth of the start-up nbcov adds to each notebook of `nbcov run`). Only coverage.py's debug
    output reads the note, so it is recorded as usual when debugging is on.
    """
    from coverage import collector

    original = getattr(collector, "short_stack", None)
    if original is None or cov.config.debug:
        cov.start()
        return
    collector.short_stack = lambda *args, **kwargs: "(call stack not recorded by nbcov)"  # type: ignore[assignment]
    try:
        cov.start()
    finally:
        collector.short_stack = original  # type: ignore[assignment]


def _parallel_suffix() -> str:
    import random
    import socket

    return f"{socket.gethostname()}.{os.getpid()}.X{random.randint(0, 999999):06d}x"
