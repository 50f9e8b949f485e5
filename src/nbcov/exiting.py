"""Saving when the kernel leaves: at interpreter exit, and on SIGTERM (jupyter_client's second shutdown step)."""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from nbcov import coverage_internals

#: Seconds before a SIGTERM that landed in a tracer's code is sent again (`put_off_in_tracer`).
_AGAIN = 0.02
#: nbcov's own tracers (`engine/`), which hold their lock as coverage.py's do.
_ENGINE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine") + os.sep


class ExitHooks:
    """Runs `on_exit` (stop measuring, save) before the process goes, by `exit()` or by SIGTERM.

    A kernel whose parent dies calls `os._exit` (no hook runs: the last save after a cell is what
    is kept); forked children are `processes.py`'s.
    """

    def __init__(self, on_exit: Callable[[], None]) -> None:
        self.on_exit = on_exit
        self._old_sigterm: Any = None

    def install(self) -> None:
        """Install both hooks; call after `Coverage.start()`.

        atexit runs handlers last-in first-out, and coverage.py's own handler (registered at its
        start) closes the in-memory data `on_exit` still has to save.
        """
        atexit.register(self.on_exit)
        self._install_sigterm()

    def uninstall(self) -> None:
        atexit.unregister(self.on_exit)
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)

    def _install_sigterm(self) -> None:
        """Save on SIGTERM before dying as asked."""
        if sys.platform == "win32":
            return
        try:
            self._old_sigterm = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:  # not the main thread: nothing to hook
            self._old_sigterm = None

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        """Save, then hand over to the handler that was there before (the kernel's), or die by SIGTERM."""
        if put_off_in_tracer(signum, frame):
            return
        self.on_exit()
        old = self._old_sigterm
        if callable(old):
            old(signum, frame)
        else:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)


def put_off_in_tracer(signum: int, frame: Any) -> bool:
    """For a handler that stops measuring: whether the signal landed in a tracer's code, and comes again.

    A tracer holds its lock (not reentrant) while its code runs: stopping measurement there would
    wait forever for this very thread (a kernel that never exits). The signal is sent again in a
    moment, when the tracer's code has returned. A thread, not `signal.raise_signal`: that would run
    the handler again at once, inside the handler.
    """
    if not _in_tracer(frame):
        return False
    timer = threading.Timer(_AGAIN, os.kill, (os.getpid(), signum))
    timer.daemon = True
    try:
        timer.start()
    except RuntimeError:  # the interpreter is shutting down: no thread to send it again, go on now
        return False
    return True


def _in_tracer(frame: Any) -> bool:
    """Whether the interrupted `frame`, or a caller of it, is a tracer's code (coverage.py's or nbcov's)."""
    if coverage_internals.in_tracer(frame):
        return True
    while frame is not None:
        if frame.f_code.co_filename.startswith(_ENGINE):
            return True
        frame = frame.f_back
    return False
