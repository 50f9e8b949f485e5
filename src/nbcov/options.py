"""nbcov's options for one shell: what `nbcov.autoconfig` sets and `%%covtest` reads."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

Show = Literal["code", "all", "none"]


@dataclasses.dataclass
class Options:
    """Every option of `nbcov.autoconfig`, with its default (see README, "autoconfig")."""

    #: True: measure every cell from now on; "tests": measure only while `%%covtest` runs its
    #: tests; False: `%%covtest` without measurement.
    coverage: bool | Literal["tests"] = True
    #: Branch coverage; None leaves it to the user's coverage configuration.
    branch: bool | None = None
    #: coverage.py's `source`; None leaves it to the user's coverage configuration.
    source: list[str] | None = None
    #: Measure the Pythons cells start (`subprocess`, `!python`, spawn/forkserver pools) and add what
    #: they ran to the data file after each cell; False: not measured. None: measured (in a kernel
    #: `nbcov run` or `pytest --nbcov` started, as the runner says: `RunConfig.subprocesses`).
    subprocess: bool | None = None
    #: Record each test as a coverage context, so the data tells which tests ran each line.
    contexts: bool = True
    #: What `%%covtest` shows under pytest's output: "code" (the code under test), "all" (also the
    #: cells that define the tests), "none" (no report).
    show: Show = "code"
    #: Arguments given to pytest before the ones on the `%%covtest` line.
    addopts: tuple[str, ...] = ("-q", "--color=yes")
    #: Delete functions and classes matching this pattern before a `%%covtest` cell runs, so tests
    #: renamed or deleted in the cell do not linger from an earlier run; False keeps them.
    clean: str | Literal[False] = "[Tt]est*"
    #: Make a `%%covtest` cell raise when tests fail, so headless runs (nbclient, CI) fail.
    raise_on_error: bool = False
    #: Rewrite `assert` in `%%covtest` cells the way pytest does, for detailed failure messages.
    rewrite_asserts: bool = True

    def update(self, **changes: Any) -> None:
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(f"unknown nbcov option(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        if "coverage" in changes and changes["coverage"] not in (True, False, "tests"):
            raise ValueError("coverage must be True, False or 'tests'")
        if "show" in changes and changes["show"] not in ("code", "all", "none"):
            raise ValueError("show must be 'code', 'all' or 'none'")
        if isinstance(changes.get("addopts"), str):
            changes["addopts"] = tuple(changes["addopts"].split())
        if isinstance(changes.get("source"), str):
            changes["source"] = [changes["source"]]
        for name, value in changes.items():
            setattr(self, name, value)
