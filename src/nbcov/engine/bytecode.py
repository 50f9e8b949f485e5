"""CPython 3.12/3.13 bytecode as `sys.monitoring` sees it: instructions, jumps, handlers and line starts."""

from __future__ import annotations

import bisect
import dis
import sys
from dataclasses import dataclass, field
from types import CodeType

_OP = dis.opmap


def _ops(*names: str) -> frozenset[int]:
    return frozenset(_OP[n] for n in names if n in _OP)


CACHE = _OP.get("CACHE", 0)
EXTENDED_ARG = _OP["EXTENDED_ARG"]
RESUME = _OP["RESUME"]
FOR_ITER = _OP["FOR_ITER"]
SEND = _OP["SEND"]
YIELD_VALUE = _OP["YIELD_VALUE"]
NOP = _OP["NOP"]

#: Conditional jumps: both directions are reported by BRANCH events (with FOR_ITER).
COND_JUMPS = _ops("POP_JUMP_IF_FALSE", "POP_JUMP_IF_TRUE", "POP_JUMP_IF_NONE", "POP_JUMP_IF_NOT_NONE")
#: Instructions that emit BRANCH events on 3.12/3.13.
BRANCHES = COND_JUMPS | {FOR_ITER}
FORWARD_JUMPS = _ops("JUMP_FORWARD")
BACKWARD_JUMPS = _ops("JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT")
UNCONDITIONAL = FORWARD_JUMPS | BACKWARD_JUMPS
#: Unconditional jumps that emit JUMP events (JUMP_BACKWARD_NO_INTERRUPT is never instrumented).
JUMP_EVENTS = _ops("JUMP_FORWARD", "JUMP_BACKWARD")
RETURNS = _ops("RETURN_VALUE", "RETURN_CONST")
RAISES = _ops("RAISE_VARARGS", "RERAISE")
#: Never a line start, and skipped when CPython tracks the "current line" of the bytecode.
NOT_LINE_STARTS = _ops("END_ASYNC_FOR", "END_FOR", "END_SEND", "RESUME")
END_ASYNC_FOR = _OP.get("END_ASYNC_FOR", -1)

#: Instructions that cannot raise (so an instruction seen to run is followed by its successor).
#: Deliberately small: JUMP_BACKWARD is absent because it runs the eval breaker (signals).
NON_RAISING = _ops(
    "NOP", "EXTENDED_ARG", "JUMP_FORWARD", "POP_TOP", "LOAD_CONST", "LOAD_FAST", "STORE_FAST",
    "COPY", "SWAP", "PUSH_NULL", "END_FOR", "PUSH_EXC_INFO", "POP_EXCEPT", "LOAD_FAST_LOAD_FAST",
    "STORE_FAST_STORE_FAST", "STORE_FAST_LOAD_FAST", "LOAD_FAST_AND_CLEAR", "END_SEND",
    "POP_JUMP_IF_NONE", "POP_JUMP_IF_NOT_NONE", "RETURN_CONST",
)
RERAISE = _OP["RERAISE"]

#: How far past a FOR_ITER's jump target the loop's exit lands (END_FOR, and POP_TOP on 3.13).
FOR_ITER_EXIT_SKIP = 4 if sys.version_info >= (3, 13) else 2


@dataclass(slots=True)
class Instr:
    """One instruction: where it is, what it does, its line, and where control can go next."""

    offset: int
    op: int
    arg: int
    line: int | None
    next: int  # offset of the following instruction (after inline caches)
    target: int | None = None  # the jump target, as CPython computes it
    succ: tuple[int, ...] = ()  # normal (non-exception) successors
    line_start: bool = False  # instrumented for LINE events

    @property
    def name(self) -> str:
        return dis.opname[self.op]


@dataclass(slots=True)
class Handler:
    """An exception-table entry: instructions in [start, end) jump to `target` when they raise."""

    start: int
    end: int
    target: int


@dataclass
class Bytecode:
    """A decoded code object."""

    code: CodeType
    instrs: dict[int, Instr]
    order: list[int]  # offsets in bytecode order
    handlers: list[Handler]
    first_traceable: int  # offset of the RESUME that starts the frame (events start there)
    preds: dict[int, list[int]] = field(default_factory=dict)
    handler_sources: dict[int, list[int]] = field(default_factory=dict)  # handler -> protected offsets

    def at(self, offset: int) -> Instr | None:
        return self.instrs.get(offset)


def decode(code: CodeType) -> Bytecode:
    """Decode `code` (its unspecialised, uninstrumented `co_code`)."""
    raw = code.co_code
    size = len(raw)
    lines: dict[int, int | None] = {}
    for start, end, line in code.co_lines():
        for off in range(start, end, 2):
            lines[off] = line
    instrs: dict[int, Instr] = {}
    order: list[int] = []
    ext = 0
    off = 0
    while off < size:
        op = raw[off]
        arg = raw[off + 1] | ext
        ext = (arg << 8) if op == EXTENDED_ARG else 0
        nxt = off + 2
        while nxt < size and raw[nxt] == CACHE:
            nxt += 2
        ins = Instr(off, op, arg, lines.get(off), nxt)
        if op in COND_JUMPS or op in FORWARD_JUMPS or op == FOR_ITER or op == SEND:
            ins.target = nxt + 2 * arg
        elif op in BACKWARD_JUMPS:
            ins.target = nxt - 2 * arg
        instrs[off] = ins
        order.append(off)
        off = nxt
    handlers = [Handler(s, e, t) for s, e, t in parse_exception_table(code)]
    first = next((o for o in order if instrs[o].op == RESUME), 0)
    bc = Bytecode(code, instrs, order, handlers, first)
    _link(bc)
    _mark_line_starts(bc)
    return bc


def parse_exception_table(code: CodeType) -> list[tuple[int, int, int]]:
    """(start, end, handler) byte offsets from `co_exceptiontable` (the 3.11+ varint format)."""
    table = code.co_exceptiontable
    out: list[tuple[int, int, int]] = []
    pos = 0

    def varint() -> int:
        nonlocal pos
        b = table[pos]
        pos += 1
        val = b & 63
        while b & 64:
            b = table[pos]
            pos += 1
            val = (val << 6) | (b & 63)
        return val

    while pos < len(table):
        start = varint() * 2
        length = varint() * 2
        target = varint() * 2
        varint()  # depth and lasti
        out.append((start, start + length, target))
    return out


def for_iter_exit(ins: Instr) -> int:
    """Where a FOR_ITER lands when its iterator is exhausted (past END_FOR)."""
    assert ins.target is not None
    return ins.target + FOR_ITER_EXIT_SKIP


def _link(bc: Bytecode) -> None:
    """Normal successors and predecessors of every instruction, and each handler's protected offsets."""
    preds: dict[int, list[int]] = {o: [] for o in bc.order}
    for off in bc.order:
        ins = bc.instrs[off]
        op = ins.op
        if op in UNCONDITIONAL:
            succ: tuple[int, ...] = (ins.target,)  # type: ignore[assignment]
        elif op in COND_JUMPS or op == SEND:
            succ = (ins.next, ins.target)  # type: ignore[assignment]
        elif op == FOR_ITER:
            succ = (ins.next, for_iter_exit(ins))
        elif op in RETURNS or op in RAISES:
            succ = ()
        else:
            succ = (ins.next,)
        ins.succ = tuple(s for s in succ if s in bc.instrs)
        for s in ins.succ:
            preds[s].append(off)
    bc.preds = preds
    sources: dict[int, list[int]] = {}
    order = bc.order
    for h in bc.handlers:
        # Only instructions that can raise enter a handler.
        first = bisect.bisect_left(order, h.start)
        last = bisect.bisect_left(order, h.end)
        sources.setdefault(h.target, []).extend(
            o for o in order[first:last] if bc.instrs[o].op not in NON_RAISING
        )
    bc.handler_sources = sources


def _mark_line_starts(bc: Bytecode) -> None:
    """Which instructions CPython instruments for LINE events (its `initialize_lines`)."""
    current = -1
    for off in bc.order:
        if off < bc.first_traceable:
            continue
        ins = bc.instrs[off]
        if ins.op in NOT_LINE_STARTS:
            continue
        line = -1 if ins.line is None else ins.line
        ins.line_start = line != current and line >= 0
        current = line
    for off in bc.order:
        ins = bc.instrs[off]
        tgt: int | None = None
        if ins.op in COND_JUMPS or ins.op in UNCONDITIONAL:
            tgt = ins.target
        elif ins.op in (FOR_ITER, SEND) and ins.target is not None:
            tgt = ins.target + 2  # past END_FOR / END_SEND, as CPython marks it
        if tgt is not None and tgt in bc.instrs and tgt >= bc.first_traceable:
            t = bc.instrs[tgt]
            if t.line is not None and t.line >= 0:  # CPython marks any jump target that has a line
                t.line_start = True
    for h in bc.handlers:
        handler = bc.instrs.get(h.target)
        if handler is not None and handler.op != END_ASYNC_FOR and handler.line is not None and handler.line >= 0:
            handler.line_start = True
