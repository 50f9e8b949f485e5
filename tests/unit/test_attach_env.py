"""What `nbcov exec` and `pytest --nbcov-kernels` put in a command's environment, and take away after."""

from __future__ import annotations

from pathlib import Path

from nbcov import attach, contract
from nbcov.contract import KernelContract


def test_the_environment_names_a_piece_of_the_data_file_and_the_startup_file(tmp_path: Path) -> None:
    attachment = attach.attach(tmp_path / ".coverage", branch=True, source=["mypkg"], rcfile=tmp_path / "rc",
                               notebooks=[Path("nbs")], environ={})
    try:
        env = attachment.env
        read = KernelContract.from_env(env)
        assert read.piece and read.data_file == str(tmp_path / ".coverage") and read.branch and read.source == ("mypkg",)
        assert read.cell_contexts and read.subprocess and read.test_file is None
        assert read.notebooks == (str(Path("nbs").absolute()),)
        assert env["COVERAGE_RCFILE"] == str(tmp_path / "rc")
        startup = Path(env["PYTHONSTARTUP"])
        assert startup.parent == attachment.folder and startup.is_file()
        compile(startup.read_text(), str(startup), "exec")  # the kernels run it: it must at least compile
        assert attach.USER_STARTUP not in env
        assert (attachment.folder.stat().st_mode & 0o777) == 0o700  # private: notes are read back from it
    finally:
        attachment.remove()
    assert not attachment.folder.exists()


def test_the_users_pythonstartup_runs_after_and_never_ours_twice(tmp_path: Path) -> None:
    outer = attach.attach(tmp_path / ".coverage", environ={"PYTHONSTARTUP": "/home/me/.pythonrc"})
    try:
        assert outer.env[attach.USER_STARTUP] == "/home/me/.pythonrc"
        # An `nbcov exec` inside another one: still the user's file, not the outer startup file.
        inner = attach.attach(tmp_path / ".coverage", environ={**outer.env})
        try:
            assert inner.env[attach.USER_STARTUP] == "/home/me/.pythonrc"
        finally:
            inner.remove()
    finally:
        outer.remove()


def test_tests_reach_the_kernels_through_a_file_replaced_whole(tmp_path: Path) -> None:
    attachment = attach.attach(tmp_path / ".coverage", test_contexts=True, environ={})
    try:
        kernel_side = KernelContract.from_env(attachment.env)
        assert kernel_side.running_test() == ""
        attachment.set_test("tests/test_nb.py::test_total")
        assert kernel_side.running_test() == "tests/test_nb.py::test_total"
        attachment.set_test("")
        assert kernel_side.running_test() == ""
        assert attachment.env[contract.TEST_FILE].startswith(str(attachment.folder))
    finally:
        attachment.remove()
    assert kernel_side.running_test() == ""  # the session is over


def test_kernels_that_could_not_measure_are_said_once_each(tmp_path: Path) -> None:
    attachment = attach.attach(tmp_path / ".coverage", environ={})
    try:
        for pid, why in ((11, "nbcov is not installed for /opt/py/bin/python"), (12, "nbcov is not installed for /opt/py/bin/python"),
                         (13, "nbcov did not start in /usr/bin/python3: ImportError: x")):
            (attachment.folder / f"unmeasured-{pid}").write_text(why + "\n")
        assert attachment.unmeasured() == [
            "nbcov is not installed for /opt/py/bin/python", "nbcov did not start in /usr/bin/python3: ImportError: x",
        ]
    finally:
        attachment.remove()
