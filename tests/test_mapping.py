"""Mapping cells back to their notebook: ids from the frontend, edits, stable names, combine."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from conftest import cells_by_index, coverage_cli, execute_notebook, make_notebook, nbcov_cli, report_json, wait_for
from kernels import LiveKernel


@pytest.fixture
def live(tmp_path: Path):
    """A kernel driven as JupyterLab drives it, told its notebook through JPY_SESSION_NAME."""
    nb = make_notebook(
        tmp_path / "work" / "analysis.ipynb",
        ["%load_ext nbcov", ("md", "text"), "def f(x):\n    if x:\n        return 1\n    return 2", "f(1)"],
    )
    kernel = LiveKernel(nb.parent, env={"JPY_SESSION_NAME": str(nb)})
    yield kernel, nb
    kernel.shutdown()


def test_cell_ids_sent_by_the_frontend_give_positions(live) -> None:
    kernel, nb = live
    kernel.run("%load_ext nbcov", "cell-1")
    # Out of order, as a person clicks: positions come from the ids, not from the order.
    kernel.run("f(1)", "cell-4")
    kernel.run("def f(x):\n    if x:\n        return 1\n    return 2", "cell-3")
    kernel.run("f(1)", "cell-4")
    cells = cells_by_index(report_json(nb.parent))
    assert set(cells) == {3, 4}
    assert cells[3]["cell_id"] == "cell-3" and cells[3]["executed_lines"] == [1, 2, 3]
    assert cells[3]["name"] == "analysis.ipynb · cell 3"


def test_an_edited_cell_is_reported_with_its_latest_source_only(live) -> None:
    kernel, nb = live
    kernel.run("%load_ext nbcov", "cell-1")
    kernel.run("def f(x):\n    if x:\n        return 1\n    return 2", "cell-3")
    kernel.run("f(1)", "cell-4")
    # The person edits cell 3 in the browser (unsaved) and runs it again.
    kernel.run("def f(x):\n    return 3", "cell-3")
    kernel.run("f(1)", "cell-4")
    report = report_json(nb.parent)
    cells = cells_by_index(report)
    assert cells[3]["source"] == "def f(x):\n    return 3"
    assert cells[3]["executed_lines"] == [1, 2] and cells[3]["missing_lines"] == []
    assert report["totals"]["num_statements"] == 3  # the old version's 4 statements are gone


def test_an_earlier_session_s_old_version_is_replaced(live, tmp_path: Path) -> None:
    kernel, nb = live
    kernel.run("%load_ext nbcov", "cell-1")
    kernel.run("def f(x):\n    if x:\n        return 1\n    return 2", "cell-3")
    kernel.shutdown()
    again = LiveKernel(nb.parent, env={"JPY_SESSION_NAME": str(nb)})
    try:
        again.run("%load_ext nbcov", "cell-1")
        again.run("def f(x):\n    return 3", "cell-3")
    finally:
        again.shutdown()
    cells = cells_by_index(report_json(nb.parent))
    assert cells[3]["source"] == "def f(x):\n    return 3"


def test_kernel_killed_loses_nothing_that_finished(live) -> None:
    kernel, nb = live
    kernel.run("%load_ext nbcov", "cell-1")
    kernel.run("def f(x):\n    if x:\n        return 1\n    return 2", "cell-3")
    kernel.run("f(0)", "cell-4")
    kernel.kill()  # SIGKILL: no atexit, no signal handler
    cells = cells_by_index(report_json(nb.parent))
    assert cells[3]["executed_lines"] == [1, 2, 4]


def test_kernel_that_exits_hard_keeps_finished_cells(live) -> None:
    kernel, nb = live
    kernel.run("%load_ext nbcov", "cell-1")
    kernel.run("def f(x):\n    if x:\n        return 1\n    return 2", "cell-3")
    kernel.kc.execute("f(1)\nimport os\nos._exit(1)")  # like a crash: no atexit, no handlers
    kernel.km.provisioner.process.wait(timeout=30)
    kernel.kc.stop_channels()
    cells = cells_by_index(report_json(nb.parent))
    assert cells[3]["executed_lines"] == [1]  # f(1) ran in the crashing cell: only that is lost


def test_sigterm_saves_the_running_cell_too(live) -> None:
    kernel, nb = live
    kernel.run("%load_ext nbcov", "cell-1")
    kernel.run("def f(x):\n    if x:\n        return 1\n    return 2", "cell-3")
    kernel.kc.execute("f(0)\nimport pathlib, time\npathlib.Path('running').touch()\nwhile True:\n    time.sleep(0.05)")
    wait_for(lambda: (nb.parent / "running").exists(), 60, "the cell to run f(0) and start its loop")
    os.kill(kernel.km.provisioner.process.pid, signal.SIGTERM)
    kernel.km.provisioner.process.wait(timeout=20)
    kernel.kc.stop_channels()
    cells = report_json(nb.parent)["cells"]
    running = [c for c in cells if c["source"].startswith("f(0)")]
    assert running and running[0]["executed_lines"] == [1, 2, 3, 4, 5]
    assert cells_by_index(report_json(nb.parent))[3]["executed_lines"] == [1, 2, 4]


def test_same_cell_same_name_in_every_kernel_so_combine_merges(tmp_path: Path) -> None:
    (tmp_path / ".coveragerc").write_text("[run]\nparallel = true\nplugins = nbcov\n")
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        ["%load_ext nbcov", "import os\ndef g(x):\n    if x:\n        return 1\n    return 2", "g(os.environ.get('FLAG'))"],
    )
    execute_notebook(nb)
    os.environ["FLAG"] = "1"
    try:
        execute_notebook(nb)
    finally:
        del os.environ["FLAG"]
    parts = sorted(p.name for p in tmp_path.glob(".coverage.*"))
    assert len(parts) == 2
    coverage_cli("combine", cwd=tmp_path)
    cells = cells_by_index(report_json(tmp_path))
    assert set(cells) == {2, 3}
    assert cells[2]["executed_lines"] == [1, 2, 3, 4, 5]  # one run took each branch


def test_reports_after_the_data_moved_to_another_folder(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "a" / "nb.ipynb", ["%load_ext nbcov", "x = 1\nif x:\n    y = 2"])
    execute_notebook(nb)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.copy(tmp_path / "a" / ".coverage", moved / ".coverage")
    shutil.copytree(tmp_path / "a" / ".nbcov", moved / ".nbcov")
    shutil.rmtree(tmp_path / "a")
    cells = cells_by_index(report_json(moved))
    assert cells[2]["executed_lines"] == [1, 2, 3]


def test_coverage_py_reports_cells_in_a_fresh_process(tmp_path: Path) -> None:
    (tmp_path / ".coveragerc").write_text("[run]\nbranch = true\nplugins = nbcov\n")
    (tmp_path / "helpers.py").write_text("def double(x):\n    if x > 100:\n        return 0\n    return 2 * x\n")
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        ["%load_ext nbcov", "from helpers import double\nv = double(2)\nif v < 10:\n    print('small')\nw = 1"],
    )
    execute_notebook(nb)
    text = coverage_cli("report", "-m", cwd=tmp_path).stdout
    assert "nb.ipynb · cell 2" in text and "helpers.py" in text
    assert "3->5" in text  # the cell's partial branch, as coverage.py writes it
    for command in (["html", "-d", "html"], ["json", "-o", "c.json"], ["xml", "-o", "c.xml"], ["lcov", "-o", "c.lcov"]):
        coverage_cli(*command, cwd=tmp_path)
    everything = "".join(
        p.read_text(errors="replace") for p in [*tmp_path.glob("html/*.html"), tmp_path / "c.json", tmp_path / "c.xml", tmp_path / "c.lcov"]
    )
    assert "ipykernel_" not in everything and "ipython-input" not in everything
    data = json.loads((tmp_path / "c.json").read_text())
    cell = data["files"]["nb.ipynb · cell 2"]
    assert cell["missing_branches"] == [[3, 5]]
    assert cell["executed_branches"] == [[3, 4]]
    assert cell["executed_lines"] == [1, 2, 3, 4, 5]
    html = next(p for p in tmp_path.glob("html/*cell 2*.html")).read_text()
    assert "line 3 didn&#x27;t jump to line 5" in html or "line 3 didn't jump to line 5" in html
    assert ">helpers<" in html and ">double<" in html  # the cell source, syntax-highlighted


def test_combining_a_notebook_folders_data_into_the_project_root_keeps_its_notebook(tmp_path: Path) -> None:
    """A kernel writes beside its notebook; combined into the project root (beside pytest-cov's data),
    the cells still name that notebook: reports, who-tests-what and the HTML report find it."""
    nb = make_notebook(tmp_path / "notebooks" / "nb.ipynb", ["%load_ext nbcov", "def f(x):\n    return x\n", "f(1)"])
    execute_notebook(nb)
    nbcov_cli("combine", "notebooks/.coverage", "--keep", "--data-file", ".coverage", cwd=tmp_path)
    report = report_json(tmp_path)
    assert {c["notebook"] for c in report["cells"]} == {"notebooks/nb.ipynb"}
    assert cells_by_index(report)[2]["executed_lines"] == [1, 2]
    who = nbcov_cli("who", "notebooks/nb.ipynb:2:2", cwd=tmp_path)
    assert "No measured file" not in who.stdout + who.stderr
    nbcov_cli("html", "-d", "htmlcov", cwd=tmp_path)
    page = next((tmp_path / "htmlcov").glob("*_nb_ipynb.html")).read_text()
    assert "notebooks/nb.ipynb" in page and "return" in page

    # The same data once more from an artifact folder that also holds a copy of the notebook: the
    # project has the notebook at the recorded place, so the name stays (CI: same relative layout).
    art = tmp_path / "artifacts" / "run1"
    shutil.copytree(tmp_path / "notebooks", art)
    nbcov_cli("combine", "artifacts/run1/.coverage", "--data-file", "notebooks/.coverage", cwd=tmp_path)
    assert {c["notebook"] for c in report_json(tmp_path / "notebooks")["cells"]} == {"nb.ipynb"}
