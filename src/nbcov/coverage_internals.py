"""The coverage.py names nbcov uses that are not coverage.py's documented API, each probed once.

coverage.py documents `Coverage`, `CoverageData`, plugins and reporters; anything else may move in a
minor release. Each function here says which coverage.py versions it was checked on and falls back
to coverage.py's own documented behaviour when a probe fails, saying once in one line (`notice`)
what is slower or missing — never an exception for the user. Grouped by capability: notices, the
core swap (nbcov's tracers built in place of coverage.py's), plugins, the Collector (another
measurement in the kernel), reporting (file reporters, analysis, the tokenizer hand-over) and
start-up (the stack snapshot, the Coverage a plugin starts in, coverage.py's exit handler).

nbcov's `engine.lines.LineMonitor` subclasses coverage.py's SysMonitor; the subclass stays in the
engine (it is nbcov's tracer, not a use of a name), built from the class object `sysmon_class()`
hands out after checking the attributes the subclass relies on. `tests/test_seam.py` fails when any
other module reaches a coverage.py name outside its documented API.
"""

from __future__ import annotations

import contextlib
import re
import functools
import inspect
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from types import FrameType
from typing import Any, Literal


@functools.cache
def _analyze_takes_file_reporter() -> bool:
    import coverage

    return "file_reporter" in inspect.signature(coverage.Coverage._analyze).parameters


def analyze(cov: Any, name: str, file_reporter: Any) -> Any:
    """coverage.py's `Analysis` of one measured file, with the file reporter already asked for.

    Checked on coverage 7.10-7.17: `_analyze(morf, file_reporter=...)` from 7.16; before, `_analyze(morf)`
    asks `_get_file_reporter(morf)` again, whose one-entry cache returns the same reporter.
    """
    if _analyze_takes_file_reporter():
        return cov._analyze(name, file_reporter=file_reporter)
    return cov._analyze(name)


def close_data(data: Any) -> None:
    """Close a `CoverageData`'s SQLite connections now, so the file is complete and unlocked.

    `CoverageData.close()` exists from coverage 7.11 (checked on 7.10 and 7.17); before it, the
    connections close when the object is garbage-collected, which `del` does at once in CPython.
    """
    close = getattr(data, "close", None)
    if close is not None:
        close()


def copy_config(config: Any) -> Any:
    """A copy of a `CoverageConfig`, to change for other processes without touching this one's.

    Through coverage.py's own serialization (what `patch = subprocess` hands children; checked on
    7.10.6 and 7.17).
    """
    return read_config(config.serialize())


def read_config(text: str) -> Any:
    """The `CoverageConfig` a serialized one (`COVERAGE_PROCESS_CONFIG`) stands for.

    `CoverageConfig.deserialize` in later 7.x, `coverage.config.deserialize_config` in 7.10
    (checked on 7.10.6 and 7.17).
    """
    from coverage import config as config_module

    deserialize = getattr(config_module.CoverageConfig, "deserialize", None)
    if deserialize is None:
        deserialize = getattr(config_module, "deserialize_config")
    return deserialize(text)


# == Notices ===================================================================================

# A probe that fails is said once per process, in one line, by what it costs the user; nbcov goes on
# with coverage.py's own behaviour instead.

_said: dict[str, None] = {}  # in the order said


def notice(message: str) -> None:
    """Say once, in one line on stderr (a cell's output in a kernel), what this coverage.py costs."""
    if message in _said:
        return
    _said[message] = None
    print(f"nbcov: {message}", file=sys.stderr)


def notices() -> list[str]:
    """What `notice` said in this process (`%nbcov status` repeats it: a kernel that `nbcov run` starts
    loads nbcov before any cell, where nothing shows what it prints)."""
    return list(_said)


def _probe(check: Callable[[], bool]) -> bool:
    """A probe's answer; any error counts as "not as nbcov expects" (never an exception for the user)."""
    try:
        return bool(check())
    except Exception:
        return False


# == Core swap ========================================================================================
# coverage.py builds its core (which tracer class, with which settings) in `Coverage._init_for_start`,
# at the first `start()` and after `erase()`; nbcov swaps its own tracers in right after that.
# Checked on coverage 7.10-7.17.

#: What coverage.py's `Core` object offers and nbcov sets (coverage/core.py).
_CORE_FIELDS = ("tracer_class", "tracer_kwargs", "file_disposition_class", "supports_plugins",
                "supports_dynamic_contexts", "packed_arcs", "systrace")


@functools.cache
def _core_swappable() -> bool:
    def check() -> bool:
        import coverage
        from coverage import core as core_module

        return (callable(inspect.getattr_static(coverage.Coverage, "_init_for_start", None))
                and "_inited_for_start" in coverage.Coverage.start.__code__.co_names
                and "tracer_class" in getattr(core_module.Core, "__annotations__", {}))

    return _probe(check)


def core_swappable(cov: Any, instead: str) -> bool:
    """Can nbcov swap `cov`'s core for its own tracer? If not, says `instead` once (what is slower).
    Checked on coverage 7.10.0 and 7.17.5."""
    if _core_swappable() and hasattr(cov, "_inited_for_start"):
        return True
    notice(f"coverage.py {_version()} builds its core where nbcov cannot reach it: {instead}")
    return False


def each_core(cov: Any, swap: Callable[[Any], None]) -> None:
    """Call `swap(core)` each time coverage.py builds `cov`'s core (first start, after `erase()`),
    right after it did; and now, if it already has. Only after `core_swappable(cov)`.
    Checked on coverage 7.10.0 and 7.17.5."""
    original: Callable[[], None] = cov._init_for_start

    def init_for_start() -> None:
        original()
        swap(cov._core)

    cov._init_for_start = init_for_start
    if cov._inited_for_start:
        swap(cov._core)


def set_core(core: Any, **fields: Any) -> None:
    """Set fields of coverage.py's `Core` (see `_CORE_FIELDS`) as it was just built.
    Checked on coverage 7.10.0 and 7.17.5."""
    unknown = set(fields) - set(_CORE_FIELDS)
    if unknown:
        raise TypeError(f"not a field of coverage.py's Core: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(core, name, value)


def use_disposition_class(cov: Any, disposition_class: type) -> None:
    """Make `cov`'s file selection build `disposition_class` (with the tracer's core, at start).
    Checked on coverage 7.10.0 and 7.17.5."""
    cov._inorout.disp_class = disposition_class


def file_disposition_class() -> type:
    """coverage.py's pure-Python `FileDisposition` (what its sysmon and Python-tracer cores use).
    Checked on coverage 7.10.0 and 7.17.5."""
    from coverage.disposition import FileDisposition

    return FileDisposition


#: The attributes of coverage.py's SysMonitor a subclass relies on (checked before using one).
#: (`should_trace` and `should_trace_cache` too, which coverage.py's Collector sets on every tracer.)
SYSMON_NEEDS = ("sysmon_line_lines", "sysmon_py_start", "code_infos", "lock", "sysmon_on", "myid")


@functools.cache
def sysmon_class() -> type | None:
    """coverage.py's `sys.monitoring` tracer class (`coverage.sysmon.SysMonitor`), or None.

    None where it is missing or not as nbcov's `engine.lines` expects: built as coverage.py builds it
    (7.10-7.14 require the `tool_id` it measures under; building one registers nothing) and checked
    for `SYSMON_NEEDS`. Checked on coverage 7.10-7.17.
    """
    if not hasattr(sys, "monitoring"):
        return None
    try:
        from coverage.sysmon import SysMonitor

        wants_tool_id = "tool_id" in inspect.signature(SysMonitor.__init__).parameters
        probe = SysMonitor.__new__(SysMonitor)
        SysMonitor.__init__(probe, **({"tool_id": sys.monitoring.COVERAGE_ID} if wants_tool_id else {}))
    except Exception:
        return None
    found: type = SysMonitor
    return found if all(hasattr(probe, name) for name in SYSMON_NEEDS) else None


CoverageCore = Literal["ctrace", "pytrace", "sysmon"]


def coverage_core(cov: Any) -> CoverageCore | None:
    """Which of coverage.py's own cores `cov` built (None: not started, or not one of coverage.py's).

    From the class of the core's tracer (coverage 7.5-7.17: `cov._core.tracer_class`), else from the
    name `sys_info()` reports.
    """
    tracer = getattr(getattr(cov, "_core", None), "tracer_class", None)
    if tracer is None:
        tracer_name = str(dict(cov.sys_info()).get("core", ""))
    else:
        # The class or, for nbcov's LineMonitor, its base: coverage.py's own (CTracer's module is "coverage").
        tracer_name = next((c.__name__ for c in getattr(tracer, "__mro__", ())
                            if c.__module__.split(".")[0] == "coverage"), "")
    cores: dict[str, CoverageCore] = {"CTracer": "ctrace", "PyTracer": "pytrace", "SysMonitor": "sysmon"}
    return cores.get(tracer_name)


# == Plugins ==========================================================================================


@functools.cache
def _plugins_readable() -> bool:
    import coverage

    return _probe(lambda: callable(inspect.getattr_static(coverage.Coverage, "_init", None)))


def has_file_tracer_plugin(cov: Any) -> bool:
    """Does `cov`'s configuration load a file tracer plugin (which only coverage.py's C tracer runs)?

    Loads the configuration and plugins (`cov._init()`, which `start()` does anyway; coverage
    7.10-7.17). Where that cannot be asked, any configured plugin counts: coverage.py's own core
    then measures, which supports them all.
    """
    if _plugins_readable():
        cov._init()
        plugins = getattr(cov, "_plugins", None)
        tracers = getattr(plugins, "file_tracers", None)
        if isinstance(tracers, list):
            return bool(tracers)
    configured = [p for p in (cov.get_option("run:plugins") or []) if p not in ("nbcov", "nbcov.processes")]
    return bool(configured)


# == Collector ========================================================================================
# coverage.py's Collector runs the tracers of one Coverage; `Collector._collectors` is its stack
# (starting a Coverage pauses the one below). Checked on coverage 7.10-7.17.


def collector(cov: Any) -> Any:
    """`cov`'s Collector, or None (not started yet, or not found in this coverage.py).
    Checked on coverage 7.10.0 and 7.17.5."""
    return getattr(cov, "_collector", None)


def tracers(cov: Any) -> list[Any]:
    """The tracers `cov`'s Collector runs now (one per thread), oldest first.
    Checked on coverage 7.10.0 and 7.17.5."""
    found = getattr(collector(cov), "tracers", None)
    return list(found) if isinstance(found, list) else []


def collector_class() -> type | None:
    """coverage.py's Collector class (to wrap its flush), or None. Checked on coverage 7.10.0 and 7.17.5."""
    try:
        from coverage.collector import Collector
    except ImportError:
        return None
    found: type = Collector
    return found


def collector_stack() -> list[Any]:
    """The Collectors started in this process, innermost last ([] where coverage.py keeps none).
    Checked on coverage 7.10.0 and 7.17.5."""
    stack = getattr(collector_class(), "_collectors", None)
    return stack if isinstance(stack, list) else []


def systrace(coll: Any) -> bool:
    """Does this Collector's core take `sys.settrace` (the one tracer slot per thread)? Unknown: yes.
    Checked on coverage 7.10.0 and 7.17.5."""
    return bool(getattr(getattr(coll, "core", None), "systrace", True))


def unflushed(coll: Any) -> dict[str, set[Any]]:
    """What a stopped Collector measured but did not hand to its data yet: {file: lines or arcs}.

    Empty where its arcs are packed (the C tracer's: they wait for its own flush) or unknown.
    Checked on coverage 7.10.0 and 7.17.5.
    """
    raw = getattr(coll, "data", None)
    packed = bool(getattr(getattr(coll, "core", None), "packed_arcs", False))
    if not isinstance(raw, dict) or (getattr(coll, "branch", False) and packed):
        return {}
    return {path: set(points) for path, points in list(raw.items())}


def measures_branches(coll: Any) -> bool:
    """Checked on coverage 7.10.0 and 7.17.5."""
    return bool(getattr(coll, "branch", False))


def would_trace(cov: Any, path: str) -> bool:
    """Would started `cov` measure a module at `path` (its source/include/omit)? False when unknown.
    Checked on coverage 7.10.0 and 7.17.5."""
    inorout = getattr(cov, "_inorout", None)
    if inorout is None or not getattr(cov, "_started", False):
        return False
    try:
        return bool(inorout.should_trace(path, None).trace)
    except Exception:
        return False


def selected(cov: Any, path: str) -> bool:
    """Does `cov`'s source/include/omit select `path`? False when this coverage.py cannot say.
    Checked on coverage 7.10.0 and 7.17.5."""
    check = getattr(getattr(cov, "_inorout", None), "check_include_omit_etc", None)
    if check is None:
        return False
    try:
        return check(path, None) is None
    except Exception:
        return False


def data_file_opening_hook() -> str | None:
    """The Coverage method that first opens its data file (`_init_data`, 7.10-7.17), or None."""
    import coverage

    return "_init_data" if "_init_data" in coverage.Coverage.__dict__ else None


def data_opened(cov: Any) -> bool:
    """Checked on coverage 7.10.0 and 7.17.5."""
    return getattr(cov, "_data", None) is not None


def in_memory(data: Any) -> bool:
    """Is this CoverageData kept in memory only (`no_disk=True`)? Checked on coverage 7.10.0 and 7.17.5."""
    return bool(getattr(data, "_no_disk", False))


def wrap_combinable_files(keep: Callable[[str], bool]) -> Callable[[], None]:
    """Make `coverage combine` (coverage.data.combinable_files) skip the files `keep` refuses; returns the undo.

    Checked on coverage 7.10-7.17; where the function is missing, combine is left as it is.
    """
    from coverage import data as data_module

    original = getattr(data_module, "combinable_files", None)
    if original is None:
        notice(f"coverage.py {_version()}: another tool's `coverage combine` may also combine nbcov's data files")
        return lambda: None
    data_module.combinable_files = functools.wraps(original)(
        lambda *args, **kwargs: [p for p in original(*args, **kwargs) if keep(p)]
    )
    return lambda: setattr(data_module, "combinable_files", original)


# == Reporting: file reporters and analysis ============================================================


def file_reporter(cov: Any, name: str) -> Any:
    """The FileReporter coverage.py reports a measured file with (`_get_file_reporter`, 7.10-7.17)."""
    return cov._get_file_reporter(name)


def warn(cov: Any, message: str, slug: str) -> None:
    """Warn as coverage.py's reports do (its `disable_warnings` applies); plain warning where it cannot.
    Checked on coverage 7.10.0 and 7.17.5."""
    coverage_warn = getattr(cov, "_warn", None)
    if coverage_warn is None:
        warnings.warn(message, stacklevel=2)
    else:
        coverage_warn(message, slug=slug)


def analysis_to_report(cov: Any, morfs: list[Any] | None) -> list[tuple[Any, Any]]:
    """(file reporter, analysis) of each file a coverage.py report would show, in its order, with its
    errors handled as its reports handle them (`coverage.report_core.get_analysis_to_report`, 7.10-7.17)."""
    try:
        from coverage.report_core import get_analysis_to_report
    except ImportError:
        notice(f"coverage.py {_version()} has no report_core: nbcov's reports list every measured file, "
               "without coverage.py's own selection and error handling")
        return [(fr, analyze(cov, fr.filename, fr)) for fr in
                sorted((file_reporter(cov, name) for name in cov.get_data().measured_files()),
                       key=lambda fr: fr.relative_filename())]
    return list(get_analysis_to_report(cov, morfs))


@contextlib.contextmanager
def tokenized_once() -> Iterator[None]:
    """Let coverage.py tokenize each file once for a report, where it would tokenize it twice.

    Its parser (`parser.PythonParser`) and its token lines for highlighting
    (`phystokens.source_token_lines`) each call `phystokens.generate_tokens` on the same text; the
    second tokenizing is a tenth of a report's time. While this is active, that function keeps the
    tokens of the last text it was given and hands them out again for the same text. Outside a
    report (and if someone else replaced the function, or this coverage.py tokenizes elsewhere)
    coverage.py is left as it is. Checked on coverage 7.10-7.17.
    """
    try:
        import coverage.parser as parser_module
        import coverage.phystokens as tokens_module

        original = tokens_module.generate_tokens
        handed_over = getattr(parser_module, "generate_tokens") is original
    except (ImportError, AttributeError):
        handed_over = False
    if not handed_over:
        yield
        return
    last: list[Any] = [None, []]  # the text, its tokens

    def generate_tokens(text: str) -> Iterator[Any]:
        if last[0] != text:
            last[1] = list(original(text))  # raises as the original would, before any token is used
            last[0] = text
        return iter(last[1])

    # Both names: the parser imported the function into its own module.
    for module in (parser_module, tokens_module):
        setattr(module, "generate_tokens", generate_tokens)
    try:
        yield
    finally:
        for module in (parser_module, tokens_module):
            setattr(module, "generate_tokens", original)


# == Start-up ========================================================================================


def start_without_stack_snapshot(cov: Any) -> None:
    """`cov.start()`, without coverage.py's debugging snapshot of the call stack when debugging is off.

    coverage.py's Collector keeps `short_stack()` as a note of who created it (coverage 7.10-7.17:
    `coverage.collector.short_stack`); that calls `inspect.stack()` (~0.06 s in a kernel). Only its
    debug output reads the note. Where the name is not there, `start()` is coverage.py's own.
    """
    from coverage import collector as collector_module

    original = getattr(collector_module, "short_stack", None)
    if original is None or cov.config.debug:
        cov.start()
        return
    setattr(collector_module, "short_stack", lambda *args, **kwargs: "(call stack not recorded by nbcov)")
    try:
        cov.start()
    finally:
        setattr(collector_module, "short_stack", original)


def starting_coverage() -> Any:
    """The Coverage whose start is loading the calling plugin, or None.

    coverage.py hands plugins no reference to it; its plugin loading runs inside a method of the
    Coverage (`self` in a frame above; coverage 7.10-7.17).
    """
    import coverage

    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, coverage.Coverage):
            return candidate
        frame = frame.f_back
    return None


def in_coverage_atexit(frame: Any) -> bool:
    """Is `frame` coverage.py's exit handler (`Coverage._atexit`, 7.10-7.17) or code it called?"""
    import coverage

    here = os.path.dirname(os.path.abspath(coverage.__file__))
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_atexit" and os.path.dirname(os.path.abspath(code.co_filename)) == here:
            return True
        frame = frame.f_back
    return False


def _version() -> str:
    import coverage

    return str(coverage.__version__)


def data_schema_version() -> int | None:
    """The SQLite schema version coverage.py's data files have (`coverage.sqldata.SCHEMA_VERSION`:
    7 in coverage 7.10-7.17), or None where it is not said (nbcov then reads them through the API)."""
    try:
        from coverage.sqldata import SCHEMA_VERSION
    except ImportError:
        return None
    return SCHEMA_VERSION if isinstance(SCHEMA_VERSION, int) else None


def connection_held(data: Any) -> contextlib.AbstractContextManager[Any]:
    """Keep a CoverageData's connection open over many queries (`CoverageData._connect()`, coverage
    7.10-7.17); where it is missing, each query opens its own, as coverage.py does."""
    connect = getattr(data, "_connect", None)
    return connect() if connect is not None else contextlib.nullcontext()


# == coverage.py's Python analysis =====================================================================


def parsed_python(text: str, exclude: str | None = None) -> PythonParser:
    """coverage.py's parser, run on Python source `text` (lines matching `exclude` excluded): its `arcs()`,
    `exit_counts()` and `first_line(line)` are what coverage.py's reports use (`coverage.parser.PythonParser`,
    checked on coverage 7.10.0 and 7.17.5). Raises what the parser raises (the caller stays conservative)."""
    parser = PythonParser(text=text, exclude=exclude)
    parser.parse_source()
    return parser


def python_source(filename: str) -> str | None:
    """The source coverage.py would report for a Python file on disk, as it reads it (encoding
    declarations, a trailing newline; `coverage.python.get_python_source`, checked on coverage 7.10.0
    and 7.17.5), or None when it cannot read it."""
    try:
        from coverage.python import get_python_source

        return str(get_python_source(filename))
    except Exception:
        return None


def started(cov: Any) -> bool:
    """Has `cov` been started and not stopped (`Coverage._started`, coverage 7.10.0-7.17.5)? True when
    this coverage.py does not say (the caller then acts as if it measures)."""
    return bool(getattr(cov, "_started", True))


# == Reporting: coverage.py's helpers nbcov's reports share with its own ================================
# Classes used as types and values are re-exported (an import error here would be coverage.py's own:
# its reports import them too); functions fall back to a plain equivalent, saying what is lost.

from coverage.jsonreport import JsonReporter as JsonReporter  # noqa: E402  (7.10.6, 7.17.5)
from coverage.parser import PythonParser as PythonParser  # noqa: E402  (7.10.6, 7.17.5)
from coverage.results import Analysis as Analysis, Numbers as Numbers  # noqa: E402  (7.10.6, 7.17.5)


def flat_rootname(path: str) -> str:
    """The name coverage.py gives a file's HTML page (`coverage.files.flat_rootname`, checked on
    coverage 7.10.6 and 7.17.5), so nbcov's pages are named as its; a hash of the path where missing."""
    try:
        from coverage.files import flat_rootname as coverage_flat_rootname
    except ImportError:
        import hashlib

        digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        return f"z_{digest}_{os.path.basename(path).replace('.', '_')}"
    return str(coverage_flat_rootname(path))


def human_sorted(strings: Iterable[str]) -> list[str]:
    """Sorted as coverage.py's reports sort names, "test2" before "test10" (`coverage.misc.human_sorted`,
    checked on coverage 7.10.6 and 7.17.5); plainly sorted where missing."""
    try:
        from coverage.misc import human_sorted as coverage_human_sorted
    except ImportError:
        return sorted(strings)
    return list(coverage_human_sorted(strings))


def join_regex(regexes: Iterable[str]) -> str:
    """One regex matching any of `regexes`, as coverage.py joins `exclude_lines` (`coverage.misc.join_regex`,
    checked on coverage 7.10.6 and 7.17.5; the same join where missing)."""
    try:
        from coverage.misc import join_regex as coverage_join_regex
    except ImportError:
        regexes = list(regexes)
        return regexes[0] if len(regexes) == 1 else "|".join(f"(?:{r})" for r in regexes)
    return str(coverage_join_regex(regexes))


def report_matcher(patterns: Iterable[str], name: str) -> Callable[[str], bool]:
    """Does a file name match `[report] include/omit` patterns, as coverage.py's reports match them?
    (`coverage.files.GlobMatcher(prep_patterns(...))`, checked on coverage 7.10.6 and 7.17.5; fnmatch on
    the patterns, relative ones made absolute, where missing.)"""
    patterns = list(patterns)
    try:
        from coverage.files import GlobMatcher, prep_patterns
    except ImportError:
        import fnmatch

        notice(f"coverage.py {_version()}: [report] include/omit are matched with fnmatch, not coverage.py's rules")
        absolute = [p if p.startswith(("*", os.sep)) else os.path.abspath(p) for p in patterns]
        return lambda path: any(fnmatch.fnmatch(path, p) for p in absolute)
    matcher = GlobMatcher(prep_patterns(patterns), name)
    return lambda path: bool(matcher.match(path))


def format_lines(statements: Iterable[int], lines: Iterable[int], arcs: list[tuple[int, list[int]]]) -> str:
    """The "Missing" column of coverage.py's text report: ranges, then branches "12->15"
    (`coverage.results.format_lines`, checked on coverage 7.10.6 and 7.17.5); a plain list where missing."""
    try:
        from coverage.results import format_lines as coverage_format_lines
    except ImportError:
        return ", ".join([str(n) for n in sorted(lines)] + [f"{a}->{b}" for a, ends in arcs for b in ends])
    return str(coverage_format_lines(statements, lines, arcs=arcs))


def source_token_lines(text: str) -> list[list[tuple[str, str]]]:
    """Python source as coverage.py highlights it: per line, (token class, text) pairs
    (`coverage.phystokens.source_token_lines`, checked on coverage 7.10.6 and 7.17.5). Raises what its
    tokenizer raises; where missing, each line is plain text (and that is said once)."""
    try:
        from coverage.phystokens import source_token_lines as coverage_token_lines
    except ImportError:
        notice(f"coverage.py {_version()}: nbcov's HTML report shows notebook code without syntax highlighting")
        return [[("txt", line)] for line in text.splitlines()]
    return [list(line) for line in coverage_token_lines(text)]


def code_regions(text: str) -> list[Any]:
    """The functions and classes of Python source, as coverage.py's reports list them
    (`coverage.regions.code_regions`, checked on coverage 7.10.6 and 7.17.5); none where missing."""
    try:
        from coverage.regions import code_regions as coverage_code_regions
    except ImportError:
        notice(f"coverage.py {_version()}: function and class reports do not list notebook cells' functions")
        return []
    return list(coverage_code_regions(text))


def path_mapper(aliases: Iterable[tuple[str, str]]) -> Callable[[str], str]:
    """coverage.py's `[paths]` remapping of file names, from (pattern, result) pairs
    (`coverage.files.PathAliases`, checked on coverage 7.10.6 and 7.17.5); names kept where missing."""
    try:
        from coverage.files import PathAliases
    except ImportError:
        notice(f"coverage.py {_version()}: nbcov combine does not apply [paths] to module files")
        return lambda name: name
    mapper = PathAliases(relative=False)
    for pattern, result in aliases:
        mapper.add(pattern, result)
    return lambda name: str(mapper.map(name))


def replace_data(cov: Any, data: Any) -> None:
    """Make `cov` report from `data` (another CoverageData of the same file). Only where
    `data_opened(cov)` said yes (`Coverage._data`, checked on coverage 7.10.6 and 7.17.5)."""
    cov._data = data


def create_pth_files() -> list[Any]:
    """Write the `.pth` file that starts coverage.py in new Pythons (`coverage.patch.create_pth_files`,
    7.10-7.12; 7.13+ ship one; checked on coverage 7.10.6 and 7.17.5); the paths written, [] where missing."""
    try:
        from coverage import patch
    except ImportError:
        return []
    create = getattr(patch, "create_pth_files", None)
    return list(create()) if create is not None else []


# == In-memory data (coverage 7.10-7.16) ===============================================================


@functools.cache
def _erase_keeps_memory_data() -> bool:
    """Whether `erase()` on an in-memory `CoverageData` leaves its rows in the database (probed once)."""
    from coverage import CoverageData

    probe = CoverageData(no_disk=True)
    probe.add_lines({"/nbcov-probe.py": [1]})
    probe.erase()
    copy = CoverageData(no_disk=True)
    copy.update(probe)  # reads the database itself, not the object's cache of file names
    kept = bool(copy.measured_files())
    close_data(probe)
    close_data(copy)
    return kept


def erase_memory_data(data: Any) -> None:
    """Empty an in-memory `CoverageData` (what `Coverage.get_data()` returns when there is no data file).

    coverage 7.10.6 (checked) `erase()` forgets only its cache of file names and keeps the SQLite
    connection, so the rows stay and the next `update()` from it copies them again, under the
    kernel's raw cell file names ("No source for code" at report time). Closing the connection
    first ends the in-memory database, as `erase()` itself does in later 7.x (checked on 7.17).
    """
    if _erase_keeps_memory_data():
        data.close(force=True)
    data.erase()


def close_memory_data(data: Any) -> None:
    """Close an in-memory `CoverageData` now, with the databases it attached.

    `CoverageData.update(other)` ATTACHes `other`'s database and, before coverage 7.17, never
    DETACHes it (checked on 7.14.0 and 7.16.0; 7.17.0 detaches): while the updated data stays open,
    an in-memory `other` keeps its rows through `erase()`. `close()` alone leaves in-memory
    databases open; `force=True` (7.10.6-7.17) closes them.
    """
    data.close(force=True)


def multiline_map(parser: Any) -> dict[int, int]:
    """Each continuation line of a parsed file's multi-line statements → the statement's first line.

    `PythonParser.multiline_map` in later 7.x, `PythonParser._multiline` in 7.10 (checked on 7.10.6
    and 7.17.5); {} when a reporter has no such parser (continuation lines are then drawn plain).
    """
    found = getattr(parser, "multiline_map", None)
    if found is None:
        found = getattr(parser, "_multiline", None)
    return dict(found or {})


#: The ending coverage.py gives a parallel piece's name (`sqldata.filename_suffix`): `.<host>.<pid>.X<random>x`
#: in 7.10, `.<host>.pid<pid>.X<random>x` later, plus `.H<hash>h` once written in 7.17.
_PIECE_SUFFIX = re.compile(r"\.(?:pid)?(\d+)\.X\w+x(?:\.H\w+h)?\Z")


def piece_pid(name: str) -> int | None:
    """The process id in a parallel piece's file name, or None when the name is not one of coverage.py's.

    Checked on coverage 7.10.6 (`host.1234.Xabcx`) and 7.17.5 (`host.pid1234.Xabcx.Hdefh`).
    """
    match = _PIECE_SUFFIX.search(name)
    return int(match.group(1)) if match is not None else None


#: coverage.py's tracer module whose code holds a lock that is not reentrant (`SysMonitor.lock`) while it
#: runs: on each new code object (`sysmon_py_start`) and in `start`/`stop`. Code that stops measuring
#: (`Coverage.stop()` takes that lock) must not run inside it, as a signal handler would.
_TRACER_FILES = frozenset({"sysmon.py"})


def in_tracer(frame: Any) -> bool:
    """Whether `frame` (a signal handler's interrupted frame) or one of its callers is coverage.py's tracer.

    Checked on coverage 7.10.6 and 7.17.5 (the lock is taken in sysmon.py only; the C and Python
    tracers have none).
    """
    folder = _coverage_folder()
    while frame is not None:
        filename = frame.f_code.co_filename
        if os.path.basename(filename) in _TRACER_FILES and os.path.dirname(os.path.abspath(filename)) == folder:
            return True
        frame = frame.f_back
    return False


@functools.cache
def _coverage_folder() -> str:
    import coverage

    return os.path.dirname(os.path.abspath(coverage.__file__))
