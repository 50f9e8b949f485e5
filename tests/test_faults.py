"""Faults at the worst moment: signals inside a save, a full disk, a long cell id, a kill mid-write, user code
that turns measurement off. Each is caused for real (a real signal, a real full file system, a real kill)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Empty

import nbformat
import pytest
import coverage
from coverage import CoverageData
from nbformat.v4 import new_code_cell, new_notebook

from conftest import cells_by_index, make_notebook, nbcov_cli, report_json, tmpfs, wait_for
from kernels import LiveKernel
from nbcov import data, engine
from nbcov.cells import CellRecord, CellStore, load_record, sibling_versions
from nbcov.saving import signals_held as _signals_held

FUNC = "def f(x):\n    if x:\n        return 1\n    return 2"

# User code in a cell that raises a real signal at an exact point of nbcov's save, found with a profile
# function (the save runs on the cell's thread, right after the cell): after coverage.py closed the
# kernel's in-memory data's connection and before it forgot it, and just after the data file's lock was taken.
SIGINT_AFTER_CLOSE = """\
import signal, sys
def _after_close(frame, event, arg):
    if (event == "c_return" and getattr(arg, "__name__", "") == "close" and frame.f_code.co_name == "close"
            and getattr(frame.f_locals.get("self"), "no_disk", False)):
        sys.setprofile(None)
        signal.raise_signal(signal.SIGINT)
sys.setprofile(_after_close)
"""
SIGTERM_IN_LOCK = """\
import fcntl, signal, sys
def _in_lock(frame, event, arg):
    if event == "c_return" and arg is fcntl.flock:
        sys.setprofile(None)
        signal.raise_signal(signal.SIGTERM)
sys.setprofile(_in_lock)
"""


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    return make_notebook(tmp_path / "nb.ipynb", ["%load_ext nbcov", FUNC, "f(1)", "f(0)", "y = 5"])


@contextlib.contextmanager
def live_kernel(nb: Path) -> Iterator[LiveKernel]:
    kernel = LiveKernel(nb.parent, env={"JPY_SESSION_NAME": str(nb)})
    try:
        yield kernel
    finally:
        if kernel.km.has_kernel and kernel.km.is_alive():
            kernel.shutdown()


@contextlib.contextmanager
def lock_held(data_dir: Path) -> Iterator[None]:
    """Hold the data file's writer lock from the test process: a kernel's save then waits inside it."""
    with data.locked(data_dir / ".coverage"):
        yield


def waits_for_a_lock(pid: int) -> bool:
    """Is process `pid` blocked taking a file lock? (The kernel's lines in /proc/locks marked `->`.)"""
    return any(line.split()[1] == "->" and line.split()[5] == str(pid) for line in Path("/proc/locks").read_text().splitlines())


def signal_taken(pid: int, signum: int) -> bool:
    """Has process `pid` taken `signum` (no longer pending)? Its handler has then started to run."""
    status = Path(f"/proc/{pid}/status").read_text()
    pending = int(next(line.split()[1] for line in status.splitlines() if line.startswith("ShdPnd:")), 16)
    return not pending & (1 << (signum - 1))


def outputs_of(kernel: LiveKernel, msg_id: str, timeout: float = 60) -> str:
    """Everything the request printed or raised, once the kernel is idle again."""
    text = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            msg = kernel.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        except Empty:
            raise TimeoutError("the kernel did not finish the cell") from None
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "status" and content["execution_state"] == "idle":
            return "".join(text)
        if kind == "stream":
            text.append(content["text"])
        elif kind == "error":
            text.append("\n".join(content["traceback"]))


def wait_for_exit(kernel: LiveKernel, seconds: float) -> int | None:
    process = kernel.km.provisioner.process
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return None


def lines_of(nb: Path) -> dict[int, list[int]]:
    return {i: c["executed_lines"] for i, c in cells_by_index(report_json(nb.parent)).items()}


# -- 1. an interrupt during the save ---------------------------------------------------------------


def test_an_interrupt_inside_the_save_does_not_stop_later_saves(notebook: Path) -> None:
    with live_kernel(notebook) as kernel:
        kernel.run("%load_ext nbcov", "cell-1")
        kernel.run(FUNC, "cell-2")
        hooked = kernel.run(f"{SIGINT_AFTER_CLOSE}\nf(1)", "cell-3")
        later = [kernel.run("f(0)", "cell-4"), kernel.run("y = 5", "cell-5")]
        assert all(r["status"] == "ok" and "could not save" not in r["text"] for r in later), later
        assert hooked["status"] == "ok" and "nothing was interrupted" in hooked["text"]
        assert "Traceback" not in hooked["text"]
        kernel.shutdown()
    lines = lines_of(notebook)
    assert lines[2] == [1, 2, 3, 4] and lines[4] == [1] and lines[5] == [1]


def test_an_interrupt_while_the_save_waits_for_the_lock(notebook: Path) -> None:
    """JupyterLab's Interrupt (SIGINT from jupyter_client) while another writer holds the data file."""
    with live_kernel(notebook) as kernel:
        kernel.run("%load_ext nbcov", "cell-1")
        kernel.run(FUNC, "cell-2")
        with lock_held(notebook.parent):
            msg_id = kernel.send("f(1)", "cell-3")
            pid = kernel.km.provisioner.process.pid
            wait_for(lambda: waits_for_a_lock(pid), 60, "the kernel's save to wait for the data file's lock")
            kernel.km.interrupt_kernel()
            wait_for(lambda: signal_taken(pid, signal.SIGINT), 30, "the kernel to take the SIGINT")
        printed = outputs_of(kernel, msg_id)
        assert "Traceback" not in printed and "KeyboardInterrupt" not in printed, printed
        assert "nothing was interrupted" in printed
        assert kernel.run("f(0)", "cell-4")["status"] == "ok"
    assert lines_of(notebook)[2] == [1, 2, 3, 4]


# -- 2. SIGTERM during the save --------------------------------------------------------------------


def test_sigterm_inside_the_save_neither_hangs_nor_blocks_other_kernels(notebook: Path) -> None:
    with live_kernel(notebook) as other, live_kernel(notebook) as kernel:
        other.run("%load_ext nbcov", "cell-1")
        kernel.run("%load_ext nbcov", "cell-1")
        kernel.run(FUNC, "cell-2")
        kernel.send(f"{SIGTERM_IN_LOCK}\nf(1)", "cell-3")
        code = wait_for_exit(kernel, 30)
        if code is None:
            kernel.km.provisioner.process.kill()
        assert code is not None, "the kernel hung in its SIGTERM handler"
        kernel.kc.stop_channels()
        # The other kernel sharing the data file saves as usual.
        other.run(FUNC, "cell-2", timeout=30)
        assert "could not save" not in other.run("f(0)", "cell-4", timeout=30)["text"]
        other.shutdown()
    lines = lines_of(notebook)
    assert lines[2] == [1, 2, 3, 4] and lines[3] == [1, 2, 6, 8] and lines[4] == [1]


def test_sigterm_while_the_save_waits_for_the_lock(notebook: Path) -> None:
    with live_kernel(notebook) as kernel:
        kernel.run("%load_ext nbcov", "cell-1")
        kernel.run(FUNC, "cell-2")
        with lock_held(notebook.parent):
            kernel.send("f(1)", "cell-3")
            pid = kernel.km.provisioner.process.pid
            wait_for(lambda: waits_for_a_lock(pid), 60, "the kernel's save to wait for the data file's lock")
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: signal_taken(pid, signal.SIGTERM), 30, "the kernel to take the SIGTERM")
            assert wait_for_exit(kernel, 0.1) is None  # still saving: it waits for the lock
        assert wait_for_exit(kernel, 30) is not None
        kernel.kc.stop_channels()
    assert lines_of(notebook)[3] == [1]


@pytest.mark.unit
def test_signals_held_during_a_block_are_delivered_after_it() -> None:
    got: list[int] = []
    old = signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
    sigint = signal.getsignal(signal.SIGINT)
    try:
        with _signals_held() as arrived:
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)
            assert got == []
        assert arrived == [signal.SIGTERM] and got == []
        assert signal.getsignal(signal.SIGINT) is sigint  # handlers are restored
        signal.raise_signal(signal.SIGTERM)
        assert got == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, old)


# -- 4. a record that could not be written ---------------------------------------------------------


def test_a_very_long_cell_id_just_works(tmp_path: Path) -> None:
    long_id = "x" * 300
    nb = new_notebook(cells=[new_code_cell("%load_ext nbcov"), new_code_cell(FUNC), new_code_cell("f(1)")])
    for cell, cell_id in zip(nb.cells, ["a", long_id, "c"]):
        cell["id"] = cell_id
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))  # nbformat would refuse an id over 64 characters; frontends send them
    with live_kernel(path) as kernel:
        for cell in nb.cells:
            result = kernel.run(cell.source, cell.id)
            assert result["status"] == "ok" and "could not save" not in result["text"], result
    assert lines_of(path)[2] == [1, 2, 3]


@pytest.mark.unit
def test_a_long_key_gets_a_short_stable_record_name(tmp_path: Path) -> None:
    store = CellStore(tmp_path)
    versions = [CellRecord(source=text, code=text, notebook="nb.ipynb", key="k" * 300) for text in ("a", "b")]
    names = [store.save(r) for r in versions]
    assert all(len(Path(n).name) < 255 for n in names)
    assert sibling_versions(names[0]) == sibling_versions(names[1])  # still versions of one cell
    assert store.path_for(versions[0]) == CellStore(tmp_path).path_for(versions[0])
    assert load_record(names[1]).source == "b"
    short = CellRecord(source="a", code="a", notebook="nb.ipynb", key="cell-1")
    assert store.path_for(short).name == f"cell-1-{short.digest}.json"  # names that fit are as they were


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB file system of its own (tmpfs), which the test fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    with tmpfs(mount, "size=2m"):
        yield mount


def fill(folder: Path) -> Path:
    """Fill the file system up to its last byte."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 16, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_loses_no_cell_and_poisons_nothing(small_disk: Path) -> None:
    nb = make_notebook(small_disk / "nb.ipynb", ["%load_ext nbcov", FUNC, "f(1)", "f(0)", "y = 5"])
    with live_kernel(nb) as kernel:
        kernel.run("%load_ext nbcov", "cell-1")
        filler = fill(small_disk)
        failed = kernel.run(FUNC, "cell-2")
        assert "could not save" in failed["text"] and failed["status"] == "ok"
        assert "could not save" in kernel.run("f(1)", "cell-3")["text"]
        filler.unlink()
        assert "could not save" not in kernel.run("f(0)", "cell-4")["text"]
    assert lines_of(nb) == {2: [1, 2, 3, 4], 3: [1], 4: [1]}
    nbcov_cli("html", cwd=small_disk)


KILL_BEFORE_DATA = """\
import fcntl, os, signal, sys
def _before_lock(frame, event, arg):
    if event == "c_call" and arg is fcntl.flock:
        os.kill(os.getpid(), signal.SIGKILL)
sys.setprofile(_before_lock)
"""


def test_a_kill_between_a_record_and_its_data_poisons_nothing(notebook: Path) -> None:
    """Killed after the cell's record was written, before its data: the record is only an orphan."""
    with live_kernel(notebook) as kernel:
        for i, source in enumerate(["%load_ext nbcov", FUNC, "f(1)"], 1):
            kernel.run(source, f"cell-{i}")
        kernel.send(f"{KILL_BEFORE_DATA}\nf(0)", "cell-4")
        assert wait_for_exit(kernel, 30) == -signal.SIGKILL
        kernel.kc.stop_channels()
    assert len(list((notebook.parent / ".nbcov" / "cells").rglob("cell-4-*.json"))) == 1  # written, unused
    assert lines_of(notebook) == {2: [1, 2, 3], 3: [1]}
    nbcov_cli("html", cwd=notebook.parent)


# -- 6. a kill while an edited cell's old version is deleted ---------------------------------------


def kill_mid_delete(data_file: Path) -> None:
    """A writer killed (SIGKILL) in the middle of deleting rows, with its rollback journal on disk.

    SQLite writes changed pages to the data file before commit once its page cache is full; a
    cache of two pages makes that happen at once, so the file really is half changed.
    """
    child = subprocess.Popen(
        [sys.executable, "-c", (
            "import sqlite3, sys, time\n"
            f"con = sqlite3.connect({str(data_file)!r})\n"
            "con.execute('pragma cache_size=2')\n"
            "con.execute('begin')\n"
            "con.execute('delete from line_bits')\n"
            "con.execute('delete from file')\n"
            "print('deleting', flush=True)\n"
            "time.sleep(60)\n"
        )],
        stdout=subprocess.PIPE, text=True,
    )
    assert child.stdout is not None and child.stdout.readline() == "deleting\n"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert Path(f"{data_file}-journal").exists()


def test_a_journal_left_by_a_killed_writer_is_rolled_back(tmp_path: Path) -> None:
    path = tmp_path / ".coverage"
    written = CoverageData(basename=str(path))
    written.add_lines({f"/src/m{i}.py": set(range(1, 300)) for i in range(200)})
    written.write()
    kill_mid_delete(path)
    try:
        data.check_data_file(path)
    except data.DataFileError as exc:
        # Later coverage.py versions read without writing, so a hot journal is an error to roll back.
        assert "journal" in str(exc)
        assert data.recover(path)
    else:
        # coverage 7.10 reads through a writable connection: SQLite rolls the journal back itself.
        assert coverage.version_info < (7, 11)
    assert not Path(f"{path}-journal").exists()
    assert len(data.check_data_file(path).measured_files()) == 200
    assert not data.recover(path)  # nothing left to do


def test_a_kill_mid_delete_is_rolled_back_not_set_aside(notebook: Path) -> None:
    with live_kernel(notebook) as kernel:
        for i, source in enumerate(["%load_ext nbcov", FUNC, "f(1)"], 1):
            kernel.run(source, f"cell-{i}")
    data_file = notebook.parent / ".coverage"
    kill_mid_delete(data_file)
    with live_kernel(notebook) as kernel:
        started = kernel.run("%load_ext nbcov", "cell-1")
        assert "rolled back" in started["text"], started
        kernel.run(FUNC, "cell-2")
        assert "could not save" not in kernel.run("f(0)", "cell-4")["text"]
    assert not list(notebook.parent.glob(".coverage-nbcov-*"))
    assert lines_of(notebook) == {2: [1, 2, 3, 4], 3: [1], 4: [1]}


def test_a_journal_appearing_under_a_running_kernel_is_rolled_back_at_its_next_save(notebook: Path) -> None:
    with live_kernel(notebook) as kernel:
        for i, source in enumerate(["%load_ext nbcov", FUNC, "f(1)"], 1):
            kernel.run(source, f"cell-{i}")
        kill_mid_delete(notebook.parent / ".coverage")  # another kernel sharing the file, killed
        saved = kernel.run("f(0)", "cell-4")
        assert "rolled back" in saved["text"] and "could not save" not in saved["text"], saved
    assert lines_of(notebook) == {2: [1, 2, 3, 4], 3: [1], 4: [1]}


# -- 10. user code that disturbs measurement -------------------------------------------------------

needs_sysmon = pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is Python 3.12+")
FREE_TOOL = "import sys\nfor tool in range(1, 6):\n    if sys.monitoring.get_tool(tool) in ('coverage.py', 'nbcov'):\n        sys.monitoring.free_tool_id(tool)"
EVENTS_OFF = "import sys\nfor tool in range(1, 6):\n    if sys.monitoring.get_tool(tool) in ('coverage.py', 'nbcov'):\n        sys.monitoring.set_events(tool, 0)"
STOP_COVERAGE = "import coverage\ncoverage.Coverage.current().stop()"


@pytest.mark.parametrize(
    "disturbance, said",
    [
        pytest.param(FREE_TOOL, "tool id was freed", marks=needs_sysmon, id="free_tool_id"),
        pytest.param(EVENTS_OFF, "events were switched off", marks=needs_sysmon, id="set_events"),
        pytest.param(STOP_COVERAGE, "Coverage.stop()", id="Coverage.stop"),
    ],
)
@pytest.mark.parametrize("branch", [False, True], ids=["line", "branch"])
def test_user_code_that_turns_measuring_off(tmp_path: Path, disturbance: str, said: str, branch: bool) -> None:
    (tmp_path / ".coveragerc").write_text(f"[run]\nbranch = {branch}\n")
    nb = make_notebook(tmp_path / "nb.ipynb", ["%load_ext nbcov", FUNC, disturbance, "f(1)", "f(0)", "y = 5"])
    with live_kernel(nb) as kernel:
        results = [kernel.run(cell.source, cell.id) for cell in nbformat.read(nb, as_version=4).cells]
    assert [r["status"] for r in results] == ["ok"] * 6, [r["outputs"] for r in results]
    assert said in results[2]["text"]
    assert not any(said in r["text"] for r in results[3:])  # said once
    lines = lines_of(nb)
    assert lines[2] == [1, 2, 3, 4] and lines[4] == [1] and lines[5] == [1] and lines[6] == [1]


@needs_sysmon
def test_freeing_the_tool_twice_is_said_once_and_the_cell_does_not_fail(tmp_path: Path) -> None:
    """The cell that frees the id goes on to run new code: coverage.py's callbacks, still registered
    on 3.12/3.13, used to raise ValueError right there."""
    nb = make_notebook(tmp_path / "nb.ipynb", ["%load_ext nbcov", f"{FREE_TOOL}\n{FUNC}\nf(0)", FREE_TOOL, "f(1)"])
    with live_kernel(nb) as kernel:
        results = [kernel.run(cell.source, cell.id) for cell in nbformat.read(nb, as_version=4).cells]
    assert [r["status"] for r in results] == ["ok"] * 4, [r["outputs"] for r in results]
    assert "tool id was freed" in results[1]["text"] and "tool id was freed" not in results[2]["text"]
    assert 1 in lines_of(nb)[4]


@pytest.mark.unit
@pytest.mark.skipif(not engine.SUPPORTED, reason="nbcov's LineMonitor measures on Python 3.12 and 3.13")
@pytest.mark.parametrize("disturb", ["free_tool_id", "set_events"])
def test_rearm_turns_a_disturbed_tool_back_on(tmp_path: Path, disturb: str) -> None:
    import importlib.util

    import coverage

    module = tmp_path / "rearmed.py"
    module.write_text("def g():\n    return 1\n")
    cov = coverage.Coverage(data_file=None, config_file=False, source=[str(tmp_path)])
    cov.set_option("run:core", "sysmon")
    assert engine.install_lines(cov)
    cov.start()
    try:
        assert engine.rearm(cov) is None  # nothing to do
        tool = cov._collector.tracers[0].myid
        if disturb == "free_tool_id":
            sys.monitoring.free_tool_id(tool)
        else:
            sys.monitoring.set_events(tool, 0)
        what = engine.rearm(cov)
        spec = importlib.util.spec_from_file_location("rearmed", module)
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        loaded.g()
    finally:
        cov.stop()
    assert what is not None and disturb in what
    assert sorted(cov.get_data().lines(str(module)) or []) == [1, 2]
