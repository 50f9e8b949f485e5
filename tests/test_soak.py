"""Soak: kernels sharing one data file, edited cells, and random SIGINT/SIGTERM/SIGKILL; no finished cell lost, no hang."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import random
import signal
import time
from pathlib import Path
from queue import Empty

import pytest

from conftest import make_notebook, report_json
from kernels import LiveKernel

SECONDS = float(os.environ.get("NBCOV_SOAK_SECONDS", "75"))
KERNELS = 3
CELL_IDS = [f"cell-{i}" for i in range(2, 6)]  # cell-1 loads nbcov
NEW = "new"  # a cell that is not in the notebook (sent without an id): kept as it is, never replaced
REPLY_WITHIN = 60  # a cell (trivial) or a save that takes longer than this is a hang
EXIT_WITHIN = 30  # after SIGTERM: save and exit


@dataclasses.dataclass
class Slot:
    """One notebook, run by one kernel at a time (a new kernel after a kill)."""

    nb: Path
    kernel: LiveKernel | None = None
    newest: dict[str, tuple[str, bool]] = dataclasses.field(default_factory=dict)  # cell id -> (source, finished)
    new_cells: list[str] = dataclasses.field(default_factory=list)  # sources of finished new cells

    def start(self) -> None:
        self.kernel = LiveKernel(self.nb.parent, env={"JPY_SESSION_NAME": str(self.nb)})
        assert self.kernel.run("%load_ext nbcov", "cell-1")["status"] == "ok"

    def pid(self) -> int:
        assert self.kernel is not None
        return self.kernel.km.provisioner.process.pid


def source(slot: int, n: int) -> str:
    """A new version of a cell each time (an edit): three lines, all run."""
    return f"soak_{slot}_{n} = {n}\nfor _i in range(300):\n    soak_{slot}_{n} += _i"


def drain(kernel: LiveKernel) -> None:
    """Throw away what the kernel published (nobody reads it); `get_msgs()` would wait forever."""
    with contextlib.suppress(Empty):
        while True:
            kernel.kc.get_iopub_msg(timeout=0)


def reply_to(kernel: LiveKernel, msg_id: str, seconds: float) -> dict | None:
    """The kernel's reply to a request; None if the kernel died or did not answer in time."""
    deadline = time.monotonic() + seconds
    process = kernel.km.provisioner.process
    while time.monotonic() < deadline:
        drain(kernel)
        try:
            reply = kernel.kc.get_shell_msg(timeout=0.2)
        except Empty:
            if process.poll() is not None:
                return None
            continue
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply
    return None


def run_with_chaos(slot: Slot, cell_id: str, code: str, rng: random.Random) -> str:
    """Send a cell, maybe signal the kernel a moment later, and wait for its answer or its end."""
    kernel = slot.kernel
    assert kernel is not None
    if cell_id != NEW:
        slot.newest[cell_id] = (code, False)
    msg_id = kernel.send(code, cell_id if cell_id != NEW else None, stop_on_error=False)
    action = rng.choices(["none", "SIGINT", "SIGTERM", "SIGKILL"], weights=[55, 35, 5, 5])[0]
    if action != "none":
        time.sleep(rng.uniform(0, 0.06))  # the cell runs ~1 ms, its save ~10 ms: both get hit
        os.kill(slot.pid(), getattr(signal, action))
    process = kernel.km.provisioner.process
    # ipykernel drops a request (no reply, "KeyboardInterrupt caught in kernel") when SIGINT lands in
    # its own code around the cell: then a second request tells a kernel that lives from one that hangs.
    reply = reply_to(kernel, msg_id, 5 if action == "SIGINT" else REPLY_WITHIN)
    if reply is None and action == "SIGINT" and process.poll() is None:
        assert reply_to(kernel, kernel.send("pass", None, stop_on_error=False), REPLY_WITHIN), "the kernel hangs after SIGINT"
    elif reply is None:
        assert process.poll() is not None or action in ("SIGTERM", "SIGKILL"), f"the kernel hangs ({action})"
    elif reply["content"]["status"] == "ok" and cell_id == NEW:
        slot.new_cells.append(code)
    elif reply["content"]["status"] == "ok":
        slot.newest[cell_id] = (code, True)
    if action in ("SIGTERM", "SIGKILL"):
        try:
            process.wait(timeout=EXIT_WITHIN)
        except Exception:
            process.kill()
            raise AssertionError(f"the kernel did not exit {EXIT_WITHIN} s after {action}") from None
        kernel.kc.stop_channels()
        kernel.km.cleanup_resources()
        slot.kernel = None
    return action


@pytest.mark.slow
def test_kernels_sharing_a_data_file_under_random_signals_lose_no_finished_cell(tmp_path: Path) -> None:
    rng = random.Random(os.environ.get("NBCOV_SOAK_SEED", "nbcov"))
    slots = [
        Slot(make_notebook(tmp_path / f"nb{k}.ipynb", ["%load_ext nbcov", *(f"pass  # {c}" for c in CELL_IDS)]))
        for k in range(KERNELS)
    ]
    n = 0
    sent: collections.Counter[str] = collections.Counter()
    end = time.monotonic() + SECONDS
    try:
        while time.monotonic() < end:
            k = rng.randrange(KERNELS)
            slot = slots[k]
            if slot.kernel is None:
                slot.start()
            n += 1
            sent[run_with_chaos(slot, rng.choice([*CELL_IDS, *[NEW] * len(CELL_IDS)]), source(k, n), rng)] += 1
    finally:
        for slot in slots:
            if slot.kernel is not None:
                slot.kernel.shutdown()
    report = report_json(tmp_path)
    finished = 0
    for k, slot in enumerate(slots):
        for cell_id, (code, done) in slot.newest.items():
            if not done:
                continue  # interrupted or killed before it finished: nothing promised
            finished += 1
            versions = [c for c in report["cells"] if c["notebook"] == f"nb{k}.ipynb" and c["cell_id"] == cell_id]
            newest = [c for c in versions if c["source"] == code]
            assert newest, f"nb{k}.ipynb {cell_id}: the finished version {code!r} is lost ({len(versions)} others)"
            assert newest[0]["executed_lines"] == [1, 2, 3]
    sources = {c["source"]: c for c in report["cells"]}
    for slot in slots:
        for code in slot.new_cells:
            finished += 1
            assert code in sources, f"the finished cell {code!r} is lost"
            assert sources[code]["executed_lines"] == [1, 2, 3]
    print(f"soak: {n} cells, {finished} finished and checked, signals: {dict(sent)}")
    assert finished > 10 and sent["SIGINT"] > 10 and sent["SIGTERM"] and sent["SIGKILL"], (finished, sent)
    assert not list(tmp_path.glob(".coverage-nbcov-*")), "a data file was set aside"
