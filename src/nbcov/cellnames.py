"""Naming the code a kernel compiles: a traceable file name per cell version, bound to the cell's record."""

from __future__ import annotations

import dataclasses
import linecache
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nbcov import compiler
from nbcov.cells import PAPERMILL_PARAMETERS, CellRecord, CellStore
from nbcov.notebook import Found, NotebookFinder, NotebookIndex
from nbcov.parser import Shift, analysable, nothing_to_measure
from nbcov.runstack import CellStack, magic_header_lines

# Names IPython's %%time gives the body it compiles; coverage.py never traces names starting with "<".
_TIMED_BODY_NAMES = ("<timed exec>", "<timed eval>")
#: Cells held back from saving while the notebook is looked for (`CellNames.finding`).
_HELD_BACK = 3


@dataclasses.dataclass
class CompiledCell:
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


class CellNames:
    """The compile hooks (`compiler.CompileHooks`): which file name each cell is compiled under, and its record.

    ipykernel's names are kept where coverage.py can trace them (its debugger sets breakpoints on
    them); names it cannot trace (`<ipython-input-…>`, `IPYKERNEL_CELL_NAME`) are replaced, and two
    different cells with the same source (ipykernel names cells by a hash of it) get distinct names.
    """

    def __init__(
        self,
        shell: Any,
        stack: CellStack,
        *,
        measuring: Callable[[], bool],
        on_new_cell: Callable[[CellRecord], None],
    ) -> None:
        self.shell = shell
        self.stack = stack
        self._measuring = measuring  # cells compiled while measurement is paused ran unmeasured
        self._on_new_cell = on_new_cell  # a top-level cell got its record (its context starts)
        self.store: CellStore | None = None
        self.cell_dir = ""
        self.notebook_path: Path | None = None
        self._index: NotebookIndex | None = None
        self.files: dict[str, CompiledCell] = {}
        self.latest: dict[tuple[str | None, str], str] = {}  # (notebook, cell key) -> newest digest
        self.unsaved: dict[str, CellRecord] = {}  # records new or changed since they were written
        self._finder: NotebookFinder | None = None
        self._unplaced: Callable[[], bool] = lambda: True
        self._not_cells: set[str] = set()  # file names of code that is not the notebook's (`unplaced`)
        self._unfound = 0  # cells the finder did not recognise
        self._found = False  # the finder found the notebook: code in none of its cells is the runner's
        self._injected: frozenset[str] = frozenset()  # papermill's parameters cells (`Found.injected`)

    def attach(
        self,
        store: CellStore,
        notebook_path: Path | None,
        finder: NotebookFinder | None = None,
        unplaced: Callable[[], bool] = lambda: True,
    ) -> None:
        """Name cells from now on: records go to `store`, cells are placed in the notebook at `notebook_path`,
        or, with none, in the one `finder` finds from the first cell it recognises. Code that is no
        cell of the notebook is measured (as `In [N]`) only while `unplaced()` says so."""
        self.store = store
        self.cell_dir = self._find_cell_dir()
        self.notebook_path = notebook_path
        self._index = NotebookIndex(notebook_path) if notebook_path else None
        self._finder = finder if notebook_path is None else None
        self._unplaced = unplaced

    @property
    def finding(self) -> bool:
        """Whether the notebook is still looked for, the cells so far held back from saving.

        A runner may send its own code before the notebook's first cell (nbval starts its coverage so):
        once the notebook is found, the cells so far are placed in it, or dropped when they are none
        of its cells. Saved, they would already bear names. Only for the first few cells: a kernel
        whose notebook is never found saves as any kernel does (its cells named `In [N]`).
        """
        return self._finder is not None and self._unfound < _HELD_BACK

    # -- the compiler hooks --------------------------------------------------------------------------

    def code_name(self, name: str, raw: str, transformed: str, number: int) -> str:
        """Decide the file name a cell (or a %%capture-style body) is compiled under.

        The code is compiled as IPython made it: line 1 is the first line that is not blank
        (IPython drops the others), so the cell's record pads its code to the lines as typed and
        `Shift` moves what was measured there when saving.
        """
        if not self.stack:
            return name
        frame = self.stack.top
        offset = frame.offset + compiler.dropped_lines(self.shell.input_transformer_manager, raw)
        if frame.record is not None and frame.offset:
            record = frame.record
            self._body_code(record, offset, transformed)  # _claim below marks it unsaved
        else:
            if nothing_to_measure(frame.raw):
                return name  # e.g. `%nbcov report`: not a cell of the user's (its lines are dropped at save)
            record = self._new_record(frame.raw, "\n" * offset + transformed, frame.cell_id, number)
            if record.cell_index is None and record.key is None and (self._found or not self._unplaced()):
                # A runner's own code (nbval's), or a test's (testbook's `tb.ref`): no cell of the notebook.
                self._not_cells.add(os.path.realpath(name))  # nor adopted later
                return name
            frame.record = record
            if len(self.stack) == 1:
                self._on_new_cell(record)
        return self._claim(name, CompiledCell(record, offset, transformed))

    def compiling(self, filename: str, source: Any) -> tuple[str, Any]:
        """Give the body %%time compiles a traceable name bound to its cell (coverage.py never
        measures names like `<timed exec>`); what is compiled stays as it is."""
        if filename in _TIMED_BODY_NAMES and self.stack:
            frame = self.stack.top
            header = magic_header_lines(frame.raw)
            if frame.record is not None and header is not None:
                body = "\n".join(frame.raw.splitlines()[header:])
                frame.texts.append((body, frame.offset + header))
                code = self.shell.transform_cell(body)  # as %%time transforms it
                offset = frame.offset + header + compiler.dropped_lines(self.shell.input_transformer_manager, body)
                self._body_code(frame.record, offset, code)
                self.unsaved[self.name_of(frame.record)] = frame.record
                base = os.path.join(self.cell_dir, f"{frame.record.digest}-body{offset}.py")
                return self._claim(base, CompiledCell(frame.record, offset, code)), source
        return filename, source

    # -- what the rest of nbcov asks ------------------------------------------------------------------

    def compiled(self, filename: str) -> CompiledCell | None:
        """The cell compiled under `filename`, as the kernel or coverage.py (which resolves links) names it."""
        return self.files.get(filename) or self.files.get(os.path.realpath(filename))

    def is_cell_file(self, path: str) -> bool:
        """Whether `path` is a file name this kernel compiles cells under."""
        return self.compiled(path) is not None or os.path.dirname(path) == self.cell_dir

    def cell_source(self, filename: str) -> str | None:
        """The Python text of a cell file (not on disk), for the branch engine's analysis."""
        entry = self.compiled(filename)
        return analysable(entry.code) if entry is not None else None

    def cell_location(self, filename: str, line: int) -> tuple[str, int] | None:
        """(`nb.ipynb · cell 3`, line in the cell as typed) for a line of code the kernel compiled
        under `filename`, else None."""
        entry = self.compiled(filename)
        return (entry.record.label(), line + entry.offset) if entry is not None else None

    def name_of(self, record: CellRecord) -> str:
        """The cell's name in the data file: its record's path."""
        assert self.store is not None
        return str(self.store.path_for(record))

    def latest_names(self) -> set[str]:
        """The data-file names of the newest version of each cell (older ones are deleted at save)."""
        return {
            entry.name
            for entry in self.files.values()
            if entry.record.key is not None
            and self.latest.get((entry.record.notebook, entry.record.key)) == entry.record.digest
        }

    def records(self) -> list[CellRecord]:
        """Every cell version named so far, once each."""
        return list({id(e.record): e.record for e in self.files.values()}.values())

    def adopt(self, path: str) -> CompiledCell | None:
        """A cell compiled before measurement started, whose code ran later (e.g. a function it defined)."""
        if os.path.dirname(path) != self.cell_dir or path in self._not_cells:
            return None
        filename_map = getattr(self.shell.compile, "_filename_map", {})
        for name, count in list(filename_map.items()):
            if os.path.realpath(name) != path:
                continue
            raw_history = self.shell.history_manager.input_hist_raw
            raw = raw_history[count] if isinstance(count, int) and 0 < count < len(raw_history) else None
            lines = linecache.cache.get(name)
            code = "".join(lines[2]) if lines and len(lines) == 4 else None  # not a lazy (1-tuple) entry
            if raw is None or code is None or nothing_to_measure(raw):
                return None  # (nbcov's own `%load_ext nbcov` cell, compiled before measuring, lands here)
            offset = compiler.dropped_lines(self.shell.input_transformer_manager, raw)
            record = self._new_record(raw, "\n" * offset + code, None, count)
            record.premeasured = True
            self._claim(name, CompiledCell(record, offset, code))
            return self.files[path]
        return None

    # -- naming ------------------------------------------------------------------------------------------

    def _claim(self, proposed: str, entry: CompiledCell) -> str:
        """Bind a traceable file name to one cell version; identical cells get distinct names."""
        if not _traceable(proposed) or "IPYKERNEL_CELL_NAME" in os.environ:
            proposed = os.path.join(self.cell_dir, f"{entry.record.digest}.py")
        entry.name = self.name_of(entry.record)
        self.unsaved[entry.name] = entry.record
        stem, ext = os.path.splitext(proposed)
        name, n = proposed, 0
        while name in self.files and self.files[name].identity != entry.identity:
            n += 1
            name = f"{stem}-{n}{ext}"
        self.files[os.path.realpath(name)] = entry
        self.files[name] = entry
        if entry.record.key is not None:
            self.latest[(entry.record.notebook, entry.record.key)] = entry.record.digest
        return name

    def _new_record(self, raw: str, code: str, cell_id: str | None, count: int | None) -> CellRecord:
        assert self.store is not None
        if self._finder is not None:
            found = self._finder.find(raw)
            if found is not None:
                self._settle(found)
            else:
                self._unfound += 1
        record = CellRecord(
            source=raw, code=code, notebook=self.store.notebook_ref(self.notebook_path), cell_id=cell_id,
            execution_count=count,
        )
        if self._index is not None:
            self._place(record)
        # A cell run while measurement is paused ran its top-level code unmeasured.
        record.premeasured = not self._measuring()
        return record

    def _settle(self, found: Found) -> None:
        """The notebook is found: name the cells held back (`finding`) after it, or drop those not in it."""
        self.notebook_path, self._injected, self._finder, self._found = found.path, found.injected, None, True
        self._index = NotebookIndex(found.path)
        held = {
            id(e.record): e.record for e in self.files.values()
            if e.record.notebook is None and e.record.key is None and e.name in self.unsaved
        }
        kept = {key for key, record in held.items() if self._place(record)}  # in the order they ran
        for filename, entry in list(self.files.items()):
            if id(entry.record) not in held:
                continue
            self.unsaved.pop(entry.name, None)
            if id(entry.record) in kept:
                entry.name = self.name_of(entry.record)
                self.unsaved[entry.name] = entry.record
            else:  # a runner's own code: its lines are dropped at save
                del self.files[filename]
                self._not_cells.add(filename)

    def _place(self, record: CellRecord) -> bool:
        """Give a record its place in the notebook; False when it is none of its cells."""
        assert self.store is not None and self._index is not None
        located = self._index.locate(record.source, record.cell_id)
        if located is not None:
            record.cell_index, record.cell_id = located.index, located.cell_id or record.cell_id
            record.key = located.cell_id or f"pos{located.index}"
        elif record.source in self._injected:
            record.key = PAPERMILL_PARAMETERS
        else:
            return False
        record.notebook = self.store.notebook_ref(self.notebook_path)
        self.latest[(record.notebook, record.key)] = record.digest
        return True

    @staticmethod
    def _body_code(record: CellRecord, offset: int, transformed_body: str) -> None:
        """A cell magic ran its body as Python: analyse that body, at its place in the cell."""
        previous = len(record.code) - len(record.code.lstrip("\n"))
        if offset >= previous:
            record.code = "\n" * offset + transformed_body

    def _find_cell_dir(self) -> str:
        """The folder the shell's cell file names live in (ipykernel: $TMPDIR/ipykernel_<pid>)."""
        proposed: str = self.shell.compile.get_code_name("", "", 0)
        if _traceable(proposed) and "IPYKERNEL_CELL_NAME" not in os.environ:
            folder = os.path.dirname(os.path.abspath(proposed))
        else:
            folder = os.path.join(tempfile.gettempdir(), f"nbcov_cells_{os.getpid()}")
        # coverage.py only accepts existing folders in `source`; cells are never written here.
        os.makedirs(folder, mode=0o700, exist_ok=True)
        return os.path.realpath(folder)


def _traceable(name: str) -> bool:
    return bool(name) and not name.startswith("<")
