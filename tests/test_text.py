"""`nbcov.text.strip_ansi`: terminal escapes out of tracebacks and outputs, everything else kept."""

from __future__ import annotations

from nbcov.text import strip_ansi


def test_colours_and_cursor_moves_are_removed_and_the_text_kept() -> None:
    # As ipykernel colours a traceback (SGR with several parameters), plus a cursor move and a lone ESC-letter.
    coloured = "\x1b[0;31mZeroDivisionError\x1b[0m: \x1b[1;32mdivision\x1b[39;49m by zero\x1b[2K\x1bM done"
    assert strip_ansi(coloured) == "ZeroDivisionError: division by zero done"


def test_text_without_escapes_is_returned_as_it_is() -> None:
    text = "<script> & [31m is not an escape without ESC"
    assert strip_ansi(text) is text
    # What remains is still text to escape for HTML: stripping is no escaping.
    assert strip_ansi("\x1b[31m<b>\x1b[0m") == "<b>"
