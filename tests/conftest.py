"""Shared fixtures: real kernels (nbclient + ipykernel) and real reports in fresh processes."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import multiprocessing.util
import subprocess
import sys
import time
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from nbcov.kernel import kernel_manager

HERE = Path(__file__).parent
ROOT = HERE.parent
NBCOV = [sys.executable, "-m", "nbcov.cli"]
#: The coverage.py cores a test can measure with on this Python (sys.monitoring is 3.12+).
CORES = ["ctrace", "sysmon"] if sys.version_info >= (3, 12) else ["ctrace"]

#: A function with three ways out, for tests that need missed lines and branches.
CLASSIFY = """\
def classify(x):
    if x > 0:
        return "pos"
    elif x < 0:
        return "neg"
    return "zero"
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/unit/ is a unit test, without a marker on each."""
    unit_dir = HERE / "unit"
    for item in items:
        if unit_dir in item.path.parents:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def _unit_tests_start_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test marked `unit` runs in the pytest process: starting a kernel or any other process fails it,
    so the marker stays true (`make test-unit` runs these first because they take seconds)."""
    if request.node.get_closest_marker("unit") is None:
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a test marked unit started a process: drop its unit marker")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)
    monkeypatch.setattr(os, "fork", refuse)
    monkeypatch.setattr(multiprocessing.util, "spawnv_passfds", refuse)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels inherit the environment: start every test without session or coverage settings."""
    for name in ("JPY_SESSION_NAME", "NBCOV_NOTEBOOK", "COVERAGE_CORE", "COVERAGE_RCFILE", "COVERAGE_PROCESS_START"):
        monkeypatch.delenv(name, raising=False)


def make_notebook(path: Path, cells: list[str | tuple[str, str]], ids: bool = True) -> Path:
    """Write a notebook: strings are code cells, ("md", text) pairs are markdown cells."""
    nb_cells = []
    for i, cell in enumerate(cells):
        if isinstance(cell, tuple):
            nb_cells.append(new_markdown_cell(cell[1]))
        else:
            nb_cells.append(new_code_cell(cell))
        nb_cells[-1]["id"] = f"cell-{i + 1}"
    nb = new_notebook(cells=nb_cells)
    if not ids:
        nb.nbformat_minor = 4
        for c in nb.cells:
            c.pop("id", None)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def execute_notebook(path: Path, *, allow_errors: bool = False, timeout: int = 120) -> Any:
    """Run a notebook headless, in its own folder, the way nbclient users do (no cell ids sent).

    The kernel is told its notebook through JPY_SESSION_NAME, as jupyter_server tells it.
    """
    nb = nbformat.read(str(path), as_version=4)
    os.environ["JPY_SESSION_NAME"] = str(path)
    try:
        client = NotebookClient(
            nb,
            km=kernel_manager(),
            timeout=timeout,
            allow_errors=allow_errors,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
    finally:
        del os.environ["JPY_SESSION_NAME"]
    return nb


def nbcov_cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the `nbcov` command in a fresh process."""
    # Generous: `nbcov run` over several notebooks on a loaded 2-core CI machine takes minutes.
    result = subprocess.run([*NBCOV, *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"nbcov {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def report_json(cwd: Path, *args: str) -> dict[str, Any]:
    """`nbcov report --format json` in a fresh process, after the kernel is gone."""
    return json.loads(nbcov_cli("report", "--format", "json", *args, cwd=cwd).stdout)


def cells_by_index(report: dict[str, Any]) -> dict[int, dict[str, Any]]:
    cells = {c["cell_index"]: c for c in report["cells"]}
    assert len(cells) == len(report["cells"]), [c["name"] for c in report["cells"]]
    return cells


def coverage_cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "coverage", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"coverage {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


T = TypeVar("T")


class WaitTimeout(AssertionError):
    """What `wait_for` raises when its condition did not come true in time."""


def wait_for(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.1,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll `condition` until it returns something truthy (returned), or fail after `timeout` seconds
    saying `what` was waited for: tests wait on the state they need, never for a fixed time.

    Exceptions of the `retry_on` types (a file not written yet, a server not listening yet) count as
    "not yet"; any other exception ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = condition()
        except retry_on as exc:
            last_error, result = exc, None
        if result:
            return result
        if time.monotonic() > deadline:
            detail = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


def run_once(root: Path, key: str, produce: Callable[[], Any], load: Callable[[dict[str, Any]], T]) -> T:
    """The result of an expensive run (a dataclass) that many tests read, made once per test session.

    Under pytest-xdist the workers share `root`: the first worker to need `key` runs `produce`
    (holding a lock) and saves the result as JSON; the others wait for it and `load` it. A run that
    failed fails every test that needs it, naming the first failure.
    """
    outcome = root / f"{key}.json"
    with open(root / f"{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not outcome.exists():
            try:
                result = produce()
            except BaseException as exc:
                outcome.write_text(json.dumps({"failed": repr(exc)}))
                raise
            outcome.write_text(json.dumps(dataclasses.asdict(result)))
    saved = json.loads(outcome.read_text())
    if "failed" in saved:
        pytest.fail(f"the {key} run failed in an earlier test: {saved['failed']}")
    return load(saved)


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[None]:
    """A tmpfs mounted at `where` for the block (`ro` or a small `size`): real conditions that stop root,
    which chmod does not. The test is skipped where mounting is not allowed."""
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({options}) here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
