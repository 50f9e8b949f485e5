"""The IPython side: `%load_ext nbcov` and the `%nbcov` line magic."""

from __future__ import annotations

import io
import shlex
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class

from nbcov.session import Session

_SESSION_ATTR = "_nbcov_session"


def current_session(shell: Any) -> Session | None:
    return getattr(shell, _SESSION_ATTR, None)


def load(shell: Any, **options: Any) -> Session:
    """Start measuring in `shell` (once: loading again keeps the running session)."""
    session = current_session(shell)
    if session is None:
        session = Session(shell, **options)
        setattr(shell, _SESSION_ATTR, session)
        shell.register_magics(NbcovMagics)
    session.start()
    return session


def unload(shell: Any) -> None:
    session = current_session(shell)
    if session is not None:
        session.stop()
        delattr(shell, _SESSION_ATTR)


@magics_class
class NbcovMagics(Magics):
    """`%nbcov [report|save|status|stop]`."""

    @line_magic
    def nbcov(self, line: str = "") -> Any:
        """Coverage of this session: `%nbcov` or `%nbcov report`, `save`, `status`, `stop`."""
        args = shlex.split(line)
        command = args[0] if args else "report"
        session = current_session(self.shell)
        if session is None:
            print("nbcov is not loaded: run `%load_ext nbcov` first.")
            return None
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            print(f"Unknown %nbcov command {command!r}; use report, save, status or stop.")
            return None
        return handler(session, args[1:])

    def _cmd_save(self, session: Session, args: list[str]) -> None:
        session.save()
        print(f"nbcov: saved to {session.target}" if not session.last_error else session.last_error)

    def _cmd_stop(self, session: Session, args: list[str]) -> None:
        session.stop()
        print(f"nbcov: stopped; data in {session.target}")

    def _cmd_status(self, session: Session, args: list[str]) -> None:
        for key, value in session.status().items():
            print(f"{key:>10}: {value}")

    def _cmd_report(self, session: Session, args: list[str]) -> None:
        from nbcov import report

        session.save()
        out = io.StringIO()
        report.write_text(report.load_report(session.target), out)
        print(out.getvalue(), end="")
