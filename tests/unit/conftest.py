"""The unit layer: pure functions of mapping and reporting, without kernels or subprocesses, run first, in seconds."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "unit: a fast test of pure functions (tests/unit/): no kernel, no subprocess")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark this folder's tests `unit` and run them before the rest: a broken mapping then fails in
    seconds, before the first kernel starts (`pytest -m unit` runs them alone)."""
    unit = [item for item in items if HERE in Path(str(item.path)).parents]
    for item in unit:
        item.add_marker(pytest.mark.unit)
    chosen = set(map(id, unit))
    items[:] = unit + [item for item in items if id(item) not in chosen]


@pytest.fixture(autouse=True)
def _no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit layer stays fast by construction: starting a process (a kernel, the CLI) fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("tests/unit/ starts no process: put this test beside the end-to-end tests")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
