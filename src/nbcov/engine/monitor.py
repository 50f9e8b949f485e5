"""The sys.monitoring tool that records coverage.py-exact arcs: a coverage.py `Tracer` its Collector drives."""

from __future__ import annotations

import sys
import threading
import weakref
from types import CodeType, FrameType
from typing import Any, Callable

from nbcov.engine.plan import Arc, Plan, make_plan, real_return
from nbcov.engine.relevance import SourceProvider, relevance_for

_mon = sys.monitoring
_ev = _mon.events
DISABLE = _mon.DISABLE

#: Global events: discovering code objects, and the frame exits and resumptions exceptions cause.
_GLOBAL_EVENTS = _ev.PY_START | _ev.PY_UNWIND | _ev.PY_THROW

# Analyses are pure functions of a code object (and its file's text): share them between tracers,
# so that stopping and restarting measurement (per test, per cell) does not analyse code again.
_PLANS: weakref.WeakKeyDictionary[CodeType, tuple[int, Plan]] = weakref.WeakKeyDictionary()

_MISSING: Any = object()
_PRUNE_AFTER = 200  # events kept alive for one code object before asking coverage.py's parser


class _Code:
    """What one tracer knows about one code object while it measures."""

    __slots__ = ("code", "plan", "slow", "data", "seen", "pending", "frames", "line_arcs", "line_offsets",
                 "branches", "returns", "jumps", "instrs", "exit", "rel", "kept")

    def __init__(self, code: CodeType, plan: Plan | None, data: set[Arc] | None, rel: Any = None) -> None:
        self.code = code
        self.rel = rel
        self.kept = 0
        self.plan = plan
        self.data = data
        self.slow = plan is not None and plan.slow
        self.seen: set[Arc] = set()
        self.frames: dict[FrameType, int] = {}
        self.pending: dict[int, dict[int, Arc]] = {}
        if plan is not None:
            self.line_arcs = plan.line_arcs
            self.line_offsets = plan.line_offsets
            self.branches = plan.branches
            self.returns = plan.returns
            self.jumps = plan.jumps
            self.instrs = plan.instrs
            self.exit = plan.exit
            self.reset()

    def reset(self) -> None:
        """Forget what was recorded, so every arc is recorded again (a new dynamic context)."""
        self.seen = set()
        if self.plan is not None:
            self.pending = {src: dict(spec.need) for src, spec in self.plan.branches.items() if spec.need}


class BranchMonitor:
    """Measures arcs with `sys.monitoring` exactly as coverage.py's C tracer would record them.

    coverage.py's Collector creates one per `Coverage.start()`, fills in `data`, `should_trace` and the
    rest of the Tracer protocol, and flushes `data` into its CoverageData (contexts, file mapping and
    all) as for its own cores. Every code object gets a `Plan` (see plan.py): FAST plans record each
    arc from a one-shot event; SLOW plans replay the C tracer's per-frame bookkeeping on every LINE
    event. Either way the arcs equal the C tracer's for every line and branch a report shows.
    """

    # Set from the collector (coverage.py's Tracer protocol).
    data: dict[str, set[Arc]]
    trace_arcs: bool
    should_trace: Callable[[str, FrameType], Any]
    should_trace_cache: dict[str, Any]
    should_start_context: Any = None
    switch_context: Any = None
    lock_data: Callable[[], None]
    unlock_data: Callable[[], None]
    warn: Callable[..., None]

    def __init__(self, source_provider: SourceProvider | None = None, force_slow: bool = False) -> None:
        self.source_provider = source_provider  # text of files not on disk (notebook cells)
        self.force_slow = force_slow  # measure everything the slow way (tests)
        self.myid: int | None = None
        self._codes: dict[int, _Code] = {}
        self._rels: dict[str, Any] = {}  # file name -> Relevance, read once per file
        self._lock = threading.Lock()
        self._activity = False
        self.stats = {"fast": 0, "slow": 0, "unexpected": 0, "kept": 0}
        self.slow_reasons: dict[str, str] = {}
        self.unexpected: list[str] = []

    def __repr__(self) -> str:
        return f"<BranchMonitor {self.myid}: {len(self._codes)} code objects>"

    # -- the Tracer protocol -----------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self.myid is not None:
                return
            for tool in range(_mon.COVERAGE_ID, 6):
                try:
                    _mon.use_tool_id(tool, "nbcov")
                except ValueError:
                    continue
                self.myid = tool
                break
            else:
                raise RuntimeError("No sys.monitoring tool id is available")
            reg = _mon.register_callback
            tid = self.myid
            reg(tid, _ev.PY_START, self._py_start)
            reg(tid, _ev.PY_RESUME, self._py_resume)
            reg(tid, _ev.PY_THROW, self._py_resume)
            reg(tid, _ev.PY_RETURN, self._py_return)
            reg(tid, _ev.PY_YIELD, self._py_yield)
            reg(tid, _ev.PY_UNWIND, self._py_unwind)
            reg(tid, _ev.LINE, self._line)
            reg(tid, _ev.BRANCH, self._branch)
            reg(tid, _ev.JUMP, self._jump)
            reg(tid, _ev.INSTRUCTION, self._instruction)
            # Code met before a stop (a paused collector resumed) measures on from where it was.
            for entry in list(self._codes.values()):
                if entry.plan is not None:
                    _mon.set_local_events(tid, entry.code, entry.plan.events)
            _mon.set_events(tid, _GLOBAL_EVENTS)
            _mon.restart_events()

    def stop(self) -> None:
        with self._lock:
            tid = self.myid
            if tid is None:
                return
            self.myid = None
            _mon.set_events(tid, 0)
            # Leave no instrumentation behind: stopped code runs at full speed, and the tool id
            # can go to someone else.
            for entry in list(self._codes.values()):
                if entry.plan is not None:
                    try:
                        _mon.set_local_events(tid, entry.code, 0)
                    except ValueError:
                        pass
            for event in (_ev.PY_START, _ev.PY_RESUME, _ev.PY_THROW, _ev.PY_RETURN, _ev.PY_YIELD,
                          _ev.PY_UNWIND, _ev.LINE, _ev.BRANCH, _ev.JUMP, _ev.INSTRUCTION):
                _mon.register_callback(tid, event, None)
            _mon.free_tool_id(tid)

    def post_fork(self) -> None:
        self.stop()

    def activity(self) -> bool:
        return self._activity

    def reset_activity(self) -> None:
        self._activity = False

    def get_stats(self) -> dict[str, int] | None:
        return None

    # -- nbcov's additions -------------------------------------------------------------------------

    def restart(self) -> None:
        """Record every arc again from now on (coverage.py just switched to a new dynamic context)."""
        with self._lock:
            for entry in list(self._codes.values()):
                entry.reset()
        _mon.restart_events()

    # -- setting up a code object ------------------------------------------------------------------

    def _setup(self, code: CodeType, frame: FrameType | None) -> _Code:
        filename = code.co_filename
        disp = self.should_trace_cache.get(filename)
        if disp is None:
            disp = self.should_trace(filename, frame)  # type: ignore[arg-type]
            self.should_trace_cache[filename] = disp
        if not disp.trace or code.co_name == "__annotate__":
            entry = _Code(code, None, None)
            self._codes[id(code)] = entry
            return entry
        tracename = disp.source_filename
        self.lock_data()
        try:
            if tracename not in self.data:
                self.data[tracename] = set()
            data = self.data[tracename]
        finally:
            self.unlock_data()
        rel = self._rels.get(filename)
        if rel is None:
            rel = self._rels[filename] = relevance_for(filename, self.source_provider)
        plan = self._plan(code, rel)
        entry = _Code(code, plan, data, rel)
        self._codes[id(code)] = entry
        self.stats["slow" if plan.slow else "fast"] += 1
        if plan.slow:
            self.slow_reasons[f"{filename}:{code.co_firstlineno}:{code.co_name}"] = plan.reason
        with self._lock:
            # Not if code in a cell freed the tool id (its callbacks still run on 3.12/3.13):
            # `engine.rearm` instruments the code it knows again after the cell.
            if self.myid is not None and _mon.get_tool(self.myid) == "nbcov":
                _mon.set_local_events(self.myid, code, plan.events)
        return entry

    def _plan(self, code: CodeType, rel: Any) -> Plan:
        key = id(rel) ^ (1 if self.force_slow else 0)
        cached = _PLANS.get(code)
        if cached is not None and cached[0] == key:
            return cached[1]
        plan = make_plan(code, rel, force_slow=self.force_slow)
        _PLANS[code] = (key, plan)
        return plan

    # -- callbacks ---------------------------------------------------------------------------------

    def _py_start(self, code: CodeType, offset: int) -> Any:
        entry = self._codes.get(id(code))
        if entry is None or entry.code is not code:
            entry = self._setup(code, sys._getframe(1))
        if entry.slow:
            self._activity = True
            entry.frames[sys._getframe(1)] = entry.exit
            return None
        return DISABLE

    def _py_resume(self, code: CodeType, offset: int, *exc: Any) -> Any:
        entry = self._codes.get(id(code))
        if entry is None or not entry.slow:
            return DISABLE if not exc else None  # PY_THROW is global: it cannot be disabled
        frame = sys._getframe(1)
        entry.frames[frame] = frame.f_lineno
        return None

    def _py_yield(self, code: CodeType, offset: int, value: Any) -> Any:
        entry = self._codes.get(id(code))
        if entry is None or not entry.slow:
            return DISABLE
        entry.frames.pop(sys._getframe(1), None)
        return None

    def _py_return(self, code: CodeType, offset: int, value: Any) -> Any:
        entry = self._codes.get(id(code))
        if entry is None or entry.plan is None:
            return DISABLE
        self._activity = True
        if entry.slow:
            last = entry.frames.pop(sys._getframe(1), None)
            if last is not None:
                entry.data.add((last, entry.exit))  # type: ignore[union-attr]
            return None
        arcs = entry.returns.get(offset)
        if arcs:
            self._record(entry, arcs)
        return DISABLE

    def _py_unwind(self, code: CodeType, offset: int, exc: BaseException) -> Any:
        entry = self._codes.get(id(code))
        if entry is None or entry.plan is None:
            return None
        self._activity = True
        frame = sys._getframe(1)
        if entry.slow:
            last = entry.frames.pop(frame, None)
            if last is not None and real_return(code, frame.f_lasti):
                entry.data.add((last, entry.exit))  # type: ignore[union-attr]
            return None
        if real_return(code, frame.f_lasti):
            last = entry.plan.unwind_last(offset, exc, frame)
            if last is not None:
                arc = (last, entry.exit)
                entry.data.add(arc)  # type: ignore[union-attr]
                entry.seen.add(arc)
        return None

    def _line(self, code: CodeType, line: int) -> Any:
        entry = self._codes.get(id(code))
        if entry is None or entry.plan is None:
            return DISABLE
        self._activity = True
        if entry.slow:
            frame = sys._getframe(1)
            frames = entry.frames
            last = frames.get(frame)
            if last is None:
                return None  # a frame that started before measurement: the C tracer skips it too
            entry.data.add((last, line))  # type: ignore[union-attr]
            frames[frame] = line
            return None
        arcs = entry.line_arcs.get(line)
        if arcs is None:
            by_offset = entry.line_offsets.get(line)
            offset = sys._getframe(1).f_lasti
            arcs = by_offset.get(offset) if by_offset is not None else None
            if arcs is None:
                self._surprise(code, f"LINE {line} at {offset}")
                arcs = ((line, line),)
        self._record(entry, arcs)
        return DISABLE

    def _branch(self, code: CodeType, src: int, dest: int) -> Any:
        entry = self._codes.get(id(code))
        if entry is None or entry.plan is None or entry.slow:
            return DISABLE
        spec = entry.branches.get(src)
        if spec is None:
            self._surprise(code, f"BRANCH {src}->{dest}")
            return DISABLE
        arc = spec.dirs.get(dest, _MISSING)
        if arc is _MISSING:
            self._surprise(code, f"BRANCH {src}->{dest} (unknown destination)")
            return None
        if arc is not None:
            entry.data.add(arc)  # type: ignore[union-attr]
            entry.seen.add(arc)
            self._activity = True
        pending = entry.pending.get(src)
        if pending:
            pending.pop(dest, None)
            seen = entry.seen
            for d in [d for d, a in pending.items() if a in seen]:
                del pending[d]
            if pending:
                self.stats["kept"] += 1  # the expensive case: tests and benchmarks watch it
                entry.kept += 1
                if entry.kept == _PRUNE_AFTER:
                    self._prune(entry, pending)
                if pending:
                    return None
        return DISABLE

    def _prune(self, entry: _Code, pending: dict[int, Arc]) -> None:
        """A branch keeps firing for a direction that never comes: if coverage.py's own parser
        says that direction's arc cannot show in a report (the cheap sketch could not tell), stop
        waiting for it."""
        if entry.rel is None:
            return
        module = entry.code.co_name == "<module>"
        for d, arc in list(pending.items()):
            if not entry.rel.matters(arc, module, True):
                del pending[d]

    def _jump(self, code: CodeType, src: int, dest: int) -> Any:
        entry = self._codes.get(id(code))
        if entry is not None and entry.plan is not None and not entry.slow:
            arcs = entry.jumps.get(src)
            if arcs:
                self._record(entry, arcs)
        return DISABLE

    def _instruction(self, code: CodeType, offset: int) -> Any:
        entry = self._codes.get(id(code))
        if entry is not None and entry.plan is not None and not entry.slow:
            arcs = entry.instrs.get(offset)
            if arcs:
                self._record(entry, arcs)
        return DISABLE

    def _record(self, entry: _Code, arcs: tuple[Arc, ...]) -> None:
        self._activity = True
        add = entry.data.add  # type: ignore[union-attr]
        seen = entry.seen
        for arc in arcs:
            add(arc)
            seen.add(arc)

    def _surprise(self, code: CodeType, what: str) -> None:
        """An event the analysis did not predict: kept for tests (it must never happen)."""
        self.stats["unexpected"] += 1
        if len(self.unexpected) < 50:
            self.unexpected.append(f"{code.co_filename}:{code.co_firstlineno}:{code.co_name}: {what}")

