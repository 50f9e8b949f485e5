"""The inline report, opened in headless Chromium: it renders, reads without scripts or `<style>`,
and its colours survive the sanitizing Jupyter applies to untrusted notebooks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from browser import ARTIFACTS, Browser, chromium_missing
from conftest import execute_notebook, make_notebook

CODE = "def clip(v, hi=10):\n    if v > hi:\n        v = hi\n    return v\n\ndef kind(x):\n    if x is None:\n        return 'none'\n    return 'value'"
TESTS = "%%covtest\nimport pytest\n\n@pytest.mark.parametrize('v', [20, 30])\ndef test_clip(v):\n    assert clip(v) == 10\n\ndef test_kind():\n    assert kind(1) == 'value'"


def _untrusted(html: str) -> str:
    """What JupyterLab leaves of untrusted HTML (FACTS.md): no <style>, <script>, ids or data-*."""
    html = re.sub(r"<(style|script)\b.*?</\1>", "", html, flags=re.S | re.I)
    return re.sub(r'\s(id|data-[\w-]+)="[^"]*"', "", html)


@pytest.fixture(scope="module")
def inline_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("inline")
    (folder / ".coveragerc").write_text("[run]\nbranch = true\n")
    nb = make_notebook(folder / "nb.ipynb", ["%load_ext nbcov", CODE, TESTS])
    executed = execute_notebook(nb)
    return next(o["data"]["text/html"] for o in executed.cells[2].outputs if "text/html" in o.get("data", {}))


def test_inline_report_renders_in_chromium(inline_html: str, tmp_path: Path) -> None:
    missing = chromium_missing()
    if missing:
        pytest.fail(missing)
    out = ARTIFACTS / "inline"
    out.mkdir(parents=True, exist_ok=True)
    page_file = tmp_path / "inline.html"
    # A CSP like the notebook's output area: no scripts, no remote loads.
    page_file.write_text(
        '<!doctype html><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\"><body>" + _untrusted(inline_html) + "</body>"
    )
    with Browser() as browser:
        for scheme in ("light", "dark"):
            watched = browser.new_page(width=1000, height=700, color_scheme=scheme)
            page = watched.page
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            assert page.locator("table.nbcov-summary").is_visible()
            assert page.locator("table.nbcov-summary tr.nbcov-row").count() == 1  # the code under test only
            missed = page.locator(".nbcov-missed", has_text="return 'none'")
            assert missed.count() == 1
            background = missed.evaluate("e => getComputedStyle(e).backgroundColor")
            assert background.startswith("rgba(248, 81, 73"), background  # red survives sanitizing
            partial = page.locator(".nbcov-partial", has_text="if x is None:")
            assert "didn't jump to line 8" in partial.get_attribute("title")
            covered = page.locator(".nbcov-covered", has_text="v = hi")
            assert "nb.ipynb::test_clip[20]" in covered.get_attribute("title")
            assert "nb.ipynb::test_kind" not in covered.get_attribute("title")
            assert requests == [page_file.as_uri()] and not watched.errors
            page.screenshot(path=str(out / f"inline-{scheme}.png"), full_page=True)
            page.context.close()
