"""Other coverage.py measurements in a measured kernel (ipytest, pytest-cov, the user's own): each keeps its data and lines."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import glob
import os
import sys
from collections.abc import Callable
from typing import Any, Protocol

import coverage

from nbcov import coverage_internals


_PACKAGE = os.path.dirname(os.path.abspath(__file__))
#: nbcov's files that run in a measured kernel: all but the pytest plugin (`pytest --nbcov`).
_KERNEL_SIDE = [
    os.path.join(_PACKAGE, name) + ("" if name.endswith(".py") else os.sep + "*")
    for name in sorted(os.listdir(_PACKAGE))
    if name != "pytest_plugin.py" and (name.endswith(".py") or os.path.isdir(os.path.join(_PACKAGE, name)))
]


class Host(Protocol):
    """What the guard needs from the Session it protects."""

    cov: coverage.Coverage | None
    target: str
    measuring: bool

    def relocate(self, reason: str) -> None: ...

    def is_cell_file(self, path: str) -> bool: ...

    def running_cell_label(self) -> str: ...


@dataclasses.dataclass
class _Blind:
    """A stretch where another measurement held the only tracer slot (settrace): what nbcov got back."""

    cells: list[str] = dataclasses.field(default_factory=list)
    incomplete: list[str] = dataclasses.field(default_factory=list)  # why some lines could not be recovered


class Guard:
    """Keeps nbcov out of the way of the other `coverage.Coverage` objects in the process, and them out of nbcov's.

    Three things break when a kernel measured by nbcov also runs another measurement:
    - files: the other tool's default data file is nbcov's (`.coverage`), and its `combine` and
      parallel `erase` glob `<data file>.*`, which is where `nbcov run` kernels write; so nbcov moves
      out of a data file another Coverage opens, and hides its files from their globs;
    - the tracer: starting a Coverage pauses the one below it (coverage.py's collector stack). Under
      sys.monitoring two tools measure at once, so nbcov's is resumed at once; where both need
      `sys.settrace` only one can, and nbcov takes back, for its files, what the other one measured;
    - what could not be taken back (the other measured less, or no branches) is said in one line.
    """

    def __init__(self, host: Host) -> None:
        self.host = host
        self._resumed: set[int] = set()  # ids of foreign collectors nbcov's tracer runs beside
        self._blind: dict[int, tuple[Any, bool]] = {}  # collectors nbcov cannot run beside: (it, narrowed)
        self.pending = _Blind()
        self._undo: list[Callable[[], None]] = []

    # -- installing -------------------------------------------------------------------------------

    def install(self) -> None:
        """Wrap the coverage.py entry points another tool goes through (only its objects are affected)."""
        self._wrap(coverage.Coverage, "__init__", self._after_init, after=True)
        opening = coverage_internals.data_file_opening_hook()
        if opening is not None:
            self._wrap(coverage.Coverage, opening, self._before_data, after=False)
        else:  # coverage.py changed its internals: decide when the Coverage is made
            self._wrap(coverage.Coverage, "__init__", lambda cov, _: self._before_data(cov), after=True)
        self._wrap(coverage.Coverage, "start", self._after_start, after=True)
        self._wrap(coverage.Coverage, "stop", self._before_stop, after=False)
        collector_class = coverage_internals.collector_class()
        if collector_class is not None and "mapped_file_dict" in collector_class.__dict__:
            self._wrap(collector_class, "mapped_file_dict", self._measured_by_other, after=True)
        else:
            coverage_internals.notice(
                "this coverage.py's Collector is not as nbcov expects: cells run while another "
                "sys.settrace measurement runs are not measured by nbcov"
            )
        self._wrap(coverage.CoverageData, "erase", None, replace=self._erase)
        self._undo.append(coverage_internals.wrap_combinable_files(lambda path: not self._ours(path)))

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    def _wrap(self, owner: type, name: str, hook: Any, *, after: bool = True, replace: Any = None) -> None:
        original = owner.__dict__[name]
        guard = self

        if replace is not None:
            @functools.wraps(original)
            def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
                return replace(original, obj, *args, **kwargs)
        elif after:
            @functools.wraps(original)
            def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
                result = original(obj, *args, **kwargs)
                if guard._foreign(obj):
                    hook(obj, result)
                return result
        else:
            @functools.wraps(original)
            def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
                if guard._foreign(obj):
                    hook(obj)
                return original(obj, *args, **kwargs)

        setattr(owner, name, wrapper)
        self._undo.append(lambda: setattr(owner, name, original))

    # -- whose is what ----------------------------------------------------------------------------

    def _ours_cov(self) -> coverage.Coverage | None:
        return self.host.cov

    def _our_collector(self) -> Any:
        cov = self._ours_cov()
        return coverage_internals.collector(cov) if cov is not None else None

    def _foreign(self, obj: Any) -> bool:
        """Another tool's Coverage or Collector (nbcov's own reports in the kernel are nbcov's too)."""
        cov = self._ours_cov()
        if cov is None or obj is cov or obj is self._our_collector():
            return False
        if isinstance(obj, coverage.Coverage):
            return not getattr(obj, "_nbcov_owned", False)
        collector_class = coverage_internals.collector_class()
        return collector_class is not None and isinstance(obj, collector_class)

    def _ours(self, path: str) -> bool:
        """nbcov's data file, or a piece of it (the processes a notebook starts write `<data file>.<suffix>`)."""
        target = os.path.abspath(self.host.target)
        path = os.path.abspath(path)
        return path == target or path.startswith(target + ".")

    # -- the hooks --------------------------------------------------------------------------------

    def _after_init(self, cov: coverage.Coverage, _result: Any) -> None:
        """Keep nbcov's own code out of the other measurement (before its start reads the settings)."""
        if _made_by_nbcov(sys._getframe(2)):
            cov._nbcov_owned = True  # type: ignore[attr-defined]  # e.g. `%nbcov report` reading nbcov's data
            return
        # nbcov's hooks run inside the other measurement (its own start/stop, the cells' hooks): they
        # are not the user's code, and without nbcov they would not be there. nbcov's pytest plugin
        # runs in any pytest process nbcov is installed in, so it stays as it would be.
        omit = cov.get_option("run:omit")
        cov.set_option("run:omit", [*(omit if isinstance(omit, list) else []), *_KERNEL_SIDE])

    def _before_data(self, cov: coverage.Coverage) -> None:
        """A Coverage about to erase, read or write nbcov's data file: nbcov moves out first.

        Checked when it first opens its data file, not when it is made: code that makes a Coverage
        only to read the configuration never touches the file.
        """
        data_file = cov.config.data_file
        if not coverage_internals.data_opened(cov) and data_file:
            if os.path.abspath(data_file) == os.path.abspath(self.host.target):
                self.host.relocate(f"another coverage.py measurement in this kernel uses {data_file}")

    def _after_start(self, cov: coverage.Coverage, _result: Any) -> None:
        """The other Coverage paused nbcov's tracer: run beside it when the two can, else note the gap."""
        ours, theirs = self._our_collector(), coverage_internals.collector(cov)
        stack = coverage_internals.collector_stack()
        if ours is None or theirs is None or len(stack) < 2 or stack[-2] is not ours or not self.host.measuring:
            return
        if _can_run_beside(ours, theirs):
            ours.resume()
            self._resumed.add(id(theirs))
        else:
            narrowed = bool(cov.get_option("run:source") or cov.get_option("run:include"))
            self._blind[id(theirs)] = (theirs, narrowed)
            self.pending.cells.append(self.host.running_cell_label())

    def _before_stop(self, cov: coverage.Coverage) -> None:
        """coverage.py resumes the collector below on stop: pause nbcov's first, so it is started once."""
        theirs = coverage_internals.collector(cov)
        if theirs is not None and id(theirs) in self._resumed:
            self._resumed.discard(id(theirs))
            stack = coverage_internals.collector_stack()
            if len(stack) >= 2 and stack[-1] is theirs and stack[-2] is self._our_collector():
                self._our_collector().pause()

    def _measured_by_other(self, collector: Any, mapped: dict[str, Any]) -> None:
        """Lines a blind-making collector flushes: nbcov keeps those of the files it measures."""
        if id(collector) not in self._blind or not mapped:
            return
        cov = self._ours_cov()
        if cov is None:
            return
        ours = cov.get_data()
        wanted = {path: points for path, points in mapped.items() if self._would_measure(cov, path)}
        if not wanted:
            return
        their_arcs = coverage_internals.measures_branches(collector)
        our_arcs = coverage_internals.measures_branches(self._our_collector())
        if our_arcs and not their_arcs:
            # Lines cannot stand in for arcs in one data file: the cells' branches stay unseen.
            self._incomplete("the branches (it measured lines only)")
            return
        if their_arcs and not our_arcs:
            wanted = {path: {n for arc in arcs for n in arc if n > 0} for path, arcs in wanted.items()}
            ours.add_lines(wanted)
        elif their_arcs:
            ours.add_arcs(wanted)
        else:
            ours.add_lines(wanted)

    def _would_measure(self, cov: coverage.Coverage, path: str) -> bool:
        if self.host.is_cell_file(path):
            return True
        return coverage_internals.selected(cov, path)  # False where coverage.py cannot say: cells only

    def _incomplete(self, why: str) -> None:
        if why not in self.pending.incomplete:
            self.pending.incomplete.append(why)

    def _erase(self, original: Any, data: Any, parallel: bool = False) -> None:
        """A parallel erase deletes `<data file>.*`: leave nbcov's own pieces alone."""
        if not parallel or coverage_internals.in_memory(data):
            original(data, parallel)
            return
        original(data, False)
        filename = os.path.abspath(data.data_filename())
        for path in glob.glob(glob.escape(filename) + ".*"):
            if not self._ours(path):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)

    # -- after each cell --------------------------------------------------------------------------

    def end_of_cell(self, cell: str) -> str | None:
        """The one line to show when nbcov could not see everything that ran in `cell`, else None."""
        for key, (theirs, narrowed) in list(self._blind.items()):
            self._take_unflushed(theirs)
            if narrowed:
                self._incomplete("code outside its source/include settings")
            if theirs in coverage_internals.collector_stack():
                self.pending.cells.append(cell)  # still measuring: this cell ran under it too
            else:
                del self._blind[key]
        blind, self.pending = self.pending, _Blind()
        if not blind.cells or not blind.incomplete:
            return None
        cells = ", ".join(dict.fromkeys(blind.cells))
        return (
            f"{cells} ran while another coverage.py measurement held the tracer (sys.settrace: one at a "
            f"time); nbcov took back the lines it measured, but not {' nor '.join(blind.incomplete)}, "
            "which nbcov's report may show as missed."
        )

    def _take_unflushed(self, collector: Any) -> None:
        """Lines the other collector holds but has not handed to its data yet (a `stop()` without `save()`).

        Read, not flushed: its data stays as it is. Packed arcs (the C tracer's) wait for its own flush.
        """
        held = coverage_internals.unflushed(collector)
        if held:
            collector.mapped_file_dict(held)


def _can_run_beside(ours: Any, theirs: Any) -> bool:
    """Two collectors measure at once unless both trace through sys.settrace (one slot per thread)."""
    return not (_systrace(ours) and _systrace(theirs))


def _systrace(collector: Any) -> bool:
    return coverage_internals.systrace(collector)


def _made_by_nbcov(frame: Any) -> bool:
    """Whether the code creating a Coverage is nbcov's own (its reports read nbcov's data file on purpose)."""
    while frame is not None and (
        frame.f_globals.get("__name__", "").startswith("coverage") or frame.f_globals.get("__name__") == __name__
    ):
        frame = frame.f_back  # coverage.py's own frames (a subclass calling up), and this module's wrappers
    name = frame.f_globals.get("__name__", "") if frame is not None else ""
    return name == "nbcov" or name.startswith("nbcov.")
