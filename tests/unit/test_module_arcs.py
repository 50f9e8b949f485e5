"""Module arcs: a cell's arcs, recorded statement by statement as IPython runs it, read as coverage.py reads a module's."""

from __future__ import annotations

import pytest

from nbcov.parser import Shift, module_arcs

IF_CELL = "# set up\nx = 1\nif x:\n    y = 2\nz = 3\n"  # line 1 is special: see the last test


@pytest.mark.parametrize("recorded, as_module", [
    # IPython runs each top-level statement as its own code object: each one is entered from and left to -1.
    ({(-1, 2), (2, -1), (-1, 3), (3, 4), (4, -1), (-1, 5), (5, -1)}, {(-1, 2), (2, 3), (3, 4), (4, 5), (5, -1)}),
    ({(-1, 2), (2, -1), (-1, 3), (3, -1), (-1, 5), (5, -1)}, {(-1, 2), (2, 3), (3, 5), (5, -1)}),  # the if not taken
    # The cell stopped (an exception) before line 5: the if's exit stays the module's exit.
    ({(-1, 2), (2, -1), (-1, 3), (3, 4), (4, -1)}, {(-1, 2), (2, 3), (3, 4), (4, -1)}),
])
def test_statements_lead_to_the_next_statement_that_ran(recorded: set[tuple[int, int]], as_module: set[tuple[int, int]]) -> None:
    assert module_arcs(IF_CELL, recorded) == as_module


def test_function_bodies_keep_their_own_entries_and_exits() -> None:
    code = "\na = 0\ndef f(x):\n    if x:\n        return 1\n    return 2\nf(1)\n"
    recorded = {(-1, 2), (2, -1), (-1, 3), (3, -1), (-1, 7), (7, -1), (-3, 4), (4, 5), (5, -3)}
    assert module_arcs(code, recorded) == {(-1, 2), (2, 3), (3, 7), (7, -1), (-3, 4), (4, 5), (5, -3)}


def test_one_statement_and_unparsable_code_are_left_as_recorded() -> None:
    assert module_arcs("x = 1\n", {(-1, 1), (1, -1)}) == {(-1, 1), (1, -1)}
    assert module_arcs("x = (\n", {(-1, 1), (1, -1)}) == {(-1, 1), (1, -1)}


def test_a_shift_moves_lines_and_arcs_but_not_the_module_entry() -> None:
    body = "x = 1\ny = 2\n"
    shift = Shift(2, body)  # a %%time body: typed two lines below the cell's line 1
    assert shift.lines([1, 2]) == {3, 4}
    assert shift.arcs({(-1, 1), (1, 2), (2, -1)}) == {(-1, 3), (3, 4), (4, -1)}


def test_line_one_keeps_its_exit_as_well() -> None:
    """A lambda or comprehension on line 1 also leaves to -1, and the measurement cannot tell them
    apart: both arcs are kept (coverage.py's analysis ignores the one the code cannot take)."""
    recorded = {(-1, 1), (1, -1), (-1, 2), (2, -1)}
    assert module_arcs("x = 1\ny = 2\n", recorded) == {(-1, 1), (1, 2), (1, -1), (2, -1)}
