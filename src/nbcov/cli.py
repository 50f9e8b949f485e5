"""The `nbcov` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nbcov import __version__, report
from nbcov.cells import RecordError
from nbcov.data import DataFileError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except (DataFileError, RecordError) as exc:
        print(f"nbcov: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


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
    html.add_argument("-d", "--directory", default="htmlcov", help="where to write the report (default: htmlcov)")
    html.add_argument("--title", help="the report's title")
    html.add_argument("--show-contexts", action="store_true", help="show which tests (contexts) ran each line")
    html.add_argument("--notebook", action="append", metavar="PATH",
                      help="report only this notebook's cells (repeatable); modules are always reported")
    html.add_argument("--rcfile", default=True, help="coverage.py configuration file (default: the usual search)")
    html.add_argument("-q", "--quiet", action="store_true", help="don't print where the report was written")
    html.set_defaults(func=_html)
    return parser


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
    from nbcov.magics import answer_who
    from nbcov.query import QueryError

    cov = report.open_coverage(args.data_file or _configured_data_file(args.rcfile), args.rcfile)
    try:
        print(answer_who(cov, args.location, args.test, args.redundant))
    except QueryError as exc:
        print(f"nbcov who: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _html(args: argparse.Namespace) -> int:
    from nbcov.html import write_html

    data_file = args.data_file or args.data_file_pos or _configured_data_file(args.rcfile)
    cov = report.open_coverage(data_file, args.rcfile)
    show_contexts = args.show_contexts or bool(cov.get_option("html:show_contexts"))
    title = args.title or cov.get_option("html:title")
    index = write_html(cov, args.directory, title=title, show_contexts=show_contexts, notebooks=args.notebook)
    if not args.quiet:
        print(f"Wrote HTML report to {index}")
    return EXIT_OK


def _configured_data_file(rcfile: str | bool) -> str:
    import coverage

    return str(coverage.Coverage(config_file=rcfile).get_option("run:data_file"))


if __name__ == "__main__":
    sys.exit(main())
