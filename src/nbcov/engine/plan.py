"""What to record on each one-shot event of a code object so its arcs equal the C tracer's (or: measure it the slow way)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from nbcov.engine import bytecode as bcode
from nbcov.engine.bytecode import Bytecode, Instr
from nbcov.engine.relevance import Relevance

WILD = "?"  # an unknown last line: can only stand for "any line"

Arc = tuple[int, int]


@dataclass
class BranchSpec:
    """A conditional jump: the arc each direction records, and the directions only its events can show."""

    dirs: dict[int, Arc | None]  # destination offset -> arc (None: that direction records nothing itself)
    need: dict[int, Arc]  # destinations whose arc nothing else observes: keep the event until they fire


@dataclass
class Plan:
    """How one code object is measured.

    FAST: local LINE/BRANCH/PY_RETURN (and JUMP/INSTRUCTION where they serve as observers) events,
    each disabled as soon as what it can still tell is known. SLOW: every LINE event, with the C
    tracer's per-frame "last line" bookkeeping, for code whose arcs the FAST tables cannot pin down.
    """

    code: CodeType
    slow: bool
    reason: str = ""
    exit: int = 0  # -co_firstlineno: the "line" of an entry or exit
    line_arcs: dict[int, tuple[Arc, ...]] = field(default_factory=dict)  # line -> arcs, same at every start
    line_offsets: dict[int, dict[int, tuple[Arc, ...]]] = field(default_factory=dict)  # line -> offset -> arcs
    branches: dict[int, BranchSpec] = field(default_factory=dict)
    returns: dict[int, tuple[Arc, ...]] = field(default_factory=dict)
    jumps: dict[int, tuple[Arc, ...]] = field(default_factory=dict)
    instrs: dict[int, tuple[Arc, ...]] = field(default_factory=dict)
    unwinds: dict[int, int] = field(default_factory=dict)  # raising offset -> last line there
    # Raising offsets in handlers that run no line of their own (the StopIteration guard of every
    # generator): the last line is the one where the exception was raised, which the frame's own
    # traceback entry names (raise offset -> last line).
    dynamic_unwinds: dict[int, dict[int, int]] = field(default_factory=dict)
    events: int = 0

    def unwind_last(self, offset: int, exc: BaseException, frame: object) -> int | None:
        """The last line when an exception leaves the frame at `offset` (None: record nothing)."""
        last = self.unwinds.get(offset)
        if last is not None:
            return last
        by_raise = self.dynamic_unwinds.get(offset)
        if by_raise is not None:
            tb = exc.__traceback__
            if tb is not None and tb.tb_frame is frame:
                return by_raise.get(tb.tb_lasti)
        return None


def real_return(code: CodeType, offset: int) -> bool:
    """Whether a frame leaving with `f_lasti == offset` ends (not a generator suspended at a yield).

    The C tracer checks the instruction after the frame's last one for RESUME (3.12), or the
    instruction itself (3.13), and records an exit arc only for a real return. `f_lasti`, not the
    event's offset: a RERAISE that restores the raising instruction (as a generator's guard does
    after `throw()` at a yield) leaves that instruction in `f_lasti`.
    """
    raw = code.co_code
    if offset >= len(raw) - 2:
        return True
    if sys.version_info >= (3, 13):
        return raw[offset] != bcode.RESUME
    return raw[offset + 2] != bcode.RESUME


@dataclass
class _Trail:
    kind: str  # "line", "return", "branch", "raise", "yield", "loop"
    end: int  # offset where it ended
    path: list[int]  # offsets executed on the way (dest included, end excluded)


class _Analysis:
    def __init__(self, code: CodeType, rel: Relevance, force_slow: bool) -> None:
        self.code = code
        self.rel = rel
        self.module = code.co_name == "<module>"
        self.exit = -code.co_firstlineno
        self.force_slow = force_slow

    # -- last-line dataflow ------------------------------------------------------------------------

    def last_lines(self) -> None:
        """For every instruction, the lines the C tracer's `last_line` can hold after it ran.

        An instruction with a line sets it; only instructions without one (rare: compiler-made
        jumps, exception-table plumbing) inherit it from their predecessors, so only those are
        iterated to a fixed point.
        """
        bc = self.bc
        instrs = bc.instrs
        start = bc.first_traceable
        entry = frozenset([self.exit])
        sources = bc.handler_sources
        handler_of: dict[int, list[int]] = {}
        for h, srcs in sources.items():
            for src in srcs:
                handler_of.setdefault(src, []).append(h)
        # Reachability from the frame's start (normal and exception edges).
        reached = {start}
        stack = [start]
        while stack:
            o = stack.pop()
            for nxt in (*instrs[o].succ, *handler_of.get(o, ())):
                if nxt not in reached:
                    reached.add(nxt)
                    stack.append(nxt)
        singles: dict[int, frozenset[Any]] = {}
        lout: dict[int, frozenset[Any]] = {}
        unlined: list[int] = []
        for o in bc.order:
            if o not in reached:
                continue
            ins = instrs[o]
            if o == start and ins.op == bcode.RESUME:
                lout[o] = entry
            elif ins.line is not None:
                lout[o] = singles.get(ins.line) or singles.setdefault(ins.line, frozenset([ins.line]))
            else:
                lout[o] = frozenset()
                unlined.append(o)
        self.reached = reached
        self.lout = lout
        self.handler_of = handler_of
        changed = bool(unlined)
        while changed:
            changed = False
            for o in unlined:
                new = self.lin(o)
                if new != lout[o]:
                    lout[o] = new
                    changed = True
        for o in bc.order:
            lout.setdefault(o, frozenset())

    def lin(self, o: int) -> frozenset[Any]:
        """The last line as instruction `o` starts: whatever its predecessors left."""
        lout = self.lout
        preds = [p for p in self.bc.preds.get(o, ()) if p in self.reached]
        preds += [p for p in self.bc.handler_sources.get(o, ()) if p in self.reached]
        if not preds:
            return frozenset()
        if len(preds) == 1:
            return lout[preds[0]]
        out: frozenset[Any] = frozenset()
        for p in preds:
            out = out | lout[p]
        return out

    # -- LINE events -------------------------------------------------------------------------------

    def fire_values(self) -> None:
        """For each line start, the last lines with which a LINE event can fire there."""
        bc = self.bc
        fire: dict[int, set[Any]] = {}
        for o in bc.order:
            ins = bc.instrs[o]
            if not ins.line_start or o not in self.reached:
                continue
            vals: set[Any] = set()
            for p in bc.preds.get(o, ()):
                vals |= self._fires_from(p, ins)
            for h_src in self._handler_preds(o):
                vals |= self._fires_from(h_src, ins)
            fire[o] = vals
        self.fire = fire

    def _handler_preds(self, o: int) -> list[int]:
        return self.bc.handler_sources.get(o, [])

    def _fires_from(self, p: int, ins: Instr) -> set[Any]:
        if p not in self.reached:
            return set()
        prev = self.bc.instrs[p]
        if prev.op == bcode.RESUME or prev.line is None:
            return set(self.lout[p])
        if prev.line != ins.line:
            return {prev.line}
        return set()

    # -- trails ------------------------------------------------------------------------------------

    def trail(self, start: int, frm: object) -> _Trail:
        """Follow execution from `start` while the last line stays `frm`: where does it end?"""
        bc = self.bc
        path: list[int] = []
        seen: set[int] = set()
        o = start
        while True:
            if o in seen or o not in bc.instrs:
                return _Trail("loop", o, path)
            seen.add(o)
            ins = bc.instrs[o]
            if ins.line is not None and ins.line != frm and ins.op not in bcode.NOT_LINE_STARTS:
                return _Trail("line", o, path)
            if ins.op in bcode.RETURNS:
                return _Trail("return", o, path)
            if ins.op == bcode.YIELD_VALUE:
                return _Trail("yield", o, path)
            if ins.op in bcode.RAISES:
                return _Trail("raise", o, path)
            if ins.op in bcode.BRANCHES:
                return _Trail("branch", o, path)
            path.append(o)
            if ins.op == bcode.SEND:
                # `await`/`yield from`: it suspends (and resumes, on this line) until the awaited
                # object is done, then goes on at its target.
                o = ins.target  # type: ignore[assignment]
                continue
            if len(ins.succ) != 1:
                return _Trail("raise", o, path)  # no normal successor
            o = ins.succ[0]

    def trail_arc(self, t: _Trail, frm: int) -> Arc | None:
        if t.kind == "line":
            return (frm, self.bc.instrs[t.end].line)  # type: ignore[return-value]
        if t.kind == "return":
            return (frm, self.exit)
        return None

    def observer(self, t: _Trail, frm: int) -> tuple[str, int] | None:
        """A one-shot event that fires exactly when this trail completes from last line `frm`."""
        bc = self.bc
        end = bc.instrs[t.end]
        single = frozenset([frm])
        if t.kind == "line" and end.line_start and self.fire.get(t.end) == {frm}:
            return ("line", t.end)
        if t.kind == "return" and self.lout[t.end] == single:
            return ("return", t.end)
        if t.kind not in ("line", "return"):
            return None
        # Walk back from the end: the suffix after an observer must not be able to raise.
        for i in range(len(t.path) - 1, -1, -1):
            o = t.path[i]
            ins = bc.instrs[o]
            if ins.op in bcode.JUMP_EVENTS and self.lout[o] == single:
                return ("jump", o)
            if ins.op == bcode.NOP and self.lin(o) == single:
                return ("instr", o)
            if ins.op not in bcode.NON_RAISING:
                break
        return None

    # -- building the plan -------------------------------------------------------------------------

    def build(self) -> Plan:
        plan = Plan(self.code, slow=False, exit=self.exit)
        if self.force_slow:
            return self._slow(plan, "forced")
        lines = {line for _, _, line in self.code.co_lines() if line is not None}
        if not self.module and not any(self.rel.leaving_matters(line, False) for line in lines):
            # No arc leaving these lines can show in a report: the lines are all there is to know.
            plan.line_arcs = {line: ((line, line),) for line in lines}
            plan.events = sys.monitoring.events.LINE
            return plan
        self.bc: Bytecode = bcode.decode(self.code)
        bc = self.bc
        if not any(bc.instrs[o].op == bcode.RESUME for o in bc.order):
            return self._slow(plan, "no RESUME")
        self.last_lines()
        self.fire_values()
        matters = self.rel.matters
        module = self.module
        problems: list[str] = []

        def check(arc: Arc | None, observed: bool, where: str) -> None:
            if arc is not None and not observed and arc[0] != arc[1] and matters(arc, module, True):
                problems.append(f"{where} {arc}")

        # LINE events.
        for o, vals in self.fire.items():
            ins = bc.instrs[o]
            line = ins.line
            assert line is not None
            if len(vals) == 1 and WILD not in vals and line not in vals:
                (v,) = vals
                arcs: tuple[Arc, ...] = ((v, line),)
            else:
                arcs = ((line, line),)
                for v in vals:
                    if v == WILD:
                        problems.append(f"wild last line at {o}")
            plan.line_offsets.setdefault(line, {})[o] = arcs
        for line, by_off in list(plan.line_offsets.items()):
            if len(set(by_off.values())) == 1:
                plan.line_arcs[line] = next(iter(by_off.values()))
                del plan.line_offsets[line]

        # Trails from every place the last line is set or a decision is taken.
        starts: list[tuple[int, frozenset[Any], str]] = []
        for o in bc.order:
            ins = bc.instrs[o]
            if o not in self.reached:
                continue
            if ins.line_start and self.fire.get(o):
                starts.append((o, frozenset([ins.line]), "line"))
            if ins.op == bcode.RESUME:
                nxt = ins.succ[0] if ins.succ else None
                if nxt is not None:
                    starts.append((nxt, self.lout[o], "resume"))
        for h in bc.handler_sources:
            if h in self.reached:
                starts.append((h, self.lin(h), "handler"))
        leaves = self.rel.leaving_matters
        for o, src, kind in starts:
            for frm in src:
                if frm == WILD:
                    problems.append(f"wild {kind} trail at {o}")
                    continue
                if not leaves(frm, module):
                    continue  # no arc from this line can show in a report
                t = self.trail(o, frm)
                arc = self.trail_arc(t, frm)
                if arc is None:
                    continue
                obs = self.observer(t, frm)
                self._use(plan, obs, arc)
                check(arc, obs is not None, f"{kind} trail from {o}")

        # Branches.
        for o in bc.order:
            ins = bc.instrs[o]
            if ins.op not in bcode.BRANCHES or o not in self.reached:
                continue
            src = self.lout[o]
            dests = [ins.next, bcode.for_iter_exit(ins) if ins.op == bcode.FOR_ITER else ins.target]
            if len(src) != 1 or WILD in src:
                for d in dests:
                    for frm in src:
                        if frm == WILD:
                            problems.append(f"wild branch at {o}")
                            continue
                        # No target (None) is a trail that ends at once, as `trail` ends one off the code.
                        t = self.trail(d, frm) if d is not None else _Trail("loop", -1, [])
                        check(self.trail_arc(t, frm), False, f"ambiguous branch {o}")
                plan.branches[o] = BranchSpec({d: None for d in dests if d is not None}, {})
                continue
            (frm,) = src
            dirs: dict[int, Arc | None] = {}
            need: dict[int, Arc] = {}
            for d in dests:
                if d is None:
                    continue
                t = self.trail(d, frm)
                arc = self.trail_arc(t, frm)
                # The BRANCH event comes before the direction's code runs: it may only record the
                # arc when nothing on the way to the next line can raise (else the C tracer would
                # record an arc to a handler or the exit instead).
                safe = all(bc.instrs[p].op in bcode.NON_RAISING for p in t.path)
                dirs[d] = arc if safe else None
                if arc is None or arc[0] == arc[1]:
                    continue
                obs = self.observer(t, frm)
                self._use(plan, obs, arc)
                if obs is None:
                    if not safe:
                        check(arc, False, f"branch {o} to {d} can raise on the way")
                    elif matters(arc, module):
                        need[d] = arc
            plan.branches[o] = BranchSpec(dirs, need)

        # Returns, and exits by exception.
        for o in bc.order:
            ins = bc.instrs[o]
            if o not in self.reached:
                continue
            last = self.lout[o]
            single = len(last) == 1 and WILD not in last
            if ins.op in bcode.RETURNS:
                if single:
                    plan.returns[o] = (((next(iter(last))), self.exit),)
                else:
                    for v in last:
                        check((v, self.exit) if v != WILD else (0, self.exit), False, f"ambiguous return {o}")
            if ins.op not in bcode.NON_RAISING and ins.op not in bcode.RETURNS:
                if single:
                    plan.unwinds[o] = next(iter(last))
                    continue
                dynamic = self._dynamic_unwind(o)
                if dynamic is not None:
                    plan.dynamic_unwinds[o] = dynamic
                else:
                    for v in last:
                        if v == WILD:
                            problems.append(f"wild raise at {o}")
                        else:
                            check((v, self.exit), False, f"ambiguous raise {o}")
        if problems:
            return self._slow(plan, "; ".join(problems[:3]))
        ev = sys.monitoring.events
        plan.events = ev.LINE | ev.BRANCH | ev.PY_RETURN
        if plan.jumps:
            plan.events |= ev.JUMP
        if plan.instrs:
            plan.events |= ev.INSTRUCTION
        return plan

    def _dynamic_unwind(self, r: int) -> dict[int, int] | None:
        """If `r` runs only right after handler entries (no line in between), where each raise leads.

        Then the last line at `r` is the last line where the exception was raised, and the frame's
        traceback entry tells where that was. A RERAISE feeding such a handler would leave its own
        traceback position behind instead, so it disqualifies.
        """
        bc = self.bc
        stack, seen, handlers = [r], set(), set()
        while stack:
            o = stack.pop()
            if o in seen:
                continue
            seen.add(o)
            ins = bc.instrs[o]
            if o != r and ins.line is not None:
                return None
            preds = bc.preds.get(o, [])
            if o in bc.handler_sources:
                if preds:
                    return None
                handlers.add(o)
                continue
            if not preds:
                return None
            stack.extend(preds)
        mapping: dict[int, int] = {}
        for h in handlers:
            for s in bc.handler_sources[h]:
                if bc.instrs[s].op == bcode.RERAISE or s not in self.reached:
                    if bc.instrs[s].op == bcode.RERAISE:
                        return None
                    continue
                last = self.lout[s]
                if len(last) != 1 or WILD in last:
                    return None
                mapping[s] = next(iter(last))
        return mapping or None

    def _use(self, plan: Plan, obs: tuple[str, int] | None, arc: Arc) -> None:
        if obs is None:
            return
        kind, o = obs
        if kind == "jump":
            plan.jumps[o] = tuple(sorted({*plan.jumps.get(o, ()), arc}))
        elif kind == "instr":
            plan.instrs[o] = tuple(sorted({*plan.instrs.get(o, ()), arc}))

    def _slow(self, plan: Plan, reason: str) -> Plan:
        ev = sys.monitoring.events
        plan.slow = True
        plan.reason = reason
        plan.line_arcs.clear()
        plan.line_offsets.clear()
        plan.branches.clear()
        plan.returns.clear()
        plan.jumps.clear()
        plan.instrs.clear()
        plan.events = ev.LINE | ev.PY_START | ev.PY_RESUME | ev.PY_RETURN | ev.PY_YIELD
        return plan


def make_plan(code: CodeType, rel: Relevance, force_slow: bool = False) -> Plan:
    """Analyse `code` once; any surprise in the analysis means measuring it the slow, exact way."""
    try:
        return _Analysis(code, rel, force_slow).build()
    except Exception as exc:  # never guess: an analysis we cannot finish is a slow plan
        ev = sys.monitoring.events
        return Plan(
            code,
            slow=True,
            reason=f"analysis failed: {exc!r}",
            exit=-code.co_firstlineno,
            events=ev.LINE | ev.PY_START | ev.PY_RESUME | ev.PY_RETURN | ev.PY_YIELD,
        )
