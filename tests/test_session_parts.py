"""The parts a Session wires, each without a kernel: the run-cell stack, the exit hooks, the status it answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import coverage

from nbcov.cells import CellRecord
from nbcov.runstack import CellStack
from nbcov.session import Session, Status


def _info(raw: str, cell_id: str | None = None) -> SimpleNamespace:
    """What IPython hands `pre_run_cell` (ExecutionInfo)."""
    return SimpleNamespace(raw_cell=raw, cell_id=cell_id)


def test_a_cell_magics_body_run_as_a_cell_belongs_to_its_cell() -> None:
    stack = CellStack()
    stack.push(_info("\n%%capture out\nx = 1\n", cell_id="c1"))
    record = CellRecord(source="\n%%capture out\nx = 1\n", code="")
    stack.top.record = record  # named by the compile hooks
    stack.push(_info("x = 1\n"))  # %%capture runs its body through run_cell
    body = stack.top
    assert (body.record, body.offset, body.cell_id) == (record, 2, None)
    assert stack.outermost_record is record and len(stack) == 2
    stack.pop()
    stack.push(_info("y = 2"))  # anything else run from the cell is a cell of its own
    assert stack.top.record is None and stack.top.offset == 0
    assert [stack.pop() is not None, stack.pop() is not None, stack.pop()] == [True, True, None]


def test_sigterm_saves_then_dies_as_asked_and_exit_saves(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, signal, sys
        from nbcov.exiting import ExitHooks
        hooks = ExitHooks(lambda: print("saved", flush=True))
        hooks.install()
        if sys.argv[1] == "uninstall":
            hooks.uninstall()
        if sys.argv[1] != "exit":
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pause()
        """
    )
    runs = {
        how: subprocess.run([sys.executable, "-c", script, how], capture_output=True, text=True, timeout=60)
        for how in ("sigterm", "exit", "uninstall")
    }
    assert (runs["sigterm"].returncode, runs["sigterm"].stdout) == (-signal.SIGTERM, "saved\n")
    assert (runs["exit"].returncode, runs["exit"].stdout) == (0, "saved\n")
    assert (runs["uninstall"].returncode, runs["uninstall"].stdout) == (-signal.SIGTERM, "")


def test_a_session_not_started_answers_status() -> None:
    assert Session(shell=None).status() == Status(
        measuring=False, core="stopped", data_file="", notebook=None, cells=0, branch=None, last_error=None
    )


TRACER_BUSY = """
import os, sys, types, coverage
cov = coverage.Coverage(data_file=sys.argv[1])
cov.start()
from nbcov.exiting import ExitHooks
def leave():
    cov.stop()
    cov.save()
ExitHooks(leave).install()
print("ready", flush=True)
# A new code object per call: coverage.py's tracer runs its own code (holding its lock) on each one,
# so a SIGTERM often lands there.
namespace = {}
exec(compile("def f():\\n    return 1\\n", os.path.join(os.path.dirname(sys.argv[1]), "busy.py"), "exec"), namespace)
base = namespace["f"].__code__
i = 0
while True:
    i += 1
    types.FunctionType(base.replace(co_firstlineno=i % 100000 + 1), {})()
"""


def test_sigterm_landing_in_the_tracers_code_still_saves_and_exits(tmp_path: Path) -> None:
    """coverage.py's `sysmon` tracer holds a lock that is not reentrant while its own code runs: a
    SIGTERM handled there used to wait forever in `Coverage.stop()` (a kernel that never exits;
    ~1 in 3 of these runs). The handler puts itself off until the tracer's code has returned."""
    for n in range(12):
        data = tmp_path / f".coverage{n}"
        child = subprocess.Popen([sys.executable, "-c", TRACER_BUSY, str(data)], stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "COVERAGE_CORE": "sysmon"})
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        time.sleep(0.2)  # a moment of measuring, not a timing assumption: any moment will do
        child.send_signal(signal.SIGTERM)
        try:
            assert child.wait(timeout=20) == -signal.SIGTERM
        except subprocess.TimeoutExpired:
            child.kill()
            raise AssertionError(f"run {n}: the process did not exit after SIGTERM") from None
        saved = coverage.CoverageData(str(data))
        saved.read()
        assert str(tmp_path / "busy.py") in saved.measured_files()
