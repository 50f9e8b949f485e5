"""Saving when the kernel leaves: at interpreter exit, and on SIGTERM (jupyter_client's second shutdown step)."""

from __future__ import annotations

import atexit
import os
import signal
import sys
from collections.abc import Callable
from typing import Any


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
        self.on_exit()
        old = self._old_sigterm
        if callable(old):
            old(signum, frame)
        else:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
