"""Parsing cell code with coverage.py's parser, where IPython's syntax would otherwise stop it."""

from __future__ import annotations

import ast
import dataclasses
import functools
import re
import sys
from collections.abc import Iterable

from coverage.types import TArc, TSourceTokenLines

from nbcov import coverage_internals

_AWAIT = re.compile(r"\bawait\b")
# A line that is not the user's code: blank, a comment, one of nbcov's own magics, or leaving.
_NOT_CODE = re.compile(
    r"\s*(?:%nbcov\b.*|%?(?:load_ext|reload_ext|unload_ext)\s+nbcov|(?:exit|quit)(?:\(\))?)?\s*(?:#.*)?"
)
_ASYNC_LOOP = re.compile(r"\basync(\s+)(for|with)\b")


def analysable(code: str) -> str:
    """`code` as text Python's compiler accepts, with every statement on the same line.

    IPython runs top-level `await`, `async for` and `async with`, which a plain module may not
    contain, so coverage.py's parser would reject the cell. Rewriting those keywords to same-length
    synchronous forms keeps the statements, their lines and their branches as they are.
    """
    if ("await" not in code and "async" not in code) or _compiles(code):
        return code
    rewritten = _AWAIT.sub("not  ", code)
    rewritten = _ASYNC_LOOP.sub(lambda m: m[2] + " " * (5 + len(m[1])), rewritten)
    return rewritten if _compiles(rewritten) else code  # else coverage.py reports the real error


def nothing_to_measure(source: str) -> bool:
    """Does a cell, as typed, hold no code of the user's (blank, comments, `%nbcov …`,
    `%load_ext nbcov`, `exit`)?

    Such a cell is not a measured cell in any report: nbcov's magics and `exit` are not code
    under test, and a cell of comments (nbdev's `#|default_exp`) has no statement to run.
    """
    return all(_NOT_CODE.fullmatch(line) for line in source.splitlines())


def _compiles(code: str) -> bool:
    # Not ast.parse: "'await' outside function" is only raised by the compiler proper.
    try:
        compile(code, "<cell>", "exec", dont_inherit=True)
    except SyntaxError:
        return False
    return True


@functools.lru_cache(maxsize=2048)
def make_parser(code: str, exclude: str | None) -> coverage_internals.PythonParser:
    """coverage.py's parser for a cell, parsed once per text (a live session reports often)."""
    text = analysable(code)
    parser = coverage_internals.parsed_python(text, exclude or None)
    _leading_string_is_a_statement(parser, text)
    return parser


def _leading_string_is_a_statement(parser: coverage_internals.PythonParser, text: str) -> None:
    """Count a string that starts a cell, before more code, as the statement it is.

    coverage.py reads a module's first string as its docstring, never run; a cell is a piece of
    the notebook's module, and a string at its top (with code after it) is an ordinary statement
    that runs. A cell that is only a string is left a docstring: that is the module's docstring
    given a cell of its own, as a title.
    """
    body = ast.parse(text).body
    first = body[0] if len(body) > 1 else None
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)):
        return
    parser.raw_docstrings -= set(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    ignore = parser.excluded | parser.raw_docstrings
    parser.statements = parser.first_lines(parser.raw_statements - ignore) - ignore


def parsers_cached() -> int:
    """How many cell parsers this process keeps (from `make_parser`)."""
    return make_parser.cache_info().currsize


def forget_parsers() -> None:
    """Drop the cached parsers: for a process that will not report again.

    Each keeps its cell's syntax tree: a Python process that exits with a thousand of them spends
    ~0.1 s in the garbage collector's last pass, more than freeing them here costs.
    """
    make_parser.cache_clear()
    _top_level_layout.cache_clear()
    _line_one_scopes.cache_clear()


def run_at_definition(parser: coverage_internals.PythonParser, code: str) -> set[int]:
    """Statements that run when the cell runs, as opposed to later, inside functions it defines.

    For a cell that ran before measurement began, these are the lines nbcov cannot know about:
    they are reported as not measured, never as missed.
    """
    tree = ast.parse(analysable(code))
    deferred: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0].lineno
            last = max(b.end_lineno or b.lineno for b in node.body)
            deferred.update(range(first, last + 1))
    return {line for line in parser.statements if line not in deferred}


def token_lines(source: str, code: str) -> TSourceTokenLines:
    """Syntax tokens of the cell as typed, for coverage.py's HTML report.

    Lines IPython rewrote (magics, `!shell`) are shown as typed, without tokens; the rest is
    tokenized from the Python text so highlighting stays correct.
    """
    typed = source.splitlines()
    python = code.splitlines()
    if len(typed) != len(python):
        return list(coverage_internals.source_token_lines(code))
    try:
        tokens = list(coverage_internals.source_token_lines(code))
    except Exception:
        return [[("txt", line)] for line in typed]
    out = []
    for i, line in enumerate(typed):
        if i < len(tokens) and i < len(python) and python[i] == line:
            out.append(tokens[i])
        else:
            out.append([("txt", line)])
    return out


def module_arcs(code: str, arcs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Arcs recorded for a cell, as they would be had the cell run as one module.

    IPython compiles and runs every top-level statement of a cell as a code object of its own, so
    the tracer records each statement as entered from and left to the module's exit (-1): an `if`
    at the top of a cell seems to jump to the exit, never to the next statement. Rewriting those
    exits to the next statement (when it was entered) and dropping the extra entries gives exactly
    the arcs coverage.py records for a .py file, so branch reports of cells read as for modules.
    """
    starts, owner = _top_level_layout(code)
    if len(starts) < 2:
        return set(arcs)
    entered = {b for a, b in arcs if a == -1}
    fixed: set[tuple[int, int]] = set()
    for a, b in arcs:
        node = owner.get(a)
        if b == -1 and node is not None and node + 1 < len(starts) and starts[node + 1] in entered:
            fixed.add((a, starts[node + 1]))
            if a != 1:  # line 1 may also close a lambda or comprehension that starts there
                continue
        elif a == -1 and b in starts[1:]:
            continue
        fixed.add((a, b))
    return fixed


def module_exits(parser: coverage_internals.PythonParser, code: str) -> set[TArc]:
    """The cell's arcs that leave its module (to -1: on into the next cell), not those leaving a
    function, class, lambda or generator that starts on its line 1 (which read -1 too)."""
    _, owner = _top_level_layout(code)
    scopes = _line_one_scopes(code)
    inner = scopes.exits if scopes is not None else frozenset()
    return {(a, b) for a, b in parser.arcs() if b == -1 and a in owner and a not in inner}


def starts_excluded(code: str, exclude: str | None) -> bool:
    """Is the first statement of `code` excluded from measurement (`# pragma: no cover`, ...)?
    False for code coverage.py cannot parse (a cell magic): it is a statement all the same."""
    try:
        parser = make_parser(code, exclude)
    except Exception:  # NotPython, or a syntax error the tokenizer raises
        return False
    return bool(parser.raw_statements) and min(parser.raw_statements) in parser.excluded


def has_statements(code: str) -> bool:
    """Does `code` hold a statement (in a .py file, an arc could lead into it)? Code that does not
    parse (a magic) counts as one, as IPython runs it."""
    try:
        return bool(ast.parse(analysable(code)).body)
    except SyntaxError:
        return True


@functools.lru_cache(maxsize=2048)
def _top_level_layout(code: str) -> tuple[list[int], dict[int, int]]:
    """First line of each top-level statement, and which statement owns each module-level line.

    Lines inside function and class bodies belong to other code objects and are left out. Cached
    (callers only read it): coverage.py translates a cell's arcs twice per analysis.
    """
    try:
        tree = ast.parse(analysable(code))
    except SyntaxError:
        return [], {}
    starts: list[int] = []
    owner: dict[int, int] = {}
    for i, statement in enumerate(tree.body):
        start = _first_line(statement)
        starts.append(start)
        for line in range(start, (statement.end_lineno or statement.lineno) + 1):
            owner[line] = i
    # Only the outermost definitions: one nested in a body lies within that body's lines already.
    todo: list[ast.AST] = list(tree.body)
    while todo:
        child = todo.pop()
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for line in range(child.body[0].lineno, (child.body[-1].end_lineno or child.lineno) + 1):
                # The `def` line stays the module's even when the body shares it (`def f(): ...`):
                # the def statement runs there and leaves to the next statement.
                if line != child.lineno:
                    owner.pop(line, None)
        else:
            todo.extend(ast.iter_child_nodes(child))
    return starts, owner


@dataclasses.dataclass(frozen=True)
class Shift:
    """Code compiled from its line 1 that the user typed `offset` lines further down a cell.

    IPython drops a cell's leading blank lines before compiling it, and a cell magic's body starts
    below its `%%` line. nbcov compiles such code as IPython does (so tracebacks, `co_firstlineno`
    and pytest's source lookups are what they are without nbcov) and moves what was measured to the
    cell's lines when saving it, as coverage.py would have measured the cell as typed.
    """

    offset: int
    code: str  # the text as compiled, with its own line numbers

    def lines(self, lines: Iterable[int]) -> set[int]:
        return {n + self.offset for n in lines}

    def arcs(self, arcs: Iterable[TArc]) -> set[TArc]:
        """Arcs as coverage.py records them for the code as typed.

        A negative number is the entry to or exit from the code object starting on that line
        (`-co_firstlineno`): those move with the code, except the module's -1 (a module's code
        starts on line 1 wherever its first statement is). Only code objects that start on the
        compiled line 1 also read -1, and there the other end of the arc tells which it was:
        a top-level statement's first line is entered from the module, a line of the function,
        class, lambda or generator is entered from it. A line that is both (a one-line `def` or a
        lambda on line 1) gets both arcs, which is what coverage.py records for the code as
        compiled: the measurement cannot tell them apart.
        """
        o = self.offset
        scopes = _line_one_scopes(self.code) if o else None

        def move(n: int) -> int:
            return n + o if n > 0 else n - o if n < -1 else n

        moved: set[TArc] = set()
        for a, b in arcs:
            if scopes is None or (a != -1) == (b != -1):
                moved.add((move(a), move(b)))
                continue
            entering = a == -1
            line = b if entering else a
            module = line in (scopes.starts if entering else scopes.module_lines)
            inner = line in (scopes.entries if entering else scopes.exits)
            if module or not inner:
                moved.add((move(a), move(b)))
            if inner:
                moved.add((-1 - o, move(b)) if entering else (move(a), -1 - o))
        return moved


@dataclasses.dataclass(frozen=True)
class _LineOne:
    """Where the module's code and the code objects starting on line 1 are entered and left."""

    starts: frozenset[int]  # first lines of top-level statements: entered from the module
    module_lines: frozenset[int]  # lines the module's own code runs on: left to the module
    entries: frozenset[int]  # lines a code object starting on line 1 is entered on
    exits: frozenset[int]  # lines it may be left from


@functools.lru_cache(maxsize=2048)
def _line_one_scopes(code: str) -> _LineOne | None:
    """The layout `Shift.arcs` needs, or None when no code object but the module starts on
    line 1 (then every -1 is the module's)."""
    try:
        tree = ast.parse(analysable(code))
    except SyntaxError:
        return None
    if not tree.body or _first_line(tree.body[0]) != 1:
        return None
    entries: set[int] = set()
    exits: set[int] = set()
    for node in ast.walk(tree.body[0]):
        # Every code object is a statement or an expression (the first test only tells mypy so).
        if not isinstance(node, (ast.stmt, ast.expr)) or not isinstance(node, _CODE_OBJECTS) or _first_line(node) != 1:
            continue
        end = (node.end_lineno or 1) + 1
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            # A function is entered on its body's first line, a class on its own first line.
            body = range(node.body[0].lineno, end)
            entries.update(body if not isinstance(node, ast.ClassDef) else (1,))
            exits.update(body)
        else:  # a lambda is entered where its body starts and returns from its `lambda` line too
            entries.update(range(node.body.lineno if isinstance(node, ast.Lambda) else 1, end))
            exits.update(range(1, end))
    if not entries:
        return None
    starts: set[int] = set()
    module_lines: set[int] = set()
    for node in tree.body:
        starts.add(_first_line(node))
        module_lines.update(range(_first_line(node), (node.end_lineno or node.lineno) + 1))
    todo: list[ast.AST] = list(tree.body)
    while todo:  # bodies of functions and classes run in code objects of their own
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            # The header line stays the module's: a one-line `def` runs there too.
            module_lines.difference_update(range(max(node.body[0].lineno, node.lineno + 1), (node.end_lineno or 0) + 1))
        else:
            todo.extend(ast.iter_child_nodes(node))
    return _LineOne(frozenset(starts), frozenset(module_lines), frozenset(entries), frozenset(exits))


# Nodes compiled to code objects of their own (comprehensions were inlined in 3.12, PEP 709).
_CODE_OBJECTS: tuple[type[ast.AST], ...] = (
    ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.GeneratorExp,
    *((ast.ListComp, ast.SetComp, ast.DictComp) if sys.version_info < (3, 12) else ()),
)


def _first_line(node: ast.stmt | ast.expr) -> int:
    """A code object's `co_firstlineno`: a decorated definition starts at its first decorator."""
    decorators: list[ast.expr] = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])
