"""nbcov's branch engine: coverage.py-exact arcs from `sys.monitoring` on Python 3.12 and 3.13.

coverage.py measures branches on 3.12/3.13 with its C tracer (a trace function called on every
line: 4-13x slower than no coverage), because `sys.monitoring` there cannot disable one direction
of a branch without the other. This engine plugs a `sys.monitoring` tool into coverage.py's own
Collector in place of that tracer; the data still goes through coverage.py's CoverageData, file
selection, file mapping and contexts, so every report and `combine` works unchanged.

Which engine measures branches is decided by the environment variable ``NBCOV_BRANCH_ENGINE``:

``auto`` (default)
    this engine for ``branch = true`` on 3.12/3.13, unless the user picked a coverage.py tracer core
    (``[run] core`` or ``COVERAGE_CORE`` = ``ctrace``/``pytrace``; ``sysmon`` means this engine), ``timid``, a dynamic context, greenlet-style
    concurrency or a file tracer plugin, which only coverage.py's own cores support. On 3.14+
    coverage.py's ``sysmon`` core measures branches itself, on 3.11 its C tracer does.
``nbcov``
    this engine whenever it can work at all (also when a core was picked).
``coverage``
    never: coverage.py's own choice of core, as without nbcov.

For line coverage under coverage.py's ``sysmon`` core, ``install_lines`` swaps in ``lines.LineMonitor``
(coverage.py's SysMonitor, which also switches off code objects that have no line left to record);
``NBCOV_BRANCH_ENGINE=coverage`` leaves that to coverage.py as well.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, Callable

from nbcov.core import tracer_only_settings

if TYPE_CHECKING:  # the analysis modules load when the engine measures, not in every kernel
    from nbcov.engine.relevance import SourceProvider

ENV_VAR = "NBCOV_BRANCH_ENGINE"
ENGINE_NAME = "nbcov-branch"
_CHOICES = ("auto", "nbcov", "coverage")
SUPPORTED = sys.version_info[:2] in ((3, 12), (3, 13))


def requested() -> str:
    """The engine asked for through NBCOV_BRANCH_ENGINE (an unknown value counts as "auto")."""
    value = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if value not in _CHOICES:
        warnings.warn(f"{ENV_VAR}={value!r} is not one of {', '.join(_CHOICES)}; using auto", RuntimeWarning)
        return "auto"
    return value


def decide(cov: Any) -> tuple[bool, str]:
    """(use the engine?, why) for a configured but not yet started `coverage.Coverage`."""
    choice = requested()
    if choice == "coverage":
        return False, f"{ENV_VAR}=coverage"
    if not SUPPORTED:
        return False, f"Python {sys.version_info.major}.{sys.version_info.minor}: coverage.py's own core measures"
    if not cov.get_option("run:branch"):
        return False, "line coverage: nbcov.core chooses coverage.py's sysmon or default core"
    refusals = tracer_only_settings(cov)
    if not _pluggable(cov):
        refusals.append("this coverage.py version has no place to plug the engine in")
    # `core = sysmon` asks for sys.monitoring's speed, which coverage.py cannot give branches before
    # 3.14 (it falls back to its C tracer); the engine is that, so only ctrace/pytrace are respected.
    core = cov.get_option("run:core")
    if choice == "auto" and core and core != "sysmon":
        refusals.append(f"core = {core} was chosen")
    if refusals:
        why = "; ".join(refusals)
        if choice == "nbcov":
            warnings.warn(f"{ENV_VAR}=nbcov, but coverage.py measures: {why}", RuntimeWarning)
        return False, why
    return True, f"{ENV_VAR}={choice}"


def install(
    cov: Any,
    source_provider: SourceProvider | None = None,
    *,
    force_slow: bool = False,
    mark_imports: bool = True,
) -> bool:
    """Make `cov` (configured, not started) measure with this engine if `decide()` says so.

    coverage.py builds its core and Collector when it first starts, and again after `erase()`; the
    engine is swapped in each time, right after coverage.py built them. `source_provider` gives
    the text of files that are not on disk (notebook cells). `force_slow` measures every code object
    the slow exact way (for tests). Returns whether the engine will measure.
    """
    use, _why = decide(cov)
    if not use:
        return False
    _each_core(cov, lambda: _swap_core(cov, source_provider, force_slow))
    if mark_imports:
        from nbcov.engine.markers import install_import_markers

        cov._nbcov_unmark = install_import_markers(lambda path: _would_trace(cov, path))
    return True


def install_lines(cov: Any) -> bool:
    """Make `cov` (configured, not started) measure lines with `lines.LineMonitor` when coverage.py
    picks its `sysmon` core for line coverage (chosen by the user or by `nbcov.core`).

    Returns whether it can (coverage.py's SysMonitor is as `LineMonitor` expects, and this is line
    coverage); the core itself is only known when coverage.py builds it, at start.
    """
    if cov.get_option("run:branch") or requested() == "coverage" or not SUPPORTED:
        return False
    from nbcov.engine.lines import LineMonitor, usable

    if not usable() or not _pluggable(cov):
        return False

    def swap() -> None:
        from coverage.sysmon import SysMonitor

        if cov._core.tracer_class is SysMonitor:
            cov._core.tracer_class = LineMonitor

    _each_core(cov, swap)
    return True


def _pluggable(cov: Any) -> bool:
    """Does this Coverage build its core where `_each_core` can follow it (coverage.py 7.x)?"""
    return all(hasattr(cov, name) for name in ("_init_for_start", "_inited_for_start"))


def _each_core(cov: Any, swap: Callable[[], None]) -> None:
    """Call `swap` each time coverage.py builds `cov`'s core (at its first start and after `erase()`),
    right after it did; and now, if it already has."""
    original: Callable[[], None] = cov._init_for_start

    def init_for_start() -> None:
        original()
        swap()

    cov._init_for_start = init_for_start
    if cov._inited_for_start:
        swap()


def uninstall(cov: Any) -> None:
    """Remove the import hook `install()` added (the Coverage object itself is left as it is)."""
    undo = getattr(cov, "_nbcov_unmark", None)
    if undo is not None:
        undo()
        cov._nbcov_unmark = None


def _would_trace(cov: Any, path: str) -> bool:
    inorout = getattr(cov, "_inorout", None)
    if inorout is None or not getattr(cov, "_started", False):
        return False
    disp = inorout.should_trace(path, None)
    return bool(disp.trace)


def _swap_core(cov: Any, source_provider: SourceProvider | None, force_slow: bool) -> None:
    from coverage.disposition import FileDisposition

    from nbcov.engine.monitor import BranchMonitor

    core = cov._core
    core.tracer_class = BranchMonitor
    core.tracer_kwargs = {"source_provider": source_provider, "force_slow": force_slow}
    core.file_disposition_class = FileDisposition
    core.supports_plugins = False
    core.supports_dynamic_contexts = True  # restart() makes per-context data exact
    core.packed_arcs = False
    core.systrace = False
    cov._inorout.disp_class = FileDisposition


def active_monitor(cov: Any) -> Any:
    """The engine's tracer measuring for `cov` now, or None."""
    collector = getattr(cov, "_collector", None)
    from nbcov.engine.monitor import BranchMonitor

    for tracer in reversed(getattr(collector, "tracers", None) or []):
        if isinstance(tracer, BranchMonitor):
            return tracer
    return None


def rearm(cov: Any) -> str | None:
    """Turn measuring back on if code in a cell turned `cov`'s sys.monitoring tool off behind its back.

    `sys.monitoring.free_tool_id` on coverage.py's id leaves its callbacks registered on 3.12/3.13,
    and each new code object then made coverage.py raise ValueError in the user's cell;
    `set_events(id, 0)` silently ended measuring. Either way the tracer is started again as after a
    stop, which re-registers its callbacks and events and re-instruments the code it measured.
    Returns what had happened (for the message), or None when all is well. Costs two C calls.
    """
    if not SUPPORTED:
        return None
    from coverage.sysmon import SysMonitor

    monitor = sys.modules.get("nbcov.engine.monitor")  # not imported: no branch engine measures here
    BranchMonitor = getattr(monitor, "BranchMonitor", type(None))  # noqa: N806
    collector = getattr(cov, "_collector", None)
    for tracer in getattr(collector, "tracers", None) or []:
        if isinstance(tracer, SysMonitor):  # coverage.py's, or lines.LineMonitor
            name, on = "coverage.py", tracer.sysmon_on
        elif isinstance(tracer, BranchMonitor):
            name, on = "nbcov", tracer.myid is not None
        else:
            continue
        if not on:
            continue
        myid = tracer.myid
        owner = sys.monitoring.get_tool(myid)
        if owner == name and sys.monitoring.get_events(myid):
            continue
        if owner == name:
            what = "its events were switched off (sys.monitoring.set_events)"
            tracer.stop()
        else:
            what = "its tool id was freed (sys.monitoring.free_tool_id)" if owner is None else \
                f"its tool id was taken by {owner!r}"
            _forget_tool(tracer)
        tracer.start()
        return f"coverage.py's sys.monitoring tool was turned off: {what}"
    return None


def _forget_tool(tracer: Any) -> None:
    """Mark a tracer whose tool id is no longer its own as stopped, so that `start()` claims one again."""
    if hasattr(tracer, "sysmon_on"):
        tracer.sysmon_on = False
    else:
        tracer.myid = None


def restart(cov: Any) -> None:
    """After `cov.switch_context()`: record every line or arc again, under the new context.

    coverage.py's sysmon core records each line once and then disables its event, and nbcov's
    monitors go further (they remove a code object's events once it has nothing left to record),
    so without this a second context running the same line would record nothing.
    """
    collector = getattr(cov, "_collector", None)
    tracers = getattr(collector, "tracers", None) or []
    restartable = [t for t in tracers if hasattr(t, "restart")]
    for tracer in restartable:
        tracer.restart()
    if not restartable:
        sys.monitoring.restart_events()  # coverage.py's own SysMonitor (it needs no more)
