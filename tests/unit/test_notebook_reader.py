"""The one notebook reader: every kind of damage, in real files, as the kernel, the HTML report and `nbcov run` see it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbcov import runner
from nbcov.html import notebook as htmlnotebook
from nbcov.notebook import NotebookError, NotebookIndex, SkippedCell, parse_notebook, read_notebook


def notebook_json(cells: Any, **top: Any) -> dict[str, Any]:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells, **top}


def code(source: Any, cell_id: str = "c", **more: Any) -> dict[str, Any]:
    return {"cell_type": "code", "id": cell_id, "metadata": {}, "source": source, "outputs": [], "execution_count": None, **more}


def write(tmp_path: Path, content: Any, name: str = "nb.ipynb") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def refused(path: Path) -> str:
    """The reader's error for `path`: one line, starting with the file's name."""
    with pytest.raises(NotebookError) as caught:
        read_notebook(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message and caught.value.reason in message
    return caught.value.reason


def test_a_valid_notebook_reads_every_kind_of_cell(tmp_path: Path) -> None:
    path = write(tmp_path, notebook_json([
        {"cell_type": "markdown", "id": "m", "metadata": {}, "source": ["# Title\n", "text"]},
        code(["x = 1\n", "y = 2"], "a", execution_count=3, outputs=[{"output_type": "stream", "name": "stdout", "text": "hi"}]),
        {"cell_type": "raw", "id": "r", "metadata": {}, "source": "raw text"},
        code("", "b"),
    ]))
    nb = read_notebook(path)
    assert [(c.position, c.cell_type, c.source, c.cell_id) for c in nb.cells] == [
        (1, "markdown", "# Title\ntext", "m"), (2, "code", "x = 1\ny = 2", "a"), (3, "raw", "raw text", "r"), (4, "code", "", "b")
    ]
    assert nb.cells[1].execution_count == 3 and nb.cells[1].outputs[0]["text"] == "hi"
    assert nb.skipped == [] and (nb.nbformat, nb.nbformat_minor) == (4, 5) and nb.path == str(path)
    assert nb.code_cell_with_id("a") is nb.cells[1] and nb.code_cell_with_id("m") is None and nb.cell_at(3) is nb.cells[2]


@pytest.mark.parametrize(
    "content, says",
    [
        ("", "not a notebook (not valid JSON)"),
        ("{oops", "not a notebook (not valid JSON)"),
        (b"\xff\xfe\x00", "cannot read the notebook"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("[]", "not a notebook (no nbformat version)"),
        ('"a string"', "not a notebook (no nbformat version)"),
        ({"cells": []}, "not a notebook (no nbformat version)"),
        ({"nbformat": "4", "cells": []}, "not a notebook (no nbformat version)"),
        ({"nbformat": True, "cells": []}, "not a notebook (no nbformat version)"),
        ({"nbformat": 4, "nbformat_minor": "x", "cells": []}, "nbformat_minor is not a number"),
        ({"nbformat": 99, "nbformat_minor": 0, "cells": []}, "unsupported nbformat version 99"),
        ({"nbformat": 4, "nbformat_minor": 5, "metadata": {}}, '"cells" is missing or not a list'),
        (notebook_json(7), '"cells" is missing or not a list'),
        (notebook_json({"0": code("x")}), '"cells" is missing or not a list'),
    ],
)
def test_a_file_that_is_not_a_notebook_is_one_line(tmp_path: Path, content: Any, says: str) -> None:
    assert says in refused(write(tmp_path, content))


def test_a_path_that_is_not_a_readable_file_is_one_line(tmp_path: Path) -> None:
    assert refused(tmp_path / "missing.ipynb") == "cannot read the notebook: No such file or directory"
    (tmp_path / "folder.ipynb").mkdir()
    assert refused(tmp_path / "folder.ipynb") == "cannot read the notebook: a folder"
    os.mkfifo(tmp_path / "fifo.ipynb")  # must not block the reader (a kernel, a report) forever
    assert refused(tmp_path / "fifo.ipynb") == "cannot read the notebook: not a regular file"


@pytest.mark.parametrize(
    "cell, reason",
    [
        (7, "not a JSON object but a number"),
        ("x = 1", "not a JSON object but a string"),
        (None, "not a JSON object but null"),
        ([code("x")], "not a JSON object but an array"),
        ({"id": "c", "source": "x = 1"}, "no cell_type"),
        ({"cell_type": 3, "source": "x = 1"}, "cell_type is not a string"),
        ({"cell_type": "code", "id": "c"}, "no source"),
        (code(5), "source is not a string nor a list of strings"),
        (code({"text": "x"}), "source is not a string nor a list of strings"),
        (code(["x = 1\n", 2]), "source is not a string nor a list of strings"),
    ],
)
def test_a_damaged_cell_is_skipped_with_its_reason_and_the_others_keep_their_places(
    tmp_path: Path, cell: Any, reason: str
) -> None:
    path = write(tmp_path, notebook_json([code("a = 1", "first"), cell, code("b = 2", "third")]))
    nb = read_notebook(path)
    assert nb.skipped == [SkippedCell(2, reason)]
    assert [(c.position, c.source) for c in nb.cells] == [(1, "a = 1"), (3, "b = 2")]
    # The kernel locates the third cell as cell 3, and the HTML report reads the same cells.
    assert NotebookIndex(path).locate("b = 2", None).index == 3  # type: ignore[union-attr]
    assert htmlnotebook.parse_notebook(path.read_bytes()) == (nb.cells, "")
    # `nbcov run` cannot run a notebook with a cell it cannot read: nbformat's own words, one line.
    with pytest.raises(NotebookError, match=rf"^{path}: not a valid notebook: "):
        runner.read_notebook(path)


def test_optional_fields_of_the_wrong_type_count_as_absent(tmp_path: Path) -> None:
    path = write(tmp_path, notebook_json([
        code("x", cell_id=5, execution_count="3", outputs={"a": 1}, attachments=[1]),  # type: ignore[arg-type]
        code("y", "ok", execution_count=True, outputs=[7, {"output_type": "stream", "name": "stdout", "text": "t"}]),
    ]))
    first, second = read_notebook(path).cells
    assert (first.cell_id, first.execution_count, first.outputs, first.attachments) == (None, None, [], {})
    assert (second.cell_id, second.execution_count, second.outputs) == ("ok", None, [{"output_type": "stream", "name": "stdout", "text": "t"}])


def test_a_lone_surrogate_becomes_a_replacement_character(tmp_path: Path) -> None:
    path = write(tmp_path, '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": '
                           '[{"cell_type": "code", "source": "s = \\"\\ud800\\"", "metadata": {}, "outputs": []}]}')
    assert read_notebook(path).cells[0].source == 's = "\ufffd"'


def test_an_nbformat_3_notebook_is_converted(tmp_path: Path) -> None:
    path = write(tmp_path, {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [
        {"cell_type": "markdown", "source": "# T", "metadata": {}},
        {"cell_type": "code", "input": "x = 1", "language": "python", "outputs": [], "prompt_number": 4, "metadata": {}},
    ]}]})
    nb = read_notebook(path)
    assert [(c.position, c.cell_type, c.source, c.execution_count) for c in nb.cells] == [
        (1, "markdown", "# T", None), (2, "code", "x = 1", 4)
    ]


def test_the_html_report_reads_an_unreadable_notebook_as_its_reason(tmp_path: Path) -> None:
    assert htmlnotebook.parse_notebook(None) == (None, "missing")
    assert htmlnotebook.parse_notebook(b"[]") == (None, "not a notebook (no nbformat version)")


def test_nbcov_run_gets_an_nbformat_notebook_with_joined_sources(tmp_path: Path) -> None:
    path = write(tmp_path, notebook_json([code(["x = 1\n", "y = 2"], "a")]))
    assert runner.read_notebook(path).cells[0].source == "x = 1\ny = 2"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
_CELL = _JSON | st.fixed_dictionaries(
    {"cell_type": st.sampled_from(["code", "markdown", "raw"]) | _JSON},
    optional={"source": st.text(max_size=10) | st.lists(st.text(max_size=5), max_size=3) | _JSON, "id": _JSON,
              "execution_count": _JSON, "outputs": _JSON, "attachments": _JSON},
)


@settings(max_examples=40, deadline=None)
@given(st.lists(_CELL, max_size=6))
def test_any_list_of_cells_reads_as_cells_and_skipped_cells_covering_every_position(cells: list[Any]) -> None:
    nb = parse_notebook(json.dumps(notebook_json(cells)).encode(), "nb.ipynb")
    positions = sorted([c.position for c in nb.cells] + [s.position for s in nb.skipped])
    assert positions == list(range(1, len(cells) + 1))
    for cell in nb.cells:
        assert isinstance(cell.source, str) and isinstance(cell.cell_type, str)
        assert cell.cell_id is None or isinstance(cell.cell_id, str)
    assert all(s.reason for s in nb.skipped)


def test_the_html_report_places_a_measured_cell_after_a_damaged_one(tmp_path: Path) -> None:
    """The cell after a damaged one is still cell 3 on the notebook's page (it was left unplaced when
    the page counted positions in a list without the damaged cell)."""
    from coverage.results import Numbers

    from nbcov.html.data import Entry

    path = write(tmp_path, notebook_json([code("a = 1", "first"), {"cell_type": "code"}, code("b = 2", "third")]))
    cells, problem = htmlnotebook.parse_notebook(path.read_bytes())
    entry = Entry("n", None, "cell", None, None, "nb.ipynb · cell 3", Numbers(), "", "", [], [], {}, cell_index=3)
    blocks, unplaced = htmlnotebook.layout(cells, [entry])
    assert problem == "" and unplaced == []
    assert [(b.cell.position if b.cell else None, b.entries) for b in blocks] == [(1, []), (3, [entry])]
