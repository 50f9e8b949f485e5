"""Which core measures a kernel: `sys.monitoring` wherever it records what coverage.py's tracers would.

coverage.py defaults to its C tracer on 3.12/3.13, a trace function called on every line: a
CPU-bound cell runs several times slower (measured in a kernel: ~7x line, ~9x branch). `sys.monitoring` records
each line once and then switches its event off, so line coverage costs almost nothing. nbcov therefore
measures line coverage with coverage.py's own `sysmon` core on 3.12/3.13 and branches with nbcov's
engine (`nbcov.engine`) — unless the user chose a core, or asked for something only a trace-function
core supports. On 3.14+ coverage.py already defaults to `sysmon`; on 3.11 there is no choice.
"""

from __future__ import annotations

import enum
import sys
import weakref
from typing import Any

from nbcov import coverage_internals

#: Python versions where nbcov's choice differs from coverage.py's default.
SYSMON_LINES = sys.version_info[:2] in ((3, 12), (3, 13))


def tracer_only_settings(cov: Any) -> list[str]:
    """The settings of `cov` that only coverage.py's trace-function cores honour (why not sys.monitoring).

    Loads `cov`'s configuration and plugins, which `start()` would do anyway.
    """
    found = []
    if cov.get_option("run:timid"):
        found.append("timid = true")
    if cov.get_option("run:dynamic_context") not in (None, "", "none"):
        found.append("dynamic_context is set")
    concurrency = cov.get_option("run:concurrency") or []
    if any(c in concurrency for c in ("greenlet", "eventlet", "gevent")):
        found.append(f"concurrency = {concurrency}")
    if coverage_internals.has_file_tracer_plugin(cov):
        found.append("a file tracer plugin is configured")
    return found


def prefer_sysmon(cov: Any) -> tuple[bool, str]:
    """(measure lines with coverage.py's `sysmon` core?, why) for a configured, unstarted Coverage.

    Only line coverage, only where coverage.py would pick its C tracer by default, and only when
    nobody chose a core: `[run] core` or `COVERAGE_CORE` is always obeyed (`core = ctrace` is the
    way back to coverage.py's default).
    """
    if not SYSMON_LINES:
        return False, f"Python {sys.version_info.major}.{sys.version_info.minor}: coverage.py's default core"
    if cov.get_option("run:branch"):
        return False, "branch coverage: nbcov's branch engine decides"
    chosen = cov.get_option("run:core")
    if chosen:
        return False, f"core = {chosen} was chosen"
    tracer_only = tracer_only_settings(cov)
    if tracer_only:
        return False, "; ".join(tracer_only)
    return True, "line coverage on 3.12/3.13 with no core chosen"


def choose(cov: Any) -> None:
    """Set `cov`'s core to `sysmon` when `prefer_sysmon` says so (before `cov.start()`)."""
    use, _why = prefer_sysmon(cov)
    if use:
        cov.set_option("run:core", "sysmon")


class Core(enum.Enum):
    """What measures a Coverage, in the words users see (`%nbcov status`, the inline report)."""

    SYSMON = "sys.monitoring"
    CTRACE = "the C tracer"
    PYTRACE = "the Python tracer"
    BRANCH_ENGINE = "nbcov's branch engine"

    def __str__(self) -> str:
        return self.value

    @property
    def rearmed_per_context(self) -> bool:
        """Does it record each line once and then go quiet, so that a new context must re-arm it?"""
        return self in (Core.SYSMON, Core.BRANCH_ENGINE)


# The tracer nbcov swapped into a Coverage's core (`nbcov.engine`), recorded when it does: nbcov's own
# decision, not read back from class names.
_swapped: weakref.WeakKeyDictionary[Any, Core] = weakref.WeakKeyDictionary()


def record_swap(cov: Any, used: Core) -> None:
    """nbcov just put its own tracer for `used` into `cov`'s core (called each time coverage.py builds it)."""
    _swapped[cov] = used


def in_use(cov: Any) -> Core | None:
    """What measures `cov` (started at least once), or None when it has not built its core yet.

    nbcov's own tracers as recorded when nbcov swapped them in; otherwise coverage.py's own choice.
    """
    if cov is None:
        return None
    if cov in _swapped:
        return _swapped[cov]
    own = coverage_internals.coverage_core(cov)
    return {"ctrace": Core.CTRACE, "pytrace": Core.PYTRACE, "sysmon": Core.SYSMON}.get(own) if own else None


def describe(cov: Any) -> str:
    """The words for what measures `cov` ("stopped" when nothing does)."""
    used = in_use(cov)
    return str(used) if used is not None else "stopped"
