"""Hostile data files and records: `nbcov combine`, `report` and `html` never write outside their destination."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import coverage
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_notebook, nbcov_cli, report_json
from nbcov import cli
from nbcov.cells import CellRecord, RecordError, record_tail
from nbcov.data import TRACER_NAME

VALID = json.dumps(CellRecord(source="x = 1\n", code="x = 1\n", notebook="nb.ipynb", cell_index=1).to_json())


def snapshot(root: Path) -> dict[str, tuple[str, str]]:
    """Every entry below `root`: its kind and content (links by target, never followed)."""
    seen: dict[str, tuple[str, str]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                seen[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                seen[rel] = ("dir", "")
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    seen[rel] = ("file", hashlib.sha256(f.read()).hexdigest())
            else:
                seen[rel] = ("other", "")
    return seen


def changed(before: dict[str, tuple[str, str]], after: dict[str, tuple[str, str]]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def write_data(path: Path, names: list[str]) -> None:
    """A real coverage.py data file measuring `names`; those shaped like cells carry nbcov's tracer."""
    data = coverage.CoverageData(basename=str(path))
    data.add_lines({name: [1] for name in names})
    data.add_file_tracers({name: TRACER_NAME for name in names if name.endswith(".json")})
    data.write()


def run_cli(*args: str) -> tuple[int, str]:
    """`nbcov ...` in this process (hypothesis runs hundreds): exit code and stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(list(args))
    return code, err.getvalue()


@contextlib.contextmanager
def sandbox() -> Iterator[Path]:
    """A fresh tree per example: victims outside the store, an artifact folder, the folder combined into."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "package.json").write_text('{"name": "victim"}')
        (root / "outside").mkdir()
        (root / "outside" / "secret.json").write_text(VALID)
        (root / "work").mkdir()
        (root / "art" / "x" / ".nbcov" / "cells").mkdir(parents=True)
        old = os.getcwd()
        os.chdir(root / "work")
        try:
            yield root
        finally:
            os.chdir(old)


SEGMENTS = st.sampled_from(["..", ".", "", "nb.ipynb", "a", "package.json", "outside", "secret.json", "cells",
                            ".nbcov", "x.json", "..json", "../..", "\\", "%2e%2e"])
PREFIXES = st.sampled_from(["/ci/elsewhere", "{art}", "{root}/work", "", "rel", "{root}/outside/.."])
#: What a record file may be: valid, damaged in each way, or a link / special file pointing out of the store.
RECORDS = st.sampled_from(["valid", "list", "code-int", "deep", "garbage", "empty", "link-out", "link-dir-out",
                           "fifo", "dir", "missing"])


@st.composite
def hostile_names(draw: st.DrawFn) -> str:
    prefix = draw(PREFIXES)
    tail = draw(st.lists(SEGMENTS, min_size=0, max_size=5))
    last = draw(st.sampled_from(["r.json", "../r.json", "..", "r.json/..", "package.json"]))
    return "/".join([prefix, ".nbcov", "cells", *tail, last])


def plant(store: Path, tail: tuple[str, ...], kind: str, root: Path) -> None:
    """Put a record of `kind` at `store/tail` (only where that stays in the store: this is the attacker's
    own artifact folder, which they control fully)."""
    path = store.joinpath(*tail)
    if (kind == "missing" or os.path.lexists(path) or os.path.realpath(path) != os.path.normpath(path)
            or not str(path).startswith(str(store))):
        return  # the first entry for a place wins (writing into a planted FIFO would block this test)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "valid":
            path.write_text(VALID)
        elif kind == "list":
            path.write_text("[1, 2]")
        elif kind == "code-int":
            path.write_text(json.dumps({"source": "x", "code": 7}))
        elif kind == "deep":
            path.write_text("[" * 100_000 + "]" * 100_000)
        elif kind == "garbage":
            path.write_bytes(b"\xff\xfe\x00garbage")
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "link-out":
            path.symlink_to(root / "outside" / "secret.json")
        elif kind == "link-dir-out":
            path.parent.rename(path.parent.with_name(path.parent.name + "-moved"))
            path.parent.symlink_to(root / "outside")
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "dir":
            path.mkdir()


@pytest.mark.slow  # one nbcov process per example
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(st.tuples(hostile_names(), RECORDS), min_size=1, max_size=4), modules=st.booleans())
def test_combine_writes_only_its_data_file_and_store(entries: list[tuple[str, str]], modules: bool) -> None:
    with sandbox() as root:
        art = root / "art" / "x"
        names = [name.format(art=art, root=root) for name, _ in entries]
        for name, (_, kind) in zip(names, entries):
            try:
                tail = record_tail(name, art)
            except RecordError:
                tail = tuple(name.split("/.nbcov/cells/")[-1].split("/"))
            plant(art / ".nbcov" / "cells", tail, kind, root)
        write_data(art / ".coverage.3.12", names + ([str(root / "mod.py")] if modules else []))
        before = snapshot(root)
        code, err = run_cli("combine", "--data-file", str(root / "work" / ".coverage"), str(art))
        after = snapshot(root)
        assert code in (0, 2), err
        assert "Traceback" not in err and "internal error" not in err
        diff = changed(before, after)
        if code == 2:
            assert err.count("\n") == 1 and err.startswith("nbcov: error: "), err
            assert not diff, diff  # refused: nothing written, no input deleted
            return
        allowed = ("work/.coverage", "work/.nbcov", "art/x/.coverage.3.12")
        assert all(any(p == a or p.startswith(a + "/") for a in allowed) for p in diff), diff
        assert not any(p.startswith("work/.nbcov") and after[p][0] == "link" for p in after)
        # Whatever combine accepted, the other commands read it with one line at most.
        code, err = run_cli("report", "--data-file", str(root / "work" / ".coverage"))
        assert code in (0, 2) and "Traceback" not in err and "internal error" not in err, err
        before = snapshot(root)
        code, err = run_cli("html", "--data-file", str(root / "work" / ".coverage"), "-d", str(root / "work" / "h"))
        assert code in (0, 2) and "Traceback" not in err and "internal error" not in err, err
        assert all(p == "work/h" or p.startswith("work/h/") for p in changed(before, snapshot(root)))


@pytest.mark.slow  # one nbcov process per example
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=st.lists(st.one_of(hostile_names(), st.text(min_size=1, max_size=30)), min_size=1, max_size=4),
       kind=RECORDS.filter(lambda k: k != "fifo"))
def test_report_and_html_of_hostile_data_write_only_the_report(names: list[str], kind: str) -> None:
    with sandbox() as root:
        names = [n.format(art=root / "work", root=root) if "{" in n and "}" in n and n.count("{") == 1 else n
                 for n in names]
        names = [n for n in names if "\x00" not in n] or ["/x/.nbcov/cells/r.json"]
        for name in names:
            if name.startswith(str(root / "work" / ".nbcov" / "cells")):
                plant(root / "work" / ".nbcov" / "cells", tuple(name.split("/.nbcov/cells/")[-1].split("/")), kind, root)
        write_data(root / "work" / ".coverage", names)
        before = snapshot(root)
        for command in (["report"], ["report", "--format", "json", "-o", "r.json"], ["who", "--redundant"],
                        ["html", "-d", "h"]):
            code, err = run_cli(*command, "--data-file", str(root / "work" / ".coverage"))
            assert code in (0, 2), (command, err)
            assert "Traceback" not in err and "internal error" not in err, (command, err)
            if code == 2:
                assert err.count("\n") == 1 and err.startswith("nbcov: error: "), err
        assert all(p in ("work/r.json", "work/h") or p.startswith("work/h/") for p in changed(before, snapshot(root)))


@pytest.mark.unit
def test_record_tail_keeps_names_below_the_store() -> None:
    assert record_tail("/ci/a/.nbcov/cells/nb.ipynb/c-1.json", Path("d")) == ("nb.ipynb", "c-1.json")
    for name in ("/ci/.nbcov/cells/../../package.json", "/ci/.nbcov/cells/a/../../x.json", "/ci/.nbcov/cells//x.json",
                 "/ci/.nbcov/x.json", "/ci/.nbcov/cells/./x.json", "/ci/.nbcov/cells/"):
        with pytest.raises(RecordError, match="outside any .nbcov/cells/ folder"):
            record_tail(name, Path("d"))


def test_the_readme_recipe_refuses_a_traversal_and_combines_real_artifacts(tmp_path: Path) -> None:
    """The README's CI job: artifacts of real runs combined in another folder; one artifact is hostile."""
    make_notebook(tmp_path / "ci" / "nb.ipynb", ["def f(x):\n    return x", "f(1)"])
    nbcov_cli("run", "nb.ipynb", "--data-file", ".coverage.3.12", cwd=tmp_path / "ci")
    art = tmp_path / "report" / "artifacts"
    shutil.copytree(tmp_path / "ci", art / "coverage-3.12")
    (art / "coverage-3.12" / "nb.ipynb").unlink()  # the artifact holds the data and its records only
    shutil.copytree(art / "coverage-3.12", art / "evil")
    victim = tmp_path / "report" / "package.json"
    victim.write_text('{"name": "victim"}')
    evil = art / "evil" / ".coverage.3.12"
    record = next((art / "evil" / ".nbcov" / "cells").rglob("*.json"))
    shutil.copy(record, art / "evil" / "package.json")  # a valid record where the traversal lands in the artifact
    evil.unlink()
    write_data(evil, [str(tmp_path / "ci" / ".nbcov" / "cells" / ".." / ".." / "package.json")])

    result = nbcov_cli("combine", "artifacts/evil/", "artifacts/coverage-3.12/", cwd=tmp_path / "report", check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "outside any .nbcov/cells/ folder" in result.stderr and "Traceback" not in result.stderr
    assert victim.read_text() == '{"name": "victim"}' and evil.exists()

    shutil.rmtree(art / "evil")
    nbcov_cli("combine", "artifacts/coverage-3.12/", cwd=tmp_path / "report")
    assert report_json(tmp_path / "report")["cells"][0]["executed_lines"] == [1, 2]


def test_combine_refuses_a_symlinked_record_and_a_missing_store(tmp_path: Path) -> None:
    make_notebook(tmp_path / "ci" / "nb.ipynb", ["x = 1"])
    nbcov_cli("run", "nb.ipynb", "--data-file", ".coverage.a", cwd=tmp_path / "ci")
    (tmp_path / "secret.json").write_text(VALID)
    art = tmp_path / "art"
    shutil.copytree(tmp_path / "ci", art)
    record = next((art / ".nbcov" / "cells").rglob("*.json"))
    record.unlink()
    record.symlink_to(tmp_path / "secret.json")
    (tmp_path / "out").mkdir()
    result = nbcov_cli("combine", str(art), cwd=tmp_path / "out", check=False)
    assert result.returncode == 2 and "symbolic link" in result.stderr, result.stderr
    assert not (tmp_path / "out" / ".nbcov").exists() and (art / ".coverage.a").exists()

    shutil.rmtree(art / ".nbcov")  # the README's "copy .nbcov/ along" forgotten: refused, input kept
    result = nbcov_cli("combine", str(art), cwd=tmp_path / "out", check=False)
    assert result.returncode == 2 and "No record for the notebook cell" in result.stderr, result.stderr
    assert (art / ".coverage.a").exists() and not (tmp_path / "out" / ".coverage").exists()
