"""Measuring cells in real kernels: what runs is measured, at the line the user typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CLASSIFY, CORES, cells_by_index, execute_notebook, make_notebook, report_json


def test_every_line_of_a_cell_is_measured_including_def_lines(tmp_path: Path) -> None:
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        ["%load_ext nbcov", ("md", "# Title"), CLASSIFY, "r = [classify(1), classify(-1)]\nprint(r)"],
    )
    execute_notebook(nb)
    cells = cells_by_index(report_json(tmp_path))
    assert set(cells) == {3, 4}  # the %load_ext cell ran before measurement: it is not reported
    assert cells[3]["executed_lines"] == [1, 2, 3, 4, 5]
    assert cells[3]["missing_lines"] == [6]
    assert cells[4]["executed_lines"] == [1, 2]
    assert cells[3]["name"] == "nb.ipynb · cell 3"
    assert cells[3]["cell_id"] == "cell-3"
    assert cells[3]["execution_count"] == 2


def test_cells_run_before_measurement_are_not_measured_never_missed(tmp_path: Path) -> None:
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        [CLASSIFY + "LIMIT = 3\n", "%load_ext nbcov", "classify(5)"],
    )
    execute_notebook(nb)
    cells = cells_by_index(report_json(tmp_path))
    early = cells[1]
    # The def line and the top-level assignment ran before %load_ext: unknown, not missed.
    assert early["not_measured_lines"] == [1, 7]
    assert early["executed_lines"] == [2, 3]
    assert early["missing_lines"] == [4, 5, 6]  # the body is measured: these never ran after loading
    assert 1 not in early["excluded_lines"]


def test_magics_shell_lines_and_await_are_attributed_to_the_typed_line(tmp_path: Path) -> None:
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        [
            "%load_ext nbcov",
            "%time a = 1\nb = 2\n!echo hi\nif b > 5:\n    c = 3",
            "%%time\nd = 1\nif d:\n    e = 2\nelse:\n    e = 3",
            "%%capture out\nf = 1\nif f > 5:\n    g = 1\nprint(f)",
            "import asyncio\nh = await asyncio.sleep(0, 7)\nasync def agen():\n    yield 1\nasync for i in agen():\n    j = i\nif h == 8:\n    k = 1",
            "\n%%time\n%%capture\nm = 1\nif m:\n    n = 2",
        ],
    )
    execute_notebook(nb)
    cells = cells_by_index(report_json(tmp_path))
    assert (cells[2]["executed_lines"], cells[2]["missing_lines"]) == ([1, 2, 3, 4], [5])
    assert (cells[3]["executed_lines"], cells[3]["missing_lines"]) == ([2, 3, 4], [6])
    assert (cells[4]["executed_lines"], cells[4]["missing_lines"]) == ([2, 3, 5], [4])
    assert (cells[5]["executed_lines"], cells[5]["missing_lines"]) == ([1, 2, 3, 4, 5, 6, 7], [8])
    assert (cells[6]["executed_lines"], cells[6]["missing_lines"]) == ([4, 5, 6], [])
    # Reports show the cell as typed, not IPython's rewritten text.
    assert cells[2]["source"].startswith("%time a = 1")


def test_two_cells_with_the_same_source_stay_two_cells(tmp_path: Path) -> None:
    twin = "def twin(x):\n    if x:\n        return 1\n    return 2"
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        ["%load_ext nbcov", twin, "twin(1)", twin, "twin(0)"],
    )
    execute_notebook(nb)
    cells = cells_by_index(report_json(tmp_path))
    assert cells[2]["executed_lines"] == [1, 2, 3] and cells[2]["missing_lines"] == [4]
    assert cells[4]["executed_lines"] == [1, 2, 4] and cells[4]["missing_lines"] == [3]


def test_notebooks_without_cell_ids_are_matched_by_source(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "old.ipynb", ["%load_ext nbcov", "x = 1", "x = 1", "y = 2"], ids=False)
    execute_notebook(nb)
    cells = cells_by_index(report_json(tmp_path))
    assert sorted(cells) == [2, 3, 4]
    assert all(c["cell_id"] is None for c in cells.values())


def test_pragma_and_configured_exclusions_apply_in_cells(tmp_path: Path) -> None:
    (tmp_path / ".coveragerc").write_text("[report]\nexclude_also =\n    if DEBUG:\n")
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        ["%load_ext nbcov", "DEBUG = False\nif DEBUG:\n    print('x')\nif DEBUG:  # pragma: no cover\n    y = 1\nz = 0"],
    )
    execute_notebook(nb)
    cell = cells_by_index(report_json(tmp_path))[2]
    assert cell["excluded_lines"] == [2, 3, 4, 5]
    assert cell["missing_lines"] == []
    assert cell["executed_lines"] == [1, 6]


def test_a_cell_that_raises_keeps_what_ran(tmp_path: Path) -> None:
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        ["%load_ext nbcov", "a = 1\nif a:\n    raise ValueError('boom')\nc = 3", "d = 4"],
    )
    execute_notebook(nb, allow_errors=True)
    cells = cells_by_index(report_json(tmp_path))
    assert cells[2]["executed_lines"] == [1, 2, 3]
    assert cells[2]["missing_lines"] == [4]
    assert cells[3]["executed_lines"] == [1]


@pytest.mark.parametrize("ids", [True, False])
def test_the_data_file_goes_where_coverage_would_put_it(tmp_path: Path, ids: bool) -> None:
    (tmp_path / ".coveragerc").write_text("[run]\ndata_file = out/cov.db\n")
    (tmp_path / "out").mkdir()
    nb = make_notebook(tmp_path / "nb.ipynb", ["%load_ext nbcov", "x = 1"], ids=ids)
    execute_notebook(nb)
    assert (tmp_path / "out" / "cov.db").exists()
    assert not (tmp_path / ".coverage").exists()
    cells = cells_by_index(report_json(tmp_path))
    assert cells[2]["executed_lines"] == [1]


def test_cells_named_alike_by_ipykernel_cell_name_are_told_apart(tmp_path: Path, monkeypatch) -> None:
    # IPYKERNEL_CELL_NAME gives every cell the same (untraceable) name; nbcov names them itself.
    monkeypatch.setenv("IPYKERNEL_CELL_NAME", "<IPY-INPUT>")
    nb = make_notebook(tmp_path / "nb.ipynb", ["%load_ext nbcov", CLASSIFY, "classify(0)"])
    execute_notebook(nb)
    cells = cells_by_index(report_json(tmp_path))
    assert cells[2]["executed_lines"] == [1, 2, 4, 6] and cells[2]["missing_lines"] == [3, 5]
    assert cells[3]["executed_lines"] == [1]


def test_the_nbcov_magic_saves_stops_and_reports(tmp_path: Path) -> None:
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        [
            "%load_ext nbcov",
            "%load_ext nbcov",  # loading twice is harmless
            "x = 1",
            "%nbcov save",
            "%nbcov status",
            "%nbcov report",
            "%nbcov html htmlout",
            "%nbcov stop",
            "y = 2  # not measured: measurement stopped",
            "%nbcov bogus",
        ],
    )
    executed = execute_notebook(nb)

    def text(index: int) -> str:
        outputs = executed.cells[index - 1].outputs
        return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs)

    assert "saved to" in text(4) and str(tmp_path / ".coverage") in text(4)
    assert "measuring: True" in text(5) and "nb.ipynb" in text(5)
    assert "nb.ipynb · cell 3" in text(6) and "TOTAL" in text(6)
    assert "nb.ipynb · cell 3" in executed.cells[5].outputs[0]["data"]["text/html"]
    assert "HTML report written to htmlout/index.html" in text(7) and (tmp_path / "htmlout" / "index.html").exists()
    assert "stopped" in text(8)
    assert "invalid choice: 'bogus'" in text(10)
    assert 9 not in cells_by_index(report_json(tmp_path))


def test_a_corrupt_data_file_is_kept_aside_and_measuring_goes_on(tmp_path: Path) -> None:
    (tmp_path / ".coverage").write_bytes(b"not sqlite at all")
    nb = make_notebook(tmp_path / "nb.ipynb", ["%load_ext nbcov", "x = 1"])
    executed = execute_notebook(nb)
    warning = "".join(o.get("text", "") for o in executed.cells[0].outputs)
    assert "is not a usable coverage data file" in warning and ".coverage-nbcov-corrupt" in warning
    assert (tmp_path / ".coverage-nbcov-corrupt").read_bytes() == b"not sqlite at all"  # nothing lost
    assert cells_by_index(report_json(tmp_path))[2]["executed_lines"] == [1]


@pytest.mark.parametrize("core", CORES)
def test_a_failed_save_keeps_its_data_for_the_next_one(tmp_path: Path, core: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each save writes only what ran since the last one; what a failed save could not write is not lost."""
    monkeypatch.setenv("COVERAGE_CORE", core)
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        [
            "%load_ext nbcov",
            "def f(x):\n    if x:\n        return 1\n    return 2",
            "f(1)",
            # The data file becomes unusable: the saves after this cell and the next one fail.
            "import os\nos.rename('.coverage', 'saved')\nwith open('.coverage', 'w') as fh:\n    fh.write('garbage')",
            "f(0)\nlater = 1",
            "os.remove('.coverage')\nos.rename('saved', '.coverage')",
            "done = 1",
        ],
    )
    executed = execute_notebook(nb)
    warnings = ["".join(o.get("text", "") for o in cell.outputs) for cell in executed.cells]
    assert "could not save" in warnings[3] and "could not save" in warnings[4]
    assert "could not save" not in warnings[5] + warnings[6]
    cells = cells_by_index(report_json(tmp_path))
    assert cells[2]["executed_lines"] == [1, 2, 3, 4]  # line 4 ran in cell 5, while saving failed
    assert cells[2]["missing_lines"] == []
    assert cells[5]["executed_lines"] == [1, 2] and cells[4]["executed_lines"] == [1, 2, 3, 4]
    assert cells[3]["executed_lines"] == [1] and cells[7]["executed_lines"] == [1]
