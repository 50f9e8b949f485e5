"""The cells running now: `run_cell` calls nest (cell magics), and a magic's body belongs to its cell."""

from __future__ import annotations

import dataclasses
from typing import Any

from nbcov.cells import CellRecord


@dataclasses.dataclass
class RunningCell:
    """One `run_cell` in progress (cell magics such as %%capture nest them)."""

    raw: str
    cell_id: str | None
    record: CellRecord | None = None
    offset: int = 0  # lines of the cell as typed above `raw` (a magic's body run as a cell: its header)
    # Texts run as Python for this frame, with their offsets: the cell itself, and %%time bodies.
    texts: list[tuple[str, int]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.texts.append((self.raw, self.offset))


class CellStack:
    """The `run_cell` calls in progress, outermost first, pushed by `pre_run_cell` and popped by `post_run_cell`.

    A nested `run_cell` whose text is the body of a cell magic in the cell around it (%%capture)
    is not a new cell: its frame keeps that cell's record and where the body starts in it.
    """

    def __init__(self) -> None:
        self.frames: list[RunningCell] = []

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def top(self) -> RunningCell:
        """The innermost `run_cell` (the stack must not be empty)."""
        return self.frames[-1]

    @property
    def outermost_record(self) -> CellRecord | None:
        """The record of the top-level cell running now, once it has one."""
        return self.frames[0].record if self.frames else None

    def push(self, info: Any) -> None:
        """A `run_cell` starts (`info`: IPython's ExecutionInfo, with the frontend's `cell_id`)."""
        raw = getattr(info, "raw_cell", "") or ""
        if self.frames and self.frames[-1].record is not None:
            parent = self.frames[-1]
            for text, offset in reversed(parent.texts):
                found = magic_body(text)
                if found is not None and same_lines(found[0], raw):
                    self.frames.append(RunningCell(raw, None, parent.record, offset + found[1]))
                    return
        self.frames.append(RunningCell(raw, getattr(info, "cell_id", None)))

    def pop(self) -> RunningCell | None:
        """A `run_cell` ended: its frame (None if none was pushed: nbcov started inside a cell)."""
        return self.frames.pop() if self.frames else None


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


def same_lines(typed: str, given: str) -> bool:
    """Is `given` the text `typed`, as IPython hands a cell magic its body? (Its cleanup turns lines
    of only spaces into empty lines, and a body ends with a newline.)"""
    return [line.rstrip() for line in typed.rstrip().splitlines()] == [line.rstrip() for line in given.rstrip().splitlines()]
