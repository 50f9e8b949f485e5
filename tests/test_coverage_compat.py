"""nbcov's shims for coverage.py versions inside its declared range (run at the floors by `make test-floors`)."""

from __future__ import annotations

from coverage import CoverageData

from nbcov import coverage_internals


def test_erasing_in_memory_data_leaves_nothing_for_the_next_update() -> None:
    # A kernel saves (data.write_mapped: update from its in-memory data), erases that data and goes
    # on measuring into it. On coverage 7.10 erase() kept the rows, and before 7.17 the update's
    # ATTACH kept them alive: the next save copied them again under raw cell file names.
    measured = CoverageData(no_disk=True)
    measured.add_lines({"/tmp/ipykernel_1/1.py": [1, 2]})
    mapped = CoverageData(no_disk=True)
    mapped.update(measured)
    coverage_internals.close_memory_data(mapped)
    coverage_internals.erase_memory_data(measured)
    measured.add_lines({"/tmp/ipykernel_1/2.py": [3]})
    copy = CoverageData(no_disk=True)
    copy.update(measured)
    assert copy.measured_files() == {"/tmp/ipykernel_1/2.py"}
    assert copy.lines("/tmp/ipykernel_1/2.py") == [3]
