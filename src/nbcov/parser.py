"""Parsing cell code with coverage.py's parser, where IPython's syntax would otherwise stop it."""

from __future__ import annotations

import ast
import re

from coverage.parser import PythonParser
from coverage.phystokens import source_token_lines
from coverage.types import TSourceTokenLines

_AWAIT = re.compile(r"\bawait\b")
_ASYNC_LOOP = re.compile(r"\basync(\s+)(for|with)\b")


def analysable(code: str) -> str:
    """`code` as text Python's compiler accepts, with every statement on the same line.

    IPython runs top-level `await`, `async for` and `async with`, which a plain module may not
    contain, so coverage.py's parser would reject the cell. Rewriting those keywords to same-length
    synchronous forms keeps the statements, their lines and their branches as they are.
    """
    if _compiles(code):
        return code
    rewritten = _AWAIT.sub("not  ", code)
    rewritten = _ASYNC_LOOP.sub(lambda m: m[2] + " " * (5 + len(m[1])), rewritten)
    return rewritten if _compiles(rewritten) else code  # else coverage.py reports the real error


def _compiles(code: str) -> bool:
    # Not ast.parse: "'await' outside function" is only raised by the compiler proper.
    try:
        compile(code, "<cell>", "exec", dont_inherit=True)
    except SyntaxError:
        return False
    return True


def make_parser(code: str, exclude: str | None) -> PythonParser:
    parser = PythonParser(text=analysable(code), exclude=exclude or None)
    parser.parse_source()
    return parser


def run_at_definition(parser: PythonParser, code: str) -> set[int]:
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
        return list(source_token_lines(code))
    try:
        tokens = list(source_token_lines(code))
    except Exception:
        return [[("txt", line)] for line in typed]
    out = []
    for i, line in enumerate(typed):
        if i < len(tokens) and i < len(python) and python[i] == line:
            out.append(tokens[i])
        else:
            out.append([("txt", line)])
    return out
