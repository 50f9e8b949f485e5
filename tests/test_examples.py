"""The bundled example notebooks run as a person would run them, and report what they should."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import ROOT, execute_notebook, nbcov_cli, report_json


def test_analysis_notebook_workflow(tmp_path: Path) -> None:
    folder = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", folder, ignore=shutil.ignore_patterns(".coverage*", ".nbcov"))
    executed = execute_notebook(folder / "analysis.ipynb")
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    report = report_json(folder)
    by_cell = {c["cell_index"]: c for c in report["cells"]}
    assert by_cell[9]["missing_lines"] == [6]  # classify(None) is never tested
    assert by_cell[12]["summary"]["percent_covered"] == 100  # the %%covtest cell
    modules = {Path(k).name: v for k, v in report["files"].items()}
    assert modules["units.py"]["missing_lines"] == [12, 20, 21]
    # Who tests what: the tests that ran `elif temp < 10:`
    who = nbcov_cli("who", "analysis.ipynb:9:9", cwd=folder).stdout.split()
    assert who == ["analysis.ipynb::test_classify[30-hot]", "analysis.ipynb::test_classify[5-cold]"]
