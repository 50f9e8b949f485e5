"""`%%covtest`: run the pytest tests a cell defines, in the notebook's own namespace, under coverage."""

from __future__ import annotations

import ast
import dataclasses
import fnmatch
import inspect
import re
import shlex
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nbcov import core
from nbcov.notebook import session_notebook
from nbcov.options import Options
from nbcov.session import Session

# Notebook test plugins would try to run the placeholder file as a notebook; nbcov's own plugin
# (`pytest --nbcov`) is not needed here.
_BLOCKED_PLUGINS = ("nbval", "nbmake", "pytest_notebook", "cacheprovider", "nbcov")


@dataclasses.dataclass
class TestRun:
    """What one `%%covtest` run did."""

    exit_code: int
    test_ids: list[str]
    failed: list[str]

    @property
    def ok(self) -> bool:
        # 5 is pytest's "no tests collected": nothing failed.
        return self.exit_code in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)


def clean(namespace: dict[str, Any], pattern: str) -> list[str]:
    """Delete test functions and classes left from earlier runs (names matching `pattern`)."""
    doomed = [
        name
        for name, value in namespace.items()
        if fnmatch.fnmatchcase(name, pattern) and (inspect.isfunction(value) or inspect.isclass(value))
    ]
    for name in doomed:
        del namespace[name]
    return doomed


def module_name(session: Session | None, shell: Any) -> str:
    """The file part of the test ids: the notebook's path relative to the data file, stable
    across kernels and machines (never a random temporary name)."""
    ref = session.notebook_ref if session is not None else None
    if ref is None:
        path = session_notebook(shell.user_ns)
        if path is None:
            return "ipython"
        try:
            ref = path.resolve().relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            ref = path.name
    return ref if not ref.startswith("/") else Path(ref).name


def run_tests(shell: Any, session: Session | None, options: Options, line: str) -> TestRun:
    """Run the tests defined in the shell's `__main__` with pytest, each in its own context."""
    name = module_name(session, shell)
    with tempfile.TemporaryDirectory(prefix="nbcov-covtest-") as tmp:
        # pytest collects files, and names tests after them: a placeholder named like the notebook
        # gives ids like `notebooks/analysis.ipynb::test_mean`. An empty ini keeps pytest from
        # picking up whatever configuration lies above the temporary folder.
        placeholder = Path(tmp, name)
        placeholder.parent.mkdir(parents=True, exist_ok=True)
        placeholder.touch()
        ini = Path(tmp, "pytest.ini")
        ini.write_text("[pytest]\n", encoding="utf-8")
        blocked = [arg for plugin in _BLOCKED_PLUGINS for arg in ("-p", f"no:{plugin}")]
        extra = shlex.split(line)
        addopts = list(options.addopts)
        if any(re.fullmatch(r"-v+|--verbose", a) for a in extra):
            # `%%covtest -v` means verbose, not "cancel the default -q".
            addopts = [a for a in addopts if a not in ("-q", "--quiet")]
        args = [str(placeholder), "-c", str(ini), "--rootdir", tmp, *blocked, *addopts, *extra]
        plugin = _NotebookTests(shell.user_module, placeholder, session, options.contexts)
        if session is None or not plugin.per_phase:
            exit_code = pytest.main(args, plugins=[plugin])
        else:
            with session.measuring_only():
                exit_code = pytest.main(args, plugins=[plugin])
    return TestRun(int(exit_code), plugin.test_ids, plugin.failed)


class _NotebookModule(pytest.Module):
    """A pytest module whose object is the notebook's `__main__`, not a file to import."""

    notebook_module: Any = None

    def _getobj(self) -> Any:
        return self.notebook_module


class _NotebookTests:
    """pytest plugin: collects the notebook's tests and records each as its own coverage context."""

    def __init__(self, module: Any, path: Path, session: Session | None, contexts: bool) -> None:
        self.module = module
        self.path = path
        self.session = session
        self.contexts = contexts
        # Which parts of pytest's run to measure. The C tracer costs on every call, so under it only
        # the tests' own phases are measured (pytest's collection and reporting are not the user's
        # code). sys.monitoring costs nothing for code it has switched off, but every start, stop
        # and context switch switches everything back on: under it measuring stays on, and the
        # context changes once per test.
        self.per_phase = session is not None and core.in_use(session.cov) is not core.Core.SYSMON
        self.test_ids: list[str] = []
        self.failed: list[str] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: Any) -> None:
        # pytest words test ids relative to the folder it was started from (the notebook's), which
        # would read `../../tmp/nbcov-covtest-x/nb.ipynb::test_x`: show the ids themselves. (Not by
        # changing the invocation folder: pytest changes back into it when it ends.)
        config.cwd_relative_nodeid = lambda nodeid: nodeid

    def pytest_collect_file(self, file_path: Path, parent: Any) -> Any:
        if file_path == self.path:
            collector = _NotebookModule.from_parent(parent, path=file_path)
            collector.notebook_module = self.module
            return collector
        return None

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.test_ids.append(nodeid)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> Iterator[None]:
        if self.session is None or self.per_phase or not self.contexts:
            return (yield)
        previous = self.session.switch_context(item.nodeid)
        try:
            return (yield)
        finally:
            self.session.switch_context(previous)

    # Only the test's own phases are measured, each under the test's context.
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: Any) -> Iterator[None]:
        return (yield from self._measured(item))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: Any) -> Iterator[None]:
        return (yield from self._measured(item))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: Any, nextitem: Any) -> Iterator[None]:
        return (yield from self._measured(item))

    def _measured(self, item: Any) -> Iterator[None]:
        if self.session is None or not self.per_phase:
            return (yield)
        with self.session.measure():
            previous = self.session.switch_context(item.nodeid) if self.contexts else ""
            try:
                return (yield)
            finally:
                if self.contexts:
                    self.session.switch_context(previous)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: Any, call: Any) -> Any:
        report = yield
        if self.session is not None:
            _relabel(report.longrepr, self.session.cell_location)
        return report

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.failed and report.nodeid not in self.failed:
            self.failed.append(report.nodeid)


def _relabel(longrepr: Any, locate: Callable[[str, int], tuple[str, int] | None]) -> None:
    """Name cells in failure locations as people know them (`nb.ipynb · cell 3:7`, the line as
    typed), not by the kernel's temporary file names and the lines IPython compiled."""
    chain = getattr(longrepr, "chain", None) or [(getattr(longrepr, "reprtraceback", None), getattr(longrepr, "reprcrash", None), None)]
    for reprtraceback, reprcrash, _ in chain:
        locations = [getattr(entry, "reprfileloc", None) for entry in getattr(reprtraceback, "reprentries", []) or []]
        for location in [*locations, reprcrash]:
            if location is not None and (shown := locate(location.path, location.lineno)):
                location.path, location.lineno = shown


class AssertRewriter(ast.NodeTransformer):
    """IPython AST transformer: pytest's assertion rewriting, for every cell.

    pytest rewrites the asserts of the modules it imports; the notebook's tests are not imported,
    so without this a failing `assert a == b` would not say what `a` and `b` were.
    """

    def visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, ast.Module):
            from _pytest.assertion.rewrite import rewrite_asserts

            rewrite_asserts(node, b"", None, None)
            # pytest gives the imports it adds a start line but no end line; compiling a cell whose
            # first statement is not on line 1 then fails ("AST node line range (2, 1)").
            for child in ast.walk(node):
                lineno = getattr(child, "lineno", None)
                if lineno is not None and (getattr(child, "end_lineno", None) or 0) < lineno:
                    child.end_lineno = lineno  # type: ignore[attr-defined]
                    child.end_col_offset = getattr(child, "col_offset", 0)  # type: ignore[attr-defined]
        return node
