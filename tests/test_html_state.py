"""The HTML report's typed records survive `nbcov-html.db` unchanged (no kernel, no report run)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from coverage.results import Numbers

from nbcov.html.data import Entry, Stub
from nbcov.html.render import Row
from nbcov.html.state import PageRecord, ReportState


def _entry(name: str, kind: str) -> Entry:
    cell = kind == "cell"
    return Entry(
        name=name, fp="f" * 32, kind=kind, label=f"{name} · label",
        notebook_path="/nb/a.ipynb" if cell else None, notebook="a.ipynb" if cell else None,
        nums=Numbers(precision=1, n_files=1, n_statements=5, n_excluded=1, n_missing=2, n_branches=2, n_partial_branches=1, n_missing_branches=1),
        fragment='<div class="src">\x00L1 <b>&amp;</b> \u202e</div>', summary="<span>5</span>",
        missed=[(2, "mis"), (4, "par")], contexts=["", "t::a"], tests={"t::a": 3},
        cell_index=3 if cell else None, cell_id="c-3" if cell else None, execution_count=7 if cell else None,
        digest="d" * 16 if cell else None,
    )


def test_entries_stubs_and_page_rows_read_back_as_they_were_saved(tmp_path: Path) -> None:
    entries = [_entry("/d/.nbcov/cells/a/c-3.json", "cell"), _entry("/d/m.py", "module")]
    row = Row("a_ipynb.html", "a.ipynb", "notebook", "notebook · 1 measured cell", entries[0].nums, {"t::a": 3})
    pages = {"a_ipynb.html": PageRecord("key", row, {"md": "<p>x</p>"})}
    state = ReportState.open(tmp_path, "settings")
    state.save(entries, {e.name for e in entries}, pages, ["nbcov_1.css"])
    state.close()

    again = ReportState.open(tmp_path, "settings")
    try:
        stub_fields = [f.name for f in dataclasses.fields(Stub)]
        assert again.stubs == {e.name: Stub(**{f: getattr(e, f) for f in stub_fields}) for e in entries}
        assert again.entries(e.name for e in entries) == {e.name: e for e in entries}
        assert again.pages == pages
    finally:
        again.close()
    # Other settings: nothing is reused.
    other = ReportState.open(tmp_path, "other settings")
    assert other.stubs == {} and other.pages == {}
    other.close()
