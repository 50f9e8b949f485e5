"""Cell names and versions: records, their paths (the cells' names in coverage data), and the data folder of a record."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbcov.cells import (
    STORE_DIRNAME,
    CellRecord,
    CellStore,
    RecordError,
    digest,
    is_cell_name,
    load_record,
    record_data_dir,
    record_places,
    record_search_dirs,
    record_tail,
    sibling_versions,
    split_record_name,
)
from nbcov.cov_plugin import display_record
from nbcov.html.data import notebook_path


def record(source: str = "x = 1", key: str | None = "cell-1", notebook: str | None = "nb.ipynb", index: int | None = 2) -> CellRecord:
    return CellRecord(source, source, notebook=notebook, cell_index=index, cell_id=key, key=key, execution_count=4)


def test_labels_name_cells_as_people_do() -> None:
    assert record().label() == "nb.ipynb · cell 2"
    assert record(index=None).label() == "nb.ipynb · In [4]"
    assert record(notebook=None).label() == "In [4]"
    assert CellRecord("x", "x").label() == "In [ ]"


def test_a_cell_gets_the_same_name_in_every_data_folder_and_a_new_one_when_edited(tmp_path: Path) -> None:
    one, two = CellStore(tmp_path / "a"), CellStore(tmp_path / "b")
    name = one.path_for(record())
    assert name == one.root / "nb.ipynb" / f"cell-1-{digest('x = 1')}.json"
    assert name.relative_to(one.data_dir) == two.path_for(record()).relative_to(two.data_dir)
    edited = one.path_for(record("x = 2"))
    assert edited != name and sibling_versions(str(edited)) == sibling_versions(str(name)) == (str(name.parent), "cell-1")
    assert sibling_versions(str(one.path_for(record(key=None)))) is None  # no key: no older versions to find
    assert one.path_for(record(notebook=None)).parent == one.root / "_ipython"


def test_names_stay_path_safe_and_short(tmp_path: Path) -> None:
    store = CellStore(tmp_path)
    long_id = store.path_for(record(key="k" * 300))
    assert len(long_id.name.encode()) < 255 and long_id == store.path_for(record(key="k" * 300))
    assert long_id != store.path_for(record(key="k" * 299 + "j"))
    odd = store.path_for(record(key="../a/b c"))
    assert odd.parent == store.root / "nb.ipynb" and odd.name.startswith(".._a_b_c-")  # one file name: "/" is no folder
    outside = store.path_for(record(notebook="/elsewhere/x.ipynb"))
    assert outside.parent.parent == store.root / "_outside" and outside.parent.name.endswith("-x.ipynb")


def test_notebooks_are_named_relative_to_the_data_folder(tmp_path: Path) -> None:
    store = CellStore(tmp_path)
    assert store.notebook_ref(tmp_path / "sub" / "nb.ipynb") == "sub/nb.ipynb"
    assert store.notebook_ref("/elsewhere/nb.ipynb") == "/elsewhere/nb.ipynb"
    assert store.notebook_ref(None) is None


@settings(max_examples=40, deadline=None)
@given(
    st.text(min_size=0, max_size=30),
    st.one_of(st.none(), st.text(min_size=1, max_size=20)),
    st.one_of(st.none(), st.integers(min_value=1, max_value=10**6)),
    st.booleans(),
)
def test_records_survive_json(source: str, key: str | None, index: int | None, premeasured: bool) -> None:
    rec = CellRecord(source, source, notebook="n.ipynb", cell_index=index, key=key, premeasured=premeasured)
    data = json.loads(json.dumps(rec.to_json()))
    assert CellRecord.from_json(data) == rec and data["digest"] == digest(source)


@pytest.mark.parametrize("data, says", [
    ([], "a JSON object"), ({"source": "x"}, "'code' is missing"), ({"source": "x", "code": 7}, "'code'"),
    ({"source": "x", "code": "x", "cell_index": "3"}, "'cell_index'"), ({"source": "x", "code": "x", "premeasured": 1}, "'premeasured'"),
])
def test_a_record_that_is_not_one_says_which_key(data: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        CellRecord.from_json(data)


def test_the_data_folder_of_a_record_is_above_its_last_store(tmp_path: Path) -> None:
    name = str(tmp_path / "data" / STORE_DIRNAME / "cells" / "nb.ipynb" / "c-1.json")
    assert split_record_name(name) == (str(tmp_path / "data"), ("cells", "nb.ipynb", "c-1.json"))
    nested = str(tmp_path / STORE_DIRNAME / "cells" / "x" / STORE_DIRNAME / "cells" / "c.json")
    assert record_data_dir(nested) == str(tmp_path / STORE_DIRNAME / "cells" / "x")
    assert record_data_dir(f"/{STORE_DIRNAME}/cells/c.json") == "/"
    assert record_data_dir(str(tmp_path / "mod.py")) is None
    assert is_cell_name(name) and not is_cell_name(str(tmp_path / STORE_DIRNAME / "other" / "c.json"))


def test_every_reader_of_a_record_uses_the_same_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "project"
    name = str(data / STORE_DIRNAME / "cells" / "sub" / "nb.ipynb" / "c-1.json")
    rec = record(notebook="sub/nb.ipynb")
    assert notebook_path(rec.notebook, name) == str(data / "sub" / "nb.ipynb")  # the HTML report
    monkeypatch.chdir(tmp_path)
    assert display_record(rec, name).notebook == "project/sub/nb.ipynb"  # coverage.py's and nbcov's reports
    monkeypatch.chdir(tmp_path.parent)
    assert display_record(rec, name).notebook == f"{tmp_path.name}/project/sub/nb.ipynb"
    assert record_tail(name, "d") == ("sub", "nb.ipynb", "c-1.json")  # combine
    moved = [str(tmp_path / "moved")]
    assert list(record_places(name, moved)) == [name, os.path.join(moved[0], STORE_DIRNAME, "cells", "sub", "nb.ipynb", "c-1.json")]


def test_a_record_is_found_where_its_data_folder_moved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old_name = CellStore(tmp_path / "before").path_for(record())
    CellStore(tmp_path / "after").save(record())
    assert (tmp_path / "after" / STORE_DIRNAME / ".gitignore").read_text().startswith("# Created by nbcov")
    with pytest.raises(RecordError, match=f"Keep the {STORE_DIRNAME}/ folder"):
        load_record(str(old_name))
    monkeypatch.chdir(tmp_path)
    dirs = record_search_dirs(str(tmp_path / "after" / ".coverage"))
    assert dirs == [tmp_path / "after", tmp_path] and record_search_dirs(None) == [tmp_path]
    assert load_record(str(old_name), dirs) == record()


_PART = st.sampled_from(["..", ".", "", "cells", STORE_DIRNAME, "a", "b.json", "x\0y"])


@settings(max_examples=80, deadline=None)
@given(st.lists(_PART, min_size=1, max_size=7))
def test_record_tail_only_accepts_names_that_stay_inside_a_records_folder(parts: list[str]) -> None:
    name = "/data/" + "/".join(parts)
    try:
        tail = record_tail(name, "d")
    except RecordError as exc:
        assert "outside any .nbcov/cells/ folder" in str(exc)
        return
    assert tail and all(p not in ("", ".", "..") and "\0" not in p for p in tail)
    assert os.path.normpath(os.path.join("/t", STORE_DIRNAME, "cells", *tail)).startswith(f"/t/{STORE_DIRNAME}/cells/")
