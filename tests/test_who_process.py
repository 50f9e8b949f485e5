"""`nbcov who` in its own process: the answers of tests/unit/test_who_answers.py, and no IPython imported to give them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import coverage

from nbcov.cells import CellRecord, CellStore

CELL = "if True:\n    x = 1\n"


def test_nbcov_who_answers_without_importing_ipython(tmp_path: Path) -> None:
    cell = CellStore(tmp_path).save(CellRecord(CELL, CELL, notebook="nb.ipynb", cell_index=3, key="c3"))
    data = coverage.CoverageData(basename=str(tmp_path / ".coverage"))
    data.set_context("nb.ipynb::test_x")
    data.add_lines({cell: [1, 2]})
    data.add_file_tracers({cell: "nbcov.NbcovPlugin"})
    data.write()
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nbcov.cli", "who", "nb.ipynb:3:2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0 and result.stdout == "nb.ipynb::test_x\n", result.stdout + result.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "nbcov.query" in imported  # the import log is read right
    assert not {name for name in imported if name.split(".")[0] in ("IPython", "ipykernel")}
    assert "nbcov.magics" not in imported
