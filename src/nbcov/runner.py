"""Running notebooks headless with coverage from kernel start: one fresh kernel per notebook.

Used by `nbcov run` and the pytest plugin. Coverage starts inside the kernel before the first cell
(the kernel loads nbcov as an IPython extension), and the kernel saves its data after every cell, so
a cell that raises, times out or kills the kernel loses at most that cell. Nothing is injected into
the notebook: no hidden cells, execution counts as the author sees them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import os
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbformat.validator import get_validator
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from nbcov import notebook as notebook_file
from nbcov.contract import KernelContract
from nbcov.kernel import CURRENT_PYTHON, kernel_manager
from nbcov.text import strip_ansi
from nbcov.notebook import NotebookError


@dataclasses.dataclass
class RunConfig:
    """How to run notebooks (the options of `nbcov run` and of the pytest plugin)."""

    data_file: Path  # the data file the kernels' pieces are named after (`<data_file>.nb-…`)
    timeout: float | None = 600  # per cell, seconds
    kernel_name: str = CURRENT_PYTHON
    cwd: Path | None = None  # None: each notebook's own folder
    allow_errors: bool = False
    branch: bool | None = None
    source: Sequence[str] = ()
    rcfile: Path | None = None  # the coverage configuration the kernels read
    cell_contexts: bool = True
    subprocesses: bool = True
    output_dir: Path | None = None
    root: Path = dataclasses.field(default_factory=Path.cwd)  # where notebook paths are shown from

    def __post_init__(self) -> None:
        # Checked once, now, rather than as each kernel starts: a value a kernel could not read back
        # (a `source` entry holding os.pathsep) is a ContractError naming it.
        self.contract(self.data_file)

    def contract(self, piece: Path) -> KernelContract:
        """What a kernel writing `piece` is asked to measure (handed over as `NBCOV_*` variables)."""
        return KernelContract(
            data_file=str(piece),
            branch=self.branch,
            source=tuple(self.source),
            cell_contexts=self.cell_contexts,
            subprocess=self.subprocesses,
        )


@dataclasses.dataclass
class NotebookResult:
    """What happened to one notebook."""

    path: Path
    status: str  # passed, failed, timeout, died, skipped
    seconds: float = 0.0
    cell_index: int | None = None  # 1-based position of the cell that failed
    cell_source: str = ""
    message: str = ""
    data_file: Path | None = None
    notebook: Any = None  # the executed notebook

    @property
    def ok(self) -> bool:
        return self.status in ("passed", "skipped")


def find_notebooks(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The notebooks named, folders searched recursively; errors for the rest.

    Hidden folders below a named one are left out, as pytest leaves them out: `.ipynb_checkpoints/`,
    `.git/`, and nbcov's own `.nbcov/`, whose `cells/x.ipynb/` record folders end in `.ipynb` too.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*.ipynb")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts[:-1])
            )
        elif path.exists():
            found.append(path)
        else:
            raise NotebookError(raw, "no such file or folder")
    return found


def read_notebook(path: Path) -> Any:
    """Read a notebook (nbcov's one reader) and validate it, or raise NotebookError with nbformat's message."""
    notebook = notebook_file.read_notebook(path)
    raw = notebook.raw
    # Validated against nbformat's schema as written, before nbformat converts it: conversion of a
    # malformed notebook fails with errors that say nothing about what is wrong. A notebook to run
    # must be valid: a damaged cell the reader skips for a report would change what runs.
    try:
        validator = get_validator(version=raw["nbformat"], version_minor=raw.get("nbformat_minor", 0))
    except ImportError:  # nbformat imports `nbformat.v<N>` for the version asked
        validator = None
    if validator is None:
        raise NotebookError(path, f"unsupported nbformat version {raw['nbformat']}")
    errors = list(validator.iter_errors(raw))
    if errors:
        raise NotebookError(path, f"not a valid notebook: {errors[0].message}")
    try:
        return nbformat.reads(notebook.text, as_version=4)
    except Exception as exc:  # a schema-valid notebook nbformat still cannot convert
        raise NotebookError(path, f"not a valid notebook: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class KernelStartError(Exception):
    """The kernel did not start, or died before it answered."""


class _Client(NotebookClient):
    """nbclient, sending each cell's id in its execute request as JupyterLab does.

    nbclient sends none, so kernels could only place cells by matching their source; with the id,
    two cells with the same source are told apart without guessing. A kernel that fails to start is
    a `KernelStartError` (nbclient raises whatever jupyter_client did, and leaves an exit hook that
    fails).
    """

    current_cell: Any = None
    current_index: int | None = None

    async def async_start_new_kernel(self, **kwargs: Any) -> None:
        with self._starting():
            await super().async_start_new_kernel(**kwargs)

    async def async_execute_cell(self, cell: Any, cell_index: int, *args: Any, **kwargs: Any) -> Any:
        self.current_cell, self.current_index = cell, cell_index
        return await super().async_execute_cell(cell, cell_index, *args, **kwargs)

    async def async_start_new_kernel_client(self) -> Any:
        with self._starting():
            kc = await super().async_start_new_kernel_client()
        plain_execute = kc.execute

        def execute(code: str, *args: Any, **kwargs: Any) -> str:
            cell_id = self.current_cell.get("id") if self.current_cell is not None else None
            if not cell_id:
                return plain_execute(code, *args, **kwargs)
            content = {
                "code": code,
                "silent": False,
                "store_history": kwargs.get("store_history", True),
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": kwargs.get("stop_on_error", True),
            }
            msg = kc.session.msg("execute_request", content, metadata={"cellId": cell_id})
            kc.shell_channel.send(msg)
            return str(msg["header"]["msg_id"])

        # On this client only (an instance attribute shadows the class's method): nbclient sends every
        # cell through `kc.execute`, which has no way to pass request metadata.
        setattr(kc, "execute", execute)
        return kc

    @contextlib.contextmanager
    def _starting(self) -> Iterator[None]:
        """Any failure while the kernel starts or first answers becomes a `KernelStartError`."""
        try:
            yield
        except Exception as exc:
            # nbclient registers its clean-up to run at exit before starting the kernel and only
            # removes it once the kernel is up; after a failed start (cleaned up already) it would fail.
            atexit.unregister(self._cleanup_kernel)
            raise KernelStartError(_first_line(exc)) from exc


async def run_notebook(path: Path, config: RunConfig, index: int = 0) -> NotebookResult:
    """Execute one notebook in a fresh kernel that measures coverage from its start."""
    nb = read_notebook(path)
    meta = nb.metadata.get("nbcov", {}) or {}
    execution = nb.metadata.get("execution", {}) or {}  # nbmake's keys, for notebooks that have them
    if meta.get("skip") or execution.get("skip"):
        return NotebookResult(path, "skipped", message="skipped by the notebook's metadata")
    piece = Path(f"{config.data_file}.nb{index}-{secrets.token_hex(4)}")
    env = _kernel_env(path, piece, config)
    cwd = config.cwd or path.parent
    timeout = execution.get("timeout", config.timeout)
    allow_errors = bool(config.allow_errors or meta.get("allow_errors") or execution.get("allow_errors"))
    started = time.monotonic()
    result = NotebookResult(path, "passed", data_file=piece, notebook=nb)
    for attempt in (1, 2):
        km = kernel_manager(config.kernel_name)
        client = _Client(
            nb,
            km=km,
            timeout=timeout,
            allow_errors=allow_errors,
            resources={"metadata": {"path": str(cwd)}},
            extra_arguments=["--ext=nbcov"],
            shutdown_kernel="graceful",
        )
        try:
            await client.async_execute(env=env)
        except KernelStartError as exc:
            # Once more with new ports: jupyter_client picks free ports before the kernel binds
            # them, and under load another process can take one in between.
            if attempt == 1:
                continue
            _fill(result, client, "died", f"the kernel did not start: {exc}")
        except CellTimeoutError:
            _fill(result, client, "timeout", f"the cell ran longer than {timeout} s and was interrupted")
            # Interrupted, the cell ends like any cell: the kernel saves what it ran.
            await _interrupt(km)
        except DeadKernelError:
            _fill(result, client, "died", "the kernel died while running the cell")
        except CellExecutionError as exc:
            _fill(result, client, "failed", _traceback_text(exc))
        finally:
            # nbclient leaves a kernel it did not start running: shut it down (it saves on the way out).
            await _shutdown(km)
        break
    result.seconds = time.monotonic() - started
    if config.output_dir is not None:
        _write_output(nb, path, config)
    return result


async def _interrupt(km: Any, wait: float = 5.0) -> None:
    try:
        await km.interrupt_kernel()
        client = km.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=wait)
        finally:
            client.stop_channels()
    except Exception:  # a kernel that does not come back is shut down (or killed) next
        pass


async def _shutdown(km: Any) -> None:
    try:
        if await km.is_alive():
            await km.shutdown_kernel(now=False)  # also cleans up its files
        else:
            await km.cleanup_resources()  # a dead kernel leaves its connection file behind
    except Exception:  # the notebook's result is known; a kernel that will not go is not its fault
        pass


def _kernel_env(path: Path, piece: Path, config: RunConfig) -> dict[str, str]:
    env = dict(os.environ)
    env["JPY_SESSION_NAME"] = str(path.resolve())  # the notebook, as a Jupyter server names it
    env.update(config.contract(piece).to_env())
    if config.rcfile is not None:
        env["COVERAGE_RCFILE"] = str(config.rcfile)
    return env


def _fill(result: NotebookResult, client: _Client, status: str, message: str) -> None:
    result.status = status
    result.message = message
    if client.current_index is not None:
        result.cell_index = client.current_index + 1
        result.cell_source = client.current_cell.get("source", "")


def _traceback_text(exc: CellExecutionError) -> str:
    """The error part of nbclient's message: the traceback, without the cell source it repeats.

    Without ipykernel's colours: the message goes to CI logs, files and pytest's report as often as
    to a terminal, and a coloured traceback reads as line noise there.
    """
    text = strip_ansi(str(exc))
    return text.split("------------------\n", 2)[-1].strip() if "------------------" in text else text


def _write_output(nb: Any, path: Path, config: RunConfig) -> None:
    assert config.output_dir is not None
    try:
        relative = path.resolve().relative_to(config.root.resolve())
    except ValueError:
        relative = Path(path.name)
    target = config.output_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(target))


async def run_all(
    paths: Sequence[Path], config: RunConfig, jobs: int = 1, on_done: Any = None
) -> list[NotebookResult]:
    """Run notebooks, `jobs` kernels at a time; `on_done(result)` is called as each one ends."""
    gate = asyncio.Semaphore(max(1, jobs))

    async def one(index: int, path: Path) -> NotebookResult:
        async with gate:
            result = await run_notebook(path, config, index)
        if on_done is not None:
            on_done(result)
        return result

    return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(paths))))


