"""Compile-time markers: an `else: pass` on the test's own line gives each untaken direction an event of its own."""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable
from types import CodeType, ModuleType
from typing import Any

_LOOPS = (ast.For, ast.AsyncFor, ast.While)


class MarkerTransformer(ast.NodeTransformer):
    """Give every `if`, `for` and `while` without an `else` an `else: pass` located on its first line.

    Why: on 3.12/3.13 a BRANCH event can only be disabled for both directions at once, and the
    skipped direction of an `if` without `else` (or a loop's exit, when a `break` jumps to the same
    place) lands on code that other paths reach too, so nothing but the BRANCH event itself could
    tell that it was taken: the event would have to stay on, costing a callback each time the hot
    direction runs. The marker makes that direction pass an instruction only it reaches, observed
    once (by an INSTRUCTION or JUMP event) and then switched off.

    Why it changes nothing: the `pass` compiles to a NOP (or nothing) on the line of the test that
    just ran, so no line event, traceback, debugger step or coverage arc differs; `inspect` and
    coverage.py's parser read the source text, which is untouched. Only statements whose header
    fits on one line are marked: a test spread over several lines jumps from several lines, and a
    NOP on any one of them would be a new line event for the others.
    """

    def _mark(self, node: Any) -> None:
        if node.orelse:
            return
        parts = [node.iter, node.target] if isinstance(node, (ast.For, ast.AsyncFor)) else [node.test]
        if any(getattr(p, "end_lineno", None) != node.lineno for p in parts):
            return
        marker = ast.Pass()
        marker.lineno = marker.end_lineno = node.lineno
        marker.col_offset = marker.end_col_offset = node.col_offset
        node.orelse = [marker]

    def visit_If(self, node: ast.If) -> ast.AST:
        self.generic_visit(node)
        if node.orelse or node.test.end_lineno != node.lineno:
            return node
        # `if not test: pass` / `else: body`: the hot body costs nothing more, and the skipped
        # direction passes a JUMP (or NOP) on the test's line that only it reaches.
        marker = ast.Pass()
        marker.lineno = marker.end_lineno = node.lineno
        marker.col_offset = marker.end_col_offset = node.col_offset
        test = ast.copy_location(ast.UnaryOp(ast.Not(), node.test), node.test)
        return ast.copy_location(ast.If(test=test, body=[marker], orelse=node.body), node)

    def visit_For(self, node: ast.For) -> ast.AST:
        self.generic_visit(node)
        self._mark(node)
        return node

    def visit_AsyncFor(self, node: ast.AsyncFor) -> ast.AST:
        self.generic_visit(node)
        self._mark(node)
        return node

    def visit_While(self, node: ast.While) -> ast.AST:
        self.generic_visit(node)
        if not (isinstance(node.test, ast.Constant) and node.test.value):
            self._mark(node)
        return node


def mark(tree: ast.AST) -> ast.AST:
    """Add markers to `tree` in place (and return it)."""
    marked: ast.AST = MarkerTransformer().visit(tree)
    return marked


def compile_marked(source: str | bytes, filename: str, mode: str = "exec") -> CodeType:
    """`compile()` with markers, for code the engine will measure."""
    tree = ast.parse(source, filename, mode)
    marked = mark(tree)
    assert isinstance(marked, (ast.Module, ast.Expression, ast.Interactive))  # what ast.parse gives
    return compile(marked, filename, mode, dont_inherit=True)


# -- IPython cells ---------------------------------------------------------------------------------


class _CellMarker(MarkerTransformer):
    """The transformer IPython runs on every cell (`shell.ast_transformers`)."""


def install_cell_markers(shell: Any) -> Callable[[], None]:
    """Mark every cell the shell compiles from now on; returns the undo."""
    transformers = getattr(shell, "ast_transformers", None)
    if transformers is None:
        return lambda: None
    marker = _CellMarker()
    transformers.append(marker)

    def uninstall() -> None:
        try:
            transformers.remove(marker)
        except ValueError:
            pass

    return uninstall


# -- imported modules ------------------------------------------------------------------------------


class _MarkingLoader(importlib.machinery.SourceFileLoader):
    """Loads a measured module from its source with markers (never from, nor into, __pycache__)."""

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        return compile_marked(self.get_data(path), path)


class MarkingFinder(importlib.abc.MetaPathFinder):
    """Marks the source modules that `should_mark` (coverage.py's own file selection) says are measured.

    It sits right before `PathFinder` on `sys.meta_path` and answers with `PathFinder`'s own spec
    (its loader swapped for a marking one when the module is measured), so every import costs one
    path search, as without it, and builtin, frozen or other finders keep their turn.
    """

    def __init__(self, should_mark: Callable[[str], bool]) -> None:
        self.should_mark = should_mark

    def find_spec(self, fullname: str, path: Any, target: ModuleType | None = None) -> Any:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader:
            return spec
        origin = spec.origin
        if not origin or not origin.endswith(".py"):
            return spec
        try:
            wanted = self.should_mark(origin)
        except Exception:
            wanted = False
        if wanted:
            spec.loader = _MarkingLoader(fullname, origin)
        return spec


def install_import_markers(should_mark: Callable[[str], bool]) -> Callable[[], None]:
    """Put a MarkingFinder just before `PathFinder` on `sys.meta_path`; returns the undo."""
    finder = MarkingFinder(should_mark)
    try:
        where = sys.meta_path.index(importlib.machinery.PathFinder)
    except ValueError:
        where = len(sys.meta_path)
    sys.meta_path.insert(where, finder)

    def uninstall() -> None:
        try:
            sys.meta_path.remove(finder)
        except ValueError:
            pass

    return uninstall
