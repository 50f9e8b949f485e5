"""Terminal IPython: cells named <ipython-input-…> are measured too, and shown as In [N]."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import report_json

SESSION = """\
%load_ext nbcov
def f(x):
    if x:
        return 1
    return 2

f(1)
%time y = f(0)
exit
"""


def run_ipython(session: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Terminal IPython reading `session` as typed input (its simple prompt reads a pipe)."""
    result = subprocess.run(
        [sys.executable, "-m", "IPython", "--simple-prompt", "--no-banner", "--HistoryManager.hist_file=:memory:"],
        input=session, cwd=cwd, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_terminal_ipython_cells_are_measured_and_named_by_prompt(tmp_path: Path) -> None:
    run_ipython(SESSION, tmp_path)
    cells = {c["name"]: c for c in report_json(tmp_path)["cells"]}
    assert cells["In [2]"]["executed_lines"] == [1, 2, 3, 4]
    assert cells["In [2]"]["notebook"] is None
    assert "In [3]" in cells and "In [4]" in cells
    assert not any("ipython-input" in c["data_file_name"] for c in cells.values())


COVTEST_SESSION = """\
import nbcov; nbcov.autoconfig()
def sign(x):
    if x > 0:
        return 1
    return -1

%%covtest
def test_sign():
    assert sign(2) == 1


exit
"""


def test_covtest_in_terminal_ipython_prints_a_coloured_report(tmp_path: Path) -> None:
    out = run_ipython(COVTEST_SESSION, tmp_path).stdout
    assert "1 passed" in out
    assert "nbcov · 1 of 1 tests passed" in out and "In [2]" in out
    assert "\x1b[31m   4 !     return -1\x1b[0m" in out  # the missed line, in red
