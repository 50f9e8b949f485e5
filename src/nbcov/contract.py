"""What a runner tells the kernels it starts: the `NBCOV_*` environment, written and read only here."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import TypeVar

from nbcov.errors import UsageError

#: The variables, each read into the field of the same meaning (see `KernelContract`).
DATA_FILE = "NBCOV_DATA_FILE"
BRANCH = "NBCOV_BRANCH"
SOURCE = "NBCOV_SOURCE"
CELL_CONTEXTS = "NBCOV_CELL_CONTEXTS"
SUBPROCESS = "NBCOV_SUBPROCESS"
PIECE = "NBCOV_PIECE"
NOTEBOOKS = "NBCOV_NOTEBOOKS"
TEST_FILE = "NBCOV_TEST_FILE"
# The other NBCOV_* variables are a person's settings, not the runner's, each read where it acts:
# NBCOV_NOTEBOOK (notebook.py), NBCOV_BRANCH_ENGINE (engine/), NBCOV_TRACEBACK (errors.py),
# NBCOV_HTML_JOBS (html.py). A runner passes them through to its kernels with the rest of its environment.
# NBCOV_EXEC_DIR and NBCOV_EXEC_PYTHONSTARTUP are read by the startup file of `nbcov exec` (attach.py).

_FLAG = {"1": True, "0": False}
_T = TypeVar("_T")


class ContractError(UsageError, ValueError):
    """A value that cannot cross the runner-kernel boundary; its message is one line naming it.

    A `UsageError`: where a runner's option is the cause (`nbcov run --source a:b`), the `nbcov`
    command says that line and exits 2.
    """


@dataclasses.dataclass(frozen=True)
class KernelContract:
    """The settings `nbcov run` and `pytest --nbcov` give a kernel, which its `Session` reads at start.

    Environment variables, because a kernel loads nbcov at start (`--ext=nbcov`), before any cell:
    nothing else reaches it that early without putting a hidden cell in the notebook. The defaults
    are what a kernel started by anyone else (JupyterLab, nbclient) gets: the user's configuration.
    """

    #: The exact file this kernel writes (a runner's piece); None: the coverage configuration's.
    data_file: str | None = None
    #: Branch coverage; None leaves it to the coverage configuration.
    branch: bool | None = None
    #: coverage.py's `source`; empty leaves it to the coverage configuration.
    source: tuple[str, ...] = ()
    #: Record each cell as a coverage context (`notebooks/x.ipynb|cell 3`), for `nbcov who`.
    cell_contexts: bool = False
    #: Measure the Pythons the notebook starts (`processes.measure_children`).
    subprocess: bool = False
    #: `data_file` is the run's data file, not this kernel's: each kernel writes a piece of its own
    #: beside it (`nbcov exec`, whose environment every kernel of the command shares).
    piece: bool = False
    #: Where a kernel that nobody tells its notebook looks for it (`nbcov exec`: the notebooks the
    #: command names), besides its working folder.
    notebooks: tuple[str, ...] = ()
    #: A file the runner keeps the id of the pytest test running now in (empty between tests): what
    #: a kernel runs for a test (testbook's `tb.ref(...)`) is recorded under that test's context.
    test_file: str | None = None

    def __post_init__(self) -> None:
        """Refuse what `to_env` could not write so that `from_env` reads the same thing back."""
        if self.data_file is not None:
            _check_text(DATA_FILE, self.data_file)
        if self.test_file is not None:
            _check_text(TEST_FILE, self.test_file)
        if self.piece and self.data_file is None:
            raise ContractError(f"{PIECE}: a piece needs the data file it is a piece of ({DATA_FILE})")
        _check_paths(SOURCE, self.source)
        _check_paths(NOTEBOOKS, self.notebooks)

    def to_env(self) -> dict[str, str]:
        """The variables to add to the kernel's environment.

        Unset fields are left out rather than written empty, so a runner's caller can still set
        them in its own environment (as `nbcov run` has always let through `NBCOV_BRANCH`).
        """
        env = {CELL_CONTEXTS: _flag(self.cell_contexts), SUBPROCESS: _flag(self.subprocess), PIECE: _flag(self.piece)}
        if self.data_file is not None:
            env[DATA_FILE] = self.data_file
        if self.branch is not None:
            env[BRANCH] = _flag(self.branch)
        if self.source:
            env[SOURCE] = os.pathsep.join(self.source)
        if self.notebooks:
            env[NOTEBOOKS] = os.pathsep.join(self.notebooks)
        if self.test_file is not None:
            env[TEST_FILE] = self.test_file
        return env

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], *, complain: Callable[[str], None] | None = None
    ) -> KernelContract:
        """Read the variables; an unset or empty one is the field's default.

        A bad value raises `ContractError`, or, with `complain`, is said through it and read as
        unset: a kernel with a mistyped variable should still measure (never lose data), and say why
        that setting had no effect.
        """
        def read(name: str, parse: Callable[[str, str], _T]) -> _T | None:
            text = environ.get(name, "")
            if not text:
                return None
            try:
                return parse(name, text)
            except ContractError as exc:
                if complain is None:
                    raise
                complain(f"{exc}; it is ignored")
                return None

        return cls(
            data_file=read(DATA_FILE, lambda _name, text: text),
            branch=read(BRANCH, _read_flag),
            source=read(SOURCE, _read_paths) or (),
            cell_contexts=bool(read(CELL_CONTEXTS, _read_flag)),
            subprocess=bool(read(SUBPROCESS, _read_flag)),
            piece=bool(read(PIECE, _read_flag)) and bool(environ.get(DATA_FILE)),
            notebooks=read(NOTEBOOKS, _read_paths) or (),
            test_file=read(TEST_FILE, lambda _name, text: text),
        )

    def running_test(self) -> str | None:
        """The id of the test running now (`test_file`), "" between tests, None when not told of tests.

        Read at each request: a few microseconds, and a kernel lives across many tests (a module's
        testbook fixture). The runner replaces the file whole, so a read sees one id or the next.
        """
        if self.test_file is None:
            return None
        try:
            with open(self.test_file, encoding="utf-8") as f:
                return f.read().strip()
        except OSError:  # the session is over (its folder removed): no test runs
            return ""


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _read_flag(name: str, text: str) -> bool:
    """'1' or '0', as `to_env` writes them: anything else is a mistake to say, not a guess to make."""
    if text not in _FLAG:
        raise ContractError(f"{name}={text!r} is not 0 or 1")
    return _FLAG[text]


def _read_paths(name: str, text: str) -> tuple[str, ...]:
    entries = tuple(text.split(os.pathsep))
    if not all(entries):
        raise ContractError(f"{name}={text!r} has an empty entry")
    return entries


def _check_paths(name: str, paths: object) -> None:
    """A tuple of texts, none holding the separator `to_env` joins them with."""
    if isinstance(paths, str) or not isinstance(paths, tuple):
        raise ContractError(f"{name}: must be a tuple of paths, not {paths!r}")
    for entry in paths:
        _check_text(name, entry)
        if os.pathsep in entry:
            raise ContractError(f"{name}: {entry!r} contains {os.pathsep!r}, which separates the entries")


def _check_text(name: str, value: object) -> None:
    """A value an environment variable can hold and that means something: a non-empty string without NUL."""
    if not isinstance(value, str) or not value or "\0" in value:
        raise ContractError(f"{name}: {value!r} is not a non-empty text an environment variable can hold")
