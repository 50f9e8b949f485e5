"""Hooks in IPython's cell compiler: traceable cell file names, and where compiled code sits in its cell."""

from __future__ import annotations

import re
from typing import Any, Callable, Protocol



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
            return super().__call__(source, filename, symbol, *args, **kwargs)

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
