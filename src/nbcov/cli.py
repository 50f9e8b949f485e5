"""The `nbcov` command line."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nbcov import __version__, report
from nbcov.errors import TRACEBACK_ENV, UsageError, bug_line, expected_errors, not_a_file, one_line

if TYPE_CHECKING:  # the runner brings nbclient, which only `nbcov run` needs
    import coverage

    from nbcov import attach, runner

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUG = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    hide_slow_iri_checker()
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    return _guarded(args)


def _guarded(args: argparse.Namespace) -> int:
    """Run a command; the failures a person causes become one line and exit 2, a bug one line and exit 3.

    The one place errors are translated, so that no command needs its own try/except: missing or
    unwritable paths, damaged data files, records and notebooks, a bad coverage configuration.
    Anything else is nbcov's bug: said so in one line, with the traceback on request.
    """
    try:
        if hasattr(args, "rcfile"):
            _check_rcfile(args.rcfile)
        return int(args.func(args))
    except expected_errors() as exc:
        print(f"nbcov: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except RecursionError as exc:  # a file nested deeper than any parser goes (JSON, notebooks)
        print(f"nbcov: error: an input is nested too deeply to read ({one_line(exc)})", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if os.environ.get(TRACEBACK_ENV):
            raise
        print(f"nbcov: {bug_line(exc)}", file=sys.stderr)
        return EXIT_BUG


def _check_rcfile(rcfile: str | bool) -> None:
    """The coverage configuration must read before anything runs or is written (`nbcov run` hands it to
    kernels, where a bad one would fail each notebook instead of the command)."""
    import coverage

    if isinstance(rcfile, str) and not os.path.isfile(rcfile):
        raise UsageError(f"--rcfile {rcfile}: no such configuration file")
    coverage.Coverage(config_file=rcfile)  # a ConfigError (one line) when it does not parse


def hide_slow_iri_checker() -> None:
    """Keep `import nbformat` from costing ~3 s in this process.

    Where JupyterLab is installed, jsonschema's "format-nongpl" extra brings `rfc3987_syntax`, which compiles ~38
    Lark grammars when jsonschema imports it (python-jsonschema/jsonschema#1428); nbformat and nbclient import
    jsonschema, so every `nbcov run` paid it before its first kernel started. Notebook schemas use no `iri` format
    and nbcov's command-line process validates nothing else, so there the module is marked absent (jsonschema
    then leaves out that one checker) — without importing anything now. (Not done in the pytest plugin: there the
    process, and its jsonschema, belong to the user.)
    """
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # its import now raises ImportError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nbcov", description="Code coverage for Jupyter notebook cells.")
    parser.add_argument("--version", action="version", version=f"nbcov {__version__}")
    sub = parser.add_subparsers(title="commands")

    rep = sub.add_parser("report", help="report coverage of notebook cells and modules from a data file")
    rep.add_argument("data_file_pos", nargs="?", metavar="DATA_FILE", help="the data file (default: .coverage)")
    rep.add_argument("--data-file", help="the data file (default: coverage.py's setting, .coverage)")
    rep.add_argument("--format", choices=["text", "json"], default="text")
    rep.add_argument("-o", "--output", help="write the report to this file instead of standard output")
    rep.add_argument("--rcfile", default=True, help="coverage.py configuration file (default: the usual search)")
    rep.add_argument("--fail-under", type=float, help="exit 1 if total coverage is below this percentage")
    rep.set_defaults(func=_report)

    who = sub.add_parser("who", help="who tests what: which tests ran a line, what a test ran, redundant tests")
    who.add_argument("location", nargs="?", help="NOTEBOOK:CELL:LINE (e.g. analysis.ipynb:4:7) or MODULE:LINE")
    who.add_argument("--test", help="list the lines (cells and modules) this test ran")
    who.add_argument("--redundant", action="store_true", help="tests that ran no line the others did not")
    who.add_argument("--data-file", help="the data file (default: coverage.py's setting, .coverage)")
    who.add_argument("--rcfile", default=True, help="coverage.py configuration file (default: the usual search)")
    who.set_defaults(func=_who)

    html = sub.add_parser("html", help="write an HTML report: each notebook shown as a notebook, with its coverage")
    html.add_argument("data_file_pos", nargs="?", metavar="DATA_FILE", help="the data file (default: .coverage)")
    html.add_argument("--data-file", help="the data file (default: coverage.py's setting, .coverage)")
    html.add_argument("-d", "--directory", help="where to write the report (default: [html] directory, htmlcov)")
    html.add_argument("--title", help="the report's title")
    html.add_argument("--show-contexts", action="store_true", help="show which tests (contexts) ran each line")
    html.add_argument("--notebook", action="append", metavar="PATH",
                      help="report only this notebook's cells (repeatable); modules are always reported")
    html.add_argument("--rcfile", default=True, help="coverage.py configuration file (default: the usual search)")
    html.add_argument("-q", "--quiet", action="store_true", help="don't print where the report was written")
    html.set_defaults(func=_html)
    run = sub.add_parser("run", help="execute notebooks headless, each in a fresh kernel measured from its start")
    run.add_argument("paths", nargs="+", metavar="NOTEBOOK_OR_DIR")
    run.add_argument("--source", action="append", default=[], metavar="PKG", help="measure this package or folder (repeatable)")
    run.add_argument("--branch", action="store_true", default=None, help="measure branch coverage")
    run.add_argument("--timeout", type=_at_least(0), default=600, metavar="S", help="seconds a cell may run (default 600; 0: no limit)")
    run.add_argument("--kernel", default=None, metavar="NAME", help="kernel to use (default: this Python, no kernel spec needed)")
    run.add_argument("--data-file", help="the data file to write (default: coverage.py's setting, .coverage)")
    run.add_argument("--append", action="store_true", help="add to the data file instead of replacing it")
    run.add_argument("--fail-under", type=float, metavar="PCT", help="exit 1 if total coverage is below this")
    run.add_argument("--report", action="append", default=[], choices=["text", "json", "html", "xml", "lcov"],
                     help="reports to write after the run (repeatable; default text)")
    run.add_argument("--output-notebook", metavar="DIR", help="write the executed notebooks here")
    run.add_argument("-j", "--jobs", type=_at_least(1, int), default=1, metavar="N", help="run N kernels at once")
    run.add_argument("--cwd", metavar="DIR", help="working folder of the kernels (default: each notebook's folder)")
    run.add_argument("--allow-errors", action="store_true", help="go on after a cell raises")
    run.add_argument("--rcfile", default=True, help="coverage.py configuration file (default: the usual search)")
    run.set_defaults(func=_run)

    ex = sub.add_parser(
        "exec", help="run a command (papermill, jupyter execute, pytest --nbmake...), measuring every kernel it starts",
        usage="nbcov exec [options] -- COMMAND [ARGS...]",
    )
    ex.add_argument("--source", action="append", default=[], metavar="PKG", help="measure this package or folder (repeatable)")
    ex.add_argument("--branch", action="store_true", default=None, help="measure branch coverage")
    ex.add_argument("--data-file", help="the data file to write (default: coverage.py's setting, .coverage)")
    ex.add_argument("--append", action="store_true", help="add to the data file instead of replacing it")
    ex.add_argument("--rcfile", default=True, help="coverage.py configuration file (default: the usual search)")
    ex.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]")
    ex.set_defaults(func=_exec)

    comb = sub.add_parser("combine", help="combine data files (and their cell records) into one")
    comb.add_argument("inputs", nargs="*", metavar="PATH", help="data files or folders (default: the data file's folder)")
    comb.add_argument("--data-file", help="the data file to write (default: coverage.py's setting, .coverage)")
    comb.add_argument("--append", action="store_true", help="add to the data file instead of replacing it")
    comb.add_argument("--keep", action="store_true", help="keep the combined input files")
    comb.add_argument("--rcfile", default=True, help="coverage.py configuration file (default: the usual search)")
    comb.set_defaults(func=_combine)
    return parser


def _at_least(low: float, kind: type[float] = float) -> Callable[[str], float]:
    """An argparse type for a number not under `low`: `--timeout -1` is a usage error, not "no limit"."""

    def convert(text: str) -> float:
        try:
            value: float = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value >= low:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {text}")
        return value

    convert.__name__ = kind.__name__  # argparse names the type in its messages
    return convert


def _report(args: argparse.Namespace) -> int:
    data_file = args.data_file or args.data_file_pos or _configured_data_file(args.rcfile)
    result = report.load_report(data_file, args.rcfile)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        if args.format == "json":
            report.write_json(result, out)
        else:
            report.write_text(result, out)
    finally:
        if out is not sys.stdout:
            out.close()
    if args.fail_under is not None and result["totals"]["percent_covered"] < args.fail_under:
        print(f"nbcov: total coverage {result['totals']['percent_covered_display']}% is under {args.fail_under}%", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _who(args: argparse.Namespace) -> int:
    from nbcov.query import QueryError, answer

    cov = report.open_coverage(args.data_file or _configured_data_file(args.rcfile), args.rcfile)
    try:
        print(answer(cov, args.location, args.test, args.redundant))
    except QueryError as exc:
        print(f"nbcov who: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _html(args: argparse.Namespace) -> int:
    from nbcov.html import write_html

    data_file = args.data_file or args.data_file_pos or _configured_data_file(args.rcfile)
    cov = report.open_coverage(data_file, args.rcfile)
    _check_notebooks(cov, args.notebook or [])
    show_contexts = args.show_contexts or bool(cov.get_option("html:show_contexts"))
    title = args.title or _text_option(cov, "html:title")
    directory = args.directory or _text_option(cov, "html:directory") or "htmlcov"
    not_a_file(directory, "-d")
    index = write_html(cov, directory, title=title, show_contexts=show_contexts, notebooks=args.notebook)
    if not args.quiet:
        print(f"Wrote HTML report to {index}")
    return EXIT_OK


def _check_notebooks(cov: object, notebooks: Sequence[str]) -> None:
    """A `--notebook` must be a notebook file, or one whose measured cells the data holds (its file gone):
    a mistyped path would otherwise give a report of nothing, and exit 0."""
    from nbcov.query import places

    missing = [n for n in notebooks if not os.path.isfile(n)]
    if not missing:
        return
    measured = {os.path.normpath(p.notebook) for p in places(cov) if p.notebook}  # type: ignore[arg-type]
    for notebook in missing:
        if os.path.normpath(notebook) not in measured:
            raise UsageError(f"--notebook {notebook}: no such notebook file, and no measured cell of it")


def _run(args: argparse.Namespace) -> int:
    from nbcov import runner, runs
    from nbcov.contract import KernelContract
    from nbcov.kernel import CurrentPythonKernelSpecs

    if args.kernel:
        from jupyter_client.kernelspec import NoSuchKernel

        specs = CurrentPythonKernelSpecs()
        try:
            specs.get_kernel_spec(args.kernel)
        except NoSuchKernel:
            known = ", ".join(sorted(specs.find_kernel_specs())) or "none"
            print(f"nbcov: error: no kernel named {args.kernel!r} (installed: {known}; "
                  "without --kernel, notebooks run on this Python)", file=sys.stderr)
            return EXIT_USAGE
    notebooks = runner.find_notebooks(args.paths)
    for notebook in notebooks:
        runner.read_notebook(notebook)  # all checked before the first kernel starts
    if not notebooks:
        raise UsageError("no notebooks found in " + ", ".join(args.paths))
    if args.cwd and not Path(args.cwd).is_dir():
        raise UsageError(f"--cwd {args.cwd}: no such folder")
    KernelContract(source=tuple(args.source))  # a --source the kernels cannot read back: a UsageError, now
    data_file = Path(args.data_file or _configured_data_file(args.rcfile)).resolve()
    if data_file.is_dir():
        raise UsageError(f"--data-file {data_file} is a folder, not a coverage data file")
    output_dir = Path(args.output_notebook).resolve() if args.output_notebook else None
    if output_dir is not None:
        not_a_file(args.output_notebook, "--output-notebook")
        output_dir.mkdir(parents=True, exist_ok=True)  # a file there, or no way to make it: one line, now
    with runs.run_lock(data_file):
        return _run_locked(args, notebooks, data_file, output_dir)


def _say_fallbacks(config: runner.RunConfig) -> None:
    """Say once what this coverage.py makes slower or leaves out (`coverage_internals.notice`).

    The kernels load nbcov before their first cell, where what it says reaches no one; a kernel of
    this Python has the same coverage.py, so the same probes, asked here of a Coverage configured as
    the kernels' are (never started), give the same answers.
    """
    import contextlib
    import io

    import coverage

    from nbcov import coverage_internals, engine
    from nbcov import core as cores

    cov = coverage.Coverage(data_file=None, config_file=str(config.rcfile) if config.rcfile else True,
                            branch=config.branch, source=list(config.source) or None)
    with contextlib.redirect_stderr(io.StringIO()):  # said below, as this command's warnings
        cores.choose(cov)
        if not engine.install(cov, mark_imports=False):  # as `measurement.choose_tracer` decides
            engine.install_lines(cov)
    for message in coverage_internals.notices():
        print(f"nbcov: warning: {message}", file=sys.stderr)


def _run_locked(args: argparse.Namespace, notebooks: list[Path], data_file: Path, output_dir: Path | None) -> int:
    """The run itself, while no other `nbcov run` writes the same data file."""
    import asyncio

    from nbcov import runner, runs
    from nbcov.combine import combine
    from nbcov.kernel import CURRENT_PYTHON
    runs.start_over(data_file, append=args.append)
    config = runner.RunConfig(
        data_file=data_file,
        timeout=args.timeout or None,
        kernel_name=args.kernel or CURRENT_PYTHON,
        cwd=Path(args.cwd).resolve() if args.cwd else None,
        allow_errors=args.allow_errors,
        branch=args.branch,
        source=args.source,
        rcfile=Path(args.rcfile).resolve() if isinstance(args.rcfile, str) else runs.kernel_rcfile(data_file),
        output_dir=output_dir,
    )
    if config.kernel_name == CURRENT_PYTHON:
        _say_fallbacks(config)
    width = max(len(_shown(n)) for n in notebooks)

    def progress(result: runner.NotebookResult) -> None:
        percent = _piece_percent(result.data_file, args.rcfile)
        line = f"{result.status.upper():8} {_shown(result.path):{width}}  {result.seconds:6.1f}s  {percent:>5}"
        print(line, flush=True)
        if not result.ok and result.status != "skipped":
            where = f"cell {result.cell_index}" if result.cell_index else "before the first cell"
            print(f"  {_shown(result.path)} · {where}: {result.message}", flush=True)
            if result.cell_source:
                print("  " + "\n  ".join(result.cell_source.splitlines()[:12]), flush=True)

    results = asyncio.run(runner.run_all(notebooks, config, jobs=args.jobs, on_done=progress))
    pieces = runs.usable_pieces(data_file, warn=lambda message: print(f"nbcov: warning: {message}", file=sys.stderr))
    if pieces:
        # Not `append=True`: a notebook's own coverage.py measurement (ipytest, pytest-cov, the user's)
        # may have written the data file meanwhile; without --append the result is the run's data only.
        combine(data_file, pieces, args.rcfile, append=args.append)
    _summary(results)
    code = EXIT_OK if all(r.ok for r in results) else EXIT_FAILED
    if not data_file.exists():
        print("nbcov: no coverage data was measured", file=sys.stderr)
        return EXIT_FAILED
    return max(code, _run_reports(data_file, args))


def _shown(path: str | os.PathLike[str]) -> str:
    text = os.fspath(path)
    return os.path.relpath(text) if os.path.isabs(text) and text.startswith(os.getcwd()) else text


def _piece_percent(piece: Path | None, rcfile: str | bool) -> str:
    """The notebook's cells' coverage, from its kernel's own data file."""
    from nbcov.cells import RecordError, is_cell_name
    from nbcov.data import DataFileError

    if piece is None or not Path(str(piece)).exists():
        return "-"
    try:
        cov = report.open_coverage(str(piece), rcfile)
        cells = [n for n in cov.get_data().measured_files() if is_cell_name(n)]
        if not cells:
            return "-"
        return str(report.analyse(cov, cells).totals["percent_covered_display"]) + "%"
    except (DataFileError, RecordError):
        # Only the progress line's number: the run goes on to combine its pieces and report
        # (where the same problem is said, once, with the whole data).
        return "?"


def _summary(results: list[runner.NotebookResult]) -> None:
    rows = [(r.status, _shown(r.path), f"{r.seconds:.1f}s", f"cell {r.cell_index}" if r.cell_index and not r.ok else "") for r in results]
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    print()
    width = max(len(r[1]) for r in rows)
    for status, name, seconds, where in rows:
        print(f"{status:8} {name:{width}}  {seconds:>7}  {where}".rstrip())
    print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + f" ({len(results)} notebooks)")
    print()


def _run_reports(data_file: object, args: argparse.Namespace) -> int:
    """The reports `--report` asked for (text by default), then `--fail-under`."""
    result = report.load_report(str(data_file), args.rcfile)
    for kind in args.report or ["text"]:
        if kind == "text":
            report.write_text(result, sys.stdout)
        elif kind == "json":
            with open("coverage.json", "w", encoding="utf-8") as out:
                report.write_json(result, out)
            print("Wrote JSON report to coverage.json")
        elif kind == "html":
            from nbcov import html

            index = html.write_html(report.open_coverage(str(data_file), args.rcfile), "htmlcov", show_contexts=True)
            print(f"Wrote HTML report to {index}")
        else:
            cov = report.open_coverage(str(data_file), args.rcfile)
            outfile = f"coverage.{kind}"
            getattr(cov, f"{kind}_report")(outfile=outfile)
            print(f"Wrote {kind.upper()} report to {outfile}")
    if args.fail_under is not None and result["totals"]["percent_covered"] < args.fail_under:
        print(f"nbcov: total coverage {result['totals']['percent_covered_display']}% is under {args.fail_under}%", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _exec(args: argparse.Namespace) -> int:
    """`nbcov exec -- COMMAND`: the command's exit code, its kernels' coverage in the data file."""
    from nbcov import runs
    from nbcov.contract import KernelContract

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise UsageError("nbcov exec: no command to run (nbcov exec [options] -- COMMAND [ARGS...])")
    if shutil.which(command[0]) is None:
        raise UsageError(f"nbcov exec: {command[0]}: command not found")
    KernelContract(source=tuple(args.source))  # a --source the kernels cannot read back: a UsageError, now
    data_file = Path(args.data_file or _configured_data_file(args.rcfile)).resolve()
    if data_file.is_dir():
        raise UsageError(f"--data-file {data_file} is a folder, not a coverage data file")
    with runs.run_lock(data_file):
        return _exec_locked(args, command, data_file)


def _exec_locked(args: argparse.Namespace, command: list[str], data_file: Path) -> int:
    import signal
    import subprocess

    from nbcov import attach, runs

    runs.start_over(data_file, append=args.append)
    rcfile = Path(args.rcfile).resolve() if isinstance(args.rcfile, str) else runs.kernel_rcfile(data_file)
    attachment = attach.attach(
        data_file, branch=args.branch, source=args.source, rcfile=rcfile, notebooks=attach.command_notebooks(command)
    )
    try:
        child = subprocess.Popen(command, env={**os.environ, **attachment.env})
        # Ctrl-C reaches the command (the terminal signals its whole group); nbcov waits for it to end
        # and then combines what its kernels saved. SIGTERM is passed on, with the same end.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT,)}
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
        try:
            returncode = child.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        outcome = attach.finish(attachment, args.rcfile, append=args.append,
                                warn=lambda message: print(f"nbcov: warning: {message}", file=sys.stderr))
        for reason in attachment.unmeasured():
            print(f"nbcov: a kernel was not measured: {reason}", file=sys.stderr)
    finally:
        attachment.remove()
    print(f"nbcov: {_exec_summary(outcome, data_file)}", file=sys.stderr)
    return returncode if returncode >= 0 else 128 - returncode  # killed by signal N: 128+N, as shells say


def _exec_summary(outcome: attach.Outcome, data_file: Path) -> str:
    """One line: what the kernels measured, and where it is."""
    if outcome.percent is None:
        return f"no kernel measured anything ({_shown(data_file)} not written)"
    kernels = f"{outcome.pieces} data file{'s' * (outcome.pieces != 1)}"
    cells = f"{outcome.cells} cell{'s' * (outcome.cells != 1)} of {outcome.notebooks} notebook{'s' * (outcome.notebooks != 1)}"
    unplaced = f" ({outcome.unplaced} in no notebook nbcov could tell)" if outcome.unplaced else ""
    return f"{cells}{unplaced} from {kernels}, {outcome.percent}% covered in total; data in {_shown(data_file)}"


def _combine(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nbcov.combine import combine

    target = Path(args.data_file or _configured_data_file(args.rcfile))
    count = combine(target, [Path(p) for p in args.inputs], args.rcfile, keep=args.keep, append=args.append)
    print(f"Combined {count} data files into {target}")
    return EXIT_OK


def _text_option(cov: coverage.Coverage, name: str) -> str | None:
    """A coverage.py setting that is text or unset (get_option's type is every kind of setting)."""
    value = cov.get_option(name)
    return value if isinstance(value, str) and value else None


def _configured_data_file(rcfile: str | bool) -> str:
    import coverage

    return str(coverage.Coverage(config_file=rcfile).get_option("run:data_file"))


if __name__ == "__main__":
    sys.exit(main())
