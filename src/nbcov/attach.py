"""Measuring the kernels other runners start (`nbcov exec`, `pytest --nbcov-kernels`), through their environment."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from nbcov.contract import KernelContract

#: The PYTHONSTARTUP file the command had, run after nbcov's (IPython runs only the one it names).
USER_STARTUP = "NBCOV_EXEC_PYTHONSTARTUP"
#: The folder of this attachment: its startup file, and the notes kernels leave there.
FOLDER = "NBCOV_EXEC_DIR"
#: Notes a kernel that cannot measure leaves in FOLDER: `unmeasured-<pid>`, one line saying why.
_NOTE = "unmeasured-"

# Every IPython kernel runs the file PYTHONSTARTUP names before its first cell (IPython's
# `exec_PYTHONSTARTUP`, on by default), whoever started it and however deep: the one way in that
# needs no hidden cell, no change to a kernel spec, site-packages or the user's configuration, and
# that reaches kernels of another environment too (where nbcov is missing, to say so). It runs in
# the user's namespace: it leaves no name there, and runs the user's own PYTHONSTARTUP afterwards.
_STARTUP = '''\
# Written by nbcov exec: measure this IPython kernel, then run the PYTHONSTARTUP file it stands in for.
def _nbcov_exec_start():
    import os
    import sys

    shell = globals().get("get_ipython", lambda: None)()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        why = None
        try:
            import nbcov  # noqa: F401
        except ImportError:
            why = "nbcov is not installed for " + sys.executable
        else:
            try:
                shell.extension_manager.load_extension("nbcov")
            except Exception as exc:
                why = "nbcov did not start in %s: %s: %s" % (sys.executable, type(exc).__name__, exc)
        folder = os.environ.get("NBCOV_EXEC_DIR")
        if why and folder and os.path.isdir(folder):
            with open(os.path.join(folder, "unmeasured-%d" % os.getpid()), "w", encoding="utf-8") as note:
                note.write(why.replace("\\n", " ") + "\\n")
    original = os.environ.get("NBCOV_EXEC_PYTHONSTARTUP")
    if original and shell is not None:
        shell.safe_execfile(original, shell.user_ns, raise_exceptions=False)
    elif original:  # a plain Python prompt
        with open(original, encoding="utf-8") as f:
            exec(compile(f.read(), original, "exec"), globals())


_nbcov_exec_start()
del _nbcov_exec_start
'''


@dataclasses.dataclass
class Attachment:
    """The environment that makes every kernel a command starts measure itself, and where it leaves notes."""

    data_file: Path
    folder: Path
    env: dict[str, str]

    def unmeasured(self) -> list[str]:
        """Why kernels did not measure (one line each, said once each): nbcov missing in their Python."""
        reasons: dict[str, None] = {}
        for note in sorted(self.folder.glob(f"{_NOTE}*")):
            text = note.read_text(encoding="utf-8", errors="replace").strip()
            if text:
                reasons[text] = None
        return list(reasons)

    def set_test(self, test_id: str) -> None:
        """The test running now (empty: none); kernels read it at each request."""
        path = self.folder / "test"
        tmp = self.folder / "test.tmp"
        tmp.write_text(test_id, encoding="utf-8")
        os.replace(tmp, path)  # a kernel reads a whole id or the previous one, never half of one

    def remove(self) -> None:
        """Remove the folder (the startup file and notes): nothing of the attachment outlives the command."""
        shutil.rmtree(self.folder, ignore_errors=True)


def attach(
    data_file: Path,
    *,
    branch: bool | None = None,
    source: Iterable[str] = (),
    rcfile: Path | None = None,
    notebooks: Iterable[Path] = (),
    test_contexts: bool = False,
    environ: Mapping[str, str] = os.environ,
) -> Attachment:
    """The variables to give a command so that its kernels measure into pieces of `data_file`.

    Kernels measure as `nbcov run`'s do (cell contexts, the Pythons they start); `notebooks` are
    where they look for the notebook they run, besides their working folder (`NotebookFinder`).
    """
    folder = Path(tempfile.mkdtemp(prefix="nbcov-exec-"))  # private (0700), removed by `remove`
    contract = KernelContract(
        data_file=str(data_file),
        piece=True,
        branch=branch,
        source=tuple(source),
        cell_contexts=True,
        subprocess=True,
        notebooks=tuple(str(Path(n).absolute()) for n in notebooks),
        test_file=str(folder / "test") if test_contexts else None,
    )
    startup = folder / "startup.py"
    startup.write_text(_STARTUP, encoding="utf-8")
    env = contract.to_env()
    env["PYTHONSTARTUP"] = str(startup)
    env[FOLDER] = str(folder)
    # Never chain to ourselves: an `nbcov exec` inside another one runs the outer startup only once.
    user_startup = environ.get(USER_STARTUP) if FOLDER in environ else environ.get("PYTHONSTARTUP")
    if user_startup:
        env[USER_STARTUP] = user_startup
    if rcfile is not None:
        env["COVERAGE_RCFILE"] = str(rcfile)
    attachment = Attachment(data_file, folder, env)
    if test_contexts:
        attachment.set_test("")
    return attachment


@dataclasses.dataclass
class Outcome:
    """What `finish` combined: for the one-line summary."""

    pieces: int
    cells: int
    notebooks: int
    unplaced: int  # cells whose notebook no kernel could tell (named `In [N]`)
    percent: str | None  # the total, as `nbcov report` shows it; None without data


def finish(attachment: Attachment, rcfile: str | bool, *, append: bool, warn: Callable[[str], None]) -> Outcome:
    """Combine the kernels' pieces into the data file (after the command: its kernels are gone)."""
    from nbcov import report, runs
    from nbcov.combine import combine

    pieces = runs.usable_pieces(attachment.data_file, warn=warn)
    if pieces:
        combine(attachment.data_file, pieces, rcfile, append=append)
    if not attachment.data_file.exists():
        return Outcome(len(pieces), 0, 0, 0, None)
    result = report.load_report(str(attachment.data_file), rcfile)
    cells = result["cells"]
    return Outcome(
        pieces=len(pieces),
        cells=len(cells),
        notebooks=len({c["notebook"] for c in cells if c["notebook"]}),
        unplaced=sum(1 for c in cells if not c["notebook"]),
        percent=result["totals"]["percent_covered_display"],
    )


def command_notebooks(argv: Iterable[str]) -> Iterator[Path]:
    """The notebooks a command line names (`papermill in.ipynb out.ipynb`, `pytest --nbmake nbs/`):
    where its kernels look for theirs, besides their working folder."""
    for arg in argv:
        value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        path = Path(value)
        if value.endswith(".ipynb") and path.is_file() or path.is_dir():
            yield path
