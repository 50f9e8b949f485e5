"""coverage.py configured and started for a kernel: its data file, its cells measured, its fastest core."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import coverage

from nbcov import core, coverage_internals, engine, saving

_NBCOV_DIR = os.path.dirname(os.path.abspath(__file__))

# Flushing after every cell would repeat these on each cell. And under sysmon, `Session.switch_context`
# makes per-context data exact (restart_events), so coverage.py's "context data may be incomplete"
# would only be noise in the user's cell.
_QUIET = ["module-not-imported", "no-data-collected", "module-not-measured", "no-sysmon-context"]


def new_coverage(branch: bool | None, source: list[str] | None) -> coverage.Coverage:
    """A Coverage with the user's configuration (and these overrides), measuring into memory only."""
    return coverage.Coverage(
        data_file=None,  # measured data stays in memory; nbcov writes the data file itself
        config_file=True,
        branch=branch,
        source=source,
    )


def data_target(cov: coverage.Coverage, data_file: str | None, *, piece: bool = False) -> str:
    """The data file this kernel writes: `data_file` exactly (a runner's piece), else the configuration's.

    With `parallel = true`, or `piece` (a runner's data file that many kernels share: `nbcov exec`),
    a piece of its own, as coverage.py would name it; after an earlier kernel here gave the data file
    to another coverage.py measurement, where nbcov moved then (`saving.moved`).
    """
    exact = data_file is not None and not piece
    target = os.path.abspath(str(data_file or cov.get_option("run:data_file")))
    if piece or (cov.get_option("run:parallel") and not exact):
        return f"{target}.{_parallel_suffix()}"
    if not exact and os.path.exists(saving.moved(target)):
        return saving.moved(target)
    return target


def configure(cov: coverage.Coverage, cell_dir: str) -> None:
    """Measure the cells whatever `source`/`include` say, never nbcov itself, and warn only once."""
    source = cov.get_option("run:source")
    include = cov.get_option("run:include")
    if source:
        cov.set_option("run:source", [*_strings(source), cell_dir])
    elif include:
        cov.set_option("run:include", [*_strings(include), os.path.join(cell_dir, "*")])
    # nbcov's own hooks run around every cell; they are not the user's code.
    cov.set_option("run:omit", [*_strings(cov.get_option("run:omit")), os.path.join(_NBCOV_DIR, "*")])
    cov.set_option("run:disable_warnings", [*_strings(cov.get_option("run:disable_warnings")), *_QUIET])


def choose_tracer(cov: coverage.Coverage, shell: Any, cell_source: Callable[[str], str | None]) -> Callable[[], None] | None:
    """On 3.12/3.13: lines with coverage.py's sysmon core, branches with nbcov's sys.monitoring engine,
    instead of the C tracer coverage.py would default to (core.py, engine/).

    Returns what takes the engine's cell markers out of `shell` again, if the engine put them in.
    """
    core.choose(cov)
    if engine.install(cov, source_provider=cell_source):
        from nbcov.engine.markers import install_cell_markers  # only branch kernels need it

        unmark: Callable[[], None] = install_cell_markers(shell)
        return unmark
    engine.install_lines(cov)  # under sysmon: code with every line recorded stops paying for events
    return None


def restore(cov: coverage.Coverage) -> str | None:
    """Turn measuring back on if the cell's code turned it off; what it had done, or None.

    `coverage.Coverage.current().stop()`, or freeing coverage.py's sys.monitoring tool, would
    otherwise end measuring silently or make every later cell fail (`engine.rearm`). Raises if
    it cannot be turned back on.
    """
    if not coverage_internals.started(cov):
        cov.start()
        return "coverage.py's measurement was stopped (Coverage.stop())"
    return engine.rearm(cov)


def _strings(value: Any) -> list[str]:
    """A list-valued coverage.py option as a list (None when unset)."""
    return list(value or [])


def first_start(cov: coverage.Coverage) -> None:
    """`cov.start()` the first time, without coverage.py's snapshot of the call stack.

    coverage.py's Collector keeps `short_stack()` as a debugging note of who created it; that calls
    `inspect.stack()`, which resolves the module of every loaded module's file (~0.06 s in a kernel,
    a fifth of the start-up nbcov adds to each notebook of `nbcov run`). Only coverage.py's debug
    output reads the note, so it is recorded as usual when debugging is on.
    """
    coverage_internals.start_without_stack_snapshot(cov)


def _parallel_suffix() -> str:
    import random
    import socket

    return f"{socket.gethostname()}.{os.getpid()}.X{random.randint(0, 999999):06d}x"
