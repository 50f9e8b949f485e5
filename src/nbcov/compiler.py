"""Hooks in IPython's cell compiler: traceable cell file names, and cell-magic bodies at their real lines."""

from __future__ import annotations

import ast
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


def shift_lines(source: Any, offset: int, shifted: dict[int, ast.AST]) -> Any:
    """Move code down by `offset` lines, so a magic's body reports the lines the user sees.

    AST transformers (pytest's assertion rewriting among them) share nodes between statements,
    and IPython compiles a cell statement by statement: `shifted` remembers the nodes already moved
    (keeping them alive, so their ids stay theirs) so that no node moves twice.
    """
    if isinstance(source, str):
        return "\n" * offset + source
    if not isinstance(source, ast.AST):
        return source
    for node in ast.walk(source):
        if id(node) in shifted:
            continue
        shifted[id(node)] = node
        if "lineno" in node._attributes and getattr(node, "lineno", None) is not None:
            node.lineno += offset  # type: ignore[attr-defined]
            if getattr(node, "end_lineno", None) is not None:
                node.end_lineno += offset  # type: ignore[attr-defined]
    return source
