"""Hooks in IPython's cell compiler: traceable cell file names, and where compiled code sits in its cell."""

from __future__ import annotations

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
    `__call__` up on the type.
    """
    compiler = shell.compile
    original_class = type(compiler)
    if getattr(original_class, "_nbcov_hooks", None) is not None:
        original_class = original_class.__mro__[1]

    class NbcovCompiler(original_class):  # type: ignore[misc, valid-type]
        _nbcov_hooks = hooks

        def get_code_name(self, raw_code: str, transformed_code: str, number: int) -> str:
            name = super().get_code_name(raw_code, transformed_code, number)
            return self._nbcov_hooks.code_name(name, raw_code, transformed_code, number)

        def __call__(self, source: Any, filename: str, symbol: str, *args: Any, **kwargs: Any) -> Any:
            filename, source = self._nbcov_hooks.compiling(filename, source)
            return super().__call__(source, filename, symbol, *args, **kwargs)

    NbcovCompiler.__name__ = NbcovCompiler.__qualname__ = f"Nbcov{original_class.__name__}"
    compiler.__class__ = NbcovCompiler

    def uninstall() -> None:
        if type(compiler) is NbcovCompiler:
            compiler.__class__ = original_class

    return uninstall


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
