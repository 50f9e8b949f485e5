"""Hooks in IPython's cell compiler: traceable cell file names, and where compiled code sits in its cell."""

from __future__ import annotations

import re
from types import CodeType
from typing import Any, Callable, Protocol

from nbcov.parser import MODULE_LINE, RENUMBERS


class CompileHooks(Protocol):
    """What the measuring session decides when IPython names or compiles code."""

    def code_name(self, name: str, raw: str, transformed: str, number: int) -> str:
        """The file name to compile a cell under (IPython proposed `name`; `number` is In [N])."""

    def compiling(self, filename: str, source: Any) -> tuple[str, Any]:
        """(file name to use, source to compile) for one `compile` call."""


def install(shell: Any, hooks: CompileHooks) -> Callable[[], None]:
    """Put `hooks` into `shell.compile` and return a function that takes them out again.

    The compiler instance is kept (ipykernel's debugger and IPython's tracebacks hold on to it and to
    its `_filename_map`); only its class is swapped for a subclass, because `compiler(...)` looks
    `__call__` up on the type. IPython's traceback formatter is wrapped too (`_traceback_names`).
    """
    compiler = shell.compile
    original_class = type(compiler)
    if getattr(original_class, "_nbcov_hooks", None) is not None:
        original_class = original_class.__mro__[1]
    renamed: dict[str, str] = {}

    class NbcovCompiler(original_class):  # type: ignore[misc, valid-type]
        _nbcov_hooks = hooks

        def get_code_name(self, raw_code: str, transformed_code: str, number: int) -> str:
            name = super().get_code_name(raw_code, transformed_code, number)
            return self._nbcov_hooks.code_name(name, raw_code, transformed_code, number)

        def __call__(self, source: Any, filename: str, symbol: str, *args: Any, **kwargs: Any) -> Any:
            given = filename
            filename, source = self._nbcov_hooks.compiling(filename, source)
            if filename != given:
                renamed[filename] = given
            code = super().__call__(source, filename, symbol, *args, **kwargs)
            # Only code coverage.py measures: it never traces names like `<timed eval>`.
            return distinct_module(code) if isinstance(code, CodeType) and not filename.startswith("<") else code

    NbcovCompiler.__name__ = NbcovCompiler.__qualname__ = f"Nbcov{original_class.__name__}"
    compiler.__class__ = NbcovCompiler
    restore_tracebacks = _traceback_names(shell, renamed)

    def uninstall() -> None:
        restore_tracebacks()
        if type(compiler) is NbcovCompiler:
            compiler.__class__ = original_class

    return uninstall


def _traceback_names(shell: Any, renamed: dict[str, str]) -> Callable[[], None]:
    """Make IPython's tracebacks name code nbcov compiled under another name (`%%time`'s body, under
    a traceable name bound to its cell instead of `<timed exec>`) by the name IPython gave it.

    The traceback is what it is without nbcov, text and colours: IPython writes a frame's file as
    "File " then "<name>:<line>" (`tbtools._tokens_filename`), so the name is put back there.
    Only the text shown changes: the frames keep the file name coverage.py measured them under.
    """
    formatter = getattr(shell, "InteractiveTB", None)
    original = getattr(formatter, "structured_traceback", None)
    if formatter is None or original is None:
        return lambda: None

    def structured_traceback(*args: Any, **kwargs: Any) -> Any:
        lines = original(*args, **kwargs)
        if not renamed or not isinstance(lines, list):
            return lines
        return [_shown_as(line, renamed) if isinstance(line, str) else line for line in lines]

    formatter.structured_traceback = structured_traceback

    def restore() -> None:
        if formatter.__dict__.get("structured_traceback") is structured_traceback:
            del formatter.structured_traceback

    return restore


_ANSI = r"(?:\x1b\[[0-9;]*m)*"


def _shown_as(text: str, renamed: dict[str, str]) -> str:
    """`text` with every "File <renamed>:<line>" naming the file as IPython named it."""
    from IPython.utils.path import compress_user

    for name, given in renamed.items():
        for shown in {name, compress_user(name)}:
            if shown in text:
                pattern = f"(File {_ANSI}){re.escape(shown)}(?=:[0-9])"
                text = re.sub(pattern, lambda m: m[1] + given, text)
    return text


def dropped_lines(transformer: Any, text: str) -> int:
    """How many lines IPython drops from the top of `text` before compiling it, `transformer` being
    the shell's `input_transformer_manager`.

    Its cleanup step `leading_empty_lines` removes a cell's leading blank lines, so line 1 of the
    compiled code is the first line that is not blank; nbcov counts them to put the measured lines
    back where the user typed them (the code itself is compiled as IPython made it).
    """
    from IPython.core.inputtransformer2 import leading_empty_lines

    if leading_empty_lines not in getattr(transformer, "cleanup_transforms", ()):
        return 0
    # Split as TransformerManager.transform_cell splits it.
    lines = (text if text.endswith("\n") else text + "\n").splitlines(keepends=True)
    return len(lines) - len(leading_empty_lines(lines))



def distinct_module(code: CodeType) -> CodeType:
    """`code` (a module IPython compiled), numbered so that a tracer tells it from the functions,
    classes, lambdas and generators inside it that also start on line 1.

    Every statement IPython compiles is a module starting on line 1, and coverage.py records a code
    object's entry and exit as `-co_firstlineno`: a one-line `def f(): return 1` on line 1 and the
    statement defining it both read (-1, 1) and (1, -1), so whether `f` ever ran was lost. Such a
    module gets `co_firstlineno` MODULE_LINE (its arcs read -MODULE_LINE; `parser` maps them back)
    with a line table that gives every instruction the very same positions: tracebacks, line events
    and debuggers see what they see without nbcov. Nothing else is touched, and code with nothing
    on line 1 but the module keeps its numbers.
    """
    if not RENUMBERS or code.co_firstlineno != 1 or not _inner_code_on_line_one(code):
        return code
    try:
        moved = code.replace(co_firstlineno=MODULE_LINE, co_linetable=_line_table(code, MODULE_LINE))
    except (ValueError, IndexError):  # a line table this encoder does not know: keep IPython's code
        return code
    if list(moved.co_positions()) != list(code.co_positions()) or list(moved.co_lines()) != list(code.co_lines()):
        return code
    return moved


def _inner_code_on_line_one(code: CodeType) -> bool:
    todo = [c for c in code.co_consts if isinstance(c, CodeType)]
    while todo:
        inner = todo.pop()
        if inner.co_firstlineno == 1:
            return True
        todo.extend(c for c in inner.co_consts if isinstance(c, CodeType))
    return False


def _line_table(code: CodeType, first: int) -> bytes:
    """`code`'s line table for `co_firstlineno` = `first`: each entry kept (same instructions), each
    location written in the long form, whose line is relative to the previous entry's."""
    positions = list(code.co_positions())
    out = bytearray()
    line, unit = first, 0
    for byte in code.co_linetable:
        if not byte & 0x80:
            continue  # the bytes after an entry's first
        length = (byte & 7) + 1
        start, end, column, end_column = positions[unit]
        unit += length
        if start is None:
            out.append(0x80 | 15 << 3 | (length - 1))  # no location
            continue
        out.append(0x80 | 14 << 3 | (length - 1))
        out += _svarint(start - line)
        out += _varint((start if end is None else end) - start)
        out += _varint(0 if column is None else column + 1)
        out += _varint(0 if end_column is None else end_column + 1)
        line = start
    return bytes(out)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 64:
        out.append(0x40 | (n & 63))
        n >>= 6
    out.append(n)
    return bytes(out)


def _svarint(n: int) -> bytes:
    return _varint((-n << 1) | 1 if n < 0 else n << 1)
