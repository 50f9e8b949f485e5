"""Headless Chromium for the test suite: Debian's `chromium` package driven by Python Playwright.

No browser is ever downloaded (`playwright install` is never run): `make browser` installs Debian's
package and Playwright is pointed at it with `executable_path`. Each `Browser` has a fresh profile
(Playwright's `launch()` creates a temporary user-data dir and deletes it on close), and the flags below
keep Chromium from calling home, so a run is the same offline.

Reusable pieces:
- `Browser`: one Chromium for a test module; `new_page()` gives a `WatchedPage` that records page errors,
  console errors and failed requests (assert on them, or filter known harmless ones).
- `Steps`: the named steps of an end-to-end test. Each step is timed and ends with a screenshot in an
  artifacts folder; a step that fails keeps a `…-FAILED.png` screenshot and its failure names the step.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def chromium_missing() -> str | None:
    """Why the browser tests cannot run, or None."""
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing: run `make browser` (installs Debian's chromium package)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python Playwright is missing: pip install -e '.[test]'"
    return None


@dataclass
class WatchedPage:
    """A Playwright page and what went wrong in it."""

    page: Any
    errors: list[str] = field(default_factory=list)  # uncaught exceptions in the page
    console_errors: list[str] = field(default_factory=list)

    def unexpected_errors(self, harmless: str | None = None) -> list[str]:
        """Page errors, less those matching the regular expression `harmless`."""
        return [e for e in self.errors if not (harmless and re.search(harmless, e))]


class Browser:
    """One headless Chromium (Debian's), with a fresh temporary profile."""

    def __init__(self, extra_args: list[str] | None = None) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        try:
            self.browser = self._playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS + (extra_args or [])
            )
        except BaseException:
            self._playwright.stop()
            raise

    def new_page(self, width: int = 1400, height: int = 1000, **context_options: Any) -> WatchedPage:
        """A page in a context of its own (no cookies, storage or cache shared with other pages)."""
        context = self.browser.new_context(viewport={"width": width, "height": height}, **context_options)
        page = context.new_page()
        watched = WatchedPage(page)
        page.on("pageerror", lambda e: watched.errors.append(str(e)))
        page.on("console", lambda m: watched.console_errors.append(m.text) if m.type == "error" else None)
        return watched

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self._playwright.stop()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StepFailed(AssertionError):
    """A step of an end-to-end test failed; the message names it and its screenshot."""


class Steps:
    """Named, timed steps with a screenshot at the end of each: `with steps("run all cells"): ...`.

    Screenshots go to `<directory>/<prefix>-<NN>-<step>.png`; a failed step's to `…-FAILED.png`, and the
    failure is re-raised as `StepFailed` naming the step, its duration and the screenshot. pytest's own
    outcomes (skip, xfail) pass through untouched.
    """

    def __init__(self, directory: Path, prefix: str, page: WatchedPage | None = None) -> None:
        self.directory = directory
        self.prefix = prefix
        self.page = page
        self.number = 0
        self.timings: list[tuple[str, float]] = []
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob(f"{prefix}-*"):
            old.unlink(missing_ok=True)

    def path(self, name: str, suffix: str = ".png") -> Path:
        return self.directory / f"{self.prefix}-{self.number:02d}-{_slug(name)}{suffix}"

    def screenshot(self, name: str, full_page: bool = False, failed: bool = False) -> Path | None:
        """A screenshot of the page, named after the current step (or `name`)."""
        if self.page is None:
            return None
        path = self.path(name, "-FAILED.png" if failed else ".png")
        try:
            self.page.page.screenshot(path=str(path), full_page=full_page, timeout=15_000)
        except Exception:  # a closed or hung page: the step's own error matters more
            return None
        return path

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        import pytest

        self.number += 1
        start = time.monotonic()
        try:
            yield
        except (pytest.skip.Exception, pytest.xfail.Exception, KeyboardInterrupt):
            raise
        except BaseException as exc:
            elapsed = time.monotonic() - start
            self.timings.append((name, elapsed))
            shot = self.screenshot(name, failed=True)
            where = f"screenshot: {shot}" if shot else "no screenshot"
            self._log(f"step {self.number} {name!r}: FAILED after {elapsed:.1f}s: {type(exc).__name__}")
            raise StepFailed(
                f"{self.prefix} step {self.number} {name!r} failed after {elapsed:.1f}s ({where}):\n"
                f"{type(exc).__name__}: {exc}"
            ) from exc
        elapsed = time.monotonic() - start
        self.timings.append((name, elapsed))
        self.screenshot(name)
        self._log(f"step {self.number} {name!r}: {elapsed:.1f}s")

    def _log(self, line: str) -> None:
        print(f"{self.prefix} {line}")
        with open(self.directory / f"{self.prefix}-steps.log", "a") as log:
            log.write(line + "\n")

    def summary(self) -> str:
        return "\n".join(f"{seconds:6.1f}s  {name}" for name, seconds in self.timings)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:50].strip("-")
