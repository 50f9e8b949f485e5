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
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import coverage

from nbcov import coexist, compiler, core, coverage_internals, data, engine, processes
from nbcov.cells import CellRecord, CellStore
from nbcov.notebook import NotebookIndex, session_notebook
from nbcov.parser import Shift, analysable, nothing_to_measure

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
    code: str  # the text compiled, with its own line numbers (the branch engine analyses it)
    name: str = ""  # the cell's name in the data file (its record's path)

    @property
    def identity(self) -> tuple[Any, ...]:
        return (self.record.notebook, self.record.key, self.record.digest, self.offset)

    @property
    def shift(self) -> Shift | None:
        """How its measured lines move to the cell's, or None where they are the cell's already."""
        return Shift(self.offset, self.code) if self.offset else None


@dataclasses.dataclass
class _Running:
    """One `run_cell` in progress (cell magics such as %%capture nest them)."""

    raw: str
    cell_id: str | None
    record: CellRecord | None = None
    offset: int = 0  # lines of the cell as typed above `raw` (a magic's body run as a cell: its header)
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
        self._unsaved: dict[str, CellRecord] = {}  # records new or changed since they were written
        self._saved_latest: set[str] = set()  # the newest cell versions as of the last save
        self._index: NotebookIndex | None = None
        self._notebook_path: Path | None = None
        self._uninstall_compiler: Any = None
        self._old_sigterm: Any = None
        self._disturbances: set[str] = set()  # what user code did to measurement, already said
        self._save_lock = threading.Lock()  # one save at a time (a handler on the main thread, a subshell)
        self.last_error: str | None = None
        self.measuring = False
        self._core = "?"
        self._unmark_cells: Any = None
        self._guard: coexist.Guard | None = None
        self._notices: list[str] = []  # shown when the cell ends (pytest, e.g., captures stderr until then)

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
        elif not self.options.get("exact_data_file") and os.path.exists(_moved(self.target)):
            # An earlier kernel here gave the data file to another coverage.py measurement.
            self.target = _moved(self.target)
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
        # Other coverage.py measurements in this kernel (ipytest, pytest-cov, the user's): see coexist.py.
        self._guard = coexist.Guard(self)
        self._guard.install()

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
        if self._guard is not None:
            self._guard.uninstall()
            self._guard = None
        atexit.unregister(self._at_exit)
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
        self.cov = None

    def relocate(self, reason: str) -> None:
        """Move nbcov's data out of a data file another coverage.py measurement in this kernel uses.

        That one erases, reads and writes its data file as if nothing else did: sharing it would
        lose nbcov's cells and put cells it cannot report (`KeyError: 'nbcov.NbcovPlugin'`) in the
        other tool's report. Not `<data file>.<suffix>`: the other tool's `combine` would take it.
        """
        old, new = self.target, _moved(self.target)
        if self.cov is not None and self.options.get("subprocess"):
            self.cov.set_option("run:data_file", new)
        self.target = new
        try:
            _move_data(old, new)
        except Exception as exc:  # nbcov's older data stays where it was; nothing is deleted
            self._notices.append(f"{reason}; nbcov now writes {new} (could not move {old} there: {exc}).")
            return
        shown = os.path.relpath(new) if not os.path.relpath(new).startswith("..") else new
        self._notices.append(f"{reason}; nbcov's data is now in {shown} (read it with `nbcov report {shown}`).")

    def is_cell_file(self, path: str) -> bool:
        """Whether `path` is a file name this kernel compiles cells under."""
        return self._compiled(path) is not None or os.path.dirname(path) == self.cell_dir

    def running_cell_label(self) -> str:
        """The top-level cell running now, as reports name it."""
        record = self._stack[0].record if self._stack else None
        return record.label() if record is not None else "a cell"

    def _compiled(self, filename: str) -> _Compiled | None:
        """The cell compiled under `filename`, as the kernel or coverage.py (which resolves links) names it."""
        return self._files.get(filename) or self._files.get(os.path.realpath(filename))

    def _cell_source(self, filename: str) -> str | None:
        """The Python text of a cell file (not on disk), for the branch engine's analysis."""
        entry = self._compiled(filename)
        return analysable(entry.code) if entry is not None else None

    def cell_location(self, filename: str, line: int) -> tuple[str, int] | None:
        """(`nb.ipynb · cell 3`, line in the cell as typed) for a line of code the kernel compiled
        under `filename`, else None."""
        entry = self._compiled(filename)
        return (entry.record.label(), line + entry.offset) if entry is not None else None

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
        if data.recover(self.target):
            self._warn_recovered()
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
        """Decide the file name a cell (or a %%capture-style body) is compiled under.

        The code is compiled as IPython made it: line 1 is the first line that is not blank
        (IPython drops the others), so the cell's record pads its code to the lines as typed and
        `Shift` moves what was measured there when saving.
        """
        if not self._stack:
            return name
        frame = self._stack[-1]
        offset = frame.offset + compiler.dropped_lines(self.shell.input_transformer_manager, raw)
        if frame.record is not None and frame.offset:
            record = frame.record
            self._body_code(record, offset, transformed)  # _claim below marks it unsaved
        else:
            if nothing_to_measure(frame.raw):
                return name  # e.g. `%nbcov report`: not a cell of the user's (its lines are dropped at save)
            record = self._new_record(frame.raw, "\n" * offset + transformed, frame.cell_id, number)
            frame.record = record
            if self.options.get("cell_contexts") and len(self._stack) == 1:
                self.switch_context(cell_context(record))
        return self._claim(name, _Compiled(record, offset, transformed))

    def compiling(self, filename: str, source: Any) -> tuple[str, Any]:
        """Give the body %%time compiles a traceable name bound to its cell (coverage.py never
        measures names like `<timed exec>`); what is compiled stays as it is."""
        if filename in _TIMED_BODY_NAMES and self._stack:
            frame = self._stack[-1]
            header = magic_header_lines(frame.raw)
            if frame.record is not None and header is not None:
                body = "\n".join(frame.raw.splitlines()[header:])
                frame.texts.append((body, frame.offset + header))
                code = self.shell.transform_cell(body)  # as %%time transforms it
                offset = frame.offset + header + compiler.dropped_lines(self.shell.input_transformer_manager, body)
                self._body_code(frame.record, offset, code)
                self._unsaved[self._name_of(frame.record)] = frame.record
                base = os.path.join(self.cell_dir, f"{frame.record.digest}-body{offset}.py")
                return self._claim(base, _Compiled(frame.record, offset, code)), source
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
                if found is not None and _same_lines(found[0], raw):
                    self._stack.append(_Running(raw, None, parent.record, offset + found[1]))
                    return
        self._stack.append(_Running(raw, getattr(info, "cell_id", None)))

    def _post_run_cell(self, result: Any) -> None:
        ended = self._stack.pop() if self._stack else None
        if not self._stack:
            self._keep_measuring()
            if self.options.get("cell_contexts"):
                self.switch_context("")
            self.save(cell_finished=True)
            label = ended.record.label() if ended is not None and ended.record is not None else "a cell"
            notice = self._guard.end_of_cell(label) if self._guard is not None else None
            for line in [*self._notices, *([notice] if notice else [])]:
                print(f"nbcov: {line}", file=sys.stderr)
            self._notices.clear()

    def _keep_measuring(self) -> None:
        """Measure on if the cell's code turned measurement off behind nbcov's back, and say so once.

        `coverage.Coverage.current().stop()`, or freeing coverage.py's sys.monitoring tool, would
        otherwise end measuring silently or make every later cell fail (`engine.rearm`); `%nbcov stop`
        is the way to stop. Said under the cell that did it, once per kind of disturbance.
        """
        if self.cov is None or not self.measuring:
            return
        try:
            if not getattr(self.cov, "_started", True):
                what = "coverage.py's measurement was stopped (Coverage.stop())"
                self.cov.start()
            else:
                what = engine.rearm(self.cov)
        except Exception as exc:  # the cell's code left it in a state nothing can restart
            self.measuring = False
            self._warn(f"measuring stopped: code in this cell turned coverage.py off, and it cannot be "
                       f"turned back on ({exc}). Cells from here on are not measured.")
            return
        if what is not None and what not in self._disturbances:
            self._disturbances.add(what)
            self._warn(f"{what} by code in this cell; nbcov turned it back on, so later cells are measured "
                       "(use %nbcov stop to stop measuring).")

    # -- saving -----------------------------------------------------------------------------------

    def save(self, *, cell_finished: bool = False) -> None:
        """Merge everything measured so far into the data file. Errors are reported, never raised.

        SIGINT and SIGTERM wait until the save is over: a KeyboardInterrupt inside coverage.py's
        CoverageData left it closed but still in use (every later save of the kernel failed), and the
        SIGTERM handler, saving again, waited forever for the lock the interrupted save held. An
        interrupt that arrives while the save at the end of a cell runs came too late for the cell
        (ipykernel ignores SIGINT once a cell is over): it is said, not raised into nbcov's hook.
        """
        if self.cov is None or self.store is None:
            return
        with _signals_held() as arrived, self._save_lock:
            try:
                recovered = self._save()
            except Exception as exc:  # a failing save must not break the user's cell
                self.last_error = f"nbcov could not save coverage data to {self.target}: {exc}"
                self._warn(self.last_error)
            else:
                self.last_error = None
                if recovered:
                    self._warn_recovered()
        for signum in arrived:
            if signum == signal.SIGINT and cell_finished:
                print("nbcov: the interrupt came after the cell had finished, while nbcov saved its coverage; "
                      "nothing was interrupted.", file=sys.stderr)
            else:
                signal.raise_signal(signum)  # delivered now, to whatever handles it

    def _save(self) -> bool:
        """Merge what was measured since the last save into the data file, then forget it here.

        Only the difference is kept in memory: each save then costs what the cell ran, not what the
        whole session ran (a long notebook would otherwise pay more after every cell). What a failed
        save could not write stays in memory and goes with the next one, records included: a cell's
        record is written before the data that names it and forgotten only once both are written, so
        the data file never names a record that does not exist (a full disk, a kill in between).
        Returns whether the data file had to be recovered from a killed writer first.
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
            return False  # e.g. a magic that ran no measured line
        names: dict[str, str] = {}
        shifts: dict[str, Shift] = {}
        drop: list[str] = []
        written: dict[str, CellRecord] = {}
        for path in files:
            entry = self._files.get(path) or self._adopt(path)
            if entry is not None:
                names[path] = entry.name
                if entry.shift is not None:
                    shifts[path] = entry.shift
                record = self._unsaved.get(entry.name)
                if record is not None and entry.name not in written:
                    self.store.save(record)
                    written[entry.name] = record
            elif os.path.dirname(path) == self.cell_dir:
                drop.append(path)  # e.g. a cell ipykernel's debugger dumped there
        recovered = data.write_mapped(measured, self.target, names, drop=drop, latest=latest, shifts=shifts)
        for name, record in written.items():
            if self._unsaved.get(name) is record:
                del self._unsaved[name]
        # coverage.py's collector goes on adding to this (now empty) in-memory data.
        coverage_internals.erase_memory_data(measured)
        self._saved_latest = latest
        return recovered

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
            if raw is None or code is None or nothing_to_measure(raw):
                return None  # (nbcov's own `%load_ext nbcov` cell, compiled before measuring, lands here)
            offset = compiler.dropped_lines(self.shell.input_transformer_manager, raw)
            record = self._new_record(raw, "\n" * offset + code, None, count)
            record.premeasured = True
            self._claim(name, _Compiled(record, offset, code))
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

    def _warn_recovered(self) -> None:
        self._warn(f"{self.target} was left half written by a process that was killed (deleting an edited "
                   "cell's old version); that deletion was rolled back, the data kept.")

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


def _same_lines(typed: str, given: str) -> bool:
    """Is `given` the text `typed`, as IPython hands a cell magic its body? (Its cleanup turns lines
    of only spaces into empty lines, and a body ends with a newline.)"""
    return [line.rstrip() for line in typed.rstrip().splitlines()] == [line.rstrip() for line in given.rstrip().splitlines()]


@contextlib.contextmanager
def _signals_held() -> Iterator[list[int]]:
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
        for signum in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(signum)
            if handler not in (signal.SIG_IGN, None):  # None: set outside Python, left as it is
                previous[signum] = signal.signal(signum, note)
        yield arrived
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _traceable(name: str) -> bool:
    return bool(name) and not name.startswith("<")


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


def _moved(target: str) -> str:
    """Where nbcov's data goes once another measurement in the kernel uses `target` (see `relocate`)."""
    return f"{target}-nbcov"


def _move_data(old: str, new: str) -> None:
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


def _parallel_suffix() -> str:
    import random
    import socket

    return f"{socket.gethostname()}.{os.getpid()}.X{random.randint(0, 999999):06d}x"
