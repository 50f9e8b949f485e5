"""Bad input to every command and magic: one line on stderr, the documented exit code, never a traceback."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import NBCOV, make_notebook, nbcov_cli, report_json, tmpfs, wait_for
from kernels import LiveKernel
from nbcov import runner, runs
from nbcov.cells import CellRecord, RecordError, load_record
from nbcov.combine import combine
from nbcov.errors import one_line

USAGE, FAILED = 2, 1


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder measured for real: `nbcov run` of one notebook (data file, records, the notebook)."""
    folder = tmp_path_factory.mktemp("measured")
    make_notebook(folder / "nb.ipynb", ["def f(x):\n    return x", "f(1)"])
    nbcov_cli("run", "nb.ipynb", cwd=folder)
    return folder


@pytest.fixture(scope="module")
def read_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A read-only filesystem (a tmpfs mounted `ro`): unlike chmod, it stops root, as these tests run."""
    where = tmp_path_factory.mktemp("ro")
    with tmpfs(where, "ro,size=1m"):
        yield where


def _record(folder: Path) -> Path:
    return next((folder / ".nbcov" / "cells").rglob("*.json"))


def _write(rel: str, content: str | bytes) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return setup


def _damage_record(content: str) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        _record(folder).write_text(content)

    return setup


def _record_is_a_folder(folder: Path) -> None:
    record = _record(folder)
    record.unlink()
    record.mkdir()


def _nothing(folder: Path) -> None:
    pass


DEEP = "[" * 100_000 + "]" * 100_000
NB99 = json.dumps({"nbformat": 99, "nbformat_minor": 0, "cells": [], "metadata": {}})


@dataclasses.dataclass
class Case:
    id: str
    args: list[str]
    setup: Callable[[Path], None] = _nothing
    code: int = USAGE
    says: str = ""  # part of the one line
    argparse: bool = False  # argparse's own usage error: usage lines, then `nbcov X: error: ...`


CASES = [
    # report
    Case("report-missing-data", ["report", "--data-file", "nope"], says="No coverage data file at nope"),
    Case("report-data-is-dir", ["report", "--data-file", "sub"], _write("sub/x", ""), says="is a folder"),
    Case("report-data-empty", ["report", "--data-file", "empty"], _write("empty", ""), says="No data to report"),
    Case("report-data-invalid", ["report", "--data-file", "bad"], _write("bad", "not sqlite " * 50), says="not a usable"),
    Case("report-data-under-file", ["report", "--data-file", "nb.ipynb/.coverage"], says="No coverage data file"),
    Case("report-o-missing-folder", ["report", "-o", "missing/r.txt"], says="No such file or directory"),
    Case("report-o-dir", ["report", "-o", ".nbcov"], says="Is a directory"),
    Case("report-o-read-only", ["report", "-o", "{ro}/r.txt"], says="Read-only file system"),
    Case("report-rcfile-missing", ["report", "--rcfile", "nope.rc"], says="no such configuration file"),
    Case("report-rcfile-dir", ["report", "--rcfile", ".nbcov"], says="no such configuration file"),
    Case("report-rcfile-invalid", ["report", "--rcfile", "bad.rc"], _write("bad.rc", "[run\n"), says="Couldn't read"),
    Case("report-coveragerc-invalid", ["report"], _write(".coveragerc", "[run]\nbranch = maybe\n"), says="Not a boolean"),
    Case("report-record-list", ["report"], _damage_record("[1, 2]"), says="a record is a JSON object"),
    Case("report-record-code-int", ["report"], _damage_record('{"source": "x", "code": 7}'), says="'code'"),
    Case("report-record-deep", ["report"], _damage_record(DEEP), says="is unreadable"),
    Case("report-record-empty", ["report"], _damage_record(""), says="is unreadable"),
    Case("report-record-dir", ["report"], _record_is_a_folder, says="is unreadable"),
    Case("report-records-missing", ["report"], lambda f: shutil.rmtree(f / ".nbcov"), says="Keep the .nbcov/"),
    Case("report-fail-under-nan", ["report", "--fail-under", "x"], argparse=True),
    # html
    Case("html-d-file", ["html", "-d", "nb.ipynb"], says="is a file, not a folder"),
    Case("html-d-under-file", ["html", "-d", "nb.ipynb/h"], says="Not a directory"),
    Case("html-d-read-only", ["html", "-d", "{ro}/h"], says="Read-only file system"),
    Case("html-notebook-missing", ["html", "--notebook", "nope.ipynb"], says="no such notebook file"),
    Case("html-notebook-dir", ["html", "--notebook", ".nbcov"], says="no such notebook file"),
    Case("html-data-missing", ["html", "--data-file", "nope"], says="No coverage data file"),
    Case("html-record-list", ["html"], _damage_record("[]"), says="a record is a JSON object"),
    Case("html-rcfile-missing", ["html", "--rcfile", "nope.rc"], says="no such configuration file"),
    # who
    Case("who-data-missing", ["who", "--redundant", "--data-file", "nope"], says="No coverage data file"),
    Case("who-bad-location", ["who", "nonsense"], says="is not NOTEBOOK:CELL:LINE"),
    Case("who-record-code-int", ["who", "nb.ipynb:1:1"], _damage_record('{"source": "x", "code": 7}'), says="'code'"),
    # run (each refused before a kernel starts)
    Case("run-missing", ["run", "nope.ipynb"], says="no such file or folder"),
    Case("run-empty-notebook", ["run", "e.ipynb"], _write("e.ipynb", ""), says="not valid JSON"),
    Case("run-invalid-notebook", ["run", "i.ipynb"], _write("i.ipynb", "{]"), says="not valid JSON"),
    Case("run-binary-notebook", ["run", "b.ipynb"], _write("b.ipynb", b"\xff\xfe\x00"), says="cannot read"),
    Case("run-nbformat-99", ["run", "n.ipynb"], _write("n.ipynb", NB99), says="unsupported nbformat version 99"),
    Case("run-nbformat-minor-text", ["run", "n.ipynb"],
         _write("n.ipynb", NB99.replace("99", "4").replace('"nbformat_minor": 0', '"nbformat_minor": "x"')),
         says="nbformat_minor"),
    Case("run-deep-notebook", ["run", "d.ipynb"], _write("d.ipynb", DEEP), says="nested too deeply"),
    Case("run-notebook-is-dir", ["run", "x.ipynb"], _write("x.ipynb/y", ""), says="no notebooks found"),
    Case("run-no-notebooks", ["run", ".nbcov"], says="no notebooks found"),
    Case("run-data-file-dir", ["run", "nb.ipynb", "--data-file", ".nbcov"], says="is a folder"),
    Case("run-data-file-under-file", ["run", "nb.ipynb", "--data-file", "nb.ipynb/.coverage"], says="Not a directory"),
    Case("run-data-file-read-only", ["run", "nb.ipynb", "--data-file", "{ro}/.coverage"], says="Read-only file system"),
    Case("run-output-notebook-file", ["run", "nb.ipynb", "--output-notebook", "nb.ipynb"], says="is a file"),
    Case("run-output-notebook-read-only", ["run", "nb.ipynb", "--output-notebook", "{ro}/out"], says="Read-only"),
    Case("run-cwd-missing", ["run", "nb.ipynb", "--cwd", "nope"], says="no such folder"),
    Case("run-rcfile-missing", ["run", "nb.ipynb", "--rcfile", "nope.rc"], says="no such configuration file"),
    Case("run-timeout-negative", ["run", "nb.ipynb", "--timeout", "-1"], argparse=True, says="at least 0"),
    Case("run-jobs-zero", ["run", "nb.ipynb", "-j", "0"], argparse=True, says="at least 1"),
    Case("run-kernel-unknown", ["run", "nb.ipynb", "--kernel", "nope"], says="no kernel named 'nope'"),
    # combine
    Case("combine-input-missing", ["combine", "nope"], says="no such data file or folder"),
    Case("combine-target-dir", ["combine", "--data-file", ".nbcov", "in"], _write("in/.nbcov.x", ""), says="is a folder"),
    Case("combine-input-invalid", ["combine", "in/.coverage.x"], _write("in/.coverage.x", "garbage " * 40),
         says="not a usable"),
    Case("combine-records-missing", ["combine", "art"], lambda f: _artifact(f, records=False), says="No record for"),
    Case("combine-record-list", ["combine", "art"], lambda f: _artifact(f, record="[]"), says="a record is a JSON object"),
    Case("combine-target-read-only", ["combine", "--data-file", "{ro}/.coverage", "art"], lambda f: _artifact(f),
         says="Read-only file system"),
]


def _own_copy(measured: Path, folder: Path) -> Path:
    """A copy of the measured folder whose data names the copy's records (so damaging them is seen):
    the data file's cells name their records by absolute path, and would still find the originals."""
    shutil.copytree(measured, folder)
    (folder / ".coverage").rename(folder / ".coverage.copied")
    combine(folder / ".coverage", [folder / ".coverage.copied"])
    return folder


def _artifact(folder: Path, records: bool = True, record: str | None = None) -> None:
    """`art/`: this folder's data and records, as a CI artifact holding `.coverage.3.12`."""
    (folder / "art").mkdir()
    shutil.move(folder / ".coverage", folder / "art" / ".coverage.3.12")
    shutil.move(folder / ".nbcov", folder / "art" / ".nbcov")
    if not records:
        shutil.rmtree(folder / "art" / ".nbcov")
    if record is not None:
        _record(folder / "art").write_text(record)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_exit_2(case: Case, measured: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    folder = _own_copy(measured, tmp_path / "w")
    case.setup(folder)
    args = case.args
    if any("{ro}" in a for a in args):
        ro = request.getfixturevalue("read_only")
        args = [a.replace("{ro}", str(ro)) for a in args]
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    result = nbcov_cli(*args, cwd=folder, check=False)
    out = result.stdout + result.stderr
    assert result.returncode == case.code, out
    assert "Traceback" not in out and "internal error" not in out, out
    lines = result.stderr.strip().splitlines()
    if case.argparse:
        assert lines[-1].startswith(f"nbcov {args[0]}: error: argument"), result.stderr
    else:
        assert len(lines) == 1 and lines[0].startswith(("nbcov: error: ", "nbcov who: ")), result.stderr
    assert case.says in lines[-1], result.stderr
    if args[0] == "combine":  # refused: no input deleted, nothing combined
        assert {p for p in before if p.exists()} == set(before)
        assert all(p.stat().st_mtime_ns == t for p, t in before.items())


def test_an_unexpected_error_is_one_line_that_says_it_is_a_bug(measured: Path, tmp_path: Path) -> None:
    """A genuine bug is not dressed up as bad input: exit 3, the exception named, the traceback on request."""
    code = (
        "import sys, nbcov.cli as c\n"
        "def broken(args): raise ZeroDivisionError('boom')\n"
        "c._report = broken\n"
        "sys.exit(c.main(['report']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=measured, capture_output=True, text=True, timeout=120)
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "internal error: ZeroDivisionError: boom" in result.stderr and "bug in nbcov" in result.stderr
    shown = subprocess.run([sys.executable, "-c", code], cwd=measured, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "NBCOV_TRACEBACK": "1"})
    assert "Traceback" in shown.stderr and "ZeroDivisionError: boom" in shown.stderr


def test_magics_answer_bad_input_in_one_line(tmp_path: Path, read_only: Path) -> None:
    """`%nbcov` and `%%covtest` in one live kernel: each bad line is one line on stderr, the kernel goes on."""
    (tmp_path / "afile").write_text("")
    kernel = LiveKernel(tmp_path)
    try:
        assert kernel.run("%load_ext nbcov")["status"] == "ok"
        kernel.run("x = 1")
        cases = {
            '%nbcov "unclosed': "No closing quotation",
            '%%covtest "unclosed\ndef test_x():\n    pass': "No closing quotation",
            "%nbcov html afile": "is a file, not a folder",
            "%nbcov html afile/sub": "Not a directory",
            f"%nbcov html {read_only}/h": "Read-only file system",
            "%nbcov who nonsense": "is not NOTEBOOK:CELL:LINE",
        }
        for line, says in cases.items():
            reply = kernel.run(line)
            assert reply["status"] == "ok", (line, reply)
            errors = [o for o in reply["outputs"] if o["type"] == "error"]
            assert not errors, (line, errors)
            text = "".join(o.get("text", "") for o in reply["outputs"] if o["type"] == "stream")
            assert says in text and "Traceback" not in text, (line, text)
            assert len(text.strip().splitlines()) == 1, (line, text)
        assert kernel.run("assert x == 1")["status"] == "ok"  # the session goes on
    finally:
        kernel.shutdown()


def test_a_second_run_in_the_same_folder_and_a_concurrent_run(tmp_path: Path) -> None:
    """`nbcov run .` again skips nbcov's own `.nbcov/cells/x.ipynb/` folders; a second run into the same
    data file while one runs is refused in one line, and the first keeps every cell."""
    # The second cell runs until the test creates `go`: the first run is surely still running when the
    # second one starts, and no longer than that.
    go = tmp_path / "go"
    make_notebook(tmp_path / "slow.ipynb", ["y = 1", "import pathlib, time\nwhile not pathlib.Path('go').exists():\n    time.sleep(0.02)", "z = 2"])
    go.touch()
    nbcov_cli("run", ".", cwd=tmp_path)
    assert any(p.suffix == ".ipynb" and p.is_dir() for p in (tmp_path / ".nbcov").rglob("*"))
    go.unlink()
    first = subprocess.Popen([*NBCOV, "run", "."], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: list(tmp_path.glob(".coverage.*")), 120, "the first run's kernel to save its first cell")
        second = nbcov_cli("run", ".", cwd=tmp_path, check=False)
        go.touch()
        out, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, out + err
    assert second.returncode == USAGE, second.stdout + second.stderr
    assert second.stderr.strip().startswith("nbcov: error: another nbcov run (pid ")
    assert len(second.stderr.strip().splitlines()) == 1 and not second.stdout
    cells = {c["cell_index"]: c["executed_lines"] for c in report_json(tmp_path)["cells"]}
    assert cells == {1: [1], 2: [1, 2, 3], 3: [1]}


# Fast checks of the pieces, no kernel.

@pytest.mark.unit
def test_records_are_checked_when_read(tmp_path: Path) -> None:
    path = tmp_path / ".nbcov" / "cells" / "r.json"
    path.parent.mkdir(parents=True)
    for content, says in (("[]", "not list"), ('{"source": "x"}', "'code' is missing"),
                          ('{"source": "x", "code": "x", "cell_index": "3"}', "'cell_index'"),
                          (DEEP, "unreadable"), ("\x00", "unreadable")):
        path.write_text(content)
        os.utime(path, ns=(time.time_ns(), time.time_ns()))  # records are cached by modification time
        with pytest.raises(RecordError, match=says):
            load_record(str(path))
    path.write_text(json.dumps({"source": "x", "code": "x", "later_key": [1]}))
    os.utime(path, ns=(1, 1))
    assert load_record(str(path)) == CellRecord("x", "x")  # keys from newer versions are skipped


@pytest.mark.unit
def test_find_notebooks_leaves_out_hidden_folders_below_a_named_one(tmp_path: Path) -> None:
    for rel in ("a.ipynb", "sub/b.ipynb", ".nbcov/cells/a.ipynb/c.json", ".ipynb_checkpoints/a-checkpoint.ipynb",
                "sub/.hidden/h.ipynb"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}")
    assert runner.find_notebooks([tmp_path]) == [tmp_path / "a.ipynb", tmp_path / "sub" / "b.ipynb"]
    hidden = tmp_path / ".hidden-root"
    (hidden / "n.ipynb").parent.mkdir()
    (hidden / "n.ipynb").write_text("{}")
    assert runner.find_notebooks([hidden]) == [hidden / "n.ipynb"]  # a hidden folder named on purpose is searched


@pytest.mark.unit
def test_run_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    data_file = tmp_path / ".coverage"
    with runs.run_lock(data_file):
        with pytest.raises(runs.RunLockedError, match=rf"pid {os.getpid()}\) is writing {data_file}"):
            with runs.run_lock(data_file):
                pass
    with runs.run_lock(data_file):  # released
        pass
    assert not list(tmp_path.glob(".coverage.*"))  # the lock is not mistaken for a piece of data


@pytest.mark.unit
def test_one_line_of_os_errors() -> None:
    assert one_line(FileNotFoundError(2, "No such file or directory", "x/y")) == "x/y: No such file or directory"
    assert one_line(IsADirectoryError(21, "Is a directory", 15)) == "file descriptor 15: Is a directory"
    assert one_line(ValueError("a\nb")) == "a b"


def test_html_notebook_whose_file_is_gone_is_still_reported(measured: Path, tmp_path: Path) -> None:
    """`--notebook` of a measured notebook since deleted is not a mistake: its records are shown."""
    folder = _own_copy(measured, tmp_path / "w")
    (folder / "nb.ipynb").unlink()
    result = nbcov_cli("html", "--notebook", "nb.ipynb", "-d", "h", cwd=folder)
    assert result.returncode == 0 and (folder / "h" / "index.html").exists()
