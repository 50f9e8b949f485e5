"""Processes a notebook starts: they never erase the notebook's data, and what they run is counted."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import coverage
import pytest
from coverage.exceptions import DataError

from conftest import cells_by_index, make_notebook, nbcov_cli, report_json
from kernels import LiveKernel
from nbcov import coverage_internals, processes, saving

#: The cells around the one that starts processes: their numbers must not change because of it.
BEFORE = "def f(x):\n    if x > 3:\n        return x * 2\n    return x\nf(3)"
AFTER = "y = f(4)"
#: Work for spawn/forkserver workers and subprocesses (they cannot import the notebook's __main__).
HELPER = "def work(x):\n    if x > 1:\n        return x * x\n    return -x\n"
#: Work defined in the cell itself, for forked workers: both of its branches run only there.
SQUARE = "def square(x):\n    if x > 1:\n        return x * x\n    return -x\n"

STARTERS = {
    "subprocess": "import subprocess, sys\n"
    "subprocess.run([sys.executable, '-c', 'import helper; helper.work(0); helper.work(2)'], check=True)",
    "pip": "import sys\n!{sys.executable} -m pip --version",
    "fork-pool": SQUARE + "import multiprocessing as mp\n"
    "with mp.get_context('fork').Pool(2) as pool:\n    print(pool.map(square, range(4)))",
    "spawn-pool": "import multiprocessing as mp, helper\n"
    "with mp.get_context('spawn').Pool(2) as pool:\n    print(pool.map(helper.work, range(4)))",
    "forkserver-pool": "import multiprocessing as mp, helper\n"
    "with mp.get_context('forkserver').Pool(2) as pool:\n    print(pool.map(helper.work, range(4)))",
    "process-pool-executor": SQUARE + "import multiprocessing as mp\n"
    "from concurrent.futures import ProcessPoolExecutor\n"
    "with ProcessPoolExecutor(2, mp_context=mp.get_context('fork')) as ex:\n    print(list(ex.map(square, range(4))))",
    "os-fork": SQUARE + "import os\npid = os.fork()\nif pid == 0:\n    square(0), square(2)\n    os._exit(0)\n"
    "os.waitpid(pid, 0)",
}
#: Where the lines the child processes ran are: the cell itself (forked children) or helper.py.
IN_CELL = {"fork-pool", "process-pool-executor", "os-fork"}
IN_HELPER = {"subprocess", "spawn-pool", "forkserver-pool"}


def _run(folder: Path, process_cell: str, *options: str) -> dict[str, Any]:
    """`nbcov run` over [BEFORE, process_cell, AFTER] with helper.py beside it, then the JSON report."""
    folder.mkdir()
    (folder / "helper.py").write_text(HELPER)
    make_notebook(folder / "nb.ipynb", [BEFORE, process_cell, AFTER])
    result = nbcov_cli("run", "nb.ipynb", "--source", ".", *options, cwd=folder, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return report_json(folder)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Any]]:
    """The cells around a cell that starts no process."""
    return cells_by_index(_run(tmp_path_factory.mktemp("reference") / "nb", "x = 1"))


def _numbers(cell: dict[str, Any]) -> tuple[Any, ...]:
    return cell["executed_lines"], cell["missing_lines"], cell["summary"]["num_statements"]


@pytest.mark.parametrize("kind", list(STARTERS))
def test_a_cell_starting_processes_keeps_the_notebook_s_data_and_counts_theirs(
    kind: str, tmp_path: Path, reference: dict[int, dict[str, Any]]
) -> None:
    report = _run(tmp_path / kind, STARTERS[kind])
    cells = cells_by_index(report)
    assert set(cells) == {1, 2, 3}
    assert _numbers(cells[1]) == _numbers(reference[1])
    assert _numbers(cells[3]) == _numbers(reference[3])
    assert cells[2]["missing_lines"] == []
    if kind in IN_CELL:
        assert {2, 3, 4} <= set(cells[2]["executed_lines"])  # square()'s body ran only in children
    helper = report["files"]["helper.py"]
    if kind in IN_HELPER:
        assert helper["executed_lines"] == [1, 2, 3, 4]  # work()'s body ran only in children
    else:
        assert helper["executed_lines"] == []


@pytest.mark.parametrize("kind", ["fork-pool", "spawn-pool"])
def test_branches_run_in_children_are_counted(kind: str, tmp_path: Path) -> None:
    report = _run(tmp_path / kind, STARTERS[kind], "--branch")
    cells = cells_by_index(report)
    assert [c["missing_branches"] for c in cells.values()] == [[], [], []]
    if kind == "spawn-pool":
        assert report["files"]["helper.py"]["missing_branches"] == []


def test_a_half_written_piece_of_a_killed_process_is_left_out_not_the_run(tmp_path: Path) -> None:
    junk = "import os\nopen(os.environ['NBCOV_DATA_FILE'] + '.host.pid1.Xkilledx', 'w').write('half')"
    folder = tmp_path / "junk"
    folder.mkdir()
    make_notebook(folder / "nb.ipynb", [BEFORE, junk, AFTER])
    result = nbcov_cli("run", "nb.ipynb", cwd=folder)
    assert "nbcov: warning: left out of the combined data:" in result.stderr and ".Xkilledx" in result.stderr
    assert set(cells_by_index(report_json(folder))) == {1, 2, 3}


@pytest.fixture
def live(tmp_path: Path):
    """A kernel driven as JupyterLab drives it, measuring from `%load_ext nbcov` on."""
    nb = make_notebook(tmp_path / "work" / "nb.ipynb", ["%load_ext nbcov", "def g():\n    return 1", "pool"])
    kernel = LiveKernel(nb.parent, env={"JPY_SESSION_NAME": str(nb)})
    kernel.run("%load_ext nbcov", "cell-1")
    yield kernel, nb
    kernel.shutdown()


def test_forked_children_of_a_live_kernel_are_counted(live) -> None:
    kernel, nb = live
    kernel.run(STARTERS["fork-pool"], "cell-2")
    kernel.run(STARTERS["os-fork"], "cell-3")
    cells = cells_by_index(report_json(nb.parent))
    assert cells[2]["missing_lines"] == [] and cells[3]["missing_lines"] == []


def test_a_forked_child_never_drops_a_newer_version_of_a_cell(live) -> None:
    kernel, nb = live
    kernel.run("def g():\n    return 1", "cell-2")
    start = "import multiprocessing as mp, time\npool = mp.get_context('fork').Pool(1)\npool.apply(g)\n"
    reply = kernel.run(start + "busy = pool.apply_async(time.sleep, (60,))", "cell-3")
    assert reply["status"] == "ok", reply
    # The person edits cell 2 and runs it again while the pool's worker (forked before) lives on.
    kernel.run("def g():\n    if True:\n        return 2", "cell-2")
    kernel.run("g()", "cell-4")
    kernel.run("pool.terminate()\npool.join()", "cell-3")  # the busy worker saves on SIGTERM
    cells = cells_by_index(report_json(nb.parent))
    assert cells[2]["source"] == "def g():\n    if True:\n        return 2"
    assert cells[2]["executed_lines"] == [1, 2, 3]


#: A script a live kernel's cell runs as a new Python: both branches of `work` run only there.
HELPER_SCRIPT = HELPER + "work(0)\nwork(2)\n"
LIVE_STARTERS = (
    "import subprocess, sys\nsubprocess.run([sys.executable, 'helper_script.py'], check=True)",
    "import multiprocessing as mp, helper\n"
    "with mp.get_context('spawn').Pool(2) as pool:\n    print(pool.map(helper.work, range(4)))",
)


def _live_with_helpers(tmp_path: Path, first_cell: str) -> tuple[LiveKernel, Path]:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "helper.py").write_text(HELPER)
    (folder / "helper_script.py").write_text(HELPER_SCRIPT)
    nb = make_notebook(folder / "nb.ipynb", [first_cell, *LIVE_STARTERS, "x = 1"])
    kernel = LiveKernel(folder, env={"JPY_SESSION_NAME": str(nb)})
    assert kernel.run(first_cell, "cell-1")["status"] == "ok"
    return kernel, folder


def _children_pieces(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".coverage.*") if coverage_internals.piece_pid(p.name) is not None)


def test_a_live_kernel_counts_the_lines_its_new_pythons_run(tmp_path: Path) -> None:
    """Issue #13: with `%load_ext nbcov` alone, lines run in a subprocess and in spawn workers count,
    in the data file and `nbcov report`, with no `combine` to run; no piece is left behind."""
    kernel, folder = _live_with_helpers(tmp_path, "%load_ext nbcov")
    try:
        for index, cell in enumerate(LIVE_STARTERS, start=2):
            reply = kernel.run(cell, f"cell-{index}", timeout=120)
            assert reply["status"] == "ok" and "nbcov:" not in reply["text"], reply
        measured = coverage.CoverageData(str(folder / ".coverage"))
        measured.read()  # folded by the saves at the end of those cells, the kernel still running
        assert sorted(measured.lines(str(folder / "helper_script.py")) or []) == [1, 2, 3, 4, 5, 6]
        assert sorted(measured.lines(str(folder / "helper.py")) or []) == [1, 2, 3, 4]
        kernel.run("x = 1", "cell-4")
        assert _children_pieces(folder) == []
        report = report_json(folder)
    finally:
        kernel.shutdown()
    assert report["files"]["helper_script.py"]["missing_lines"] == []
    assert report["files"]["helper.py"]["executed_lines"] == [1, 2, 3, 4]


@pytest.mark.parametrize("opt_out", [
    "import nbcov\nnbcov.autoconfig(subprocess=False)",  # before measuring starts
    "%load_ext nbcov\nimport nbcov\nnbcov.autoconfig(subprocess=False)",  # once it has
])
def test_a_live_kernel_told_not_to_measures_no_child(tmp_path: Path, opt_out: str) -> None:
    kernel, folder = _live_with_helpers(tmp_path, opt_out)
    try:
        for index, cell in enumerate(LIVE_STARTERS, start=2):
            assert kernel.run(cell, f"cell-{index}", timeout=120)["status"] == "ok"
        assert list(folder.glob(".coverage.*")) == []  # no child wrote a piece
        report = report_json(folder)
    finally:
        kernel.shutdown()
    assert "helper_script.py" not in report["files"]
    assert report["files"]["helper.py"]["executed_lines"] == [1]  # imported by the kernel, never run


# -- without a kernel -------------------------------------------------------------------------------


def _piece(target: Path, pid: int, lines: dict[str, list[int]], hashed: str = "") -> Path:
    """A piece as a child with process id `pid` writes it (coverage.py's parallel suffix; 7.17 adds
    the data's hash, `hashed`, once written)."""
    piece = Path(f"{target}.host.pid{pid}.Xabcdefx{hashed}")
    data = coverage.CoverageData(str(piece))
    data.add_lines(lines)
    data.write()
    return piece


def _ended_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_save_folds_the_finished_pieces_of_its_children_only(tmp_path: Path) -> None:
    target, children = tmp_path / ".coverage", tmp_path / ".coverage.nbk-1"
    done = _piece(children, _ended_pid(), {"/a.py": [1, 2]})
    hashed = _piece(children, _ended_pid(), {"/a.py": [5]}, hashed=".Habc01h")
    running = _piece(children, os.getpid(), {"/b.py": [3]})  # its process may still be writing it
    journal = Path(f"{done}-journal")
    journal.write_bytes(b"")
    other = _piece(tmp_path / ".coverage.nbk-2", _ended_pid(), {"/c.py": [4]})  # another kernel's
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        saving.fold_pieces(str(children), str(target))
    folded = coverage.CoverageData(str(target))
    folded.read()
    assert folded.measured_files() == {"/a.py"} and sorted(folded.lines("/a.py") or []) == [1, 2, 5]
    assert not done.exists() and not hashed.exists() and running.exists() and journal.exists() and other.exists()


def test_a_piece_damaged_for_good_is_said_once_and_moved_aside(tmp_path: Path, capsys: Any) -> None:
    children = tmp_path / ".coverage.nbk-1"
    damaged = Path(f"{children}.host.pid{_ended_pid()}.Xkilledx")
    damaged.write_text("half")
    with pytest.warns(RuntimeWarning, match="not a usable coverage data file"):
        saving.fold_pieces(str(children), str(tmp_path / ".coverage"))
    saving.fold_pieces(str(children), str(tmp_path / ".coverage"))  # said once: nothing left to say
    assert capsys.readouterr().err.count("nbcov:") == 1
    assert not damaged.exists() and Path(f"{damaged}-nbcov-unreadable").read_text() == "half"
    assert processes.finished_pieces(str(children)) == []


def test_a_save_with_no_pieces_lists_one_folder_only(tmp_path: Path, monkeypatch: Any) -> None:
    listed: list[str] = []
    real = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path=".": listed.append(str(path)) or real(path))
    saving.fold_pieces(str(tmp_path / ".coverage.nbk-1"), str(tmp_path / ".coverage"))
    assert listed == [str(tmp_path)]



def _kernel_like_coverage(tmp_path: Path, **options: Any) -> coverage.Coverage:
    cov = coverage.Coverage(data_file=None, config_file=False, source=[str(tmp_path)], **options)
    cov.set_option("run:patch", ["subprocess", "fork", "_exit"])
    return cov


def test_children_get_parallel_pieces_of_the_kernel_s_data_file(tmp_path: Path) -> None:
    cov = _kernel_like_coverage(tmp_path, branch=True)
    assert processes.take_over_patches(cov) is True
    assert cov.get_option("run:patch") == ["_exit"]  # nbcov does subprocess and fork itself

    child = coverage_internals.read_config(processes.child_config(cov, str(tmp_path / ".coverage.nb0")))
    assert child.data_file == str(tmp_path / ".coverage.nb0") and child.parallel and child.branch
    assert child.source == [str(tmp_path)]
    assert processes.__name__ in child.plugins and not child.sigterm  # nbcov saves on SIGTERM
    assert "subprocess" not in child.patch and "_exit" not in child.patch
    # The kernel's own measurement is left as it was.
    assert not cov.get_option("run:parallel") and cov.get_option("run:data_file") == ".coverage"


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_python_started_with_the_child_configuration_saves_its_workers(tmp_path: Path, method: str) -> None:
    """Workers that `with Pool()` terminates, without a kernel: whole pieces, every line."""
    (tmp_path / "helper.py").write_text(HELPER)
    _run_with_child_configuration(
        tmp_path,
        "import multiprocessing as mp, helper\n"
        "if __name__ == '__main__':\n"
        f"    with mp.get_context({method!r}).Pool(2) as pool:\n"
        "        pool.map(helper.work, range(4))\n",
    )
    assert _lines_in_pieces(tmp_path, tmp_path / "helper.py") == {1, 2, 3, 4}


#: Pools started one after the other by `test_every_forkserver_pool_s_workers_save_their_lines`.
POOLS = 6


def test_every_forkserver_pool_s_workers_save_their_lines(tmp_path: Path) -> None:
    """The race fixed in `processes._leaving`, run often enough to be seen: a worker that took its
    pool's last sentinel saves in `os._exit`, and `with Pool()` terminates it in the middle of that
    save. Before the fix each pool lost its workers' lines in about half of the runs (3.11-3.13)."""
    # One function per pool: the lines of pool i's function ran only in pool i's workers.
    (tmp_path / "helper.py").write_text("".join(f"def work{i}(x):\n    return x + {i}\n" for i in range(POOLS)))
    _run_with_child_configuration(
        tmp_path,
        "import multiprocessing as mp, helper\n"
        "if __name__ == '__main__':\n"
        f"    for i in range({POOLS}):\n"
        "        with mp.get_context('forkserver').Pool(2) as pool:\n"
        "            pool.map(getattr(helper, f'work{i}'), range(4))\n",
    )
    assert _lines_in_pieces(tmp_path, tmp_path / "helper.py") == set(range(1, 2 * POOLS + 1))


def test_forkserver_workers_hear_sigterm_through_the_wake_up_fd(tmp_path: Path) -> None:
    """CPython's forkserver takes the wake-up fd away from each worker it forks: nbcov sets it again,
    or a SIGTERM landing just before a worker waits for its next task hangs `Pool.terminate()`."""
    (tmp_path / "armed.py").write_text(
        "import signal\n"
        "def fd(_):\n"
        "    old = signal.set_wakeup_fd(-1)\n"
        "    if old != -1:\n"
        "        signal.set_wakeup_fd(old)\n"
        "    return old\n"
    )
    _run_with_child_configuration(
        tmp_path,
        "import multiprocessing as mp, armed, pathlib\n"
        "if __name__ == '__main__':\n"
        "    with mp.get_context('forkserver').Pool(2) as pool:\n"
        "        pathlib.Path('fds').write_text(repr(pool.map(armed.fd, range(4))))\n",
    )
    assert -1 not in eval((tmp_path / "fds").read_text())


def test_a_sigterm_during_the_save_at_os_exit_lets_it_finish(tmp_path: Path) -> None:
    """What `with Pool()` does to a worker leaving through `os._exit`, at the worst moment: SIGTERM
    as the save starts. The process saves whole, then leaves with its own exit status."""
    (tmp_path / "helper.py").write_text(HELPER)
    status = _run_with_child_configuration(
        tmp_path,
        "import os, signal, coverage, helper\n"
        "helper.work(0), helper.work(2)\n"
        "cov = coverage.Coverage.current()\n"
        "save = cov.save\n"
        "def terminated_while_saving():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    save()\n"
        "cov.save = terminated_while_saving\n"
        "os._exit(3)\n",
        check=False,
    )
    assert status == 3
    assert _lines_in_pieces(tmp_path, tmp_path / "helper.py") == {1, 2, 3, 4}


def _run_with_child_configuration(folder: Path, script: str, check: bool = True) -> int:
    """Run `script` as a Python the kernel starts would run: with the child configuration."""
    (folder / "main.py").write_text(script)
    cov = _kernel_like_coverage(folder)
    env = {**os.environ, "COVERAGE_PROCESS_CONFIG": processes.child_config(cov, str(folder / ".coverage"))}
    done = subprocess.run([sys.executable, "main.py"], cwd=folder, env=env, check=check, timeout=300)
    return done.returncode


def _lines_in_pieces(folder: Path, measured: Path) -> set[int]:
    """The lines of `measured` in all the pieces in `folder`; every piece must be whole."""
    pieces = sorted(folder.glob(".coverage.*"))
    assert pieces
    lines: set[int] = set()
    for piece in pieces:
        data = _read_when_written(piece)  # a half-written piece would never read
        lines |= set(data.lines(str(measured)) or [])
    return lines


def _read_when_written(piece: Path, wait: float = 30) -> coverage.CoverageData:
    """A piece, once the process writing it is done: the forkserver and resource tracker processes
    outlive the script that started them (they leave when it has gone), and save on their way out.

    Done means its process is gone (a piece read while it is written can lack a table: seen under
    load); where the process stays a zombie nobody reaps, a piece every table of which reads.
    """
    deadline = time.monotonic() + wait
    while piece not in processes.finished_pieces(str(piece.parent / ".coverage")) and time.monotonic() < deadline:
        time.sleep(0.1)
    while True:
        data = coverage.CoverageData(str(piece))
        try:
            data.read()
            for measured in data.measured_files():
                data.arcs(measured) if data.has_arcs() else data.lines(measured)
            return data
        except DataError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)

