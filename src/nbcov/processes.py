"""Measuring the processes a notebook starts: forked children, and the Pythons it runs.

Two kinds of process, two mechanisms:

- A **forked** child (a `fork` multiprocessing pool, `ProcessPoolExecutor` on Linux up to 3.13,
  `os.fork`) is a copy of the kernel: its Session, its cell names and its tracer or `sys.monitoring`
  state keep working there. What it lacks is a save: multiprocessing workers leave through
  `os._exit` (no atexit), and `with Pool() as p:` ends them with SIGTERM. So after a fork the child
  saves before `os._exit` and on SIGTERM, adding what it measured to the kernel's data file under the
  data file's lock, mapped to cell records as the kernel maps it — and without naming newest cell
  versions, which only the parent knows.
- A **new Python** (`subprocess`, `spawn`/`forkserver` workers, `!pip ...`) starts coverage.py from its
  `.pth` hook with the configuration nbcov hands it in COVERAGE_PROCESS_CONFIG: the kernel's own
  settings, but *parallel* pieces named after the kernel's data file (`<data file>.<host>.pid<N>.X…x`,
  which `nbcov run` and `coverage combine` pick up), saved on SIGTERM and on `os._exit` too by this
  module loaded there as a coverage.py plugin, which also measures with nbcov's engine as the kernel
  does. coverage.py's `patch = subprocess` would hand children the kernel's non-parallel data file:
  each child erased it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import coverage

from nbcov import coverage_internals, data, exiting

if TYPE_CHECKING:
    from nbcov.session import Session

#: coverage.py's patches nbcov does itself for a kernel (`take_over_patches`).
TAKEN_OVER = ("subprocess", "fork")

_sessions: weakref.WeakSet[Session] = weakref.WeakSet()
_follows_forks = False  # the at-fork hook is registered (forked children inherit it, and this)
_pth_files: list[Any] = []


def take_over_patches(cov: coverage.Coverage) -> bool:
    """Remove `patch = subprocess`/`fork` from a kernel's configuration; True if subprocesses were asked for.

    coverage.py's versions of them would make children write (and first erase) the kernel's data
    file, or restart coverage in forked children with it; nbcov does both its own way.
    """
    option = cov.get_option("run:patch")
    patches = [str(p) for p in option] if isinstance(option, list) else []
    kept = [p for p in patches if p not in TAKEN_OVER]
    if kept != patches:
        cov.set_option("run:patch", kept)
    return "subprocess" in patches


def child_config(cov: coverage.Coverage, target: str) -> str:
    """The serialized configuration for the Pythons the kernel starts (COVERAGE_PROCESS_CONFIG).

    The kernel's settings as they are when it starts (its `source`, branch, core, omitted nbcov
    files), with data going to parallel pieces of `target`, saved on SIGTERM (`with Pool()` ends
    its workers so) and before `os._exit` (forkserver workers and `os.fork` children leave that way).
    """
    config = coverage_internals.copy_config(cov.config)
    config.data_file = target
    config.parallel = True
    config.sigterm = False  # nbcov's plugin below saves on SIGTERM, and not twice at once
    config.plugins = [*config.plugins, __name__]
    # No "subprocess": grandchildren inherit COVERAGE_PROCESS_CONFIG from the environment as it is,
    # and coverage.py's own patch asserts a configuration file that a kernel need not have.
    # "fork" (coverage.py 7.10.4+): a child forked by such a process (a forkserver's workers)
    # restarts coverage.py as a process of its own.
    # No "_exit" either: the plugin saves before `os._exit`, and never in the middle of another save.
    patches = {p for p in config.patch if p not in (*TAKEN_OVER, "_exit")}
    if coverage.version_info >= (7, 10, 4):
        patches.add("fork")
    config.patch = sorted(patches)
    serialized: str = config.serialize()
    return serialized


def measure_children(cov: coverage.Coverage, target: str) -> str | None:
    """Make the Pythons this process starts measure into parallel pieces of `target`.

    Call after the kernel's configuration is final (core chosen), before it starts. Returns a
    warning when this coverage.py cannot measure them.
    """
    if not hasattr(cov.config, "serialize"):  # coverage.py < 7.10.3 hands children only a config file
        return f"subprocesses are not measured: coverage.py {coverage.__version__} cannot hand them nbcov's settings (7.10.3+ can)"
    os.environ["COVERAGE_PROCESS_CONFIG"] = child_config(cov, target)
    _ensure_startup_hook()
    return None


def stop_measuring_children() -> None:
    """Pythons started from now on are not measured (`nbcov.autoconfig(subprocess=False)`)."""
    os.environ.pop("COVERAGE_PROCESS_CONFIG", None)


def finished_pieces(target: str) -> list[Path]:
    """The parallel pieces of `target` whose process has ended: those it will write no more.

    coverage.py writes a piece in place at the end of its process (no write-then-rename), so a
    piece whose process still runs may be half written, or not written yet; it waits for a later
    save. A process ended but not yet reaped (a zombie) counts as running: same wait.
    """
    finished = []
    for piece in data.pieces_of(Path(target)):
        pid = coverage_internals.piece_pid(piece.name)
        if pid is not None and not _running(pid):
            finished.append(piece)
    return finished


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process (a pid reused since)
        return True
    return True


def _ensure_startup_hook() -> None:
    """A `.pth` file that starts coverage.py in new Pythons: shipped from 7.13, written at run time before."""
    if coverage.version_info >= (7, 13) or _pth_files:
        return
    _pth_files.extend(coverage_internals.create_pth_files())
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:  # a forked child that exits normally runs this too
            for path in _pth_files:
                path.unlink(missing_ok=True)

    atexit.register(remove)


# -- forked children -------------------------------------------------------------------------------


def follow_forks(session: Session) -> None:
    """Make forked children of this process save what `session` measures in them."""
    global _follows_forks
    _sessions.add(session)
    if not _follows_forks and hasattr(os, "register_at_fork"):
        # Once per process (hooks cannot be removed, and forked children inherit them): the hook
        # looks up the sessions measuring at the time of the fork.
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _follows_forks = True


def _measuring() -> list[Session]:
    return [s for s in list(_sessions) if s.cov is not None]


def _after_fork_in_child() -> None:
    """In a forked child: the sessions become children's; `os._exit` and SIGTERM save first."""
    sessions = _measuring()
    if not sessions:
        return
    for session in sessions:
        session.forked()
    _save_at_os_exit()
    # Whatever the kernel does on SIGTERM (its Session saves, then hands over to the kernel's own
    # handling) is not for a worker: it saves under `_leaving`'s guard and dies as asked.
    _handle_sigterm()


def _save_at_os_exit() -> None:
    if not getattr(os._exit, "_nbcov_saves", False):
        os._exit = _saving_exit(os._exit)


def _handle_sigterm() -> None:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        return
    signal.signal(signal.SIGTERM, _on_sigterm)
    _watch_for_sigterm()


#: How often, and how long apart, a SIGTERM the main thread has not handled yet is sent to it again.
_NUDGES, _NUDGE_DELAY = 50, 0.1
_sigterm_seen = False  # `_on_sigterm` has started in this process


def _watch_for_sigterm() -> None:
    """Make sure SIGTERM's handler runs even when the main thread waits in a C call.

    Python runs a signal's handler on the main thread, between bytecodes; C only notes the signal.
    A pool worker waiting for its next task sits in `sem_wait`: a SIGTERM (`Pool.terminate()`) that
    lands just before that call blocks does not interrupt it, the handler never runs, and the pool's
    `terminate()` in the notebook waits for the worker for ever. A thread reading the signal
    wake-up fd learns of every SIGTERM and, while the handler has not started, sends it again to the
    main thread, which interrupts the wait. (Blocking SIGTERM and taking it with `sigwait` instead
    would hand the blocked mask down to every program the process runs.)
    """
    global _wakeup_fd
    try:
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except (OSError, ValueError):  # no wake-up fd here: the handler alone, as before
        return
    _wakeup_fd = write_fd
    main = threading.main_thread().ident
    threading.Thread(target=_nudge_on_sigterm, args=(read_fd, main), name="nbcov-sigterm", daemon=True).start()
    _rearm_in_pool_workers()


_wakeup_fd = -1  # this process's wake-up fd, read by the nudge thread


class _Rearm:
    """What multiprocessing's after-fork registry holds (it keeps weak references to objects)."""


_REARM = _Rearm()


def _rearm_in_pool_workers() -> None:
    """A forkserver's workers get the wake-up fd back after the server took it away.

    CPython's `forkserver._serve_one` sets the wake-up fd to -1 in each worker it forks, after the
    fork hooks ran: the nudge thread would never hear of a SIGTERM, and a worker idle in `sem_wait`
    would hang `Pool.terminate()` (seen at the coverage floors). multiprocessing runs its own
    after-fork callbacks later, as the worker starts (`BaseProcess._bootstrap`), so the fd is set
    again there. Only where multiprocessing is already imported (in a worker the server forked, it
    is: coverage.py starts again there and this runs once more).
    """
    util = sys.modules.get("multiprocessing.util")
    register = getattr(util, "register_after_fork", None)
    if register is not None:
        register(_REARM, _rearm_wakeup_fd)


def _rearm_wakeup_fd(_: object) -> None:
    if _wakeup_fd >= 0 and threading.current_thread() is threading.main_thread():
        with contextlib.suppress(OSError, ValueError):
            signal.set_wakeup_fd(_wakeup_fd, warn_on_full_buffer=False)


def _nudge_on_sigterm(read_fd: int, main: int | None) -> None:
    while True:
        try:
            arrived = os.read(read_fd, 64)
        except OSError:
            return
        if not arrived or main is None:
            return
        if signal.SIGTERM not in arrived:
            continue
        for _ in range(_NUDGES):
            time.sleep(_NUDGE_DELAY)
            if _sigterm_seen:
                break
            signal.pthread_kill(main, signal.SIGTERM)


def _saving_exit(real_exit: Any) -> Any:
    """`os._exit` that saves what this process measured first (multiprocessing workers leave this way)."""

    def _exit(status: int) -> Any:
        _leaving()
        return real_exit(status)

    _exit._nbcov_saves = True  # type: ignore[attr-defined]
    _exit.__wrapped__ = real_exit  # type: ignore[attr-defined]
    return _exit


def _on_sigterm(signum: int, frame: Any) -> None:
    """Save, then die of SIGTERM as asked; ignored while the process is already saving on its way out."""
    global _sigterm_seen
    _sigterm_seen = True
    if _left_from == os.getpid():
        # `_leaving` is under way (a worker that got its pool's last sentinel saves in `os._exit`
        # when `with Pool()` terminates it): that save goes on, and the process leaves right after.
        return
    if _saving_at_exit(frame):
        # A spawn worker ending normally: coverage.py's atexit save is running, and the process
        # leaves right after. Should it not, SIGALRM ends it: a pool's `terminate()` waits for it.
        signal.alarm(SAVE_LIMIT)
        return
    if exiting.put_off_in_tracer(signum, frame):
        return
    _leaving()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


#: Seconds a process on its way out may spend saving before SIGALRM ends it.
SAVE_LIMIT = 30
#: The process whose `_leaving` has started (a forked child inherits the value, not the save).
_left_from = 0


def _leaving() -> None:
    """Save what this process measured, as it leaves: once, whole, and never forever.

    `Pool.terminate()` sends SIGTERM to workers that may already be saving on their way out (a
    worker that took the pool's last sentinel leaves through `os._exit`). A handler saving again in
    the middle of that save found nothing left to save (the first save had stopped coverage.py,
    `Coverage.current()` was None) and killed the process: its piece half written, without the
    lines it ran. So once leaving has started, `_on_sigterm` lets it finish. Blocking SIGTERM with
    `pthread_sigmask` instead would not do: that blocks it for the calling thread only, and any other
    thread (the wake-up fd's) takes it and has the main thread run the handler all the same.
    A forked child can also inherit a lock another thread of the parent held at the fork; a save that
    waits for it would keep the worker, and the pool's `terminate()` in the notebook, waiting for
    ever: SIGALRM ends it after `SAVE_LIMIT` seconds (what it measured is lost, the notebook goes on).
    """
    global _left_from
    if _left_from == os.getpid():
        return
    _left_from = os.getpid()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(SAVE_LIMIT)
    try:
        _save_all()
    except Exception:  # never keep a process from leaving
        pass


def _save_all() -> None:
    """Save what this process measured: a (forked) kernel's sessions, else the coverage.py it started."""
    sessions = _measuring()
    for session in sessions:
        session.pause()  # saves, then stops
    if not sessions:
        cov = coverage.Coverage.current()
        if cov is not None:
            cov.stop()
            cov.save()


# -- new Pythons ----------------------------------------------------------------------------------


def coverage_init(reg: Any, options: dict[str, str]) -> None:
    """`plugins = nbcov.processes` in the configuration a kernel hands the Pythons it starts.

    Loaded as coverage.py starts in such a process: it saves on SIGTERM and before `os._exit`,
    never while a save is under way (coverage.py's own `sigterm` and `_exit` patch save again in the
    middle of an exit's save, find the data locked and die: lost or half-written pieces).
    """
    _save_at_os_exit()
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None, _on_sigterm):
        _handle_sigterm()
    cov = coverage_internals.starting_coverage()
    if cov is not None:
        _measure_like_the_kernel(cov)


def _measure_like_the_kernel(cov: coverage.Coverage) -> None:
    """On 3.12/3.13, nbcov's branch engine or line monitor, as in the kernel, not the C tracer.

    coverage.py's C tracer costs a CPU-bound worker 4-13x with branches; the kernel measures at
    close to full speed, and so should the processes it starts. Same decision as in the kernel
    (`engine.decide`, `core.choose` already chose `sysmon` for lines in the configuration handed down).
    """
    from nbcov import engine

    if not engine.install(cov):
        engine.install_lines(cov)


def _saving_at_exit(frame: Any) -> bool:
    """Is the interrupted code coverage.py's exit handler (`Coverage._atexit`) or below it?"""
    return coverage_internals.in_coverage_atexit(frame)
