"""Measuring a live IPython shell: one Session wires the kernel-side parts and answers the magics."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import coverage

from nbcov import coexist, compiler, core, engine, measurement, processes, saving
from nbcov.cellnames import CellNames
from nbcov.cells import CellRecord, CellStore
from nbcov.contract import KernelContract
from nbcov.exiting import ExitHooks
from nbcov.notebook import NotebookFinder, session_notebook
from nbcov.runstack import CellStack
from nbcov.saving import Saver


@dataclasses.dataclass(frozen=True)
class Status:
    """What `%nbcov status` shows, one line per field."""

    measuring: bool
    core: str
    data_file: str
    notebook: str | None
    cells: int
    branch: bool | None
    last_error: str | None


class Session:
    """Measures the cells of one IPython shell and keeps the data file up to date after every cell.

    coverage.py measures the kernel's cell files like any other file (its fastest path, under every
    core, with no plugin in the loop); after each top-level cell the measured data is merged into the
    data file with each cell renamed to its stable record name, so a kernel that dies loses at most
    the cell that was running. The parts, each in its module:

    - `measurement`: coverage.py configured for the kernel (data file, cells measured, core), started;
    - `cellnames.CellNames`: the compile hooks, which name each cell's code and make its record;
    - `runstack.CellStack`: the `run_cell` calls in progress (cell magics nest them);
    - `saving.Saver`: the save after every cell (signals held, records before the data naming them);
    - `exiting.ExitHooks`: the save when the process leaves (atexit, SIGTERM);
    - `contract.KernelContract`: what a runner (`nbcov run`, `pytest --nbcov`) asks of this kernel.

    This class starts and stops them, runs the cell hooks, and answers `%nbcov`, `%%covtest`,
    `coexist.Guard` (its `Host`) and `processes`.
    """

    def __init__(
        self, shell: Any, *, branch: bool | None = None, source: list[str] | None = None, subprocess: bool | None = None
    ) -> None:
        """`branch`, `source` and `subprocess` override the runner's settings (`KernelContract`) when not None."""
        self.shell = shell
        self.contract = KernelContract.from_env(
            os.environ, complain=lambda message: print(f"nbcov: {message}", file=sys.stderr)
        )
        self._branch = branch if branch is not None else self.contract.branch
        self._source = source if source is not None else (list(self.contract.source) or None)
        self._subprocess = subprocess
        self.cov: coverage.Coverage | None = None
        self.target = ""
        self.store: CellStore | None = None
        self.measuring = False
        self._stack = CellStack()
        self.names = CellNames(shell, self._stack, measuring=lambda: self.measuring, on_new_cell=self._new_cell)
        self._saver = Saver(self.names)
        self._exit = ExitHooks(self._at_exit)
        self._uninstall_compiler: Callable[[], None] | None = None
        self._unmark_cells: Callable[[], None] | None = None
        self._guard: coexist.Guard | None = None
        self._disturbances: set[str] = set()  # what user code did to measurement, already said
        self._notices: list[str] = []  # shown when the cell ends (pytest, e.g., captures stderr until then)
        self._test = ""  # the pytest test that sent the running request (`KernelContract.running_test`)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start coverage.py in this process with the user's configuration, and hook the shell."""
        if self.cov is not None:
            return
        cov = measurement.new_coverage(self._branch, self._source)
        self.target = measurement.data_target(cov, self.contract.data_file, piece=self.contract.piece)
        self.store = CellStore(os.path.dirname(self.target))
        children = self._measures_children(processes.take_over_patches(cov))
        # The code a test sends a kernel (testbook's `tb.ref(...)`) is the test's, not the notebook's.
        self.names.attach(self.store, session_notebook(self.shell.user_ns), self._finder(),
                          unplaced=lambda: not self._test)
        measurement.configure(cov, self.names.cell_dir)
        saving.prepare_target(self.target, bool(cov.get_option("run:branch")))

        self._uninstall_compiler = compiler.install(self.shell, self.names)
        self.shell.events.register("pre_run_cell", self._pre_run_cell)
        self.shell.events.register("post_run_cell", self._post_run_cell)
        self.cov = cov
        self._unmark_cells = measurement.choose_tracer(cov, self.shell, self.names.cell_source)
        if children:
            self._measure_subprocesses(cov)
        measurement.first_start(cov)
        processes.follow_forks(self)
        self.measuring = True
        self._exit.install()  # after cov.start(), see there
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

    def stop(self) -> None:
        """Stop measuring and save; the shell is left as it was before `start`."""
        if self.cov is None:
            return
        self.save()
        if self.measuring:
            self.cov.stop()
            self.measuring = False
        if self._saver.children is not None:  # no pieces that nothing would fold
            processes.stop_measuring_children()
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
        self._exit.uninstall()
        self.cov = None

    def save(self, *, cell_finished: bool = False) -> None:
        """Merge everything measured so far into the data file (`saving.Saver.save`); never raises."""
        if self.cov is None or self.store is None:
            return
        if cell_finished and self.names.finding:
            return  # the cells so far are named once the notebook is found (or at exit)
        self._saver.save(self.cov, self.target, cell_finished=cell_finished)

    def _at_exit(self) -> None:
        """The process leaves (atexit, SIGTERM): measure no more, save."""
        if self.cov is not None and self.measuring:
            self.measuring = False  # first: a SIGTERM during the stop below must not stop it again
            self.cov.stop()
        self.save()

    def forked(self) -> None:
        """In a forked child (`processes`): add to the data file, never decide which cell versions are newest.

        The parent may have run newer versions of cells since the fork; a child naming its own
        newest versions would delete those from the data file.
        """
        self.names.latest.clear()
        self._saver.forked()

    def _finder(self) -> NotebookFinder | None:
        """Under `nbcov exec` (kernels nobody names their notebook to), look for it: see NotebookFinder."""
        if not self.contract.piece:
            return None
        return NotebookFinder.around(Path.cwd(), self.contract.notebooks)

    def _measures_children(self, configured: bool) -> bool:
        """Whether to measure the Pythons the notebook starts.

        Yes by default in a kernel a person started (JupyterLab, `%load_ext nbcov`): lines run in
        workers count as `nbcov run` counts them. A runner's kernel does as the runner says (or the
        configuration's `patch = subprocess`); `subprocess=False/True` (autoconfig) decides over both.
        """
        if self._subprocess is not None:
            return self._subprocess
        if self.contract.data_file is not None:
            return configured or self.contract.subprocess
        return True

    def measure_subprocesses(self, on: bool) -> None:
        """Measure the Pythons started from now on, or not (`nbcov.autoconfig(subprocess=...)`)."""
        self._subprocess = on
        if self.cov is None:
            return
        if on:
            self._measure_subprocesses(self.cov)
        else:
            processes.stop_measuring_children()

    def _measure_subprocesses(self, cov: coverage.Coverage) -> None:
        """Measure the Pythons the notebook starts, into parallel pieces named after this kernel.

        A runner's kernel writes a piece of its own, which names them: `nbcov run` combines what is
        left of them at its end. A live kernel's data file may be shared with other kernels, so its
        children's pieces get a tag of its own (`<data file>.nbk-<random>.<host>.pid<N>.X…x`). Either
        kernel folds its own finished pieces into its data file at each save (`saving.fold_pieces`).
        """
        children = self._saver.children
        if children is None:
            children = self.target if self.contract.data_file is not None else f"{self.target}.nbk-{secrets.token_hex(4)}"
        problem = processes.measure_children(cov, children)
        if problem:
            saving.warn(problem)
            return
        self._saver.children = children

    # -- the cell hooks ------------------------------------------------------------------------------

    def _pre_run_cell(self, info: Any) -> None:
        if not self._stack and self.contract.test_file is not None:
            # A pytest test sends this (testbook): all it runs is recorded under the test's id.
            self._test = self.contract.running_test() or ""
            if self._test:
                self.switch_context(self._test)
        self._stack.push(info)

    def _post_run_cell(self, result: Any) -> None:
        ended = self._stack.pop()
        if not self._stack:
            self._keep_measuring()
            if self.contract.cell_contexts or self.contract.test_file is not None:
                self.switch_context("")
            self.save(cell_finished=True)
            label = ended.record.label() if ended is not None and ended.record is not None else "a cell"
            notice = self._guard.end_of_cell(label) if self._guard is not None else None
            for line in [*self._notices, *([notice] if notice else [])]:
                print(f"nbcov: {line}", file=sys.stderr)
            self._notices.clear()

    def _new_cell(self, record: CellRecord) -> None:
        """A top-level cell got its record: with the runner's cell contexts, what it runs is recorded
        under it (unless a pytest test sent it: then under the test's id, see `_pre_run_cell`)."""
        if self.contract.cell_contexts and not self._test:
            self.switch_context(cell_context(record))

    def _keep_measuring(self) -> None:
        """Measure on if the cell's code turned measurement off behind nbcov's back, and say so once.

        `%nbcov stop` is the way to stop. Said under the cell that did it, once per kind of disturbance.
        """
        if self.cov is None or not self.measuring:
            return
        try:
            what = measurement.restore(self.cov)
        except Exception as exc:  # the cell's code left it in a state nothing can restart
            self.measuring = False
            saving.warn(f"measuring stopped: code in this cell turned coverage.py off, and it cannot be "
                        f"turned back on ({exc}). Cells from here on are not measured.")
            return
        if what is not None and what not in self._disturbances:
            self._disturbances.add(what)
            saving.warn(f"{what} by code in this cell; nbcov turned it back on, so later cells are measured "
                        "(use %nbcov stop to stop measuring).")

    # -- measuring, for %%covtest --------------------------------------------------------------------

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
        used = core.in_use(self.cov)
        if used is not None and used.rearmed_per_context:
            engine.restart(self.cov)
        return previous

    def cell_location(self, filename: str, line: int) -> tuple[str, int] | None:
        """(`nb.ipynb · cell 3`, line in the cell as typed) for a line of code the kernel compiled
        under `filename`, else None (pytest's failure reports name cells with it)."""
        return self.names.cell_location(filename, line)

    def running_cell_name(self) -> str | None:
        """The data-file name of the top-level cell running now (e.g. a `%%covtest` cell)."""
        record = self._stack.outermost_record
        if self.store is None or record is None:
            return None
        return self.names.name_of(record)

    @property
    def notebook_ref(self) -> str | None:
        """The notebook's path as records name it (relative to the data file's folder)."""
        if self.store is None or self.names.notebook_path is None:
            return None
        return self.store.notebook_ref(self.names.notebook_path)

    @property
    def core(self) -> str:
        """What measures, in the words users see ("sys.monitoring", "the C tracer", "nbcov's branch engine")."""
        return core.describe(self.cov)

    # -- answering %nbcov -----------------------------------------------------------------------------

    @property
    def last_error(self) -> str | None:
        """Why the last save failed, or None."""
        return self._saver.last_error

    def status(self) -> Status:
        """What `%nbcov status` shows."""
        notebook = self.names.notebook_path
        return Status(
            measuring=self.measuring,
            core=self.core,
            data_file=self.target,
            notebook=str(notebook) if notebook else None,
            cells=len(self.names.records()),
            branch=bool(self.cov.get_option("run:branch")) if self.cov else None,
            last_error=self.last_error,
        )

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

    # -- answering coexist.Guard (its Host) -------------------------------------------------------------

    def relocate(self, reason: str) -> None:
        """Move nbcov's data out of a data file another coverage.py measurement in this kernel uses.

        That one erases, reads and writes its data file as if nothing else did: sharing it would
        lose nbcov's cells and put cells it cannot report (`KeyError: 'nbcov.NbcovPlugin'`) in the
        other tool's report. Not `<data file>.<suffix>`: the other tool's `combine` would take it.
        """
        old, new = self.target, saving.moved(self.target)
        if self.cov is not None and self.contract.subprocess:
            self.cov.set_option("run:data_file", new)
        self.target = new
        try:
            saving.move_data(old, new)
        except Exception as exc:  # nbcov's older data stays where it was; nothing is deleted
            self._notices.append(f"{reason}; nbcov now writes {new} (could not move {old} there: {exc}).")
            return
        shown = os.path.relpath(new) if not os.path.relpath(new).startswith("..") else new
        self._notices.append(f"{reason}; nbcov's data is now in {shown} (read it with `nbcov report {shown}`).")

    def is_cell_file(self, path: str) -> bool:
        """Whether `path` is a file name this kernel compiles cells under."""
        return self.names.is_cell_file(path)

    def running_cell_label(self) -> str:
        """The top-level cell running now, as reports name it."""
        record = self._stack.outermost_record
        return record.label() if record is not None else "a cell"


def cell_context(record: CellRecord) -> str:
    """The coverage context a runner records a cell under: `notebooks/x.ipynb|cell 3`."""
    where = f"cell {record.cell_index}" if record.cell_index else f"In [{record.execution_count}]"
    return f"{record.notebook or 'ipython'}|{where}"
