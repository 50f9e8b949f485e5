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

Every coverage.py internal the swap needs (its core, Collector, SysMonitor class) is reached through
`nbcov.coverage_internals`; where this coverage.py does not offer it, coverage.py's own core measures
and one line says what is slower.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import TYPE_CHECKING, Any

from nbcov import core, coverage_internals
from nbcov.core import tracer_only_settings

if TYPE_CHECKING:  # the analysis modules load when the engine measures, not in every kernel
    from nbcov.engine.relevance import SourceProvider

ENV_VAR = "NBCOV_BRANCH_ENGINE"
#: The engine's tracer class, as coverage.py's debug output (`coverage debug sys`, `sys_info()["core"]`)
#: names every core: by its class, as it names `LineMonitor` (nbcov's words for users come from `nbcov.core`).
ENGINE_NAME = "BranchMonitor"
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
    # `core = sysmon` asks for sys.monitoring's speed, which coverage.py cannot give branches before
    # 3.14 (it falls back to its C tracer); the engine is that, so only ctrace/pytrace are respected.
    core = cov.get_option("run:core")
    if choice == "auto" and core and core != "sysmon":
        refusals.append(f"core = {core} was chosen")
    if not refusals and not coverage_internals.core_swappable(
        cov, "branches are measured by coverage.py's C tracer (4-13x slower than nbcov's branch engine)"
    ):
        refusals.append("this coverage.py version has no place to plug the engine in")
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
    coverage_internals.each_core(cov, lambda built: _swap_core(cov, built, source_provider, force_slow))
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
    if cov.get_option("run:core") != "sysmon":  # coverage.py's C tracer measures: nothing to swap, or to say
        return False
    from nbcov.engine.lines import line_monitor_class

    slower = "line coverage under sys.monitoring keeps paying for code whose lines all ran (~20% slower)"
    line_monitor = line_monitor_class()
    if line_monitor is None:
        coverage_internals.notice(f"this coverage.py's SysMonitor is not as nbcov expects: {slower}")
        return False
    if not coverage_internals.core_swappable(cov, slower):
        return False
    sysmon = coverage_internals.sysmon_class()

    def swap(built: Any) -> None:
        if built.tracer_class is sysmon:
            coverage_internals.set_core(built, tracer_class=line_monitor)
            core.record_swap(cov, core.Core.SYSMON)

    coverage_internals.each_core(cov, swap)
    return True


def uninstall(cov: Any) -> None:
    """Remove the import hook `install()` added (the Coverage object itself is left as it is)."""
    undo = getattr(cov, "_nbcov_unmark", None)
    if undo is not None:
        undo()
        cov._nbcov_unmark = None


def _would_trace(cov: Any, path: str) -> bool:
    return coverage_internals.would_trace(cov, path)


def _swap_core(cov: Any, built: Any, source_provider: SourceProvider | None, force_slow: bool) -> None:
    from nbcov.engine.monitor import BranchMonitor

    disposition = coverage_internals.file_disposition_class()
    coverage_internals.set_core(
        built,
        tracer_class=BranchMonitor,
        tracer_kwargs={"source_provider": source_provider, "force_slow": force_slow},
        file_disposition_class=disposition,
        supports_plugins=False,
        supports_dynamic_contexts=True,  # restart() makes per-context data exact
        packed_arcs=False,
        systrace=False,
    )
    coverage_internals.use_disposition_class(cov, disposition)
    core.record_swap(cov, core.Core.BRANCH_ENGINE)


def active_monitor(cov: Any) -> Any:
    """The engine's tracer measuring for `cov` now, or None."""
    from nbcov.engine.monitor import BranchMonitor

    for tracer in reversed(coverage_internals.tracers(cov)):
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
    sysmon: type = coverage_internals.sysmon_class() or type(None)
    monitor = sys.modules.get("nbcov.engine.monitor")  # not imported: no branch engine measures here
    BranchMonitor = getattr(monitor, "BranchMonitor", type(None))  # noqa: N806
    for tracer in coverage_internals.tracers(cov):
        if issubclass(type(tracer), sysmon):  # coverage.py's, or lines.LineMonitor
            name, on = "coverage.py", bool(tracer.sysmon_on)
        elif type(tracer) is BranchMonitor:
            name, on = "nbcov", getattr(tracer, "myid", None) is not None
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
    restartable = [t for t in coverage_internals.tracers(cov) if hasattr(t, "restart")]
    for tracer in restartable:
        tracer.restart()
    if not restartable:
        sys.monitoring.restart_events()  # coverage.py's own SysMonitor (it needs no more)
