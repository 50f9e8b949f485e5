"""Line coverage with coverage.py's `sysmon` core, minus the cost of code with no line left to record.

coverage.py's SysMonitor turns on LINE events for each code object it measures and returns DISABLE
from every event, so each line location reports once. On 3.12 and 3.13 the code object stays
instrumented all the same: a tight loop whose lines were all recorded long ago still runs ~20-25%
slower than without coverage (CPU instructions counted with callgrind; the same in a script and in a
kernel). Removing the code object's local events once every line it has was recorded brings that
back to a few percent. Nothing is lost: a line is recorded before the events go, and after a context
switch (`restart`) every code object listens again, so each context records what it ran.
"""

from __future__ import annotations

import dis
import functools
import sys
from types import CodeType
from typing import Any

from nbcov import coverage_internals

_mon = sys.monitoring
_RESUME = dis.opmap["RESUME"]


def lines_to_record(code: CodeType) -> set[int]:
    """The lines of `code` that a LINE event can report: every line of its instructions after the
    prologue (up to the first RESUME: the `def` line, which reports no LINE event of its own).

    A line that can never run (only reached when an exception is handled, say) stays in the set, so
    such code keeps its events: the safe side, never a lost line.
    """
    raw = code.co_code
    prologue_end = 0
    for offset in range(0, len(raw), 2):
        if raw[offset] == _RESUME:
            prologue_end = offset + 2
            break
    return {line for _start, end, line in code.co_lines() if line is not None and end > prologue_end}


@functools.cache
def line_monitor_class() -> type | None:
    """`LineMonitor`: coverage.py's SysMonitor, which also removes a code object's events once all its
    lines ran; None where this coverage.py's SysMonitor is not as it expects (`coverage_internals.sysmon_class`).

    Subclassing stays here rather than in the seam because the class is nbcov's engine, not a use of a
    name: the base class object comes from the seam, which checks the attributes the methods below
    use (`SYSMON_NEEDS`), and without it coverage.py's own SysMonitor measures.
    """
    base = coverage_internals.sysmon_class()
    if base is None:
        return None

    class LineMonitor(base):  # type: ignore[valid-type,misc]  # coverage.py's class, from the seam
        """coverage.py's SysMonitor, which also removes a code object's events once all its lines ran."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # coverage.py builds its tracer with `core.tracer_kwargs`: nothing before 7.15, `tool_id` in
            # 7.10-7.14. Whatever it passes is SysMonitor's business.
            super().__init__(*args, **kwargs)
            self._left: dict[int, set[int]] = {}  # id(code) -> its lines not recorded yet
            self._quiet: list[CodeType] = []  # code objects whose events were removed

        def sysmon_py_start(self, code: CodeType, instruction_offset: int) -> Any:
            filename = code.co_filename
            if filename not in self.should_trace_cache:
                # coverage.py asks with the frame above its callback, which is now this one: ask with
                # the code's own frame (`source = <package>` matches modules by the frame's __name__).
                self.should_trace_cache[filename] = self.should_trace(filename, sys._getframe(1))
            try:
                return super().sysmon_py_start(code, instruction_offset)
            except ValueError:
                # Code in the cell freed coverage.py's tool id (sys.monitoring.free_tool_id): its
                # callbacks still run on 3.12/3.13, and setting local events fails. Not the cell's
                # error: the code is known, and `engine.rearm` instruments it again after the cell.
                if _mon.get_tool(self.myid) == "coverage.py":
                    raise
                return _mon.DISABLE

        def sysmon_line_lines(self, code: CodeType, line_number: int) -> Any:
            result = super().sysmon_line_lines(code, line_number)
            key = id(code)
            left = self._left.get(key)
            if left is None:
                code_info = self.code_infos.get(key)
                if code_info is None or code_info.file_data is None:
                    return result
                left = self._left[key] = lines_to_record(code)
            left.discard(line_number)
            if not left:
                with self.lock:
                    if self.sysmon_on and _mon.get_tool(self.myid) == "coverage.py":  # not freed by a cell
                        _mon.set_local_events(self.myid, code, 0)
                        self._quiet.append(code)
            return result

        def restart(self) -> None:
            """Record every line again from now on (coverage.py just switched to a new dynamic context)."""
            with self.lock:
                if self.sysmon_on:
                    for code in self._quiet:
                        _mon.set_local_events(self.myid, code, _mon.events.LINE)
                self._quiet = []
                self._left = {}
            _mon.restart_events()

    LineMonitor.__qualname__ = "LineMonitor"  # made in a function; named as a module-level class would be
    return LineMonitor


