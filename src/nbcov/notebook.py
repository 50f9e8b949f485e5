"""Finding the notebook a kernel runs, and the position of an executed cell in it."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any


#: Set by anyone to name the notebook explicitly (`nbcov run` gives its kernels `JPY_SESSION_NAME`, as Jupyter does).
NOTEBOOK_ENV = "NBCOV_NOTEBOOK"


def session_notebook(user_ns: dict[str, Any] | None = None) -> Path | None:
    """The notebook this kernel runs, if anything tells us.

    jupyter_server gives the kernel `JPY_SESSION_NAME` (the notebook's path; ipykernel also puts it
    in `__session__`), VS Code sets `__vsc_ipynb_file__`. Terminal IPython has none of them.
    """
    user_ns = user_ns or {}
    candidates = [
        os.environ.get(NOTEBOOK_ENV),
        user_ns.get("__vsc_ipynb_file__"),
        os.environ.get("JPY_SESSION_NAME"),
        user_ns.get("__session__"),
    ]
    for candidate in candidates:
        if not candidate or not isinstance(candidate, str) or not candidate.endswith(".ipynb"):
            continue
        path = Path(candidate)
        if path.is_absolute():
            if path.exists():
                return path
            continue
        # A relative session name is relative to the server's root, which the kernel does not know;
        # the kernel starts in the notebook's folder, so try the name, then its last component.
        for guess in (Path.cwd() / path, Path.cwd() / path.name):
            if guess.exists():
                return guess
    return None


@dataclasses.dataclass(frozen=True)
class Located:
    """Where an executed cell sits in its notebook file."""

    index: int  # 1-based, among all cells
    cell_id: str | None  # the id saved in the file (None for nbformat < 4.5)


class NotebookIndex:
    """Locates executed cells in a notebook file on disk.

    By cell id when the frontend sent one that the file has; otherwise by matching the executed source
    against the code cells, preferring the first match after the previously located cell so that two
    cells with the same source stay two cells during a top-to-bottom run.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: float | None = None
        self._cells: list[Any] = []
        self._last_index = 0

    def _load(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            self._cells = []
            return
        if mtime == self._mtime:
            return
        # Plain JSON, not nbformat: importing nbformat (and jsonschema) in every kernel costs
        # seconds, and only ids, types and sources are needed here.
        try:
            cells = json.loads(self.path.read_text(encoding="utf-8")).get("cells", [])
            self._cells = [
                {**c, "source": "".join(c.get("source", "")) if isinstance(c.get("source"), list) else c.get("source", "")}
                for c in cells
                if isinstance(c, dict)
            ]
        except (OSError, ValueError, AttributeError):  # an unreadable notebook only means positions are unknown
            self._cells = []
        self._mtime = mtime

    def locate(self, source: str, cell_id: str | None) -> Located | None:
        self._load()
        found = self._by_id(cell_id) if cell_id else None
        if found is None:
            found = self._by_source(source)
        if found is not None:
            self._last_index = found.index
        return found

    def _by_id(self, cell_id: str) -> Located | None:
        for i, cell in enumerate(self._cells, start=1):
            if cell.get("id") == cell_id:
                return Located(i, cell_id)
        return None

    def _by_source(self, source: str) -> Located | None:
        matches = [
            i
            for i, cell in enumerate(self._cells, start=1)
            if cell.get("cell_type") == "code" and _same_source(cell.get("source", ""), source)
        ]
        if not matches:
            return None
        after = [i for i in matches if i > self._last_index]
        index = (after or matches)[0]
        return Located(index, self._cells[index - 1].get("id"))


def _same_source(saved: str, executed: str) -> bool:
    # Frontends strip nothing, but files written by other tools may differ in trailing newlines.
    return saved == executed or saved.rstrip() == executed.rstrip()
