"""Which notebook a kernel runs when its runner does not say (`nbcov exec`, `pytest --nbcov-kernels`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nbcov.attach import command_notebooks
from nbcov.notebook import Found, NotebookFinder


def save(path: Path, sources: list[str], *, tags: dict[int, list[str]] | None = None, metadata: Any = None) -> Path:
    cells = []
    for i, source in enumerate(sources):
        cell: dict[str, Any] = {"cell_type": "code", "metadata": {"tags": (tags or {}).get(i, [])}, "source": source,
                                "outputs": [], "execution_count": None, "id": f"c{i}"}
        cells.append(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": metadata or {}, "cells": cells}))
    return path


def test_the_notebook_whose_first_cell_ran_first(tmp_path: Path) -> None:
    a = save(tmp_path / "a.ipynb", ["import pandas as pd", "a = 1"])
    save(tmp_path / "b.ipynb", ["b = 0", "import pandas as pd"])  # has it, but not first
    finder = NotebookFinder.around(tmp_path, [])
    assert finder.find("import pandas as pd") == Found(a)
    assert finder.find("never in a notebook") is None


def test_nbclient_skips_blank_cells_and_skip_execution_tags(tmp_path: Path) -> None:
    a = save(tmp_path / "a.ipynb", ["", "x = 1  # skipped", "x = 2"], tags={1: ["skip-execution"]})
    save(tmp_path / "b.ipynb", ["y = 0", "x = 2"])
    assert NotebookFinder.around(tmp_path, []).find("x = 2") == Found(a)


def test_copies_of_a_notebook_are_a_tie_it_does_not_guess(tmp_path: Path) -> None:
    save(tmp_path / "nbs" / "a.ipynb", ["import mypkg", "mypkg.run()"])
    save(tmp_path / "out" / "a.ipynb", ["import mypkg", "mypkg.run()"])  # an executed copy (nbconvert --output-dir)
    finder = NotebookFinder.around(tmp_path, [])
    assert finder.find("import mypkg") is None
    # The one named on the runner's command line wins the tie.
    named = NotebookFinder.around(tmp_path, [str(tmp_path / "nbs" / "a.ipynb")])
    assert named.find("import mypkg") == Found(tmp_path / "nbs" / "a.ipynb")


def test_a_later_cell_tells_notebooks_apart_that_begin_alike(tmp_path: Path) -> None:
    save(tmp_path / "a.ipynb", ["import numpy as np", "a()"])
    b = save(tmp_path / "b.ipynb", ["import numpy as np", "b()"])
    finder = NotebookFinder.around(tmp_path, [])
    assert finder.find("import numpy as np") is None
    assert finder.find("b()") == Found(b)


def test_a_papermill_output_stands_for_its_input_with_the_parameters_it_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = save(tmp_path / "analysis.ipynb", ["alpha = 1", "print(alpha)"], tags={0: ["parameters"]})
    save(
        tmp_path / "runs" / "out.ipynb", ["alpha = 1", "# Parameters\nalpha = 5\n", "print(alpha)"],
        tags={0: ["parameters"], 1: ["injected-parameters"]},
        metadata={"papermill": {"input_path": "analysis.ipynb", "output_path": "runs/out.ipynb"}},
    )
    finder = NotebookFinder.around(tmp_path, [])
    found = finder.find("# Parameters\nalpha = 5\n")  # papermill puts its cell first when none is tagged
    assert found == Found(source.absolute(), frozenset({"# Parameters\nalpha = 5\n"}))
    assert finder.find("alpha = 1") == found  # the input and its output are one notebook, not a tie


def test_a_papermill_output_whose_input_is_gone_is_itself(tmp_path: Path) -> None:
    out = save(tmp_path / "out.ipynb", ["x = 1"], metadata={"papermill": {"input_path": "/gone/in.ipynb"}})
    assert NotebookFinder.around(tmp_path, []).find("x = 1") == Found(out)


def test_the_search_is_bounded_and_skips_what_is_no_project_notebook(tmp_path: Path) -> None:
    for hidden in (".ipynb_checkpoints/a-checkpoint.ipynb", ".venv/share/x.ipynb", "node_modules/p/x.ipynb",
                   "a/b/c/d/too_deep.ipynb"):
        save(tmp_path / hidden, ["x = 1"])
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    save(tmp_path / "env" / "x.ipynb", ["x = 1"])
    (tmp_path / "broken.ipynb").write_text("{not json")
    assert NotebookFinder.around(tmp_path, []).find("x = 1") is None
    deep = save(tmp_path / "a" / "b" / "found.ipynb", ["x = 1"])
    assert NotebookFinder.around(tmp_path, []).find("x = 1") == Found(deep)


def test_the_notebooks_a_command_line_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    save(tmp_path / "in.ipynb", ["x = 1"])
    (tmp_path / "nbs").mkdir()
    argv = ["papermill", "in.ipynb", "out.ipynb", "--cwd=nbs", "-p", "x", "5", "missing.ipynb"]
    assert list(command_notebooks(argv)) == [Path("in.ipynb"), Path("nbs")]
