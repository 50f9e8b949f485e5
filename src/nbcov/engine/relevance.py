"""Which arcs can change a coverage.py report: those leaving a branch line (coverage.py's own parser says which)."""

from __future__ import annotations

import ast
import functools
import linecache
import os
from collections.abc import Callable
from typing import Any

from nbcov import coverage_internals

#: Maps a measured file name to its source text (None: unknown, so every arc counts).
SourceProvider = Callable[[str], "str | None"]


_BRANCHING = (ast.If, ast.While, ast.For, ast.AsyncFor, ast.Match)
_DEFINING = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


class _Sketch:
    """A superset of coverage.py's branch lines, from the AST alone (10x cheaper than its parser).

    coverage.py's parser gives more than one exit only to `if`/`while`/`for` tests, `match`/
    `case` lines, and a `def` or `class` whose body shares its header's line (`def f(): return 1`:
    on to the next statement, or out of the function); every line of a statement's header counts
    as the statement's first line, as in coverage.py's multi-line map. Anything this calls irrelevant is irrelevant to coverage.py too
    (the test suite checks the superset property against coverage.py's parser).
    """

    def __init__(self, tree: ast.Module, lines: list[str]) -> None:
        self.first: dict[int, int] = {}
        self.branching: set[int] = set()
        # Statements only (no expressions): `ast.walk` would visit ten times as many nodes.
        stack: list[Any] = list(tree.body)
        first, branching = self.first, self.branching
        while stack:
            node = stack.pop()
            if isinstance(node, ast.match_case):
                start = node.pattern.lineno
                end = _header_end(node)
                branching.add(start)
            else:
                start = node.lineno
                end = _header_end(node)
                if isinstance(node, _DEFINING) and _body_on_header(node, lines):
                    branching.add(start)
                    end = max(end, node.body[0].lineno)
                elif isinstance(node, _BRANCHING):
                    branching.add(start)
                for decorator in getattr(node, "decorator_list", ()):
                    for line in range(decorator.lineno, (decorator.end_lineno or decorator.lineno) + 1):
                        first.setdefault(line, line)
            for line in range(start, end + 1):
                first.setdefault(line, start)
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, field, None)
                if children:
                    stack.extend(children)

    def branch_line(self, line: int) -> bool:
        return self.first.get(line, line) in self.branching


def _body_on_header(node: Any, lines: list[str]) -> bool:
    """Does a def's or class's body start on a line of its header (`def f(): return 1`)?

    When unsure (line endings the split does not see), yes: a superset only costs speed.
    """
    first = node.body[0]
    if first.lineno > len(lines):
        return True
    return bool(lines[first.lineno - 1].encode()[: first.col_offset].strip())  # col_offset counts UTF-8 bytes


def _header_end(node: Any) -> int:
    """The last line of a statement's own text: for a compound statement, its header up to the
    colon (a closing bracket may sit on a line of its own), as coverage.py's multi-line map has it."""
    body = node.body if isinstance(node, ast.match_case) else getattr(node, "body", None)
    if isinstance(node, ast.Match):
        body = [node.cases[0].pattern] if node.cases else None
    if isinstance(body, list) and body and isinstance(body[0], ast.AST):
        start: int = node.pattern.lineno if isinstance(node, ast.match_case) else node.lineno
        end: int = max(start, getattr(body[0], "lineno") - 1)
        # A test ending on the body's own line (`if (a and\n b): c`) still belongs to the header.
        for part in ("test", "iter", "subject", "guard", "pattern", "items"):
            value = getattr(node, part, None)
            for expr in value if isinstance(value, list) else [value]:
                if expr is not None and getattr(expr, "end_lineno", None):
                    end = max(end, int(expr.end_lineno))
        return end
    return int(node.end_lineno or node.lineno)


class Relevance:
    """The arcs of one file that coverage.py's branch reports look at.

    Reports use executed lines, and the arcs that leave a line with more than one possible exit and
    that coverage.py predicted. Every other arc may be recorded or not without changing a number, so
    the engine only has to be exact (and only pays for being exact) on these. With no source, or a
    source that cannot be parsed, every arc counts. Two levels: a cheap AST sketch (a superset), and
    coverage.py's own parser, consulted only when the answer decides between fast and slow.
    """

    def __init__(self, text: str | None) -> None:
        self._text = text
        self._sketch: _Sketch | None = None
        self._sketched = False
        self._parsed = False
        self._known = False
        self._first: Callable[[int], int] = lambda line: line
        self._multi: frozenset[int] = frozenset()
        self._arcs: frozenset[tuple[int, int]] = frozenset()
        self._exits: frozenset[int] = frozenset()

    def sketch(self) -> _Sketch | None:
        if not self._sketched:
            self._sketched = True
            if self._text is not None:
                try:
                    self._sketch = _Sketch(ast.parse(self._text), self._text.split("\n"))
                except Exception:  # not parseable as Python: no sketch, everything counts
                    self._sketch = None
        return self._sketch

    @property
    def known(self) -> bool:
        self._parse()
        return self._known

    def _parse(self) -> None:
        """coverage.py's parser, on first use."""
        if self._parsed:
            return
        self._parsed = True
        text = self._text
        if text is None:
            return
        try:
            parser = coverage_internals.parsed_python(text)
            arcs = parser.arcs()
            counts = parser.exit_counts()
        except Exception:  # any parse failure: stay conservative
            return
        self._known = True
        self._first = parser.first_line
        self._arcs = frozenset(arcs)
        self._multi = frozenset(line for line, n in counts.items() if n > 1)
        self._exits = frozenset(a for a, b in arcs if b < 0)

    def leaving_matters(self, line: int, module_code: bool) -> bool:
        """Could any arc leaving `line` matter (the cheap sketch's answer)?"""
        if line < 0:
            return module_code or self.sketch() is None
        sketch = self.sketch()
        return sketch is None or sketch.branch_line(line)

    def matters(self, arc: tuple[int, int], module_code: bool, exact: bool = False) -> bool:
        """Could recording `arc` (raw line numbers, as the tracer records them) change a report?

        `module_code`: the arc belongs to a module-level code object. nbcov rewrites the entries and
        exits of a notebook cell's top-level statements into arcs between them, so for module code
        entries and exits always count. `exact`: ask coverage.py's parser when the sketch says yes.
        """
        a, b = arc
        if a < 0:
            return module_code or self.sketch() is None
        sketch = self.sketch()
        if sketch is not None and not sketch.branch_line(a):
            return False
        if not exact:
            return True
        if not self.known:
            return True
        fa = self._first(a)
        if fa not in self._multi:
            return False
        if b < 0:
            return module_code or (fa, b) in self._arcs or fa in self._exits
        return (fa, self._first(b)) in self._arcs


def default_source(filename: str) -> str | None:
    """The text coverage.py would report `filename` with: the file on disk, else what linecache holds."""
    if os.path.exists(filename):
        return coverage_internals.python_source(filename)
    lines = linecache.getlines(filename)
    return "".join(lines) if lines else None


@functools.lru_cache(maxsize=512)
def _cached(text: str | None) -> Relevance:
    return Relevance(text)


def relevance_for(filename: str, provider: SourceProvider | None = None) -> Relevance:
    """The Relevance of a measured file, parsed once per distinct text."""
    text = None
    if provider is not None:
        try:
            text = provider(filename)
        except Exception:
            text = None
    if text is None:
        text = default_source(filename)
    return _cached(text)
