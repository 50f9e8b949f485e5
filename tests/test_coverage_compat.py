"""What nbcov relies on from coverage.py at its floor (pyproject.toml); `make test-floors` runs it there."""

from __future__ import annotations

from coverage import CoverageData


def test_erasing_in_memory_data_leaves_nothing_for_the_next_update() -> None:
    # A kernel saves, erases its in-memory data and goes on measuring into it. coverage.py before
    # 7.14 kept the rows (erase() forgot only its cache of file names), and the next save copied them
    # again under the kernel's raw cell file names: "No source for code". Hence coverage>=7.14.
    measured = CoverageData(no_disk=True)
    measured.add_lines({"/tmp/ipykernel_1/1.py": [1, 2]})
    measured.erase()
    measured.add_lines({"/tmp/ipykernel_1/2.py": [3]})
    copy = CoverageData(no_disk=True)
    copy.update(measured)
    assert copy.measured_files() == {"/tmp/ipykernel_1/2.py"}
    assert copy.lines("/tmp/ipykernel_1/2.py") == [3]
