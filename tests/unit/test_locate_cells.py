"""Locating an executed cell in its notebook (the kernel's NotebookIndex) and finding the notebook a kernel runs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from nbcov.notebook import NOTEBOOK_ENV, Located, NotebookIndex, session_notebook


def save(path: Path, cells: list[tuple[str, str | None, str]], minor: int = 5) -> Path:
    """Cells as (type, id, source); a None id is left out (nbformat 4.4)."""
    nb_cells: list[dict[str, Any]] = []
    for cell_type, cell_id, source in cells:
        cell: dict[str, Any] = {"cell_type": cell_type, "metadata": {}, "source": source}
        if cell_type == "code":
            cell.update(outputs=[], execution_count=None)
        if cell_id is not None:
            cell["id"] = cell_id
        nb_cells.append(cell)
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": minor, "metadata": {}, "cells": nb_cells}))
    return path


def test_by_id_first_then_by_source(tmp_path: Path) -> None:
    index = NotebookIndex(save(tmp_path / "nb.ipynb", [("markdown", "m", "# T"), ("code", "a", "x = 1"), ("code", "b", "y = 2")]))
    assert index.locate("edited since it was saved", "b") == Located(3, "b")  # the id wins over the source
    assert index.locate("x = 1", "an id the file does not have") == Located(2, "a")
    assert index.locate("x = 1\n\n", None) == Located(2, "a")  # trailing newlines differ between tools
    assert index.locate("# T", None) is None  # only code cells run
    assert index.locate("z = 3", None) is None


def test_cells_with_the_same_source_stay_apart_in_a_top_to_bottom_run(tmp_path: Path) -> None:
    index = NotebookIndex(save(tmp_path / "nb.ipynb", [("code", None, "f()"), ("code", None, "g()"), ("code", None, "f()")], minor=4))
    assert [index.locate(s, None) for s in ("f()", "g()", "f()")] == [Located(1, None), Located(2, None), Located(3, None)]
    assert index.locate("f()", None) == Located(1, None)  # run again from the top: the first one


def test_an_edited_file_is_read_again_and_an_unreadable_one_means_no_position(tmp_path: Path) -> None:
    path = save(tmp_path / "nb.ipynb", [("code", "a", "x = 1")])
    index = NotebookIndex(path)
    assert index.locate("x = 1", None) == Located(1, "a") and index.problem is None
    save(path, [("markdown", "m", "# new"), ("code", "a", "x = 1")])
    os.utime(path, (1, 1))  # a different modification time, however fast the machine
    assert index.locate("x = 1", None) == Located(2, "a")
    path.write_text("{damaged")
    os.utime(path, (2, 2))
    assert index.locate("x = 1", "a") is None and index.problem is not None and "not valid JSON" in index.problem
    path.unlink()
    assert index.locate("x = 1", "a") is None


def test_the_notebook_a_kernel_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = save(tmp_path / "nb.ipynb", [])
    monkeypatch.chdir(tmp_path)
    assert session_notebook({}) is None
    assert session_notebook({"__vsc_ipynb_file__": str(nb)}) == nb
    assert session_notebook({"__session__": "some/server/root/nb.ipynb"}) == tmp_path / "nb.ipynb"  # by its last part
    assert session_notebook({"__session__": str(tmp_path / "gone.ipynb")}) is None
    assert session_notebook({"__session__": 7, "__vsc_ipynb_file__": "x.py"}) is None
    monkeypatch.setenv(NOTEBOOK_ENV, str(nb))
    assert session_notebook({"__vsc_ipynb_file__": "other.ipynb"}) == nb  # named explicitly: first
