"""The few fastcore.test helpers the nbdev notebooks here use (`from fastcore.test import *` in nbdev)."""

from __future__ import annotations

import math
from typing import Any, Callable

__all__ = ["test_eq", "test_ne", "test_close", "test_fail"]


def test_eq(a: Any, b: Any) -> None:
    "`assert a == b`, with both shown when they differ."
    assert a == b, f"==:\n{a!r}\n{b!r}"


def test_ne(a: Any, b: Any) -> None:
    assert a != b, f"!=:\n{a!r}\n{b!r}"


def test_close(a: float, b: float, eps: float = 1e-5) -> None:
    assert math.isclose(a, b, abs_tol=eps), f"close:\n{a!r}\n{b!r}"


def test_fail(f: Callable[[], Any], contains: str = "") -> None:
    "Fails unless `f()` raises an exception whose message contains `contains`."
    try:
        f()
    except Exception as exc:
        assert contains in str(exc), f"{contains!r} not in {str(exc)!r}"
        return
    raise AssertionError(f"expected {f} to raise")
