"""What an HTML report was made from: `nbcov-html.db` in its folder, so the next run redoes only what changed.

Per measured file: the fingerprint of its inputs (`data.fingerprints`) and its entry (numbers,
rendered source, where it sits). Per page: a hash of everything it was made from, its row of the
index, and for a notebook the Markdown and unmeasured code it rendered. A run that finds a file's
fingerprint unchanged reuses its entry; a page whose hash is unchanged is neither rendered nor
written, and its index row comes from here.

SQLite rather than one JSON file: after a one-cell edit a run reads the fingerprints of every file
but the full entries of the changed page only, and writes back only the rows that changed, where
a JSON manifest had to be read and written whole (~70 ms for a 1000-cell notebook: a quarter of
the incremental run). It is a cache: a file that is missing, damaged, from another format or made
with other settings is started afresh (only its list of pages is kept, so their files are removed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbcov.coverage_internals import Numbers

from nbcov.html.data import Entry, Stub
from nbcov.html.render import Row

STATE_FILE = "nbcov-html.db"
STATE_FORMAT = 2

#: An entry's fields that are columns (read for every file on every run); the rest is one JSON text.
STUB_FIELDS = tuple(f.name for f in dataclasses.fields(Stub))
_BIG_FIELDS = ("fragment", "summary")
_REST_FIELDS = tuple(f.name for f in dataclasses.fields(Entry) if f.name not in STUB_FIELDS + _BIG_FIELDS)

_SCHEMA = """
create table meta (key text primary key, value text not null);
create table entry (
    name text primary key, fp text not null, kind text not null, notebook_path text, notebook text,
    label text not null, fragment text not null, summary text not null, rest text not null
);
create table page (filename text primary key, key text not null, row text not null, snippets text not null);
"""


@dataclass
class PageRecord:
    """A page as the last run wrote it: the hash of its inputs, its index row, its cached snippets."""

    key: str
    row: Row
    snippets: dict[str, str]


class ReportState:
    """The open `nbcov-html.db` of one report folder, for one run.

    `stubs` (the columns of every entry that was made with the same settings) and `pages` are read
    when it opens; full entries are read on demand (`entries`); `save` writes the run's result in
    one transaction.
    """

    def __init__(self, con: sqlite3.Connection | None, path: Path, settings: str, same_settings: bool) -> None:
        self.con = con
        self.path = path
        self.settings = settings
        self.same_settings = same_settings
        self.stubs: dict[str, Stub] = {}
        self.pages: dict[str, PageRecord] = {}
        self.old_files: set[str] = _legacy_files(path.parent)  # what earlier runs wrote, whatever their settings
        if con is None:
            return
        for (filename, key, row, snippets) in con.execute("select filename, key, row, snippets from page"):
            self.old_files.add(filename)
            if same_settings:
                self.pages[filename] = PageRecord(key, _row_from_json(filename, row), json.loads(snippets))
        self.old_files.update(json.loads(_read_meta(con, "assets") or "[]"))
        if same_settings:
            for values in con.execute(f"select {', '.join(STUB_FIELDS)} from entry"):
                self.stubs[values[0]] = Stub(*values)

    @classmethod
    def open(cls, directory: Path, settings: str) -> ReportState:
        """The folder's state; an empty one when there is none or it cannot be used (then `save`
        makes a new file: nothing is created before the report is)."""
        path = directory / STATE_FILE
        if not path.is_file():
            return cls(None, path, settings, False)
        try:
            con = sqlite3.connect(path, timeout=30, isolation_level=None)
        except sqlite3.Error:
            return cls(None, path, settings, False)
        try:
            if _read_meta(con, "format") != str(STATE_FORMAT):
                raise ValueError("another format")
            return cls(con, path, settings, _read_meta(con, "settings") == settings)
        except (sqlite3.Error, ValueError, TypeError):
            # Damaged, or written by an incompatible version: a cache, so it is started again.
            con.close()
            return cls(None, path, settings, False)

    def entries(self, names: Iterable[str]) -> dict[str, Entry]:
        """The full entries of `names` (which must be in `stubs`)."""
        out: dict[str, Entry] = {}
        names = list(names)
        if self.con is None:
            return out
        columns = ", ".join(STUB_FIELDS + _BIG_FIELDS + ("rest",))
        for start in range(0, len(names), 500):  # SQLite limits the number of parameters
            chunk = names[start : start + 500]
            rows = self.con.execute(f"select {columns} from entry where name in ({', '.join('?' * len(chunk))})", chunk).fetchall()
            # One JSON document for all of them: a thousand small ones parse at half the speed.
            rests = json.loads("[" + ",".join(row[-1] for row in rows) + "]")
            for row, rest in zip(rows, rests):
                rest["nums"] = Numbers(**rest["nums"])
                rest["missed"] = [(line, status) for line, status in rest["missed"]]
                entry = Entry(**dict(zip(STUB_FIELDS + _BIG_FIELDS, row)), **rest)
                out[entry.name] = entry
        return out

    def save(self, fresh: Iterable[Entry], keep: set[str], pages: dict[str, PageRecord], assets: list[str]) -> None:
        """Record this run: new or changed entries, which entries still count, the pages, the assets."""
        con = self.con if self.con is not None else self._create()
        with self._transaction():
            if not self.same_settings:  # nothing made with other settings is ever reused
                con.execute("delete from entry")
                con.execute("delete from page")
            con.execute("insert or replace into meta values ('settings', ?)", (self.settings,))
            con.execute("insert or replace into meta values ('assets', ?)", (json.dumps(assets),))
            gone = [(name,) for name in self.stubs if name not in keep]
            con.executemany("delete from entry where name = ?", gone)
            con.executemany(
                f"insert or replace into entry values ({', '.join('?' * (len(STUB_FIELDS) + 1 + len(_BIG_FIELDS)))})",
                (_row(entry) for entry in fresh),
            )
            changed = {f: p for f, p in pages.items() if self.pages.get(f) != p}
            con.executemany("delete from page where filename = ?", [(f,) for f in self.old_files if f not in pages])
            con.executemany(
                "insert or replace into page values (?, ?, ?, ?)",
                ((f, p.key, _row_json(p.row), _dumps(p.snippets)) for f, p in changed.items()),
            )

    def _create(self) -> sqlite3.Connection:
        """A new state file, replacing one that could not be used."""
        with contextlib.suppress(OSError):
            self.path.unlink()
        for name in _LEGACY:
            with contextlib.suppress(OSError):
                os.unlink(self.path.parent / name)
        self.con = con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        # Pages of 16 KiB hold a cell's rendered source (a few KiB) without overflow pages: the
        # first report writes its thousand rows in half the time of SQLite's default 4 KiB.
        self.con.execute("pragma page_size = 16384")
        self.con.executescript(_SCHEMA)
        self.con.execute("insert into meta values ('format', ?)", (str(STATE_FORMAT),))
        self.stubs, self.pages, self.same_settings = {}, {}, False
        return con

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        assert self.con is not None
        # A crash between a page and its row costs a re-render at worst, never a wrong page (pages
        # are written before the rows that describe them): no need to wait for the disk.
        self.con.execute("pragma synchronous = off")
        self.con.execute("begin immediate")
        try:
            yield
        except BaseException:
            self.con.execute("rollback")
            raise
        self.con.execute("commit")

    def close(self) -> None:
        if self.con is not None:
            self.con.close()


def _read_meta(con: sqlite3.Connection, key: str) -> str | None:
    found = con.execute("select value from meta where key = ?", (key,)).fetchone()
    return None if found is None else str(found[0])


def _row(entry: Entry) -> tuple[Any, ...]:
    """An entry as the `entry` table's columns: the stub's, the big texts, the rest as JSON."""
    rest = {f: getattr(entry, f) for f in _REST_FIELDS}
    rest["nums"] = dataclasses.asdict(entry.nums)
    return (*(getattr(entry, f) for f in STUB_FIELDS), *(getattr(entry, f) for f in _BIG_FIELDS), _dumps(rest))


def _row_json(row: Row) -> str:
    """An index row as the `page` table keeps it (its href is the page's file name, the key)."""
    return _dumps({"name": row.name, "kind": row.kind, "detail": row.detail, "nums": dataclasses.asdict(row.nums), "tests": row.tests})


def _row_from_json(filename: str, text: str) -> Row:
    data = json.loads(text)
    return Row(filename, data["name"], data["kind"], data["detail"], Numbers(**data["nums"]), data["tests"])


#: JSON for the state's columns; one encoder made once (a first report encodes a thousand entries).
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


#: The JSON manifest of earlier nbcov versions: read for the pages it lists (so they are removed), then deleted.
_LEGACY = ("nbcov-html.json", "nbcov-html.fragments")


def _legacy_files(directory: Path) -> set[str]:
    try:
        data = json.loads((directory / _LEGACY[0]).read_text(encoding="utf-8"))
        return {str(f) for f in data.get("pages", {})} | {str(f) for f in data.get("assets", [])}
    except (OSError, ValueError, AttributeError):
        return set()
