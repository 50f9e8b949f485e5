"""Which files are coverage.py's parallel pieces, and of which process: the names of every supported version."""

from __future__ import annotations

import pytest

from nbcov import coverage_internals


@pytest.mark.parametrize(
    ("name", "pid"),
    [
        (".coverage.nbk-ab12.vm.pid4242.XqWerTyx", 4242),  # 7.11 and later
        (".coverage.nbk-ab12.vm.pid4242.XqWerTyx.H0123abch", 4242),  # 7.17, once written
        (".coverage.nbk-ab12.vm.4242.XqWerTyx", 4242),  # 7.10
        (".coverage.nbk-ab12.vm.pid4242.XqWerTyx-journal", None),  # SQLite's, not a piece
        (".coverage-nbcov", None),
        (".coverage.vm.pid.Xabcx", None),
    ],
)
def test_a_pieces_process_is_read_from_its_name(name: str, pid: int | None) -> None:
    assert coverage_internals.piece_pid(name) == pid
