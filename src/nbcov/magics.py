"""The IPython side: `%load_ext nbcov`, `nbcov.autoconfig`, and the `%nbcov` / `%%covtest` magics."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shlex
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import display

from nbcov import core, coverage_internals
from nbcov.options import Options
from nbcov.session import Session

if TYPE_CHECKING:
    # Imported where used: nbcov.covtest imports pytest (~0.3 s), which a kernel that runs no
    # `%%covtest` cell should not pay at start-up (`nbcov run` loads this module in every kernel).
    from nbcov.covtest import TestRun

_STATE_ATTR = "_nbcov_state"


class _State:
    """nbcov's state in one shell: its options and its measuring session (if any)."""

    def __init__(self) -> None:
        self.options = Options()
        self.session: Session | None = None


def _state(shell: Any) -> _State:
    state = getattr(shell, _STATE_ATTR, None)
    if state is None:
        state = _State()
        setattr(shell, _STATE_ATTR, state)
        shell.register_magics(NbcovMagics)
    return state


def current_session(shell: Any) -> Session | None:
    state = getattr(shell, _STATE_ATTR, None)
    return state.session if state else None


def autoconfig(shell: Any = None, **options: Any) -> Options:
    """Set nbcov up in the running IPython in one call (calling it again just updates options).

    Registers `%nbcov` and `%%covtest`, turns on pytest's assertion rewriting for cells, and starts
    coverage with the user's coverage configuration plus the keyword overrides (see `Options`).
    """
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            raise RuntimeError("nbcov.autoconfig() needs a running IPython (a notebook or the ipython shell)")
    state = _state(shell)
    state.options.update(**options)
    opts = state.options

    if opts.coverage is False:
        if state.session is not None:
            state.session.stop()
            state.session = None
        return opts
    if state.session is None:
        state.session = Session(shell, branch=opts.branch, source=opts.source, subprocess=opts.subprocess)
        state.session.start()
    else:
        if "subprocess" in options and opts.subprocess is not None:
            state.session.measure_subprocesses(opts.subprocess)
        if opts.branch is not None and opts.branch != state.session.status().branch:
            print("nbcov: measurement is already running; `branch` applies after a kernel restart.")
    if opts.coverage == "tests":
        state.session.pause()
    else:
        state.session.resume()
    return opts


def unload(shell: Any) -> None:
    state = getattr(shell, _STATE_ATTR, None)
    if state is None:
        return
    if state.session is not None:
        state.session.stop()
    delattr(shell, _STATE_ATTR)


@magics_class
class NbcovMagics(Magics):
    """`%nbcov [report|html|who|status|save|reset|stop]` and `%%covtest [pytest args]`."""

    @property
    def state(self) -> _State:
        return _state(self.shell)

    @cell_magic
    def covtest(self, line: str, cell: str) -> None:
        """Run the cell, then the pytest tests it (and earlier cells) define, under coverage."""
        from nbcov.covtest import clean, run_tests

        try:
            shlex.split(line)  # checked before the cell runs: pytest gets these arguments afterwards
        except ValueError as exc:
            print(f"%%covtest: error: {exc} in the pytest arguments {line!r}", file=sys.stderr)
            return
        state, shell = self.state, self.shell
        if shell is None:  # IPython sets it when it registers the magics
            raise RuntimeError("%%covtest needs a running IPython")
        opts, session = state.options, state.session
        if opts.clean:
            clean(shell.user_ns, opts.clean)
        # Measuring only while tests run (`coverage="tests"`): this session is resumed for them.
        tests_only = session if session is not None and opts.coverage == "tests" else None
        if tests_only is not None:
            tests_only.resume()
        try:
            with _rewritten_asserts(shell, opts.rewrite_asserts):
                result = shell.run_cell(cell)
            if not result.success:
                return
            run = run_tests(shell, session, opts, line)
        finally:
            if tests_only is not None:
                tests_only.pause()
            elif session is not None:
                session.save()
        if session is not None and opts.show != "none":
            display(self._test_report(session, run, opts.show == "all"))
        if opts.raise_on_error and not run.ok:
            raise RuntimeError(f"{len(run.failed)} of {len(run.test_ids)} tests failed: {', '.join(run.failed)}")

    def _test_report(self, session: Session, run: TestRun, show_all: bool) -> Any:
        from nbcov import inline, report

        cov = report.open_coverage(session.target)
        data = cov.get_data()
        ran = set(run.test_ids)
        contexts = {name: data.contexts_by_lineno(name) for name in data.measured_files()}
        touched = [n for n, by_line in contexts.items() if any(ran.intersection(c) for c in by_line.values())]
        if not show_all:
            # The cell that defines the tests is not the code under test.
            touched = [n for n in touched if n != session.running_cell_name()]
        results = report.analyse(cov, touched)
        passed = len(run.test_ids) - len(run.failed)
        heading = f"nbcov · {passed} of {len(run.test_ids)} tests passed · measured by {core.describe(session.cov)}"
        return inline.InlineReport.from_results(results, contexts, heading, color=_is_terminal(self.shell))

    @line_magic
    def nbcov(self, line: str = "") -> Any:
        """Coverage of this session. `%nbcov help` lists the commands."""
        try:
            args = _PARSER.parse_args(shlex.split(line) or ["report"])
        except ValueError as exc:  # shlex: an unclosed quote
            print(f"%nbcov: error: {exc} in {line!r}", file=sys.stderr)
            return None
        except _UsageError as exc:
            print(f"%nbcov: {exc}\n{_PARSER.format_usage()}")
            return None
        session = self.state.session
        if session is None and args.command != "help":
            print("nbcov is not measuring: run `%load_ext nbcov` or `nbcov.autoconfig()` first.")
            return None
        from nbcov.errors import expected_errors, one_line

        try:
            return getattr(self, f"_cmd_{args.command}")(session, args)
        except expected_errors() as exc:  # as the `nbcov` command says them; a bug still shows its traceback
            print(f"%nbcov {args.command}: error: {one_line(exc)}", file=sys.stderr)
            return None

    def _cmd_help(self, session: Session | None, args: argparse.Namespace) -> None:
        print(_PARSER.format_help())

    def _cmd_save(self, session: Session, args: argparse.Namespace) -> None:
        session.save()
        print(session.last_error or f"nbcov: saved to {session.target}")

    def _cmd_stop(self, session: Session, args: argparse.Namespace) -> None:
        session.stop()
        self.state.session = None
        print(f"nbcov: stopped; the data is in {session.target}")

    def _cmd_reset(self, session: Session, args: argparse.Namespace) -> None:
        session.erase()
        print("nbcov: measured data erased; measuring goes on")

    def _cmd_status(self, session: Session, args: argparse.Namespace) -> None:
        for key, value in dataclasses.asdict(session.status()).items():
            print(f"{key:>10}: {value}")
        for said in coverage_internals.notices():  # what this coverage.py makes slower or leaves out
            print(f"{'fallback':>10}: {said}")

    def _cmd_report(self, session: Session, args: argparse.Namespace) -> Any:
        from nbcov import inline, report

        session.save()
        cov = report.open_coverage(session.target)
        data = cov.get_data()
        contexts = {n: data.contexts_by_lineno(n) for n in data.measured_files()} if data.measured_contexts() - {""} else {}
        heading = f"nbcov · {session.target} · measured by {core.describe(session.cov)}"
        return inline.InlineReport.from_results(report.analyse(cov), contexts, heading, color=_is_terminal(self.shell))

    def _cmd_html(self, session: Session, args: argparse.Namespace) -> None:
        from nbcov import html, report
        from nbcov.errors import not_a_file

        not_a_file(args.directory, "%nbcov html")
        session.save()
        index = html.write_html(report.open_coverage(session.target), args.directory, show_contexts=True)
        print(f"nbcov: HTML report written to {index}")

    def _cmd_who(self, session: Session, args: argparse.Namespace) -> None:
        from nbcov import query, report

        session.save()
        cov = report.open_coverage(session.target)
        try:
            print(query.answer(cov, args.location, args.test, args.redundant))
        except query.QueryError as exc:
            print(f"%nbcov who: {exc}")


@contextlib.contextmanager
def _rewritten_asserts(shell: Any, enabled: bool) -> Iterator[None]:
    """pytest's assertion rewriting for the `%%covtest` cell, where tests are written.

    Only there, as pytest rewrites test modules and not the code under test: rewritten asserts in
    the notebook's own code would slow it down and change what it runs.
    """
    if not enabled:
        yield
        return
    from nbcov.covtest import AssertRewriter

    rewriter = AssertRewriter()
    shell.ast_transformers.append(rewriter)
    try:
        yield
    finally:
        shell.ast_transformers.remove(rewriter)


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # never exit the kernel
        raise _UsageError(message)

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        raise _UsageError(message or "")


def _parser() -> _Parser:
    parser = _Parser(prog="%nbcov", add_help=False, description="Coverage of this IPython session.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    sub.add_parser("report", help="show coverage of the session inline (the default)")
    html = sub.add_parser("html", help="write the HTML report")
    html.add_argument("directory", nargs="?", default="htmlcov")
    who = sub.add_parser("who", help="which tests ran a line, what a test ran, redundant tests")
    who.add_argument("location", nargs="?", help="NOTEBOOK:CELL:LINE or MODULE:LINE")
    who.add_argument("--test", help="list the lines this test ran")
    who.add_argument("--redundant", action="store_true", help="tests that ran no line the others did not")
    sub.add_parser("status", help="what is measured, by which core, into which data file")
    sub.add_parser("save", help="save the data now (nbcov also saves after every cell)")
    sub.add_parser("reset", help="erase what was measured so far and go on measuring")
    sub.add_parser("stop", help="save and stop measuring")
    sub.add_parser("help", help="this help")
    return parser


_PARSER = _parser()


def _is_terminal(shell: Any) -> bool:
    return type(shell).__name__ == "TerminalInteractiveShell"


def load(shell: Any) -> None:
    """`%load_ext nbcov`: the same as `nbcov.autoconfig()` with its defaults."""
    autoconfig(shell)

