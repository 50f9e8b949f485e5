"""Plain-text helpers shared by the reports, the runner and the HTML pages: terminal escapes removed."""

from __future__ import annotations

import re

#: Terminal colour and cursor sequences, as ipykernel puts them in tracebacks and tools in their output.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


def strip_ansi(text: str) -> str:
    """Text without terminal escape sequences: for pages, logs and files, where they are noise.

    Not an escaping step: what it returns still has to be escaped for HTML (`html.render.esc_code`).
    """
    return _ANSI.sub("", text) if "\x1b" in text else text
