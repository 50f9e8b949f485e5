"""`nbcov html`: a self-contained HTML report, each notebook shown as a notebook with coverage painted on it.

    from nbcov.html import write_html
    from nbcov.report import open_coverage
    write_html(open_coverage(".coverage"), "htmlcov")   # -> Path("htmlcov/index.html")

The report is a folder: `index.html`, one page per notebook and per measured module, one CSS and one
JavaScript file. It opens from disk with no server and no network, and its pages forbid remote loads
(Content-Security-Policy). The same data gives byte-identical files.

It is incremental: `nbcov-html.db` in the folder (`state`) keeps, per measured file, a
fingerprint of what its part of the report was made from (its data rows, its cell record or source
file) with the numbers and the rendered source, and per page a hash of its inputs and its index row.
A file whose fingerprint is unchanged is not analysed again, and a page whose inputs are unchanged
is not written again. Large reports are analysed by this process and forked ones together (`_analyse`).

Modules: `data` (coverage.py's analysis of one file -> an entry), `render` (escaping, source
lines, index and module pages), `notebook` (notebook files, Markdown, outputs, notebook pages),
`state` (the incremental state), `files/` (the CSS and JavaScript).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import hashlib
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import coverage
from coverage import CoverageData
from coverage.exceptions import CoverageException

from nbcov import __version__, coverage_internals
from nbcov import parser as cellparser
from nbcov.cells import RecordError, is_cell_name, load_record, record_search_dirs
from nbcov.data import DataFileError
from nbcov.html.data import ENTRY_FORMAT, Entry, Stub, analyse_all, fingerprints, notebook_path, numbers, report_files
from nbcov.html.notebook import cache_key, markdown_snippets, notebook_page, parse_notebook, read_bytes
from nbcov.notebook import NotebookCell
from nbcov.html.render import Assets, Page, Row, index_page, module_page
from nbcov.html.state import STATE_FORMAT, PageRecord, ReportState

DEFAULT_TITLE = "Coverage report"
ASSET_DIR = Path(__file__).with_name("files")

#: The names of the files a report writes (pages and assets), the only ones it ever deletes.
_OURS = re.compile(r"[A-Za-z0-9_-]+\.html|nbcov_[0-9a-f]+\.(css|js)")

#: Below this many files to analyse, worker processes cost more than they save.
PARALLEL_MIN = 200


def write_html(
    cov: coverage.Coverage,
    directory: str | os.PathLike[str],
    title: str | None = None,
    show_contexts: bool = False,
    notebooks: Sequence[str | os.PathLike[str]] | None = None,
    *,
    jobs: int | None = None,
) -> Path:
    """Write the HTML report of `cov`'s data into `directory` and return the path of its index.html.

    `cov` is a loaded Coverage with the nbcov plugin configured (`nbcov.report.open_coverage`).
    `show_contexts` adds which tests (contexts) ran each line, and a filter by test on the index.
    `notebooks` limits the report to those notebooks' cells (modules are always reported); a
    notebook named there that has no measured cell is shown with its cells as not measured.
    `jobs` is the number of processes that analyse files (default: the CPUs, for large reports).
    Raises DataFileError when there is nothing to report or the plugin is not configured.
    """
    with _collector_paused(), _no_parsers_left():
        return _Report(cov, Path(directory), title or DEFAULT_TITLE, show_contexts, notebooks, jobs).write()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a report is built.

    A report makes hundreds of thousands of small objects (tokens, AST nodes, lines) that mostly live
    until it is written; the collector would scan them, and everything else alive (in a kernel:
    the user's data too), again and again, and find next to nothing: about a tenth of the report's
    time. Forked workers inherit the pause. The few cycles made are collected once it is back on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def _no_parsers_left() -> Iterator[None]:
    """A report made in a process that had parsed no cell (a command: `nbcov html`) leaves none parsed.

    A live session that reported before keeps its parsers for the next report; a command will not
    report again, and the cell parsers it kept would cost its exit ~0.1 s (`parser.forget_parsers`).
    """
    fresh_process = cellparser.parsers_cached() == 0
    try:
        yield
    finally:
        if fresh_process:
            cellparser.forget_parsers()


class _Report:
    def __init__(
        self,
        cov: coverage.Coverage,
        directory: Path,
        title: str,
        show_contexts: bool,
        notebooks: Sequence[str | os.PathLike[str]] | None,
        jobs: int | None,
    ) -> None:
        self.cov = cov
        self.directory = directory
        self.title = title
        self.show_contexts = show_contexts
        self.only = None if notebooks is None else {os.path.realpath(os.path.abspath(n)) for n in notebooks}
        self.jobs = jobs
        self.data = cov.get_data()
        self.branch = self.data.has_arcs()
        self.precision = int(cov.config.precision)

    # -- the whole run ---------------------------------------------------------------------------

    def write(self) -> Path:
        data_file = str(self.cov.get_option("run:data_file"))
        self.data.set_query_contexts(self.cov.config.report_contexts)
        files = report_files(self.cov)
        if not files:
            raise DataFileError(f"No data to report in {data_file}.")
        self._check_plugin(files)
        self.search_dirs = record_search_dirs(data_file)
        assets = self._assets()
        settings = cache_key(
            STATE_FORMAT, ENTRY_FORMAT, _code_version(), __version__, coverage.__version__, sys.version_info[:2],
            os.getcwd(), os.path.abspath(data_file), self.branch, self.show_contexts, self.precision,
            self.cov.config.exclude_list, self.cov.config.partial_list, self.cov.config.partial_always_list,
            self.cov.config.report_contexts, self.title, sorted(assets.items()),
        )
        self.state = state = ReportState.open(self.directory, settings)
        try:
            return self._write(files, assets, data_file)
        finally:
            state.close()

    def _write(self, files: list[str], assets: dict[str, str], data_file: str) -> Path:
        state = self.state
        self.fps: dict[str, str | None] | None = None
        self.ahead: dict[str | None, tuple[bytes | None, str, list[NotebookCell] | None, str]] = {}
        self.snippets_ahead: dict[str, str] = {}
        if state.stubs:  # what changed decides what is analysed
            self.fps = fingerprints(self.cov, files, self.search_dirs)
            todo = [f for f in files if self.fps[f] is None or f not in state.stubs or state.stubs[f].fp != self.fps[f]]
        else:  # nothing to reuse: every file is analysed, and its fingerprint can wait
            todo = list(files)
        try:
            self.fresh = dict(_analyse(self.cov, todo, self.show_contexts, self.jobs, lambda: self._ahead(files)))
        except CoverageException as exc:
            raise DataFileError(f"Can't report {data_file}: {exc}") from exc
        fps = self.fps if self.fps is not None else fingerprints(self.cov, files, self.search_dirs)

        # What is known of every file: its fresh entry, or the columns the state keeps of its last one.
        stubs: list[Stub] = []
        for name in files:
            entry = self.fresh[name] if name in self.fresh else state.stubs[name]
            if entry is None:
                continue  # coverage.py would skip it too (`ignore_errors`)
            entry.fp = fps[name]
            stubs.append(entry)

        self.directory.mkdir(parents=True, exist_ok=True)
        if not any(self.directory.iterdir()):
            (self.directory / ".gitignore").write_text("# Created by nbcov: an HTML coverage report.\n*\n")
        common = Page(self.title, Assets(css=assets["css"], js=assets["js"]), self._footer())
        self.pages: dict[str, PageRecord] = {}
        rows = self._notebook_pages(stubs, common) + self._module_pages(stubs, common)
        self._write_assets(assets)
        index = self._index(rows, common)
        # Only names this module makes are ever removed, whatever an old state file says.
        for stale in state.old_files - set(self.pages) - set(assets.values()):
            if _OURS.fullmatch(stale) and stale != "index.html":
                (self.directory / stale).unlink(missing_ok=True)
        fresh = [e for e in self.fresh.values() if e is not None and e.fp is not None]
        state.save(fresh, {e.name for e in stubs if e.fp is not None}, self.pages, sorted(assets.values()))
        return index

    def _ahead(self, files: list[str]) -> None:
        """What the pages need that needs no analysis, done while forked workers analyse: the
        fingerprints (of a first report), and every notebook read, parsed and its Markdown rendered
        (a first report's Markdown: the import of markdown-it alone is ~0.05 s)."""
        if self.fps is None:
            self.fps = fingerprints(self.cov, files, self.search_dirs)
        paths: set[str] = set()
        for name in files:
            if is_cell_name(name):
                try:
                    record = load_record(name, self.search_dirs)
                except RecordError:
                    continue  # the analysis reports it
                if record.notebook is not None:
                    paths.add(str(notebook_path(record.notebook, name)))
        for path in sorted(paths):
            if self.only is not None and os.path.realpath(path) not in self.only:
                continue
            raw, problem = read_bytes(path)
            cells, parse_problem = parse_notebook(raw)
            self.ahead[path] = (raw, problem, cells, parse_problem)
            self.snippets_ahead.update(markdown_snippets(cells or []))

    def _full(self, stubs: list[Stub]) -> list[Entry]:
        """The complete entries behind `stubs`: fresh ones as they are, the others from the state file."""
        stored = self.state.entries(e.name for e in stubs if e.name not in self.fresh)
        return [self.fresh.get(e.name) or dataclasses.replace(stored[e.name], fp=e.fp) for e in stubs]

    def _fresh_page(self, filename: str, key: str) -> PageRecord | None:
        """The state's record of a page whose inputs are unchanged and whose file is still there."""
        old = self.state.pages.get(filename)
        if old is not None and old.key == key and (self.directory / filename).is_file():
            return old
        return None

    def _check_plugin(self, files: list[str]) -> None:
        if any(is_cell_name(f) for f in files):
            if "nbcov" not in self.cov.config.plugins:
                from nbcov.report import _unconfigured_plugin_message

                raise DataFileError(_unconfigured_plugin_message("nbcov.NbcovPlugin"))

    def _footer(self) -> str:
        return f"nbcov {__version__} · coverage.py {coverage.__version__}"

    # -- pages -------------------------------------------------------------------------------------

    def _notebook_pages(self, stubs: list[Stub], common: Page) -> list[Row]:
        groups: dict[str | None, list[Stub]] = {}
        for entry in stubs:
            if entry.kind == "cell":
                groups.setdefault(entry.notebook_path, []).append(entry)
        if self.only is not None:
            groups = {k: v for k, v in groups.items() if k is not None and os.path.realpath(k) in self.only}
            for wanted in sorted(self.only):
                if wanted not in {os.path.realpath(k) for k in groups if k}:
                    groups[wanted] = []
        rows = []
        names: set[str] = set()
        for path in sorted(groups, key=lambda p: (p is None, self._shown(p, groups[p]))):
            cells = groups[path]
            shown = self._shown(path, cells)
            filename = _unique(("ipython_session" if path is None else _page_name(shown)) + ".html", names)
            raw, problem, nb_cells, parse_problem = self.ahead.get(path) or (*read_bytes(path), None, "")
            inputs = [(e.name, e.fp) for e in cells]
            key = cache_key(self.state.settings, "notebook", shown, path, hashlib.sha256(raw).hexdigest() if raw is not None else None, problem, inputs)
            record = None if None in (e.fp for e in cells) else self._fresh_page(filename, key)
            if record is None:
                entries = self._full(cells)
                nums = numbers(entries, self.precision)
                tests = _sum_tests(entries)
                if path not in self.ahead:
                    nb_cells, parse_problem = parse_notebook(raw)
                problem = parse_problem
                old_snippets = self.state.pages[filename].snippets if filename in self.state.pages else {}
                old_snippets = {**old_snippets, **self.snippets_ahead}
                snippets: dict[str, str] = {}
                html = notebook_page(
                    common, shown, path, nb_cells, problem, entries, nums, self.branch,
                    coverage_internals.human_sorted(tests) if self.show_contexts else [], old_snippets, snippets,
                )
                _write(self.directory / filename, html)
                if path is None:
                    detail = f"terminal IPython · {_plural(len(entries), 'cell')}"
                else:
                    detail = f"notebook · {_plural(len(entries), 'measured cell')}" + (" · file not found" if problem == "missing" else "")
                record = PageRecord(key, Row(filename, shown, "notebook", detail, nums, tests), snippets)
            self.pages[filename] = record
            rows.append(record.row)
        return rows

    def _shown(self, path: str | None, cells: list[Stub]) -> str:
        if path is None:
            return "IPython session (no notebook)"
        if cells and cells[0].notebook:
            return cells[0].notebook
        try:
            return Path(path).relative_to(Path.cwd()).as_posix()
        except ValueError:
            return path

    def _module_pages(self, stubs: list[Stub], common: Page) -> list[Row]:
        rows = []
        names: set[str] = set(self.pages)
        for stub in sorted((e for e in stubs if e.kind == "module"), key=lambda e: e.label):
            filename = _unique(_page_name(stub.label) + ".html", names)
            key = cache_key(self.state.settings, "module", stub.name, stub.fp)
            record = None if stub.fp is None else self._fresh_page(filename, key)
            if record is None:
                (entry,) = self._full([stub])
                tests = coverage_internals.human_sorted(entry.tests) if self.show_contexts else []
                _write(self.directory / filename, module_page(common, entry, entry.nums, self.branch, tests))
                record = PageRecord(key, Row(filename, entry.label, "module", "module", entry.nums, entry.tests), {})
            self.pages[filename] = record
            rows.append(record.row)
        return rows

    def _index(self, rows: list[Row], common: Page) -> Path:
        counted = [r for r in rows]
        totals = coverage_internals.Numbers(precision=self.precision)
        for row in counted:
            totals += row.nums
        tests = coverage_internals.human_sorted({t for r in rows for t in r.tests}) if self.show_contexts else []
        note = ""
        if self.only is not None:
            note = '<p class="note">Only the notebooks named on the command line are reported (and every module).</p>'
        if self.show_contexts and not tests:
            note += '<p class="note">No contexts were measured: there is no test to show.</p>'
        path = self.directory / "index.html"
        _write(path, index_page(common, rows, totals, self.branch, tests, note))
        return path

    # -- assets --------------------------------------------------------------------------------------

    def _assets(self) -> dict[str, str]:
        self._asset_text = {}
        names = {}
        for kind, source in (("css", "nbcov.css"), ("js", "nbcov.js")):
            text = (ASSET_DIR / source).read_text(encoding="utf-8")
            name = f"nbcov_{cache_key(text)[:10]}.{kind}"
            self._asset_text[name] = text
            names[kind] = name
        return names

    def _write_assets(self, names: dict[str, str]) -> None:
        for name in names.values():
            path = self.directory / name
            text = self._asset_text[name]
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                _write(path, text)


# -- analysis, shared with worker processes for large reports ------------------------------------------

def _work(cov: coverage.Coverage, claims: _Claims, show_contexts: bool, out: Any) -> None:
    """A forked worker: analyse files from `claims` and send the entries (or the error) back through `out`."""
    try:
        _own_data(cov)
        result: tuple[bool, Any] = (True, list(analyse_all(cov, claims, show_contexts)))
    except BaseException as exc:  # sent to the parent, which raises it
        result = (False, exc)
    try:
        out.send(result)
    except Exception as exc:  # e.g. an exception that cannot be pickled
        out.send((False, DataFileError(f"The HTML report's worker process failed: {exc!r}")))
    out.close()


def _own_data(cov: coverage.Coverage) -> None:
    """Give a forked worker its own reader of the data file, before anything touches the inherited one.

    coverage.py's CoverageData takes a changed PID for a forked *measuring* process and starts a new,
    empty data file on its next use, erasing the file it was reading. A fresh, read-only object made
    in the worker never does.
    """
    inherited = cov.get_data()
    try:
        fresh = CoverageData(basename=inherited.data_filename(), read_only=True)  # type: ignore[call-arg,unused-ignore]
    except TypeError:  # coverage.py before 7.13
        fresh = CoverageData(basename=inherited.data_filename())
    fresh.read()
    fresh.set_query_contexts(cov.config.report_contexts)
    coverage_internals.replace_data(cov, fresh)


class _Claims:
    """The files to analyse, handed out a batch at a time to whichever process asks first.

    Batches shrink as the list runs out (a third of each process's fair share of what is left, down
    to one file), so the processes finish together even when one of them is slowed down by the
    machine or gets the larger files; fixed shares left one waiting for the other.
    """

    def __init__(self, context: Any, names: list[str], processes: int) -> None:
        self.names = names
        self.processes = processes
        self.taken = context.Value("q", 0)  # shared memory, with a lock, inherited by forked workers

    def __iter__(self) -> Iterator[str]:
        while True:
            with self.taken.get_lock():
                start = self.taken.value
                size = max(1, (len(self.names) - start) // (3 * self.processes))
                self.taken.value = start + size
            if start >= len(self.names):
                return
            yield from self.names[start : start + size]


def _analyse(
    cov: coverage.Coverage, names: list[str], show_contexts: bool, jobs: int | None, meanwhile: Callable[[], None]
) -> Iterable[tuple[str, Entry | None]]:
    """Analyse `names`; large reports are shared between this process and forked ones (one per CPU).

    This process analyses too rather than wait: one fork fewer, and its entries are never pickled.
    It first runs `meanwhile` (work that needs no analysis) while the workers start: files are
    claimed as they go, so the workers simply take a larger share. Alone, it does not run it.
    Plain processes and pipes rather than a pool: a worker that dies (killed, out of memory) is an
    error here at once, where a pool would wait for its lost task forever.
    """
    n = _job_count(jobs, len(names), cov)
    if n <= 1:
        return list(analyse_all(cov, names, show_contexts))
    import multiprocessing  # here: small reports never fork, and it costs a command ~15 ms to import

    context = multiprocessing.get_context("fork")
    claims = _Claims(context, names, n)
    workers = []
    for _ in range(1, n):
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_work, args=(cov, claims, show_contexts, send), daemon=True)
        process.start()
        send.close()
        workers.append((process, receive))
    try:
        meanwhile()
        results = list(analyse_all(cov, claims, show_contexts))
    except BaseException:
        for process, _ in workers:
            process.kill()  # their entries are no longer wanted
        _close(workers)
        raise
    failure: BaseException | None = None
    try:
        for process, receive in workers:
            try:
                ok, payload = receive.recv()
            except EOFError:
                process.join()
                ok, payload = False, DataFileError(
                    f"A worker process of the HTML report died (exit code {process.exitcode})."
                )
            if ok:
                results += payload
            elif failure is None:
                failure = payload
    finally:
        _close(workers)
    if failure is not None:
        raise failure
    return results


def _close(workers: list[tuple[Any, Any]]) -> None:
    """Close the pipes and wait for the workers (done, failed or killed) to exit."""
    for process, receive in workers:
        receive.close()
        process.join()


def _job_count(jobs: int | None, count: int, cov: coverage.Coverage) -> int:
    if jobs is None:
        env = os.environ.get("NBCOV_HTML_JOBS", "")  # a fixed number of processes, whatever the size
        if env.isdigit():
            jobs = int(env)
        elif count < PARALLEL_MIN:
            return 1
        else:
            jobs = min(len(os.sched_getaffinity(0)), 4)
    if jobs <= 1 or count < 2:
        return 1
    # Forking is only safe from a single-threaded process (not inside a Jupyter kernel), and the data
    # must be on disk (an in-memory data file, as `[paths]` remapping makes, cannot be shared).
    import multiprocessing

    if threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if cov.config.paths or not os.path.isfile(cov.get_data().data_filename()):
        return 1
    if not coverage_internals.data_opened(cov):  # a worker could not be given its own reader
        coverage_internals.notice(f"coverage.py {coverage.__version__}: the HTML report is analysed by one process (slower)")
        return 1
    return min(jobs, count)


def _write(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8", "replace"))


@functools.lru_cache(maxsize=1)
def _code_version() -> str:
    """A hash of the code that renders the report: cached pages never outlive a change to it."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(here.glob("*.py")) + [here.parent / "parser.py", here.parent / "cov_plugin.py"]:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _page_name(path: str) -> str:
    """coverage.py's flat name for a path (`z_<hash>_name_py`), reduced to characters safe in a URL."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", coverage_internals.flat_rootname(path))


def _unique(name: str, taken: set[str]) -> str:
    stem, dot, ext = name.rpartition(".")
    candidate, n = name, 1
    while candidate in taken or candidate == "index.html":
        n += 1
        candidate = f"{stem}_{n}{dot}{ext}"
    taken.add(candidate)
    return candidate


def _sum_tests(entries: list[Entry]) -> dict[str, int]:
    tests: dict[str, int] = {}
    for entry in entries:
        for test, count in entry.tests.items():
            tests[test] = tests.get(test, 0) + count
    return dict(sorted(tests.items()))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
