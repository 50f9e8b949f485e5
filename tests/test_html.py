"""`nbcov html`: the report's content and numbers, its safety and its incremental rendering,
checked in headless Chromium (Debian's `chromium`, driven by Playwright; `make browser` installs it).

Two kinds of data: a notebook measured for real in a kernel (with branch coverage, an imported module,
outputs, and test contexts added to the data file afterwards), and data files built directly with
nbcov's own record store, which can hold any text (hostile content, edited and missing notebooks).
"""

from __future__ import annotations

import json
import json.decoder
import os
import re
import shutil
import sqlite3
import subprocess
import textwrap
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import nbformat
import pytest
from coverage import CoverageData
from coverage.parser import PythonParser
from coverage.results import Numbers
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from conftest import CLASSIFY, NBCOV, execute_notebook, make_notebook, nbcov_cli, report_json
from nbcov.cells import CellRecord, CellStore
from nbcov.data import TRACER_NAME
from nbcov.html.state import STATE_FILE

# One kernel run and one browser for the whole module: under pytest-xdist, keep the module on one
# worker (`--dist loadgroup`; with `--dist loadfile` this holds anyway).
pytestmark = pytest.mark.xdist_group("html")

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

HELPERS = textwrap.dedent(
    """\
    def double(x):
        if x is None:
            return 0
        return 2 * x


    def unused():
        return 1
    """
)
POSITIVE = "tests/test_classify.py::test_positive"
NEGATIVE = "tests/test_classify.py::test_negative"
BY_NOTEBOOK = "analysis.ipynb|cell 4"


# -- the browser ----------------------------------------------------------------------------------------


class Browser:
    """One headless Chromium for the module; every page is watched for errors and network use."""

    def __init__(self, playwright: Any) -> None:
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        self.problems: list[str] = []

    def page(self, url: str, color_scheme: str = "light", bypass_csp: bool = False) -> Any:
        context = self.browser.new_context(
            color_scheme=color_scheme, bypass_csp=bypass_csp, viewport={"width": 1280, "height": 900}
        )

        def route(r: Any) -> None:
            if r.request.url.startswith("file:"):
                r.continue_()
            else:
                self.problems.append(f"network request: {r.request.url}")
                r.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"), d.dismiss()))
        page.goto(url)
        return page

    def close(self) -> None:
        self.browser.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        b = Browser(playwright)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def clean_browser(browser: Browser) -> Iterator[Browser]:
    """The module's browser; the test fails if a page it opened logged an error or used the network."""
    browser.problems.clear()
    yield browser
    assert browser.problems == []


def html(*args: str, cwd: Path) -> int:
    """`nbcov html ...` in this process (a fresh process costs more than the report; the CLI's own
    process is exercised by the fixtures and the worker-process test)."""
    from nbcov.cli import main

    here = os.getcwd()
    os.chdir(cwd)
    try:
        return main(["html", "-q", *args])
    finally:
        os.chdir(here)


def url(path: Path) -> str:
    return path.resolve().as_uri()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"html-{name}.png"), full_page=False)


# -- a notebook measured for real -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("html-measured")
    (folder / ".coveragerc").write_text("[run]\nbranch = true\n")
    (folder / "helpers.py").write_text(HELPERS)
    nb = make_notebook(
        folder / "analysis.ipynb",
        [
            "%load_ext nbcov",
            ("md", "# Analysis\n\nA **bold** claim, a [link](https://example.org/doc) and `code`.\n\n"
                   "- one\n- two\n\n```python\nx = [1, 2]\n```\n"),
            CLASSIFY,
            "from helpers import double\nr = [classify(1), classify(-1), double(3)]\nprint(r)",
            f"import base64\nfrom IPython.display import Image, display\ndisplay(Image(data=base64.b64decode('{PNG}')))",
        ],
    )
    executed = execute_notebook(nb)
    nbformat.write(executed, str(nb))  # keep the outputs, as a saved notebook has them
    _add_test_contexts(folder)
    return folder


def _add_test_contexts(folder: Path) -> None:
    """Which test ran what, as a test runner's contexts would record it (the arcs ran already:
    the numbers do not change, only who ran each line)."""
    cells = {c["cell_index"]: c for c in report_json(folder)["cells"]}
    classify = cells[3]["data_file_name"]
    data = CoverageData(basename=str(folder / ".coverage"))
    data.read()
    arcs = set(data.arcs(classify) or ())
    helpers = str((folder / "helpers.py").resolve())
    helper_arcs = list(data.arcs(helpers) or ())
    assert (2, 3) in arcs and (2, 4) in arcs and helper_arcs
    data.set_context(POSITIVE)
    data.add_arcs({classify: [(2, 3)]})
    data.set_context(NEGATIVE)
    data.add_arcs({classify: [(2, 4), (4, 5)]})
    data.set_context(BY_NOTEBOOK)
    data.add_arcs({helpers: helper_arcs})
    data.write()


@pytest.fixture(scope="module")
def report(measured: Path) -> Path:
    nbcov_cli("html", "--show-contexts", "-d", "htmlcov", "--title", "Analysis coverage", cwd=measured)
    return measured / "htmlcov"


@pytest.fixture(scope="module")
def expected(measured: Path, report: Path) -> dict[str, Any]:
    return report_json(measured)


def _page_for(report: Path, name: str) -> Path:
    index = (report / "index.html").read_text()
    match = re.search(r'<a href="([^"]+)">' + re.escape(name) + "</a>", index)
    assert match, name
    return report / match[1]


def test_the_report_is_self_contained_and_forbids_remote_loads(report: Path) -> None:
    pages = sorted(report.glob("*.html"))
    assert [p.name for p in pages if p.name == "index.html"] and len(pages) == 3  # index, notebook, module
    assert len(list(report.glob("nbcov_*.css"))) == 1 and len(list(report.glob("nbcov_*.js"))) == 1
    for page in pages:
        text = page.read_text()
        csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', text)
        assert csp and "default-src 'none'" in csp[1] and "script-src 'self'" in csp[1], page.name
        assert "unsafe-inline" not in csp[1]
        loaded = re.findall(r'<(?:script|link|img)\b[^>]*?\b(?:src|href)="([^"]*)"', text)
        assert loaded and all(not re.match(r"[a-z]+:", u) or u.startswith("data:") for u in loaded), loaded
        assert "<script>" not in text and " style=" not in text  # no inline script or style at all


def test_numbers_on_every_page_equal_the_json_report(clean_browser: Browser, report: Path, expected: dict[str, Any]) -> None:
    page = clean_browser.page(url(report / "index.html"))
    rows = page.eval_on_selector_all(
        "#index tbody tr, #index tfoot tr",
        """rows => rows.map(r => Object.fromEntries(Array.from(r.cells).map(
            c => [c.className, c.className === 'name' ? c.querySelector('a') ? c.querySelector('a').textContent : c.textContent
                  : c.className === 'pc' ? c.querySelector('.pct').textContent : c.textContent])))""",
    )
    by_name = {r["name"]: r for r in rows}
    notebook = _sum([c["summary"] for c in expected["cells"] if c["notebook"] == "analysis.ipynb"])
    _same(by_name["analysis.ipynb"], notebook)
    _same(by_name["helpers.py"], _numbers(expected["files"]["helpers.py"]["summary"]))
    _same(by_name["Total"], _numbers(expected["totals"]))
    assert expected["totals"]["percent_covered_display"] + "%" == by_name["Total"]["pc"]

    nb_page = clean_browser.page(url(_page_for(report, "analysis.ipynb")))
    _same(_summary(nb_page, "header.top .totals"), notebook)
    for cell in expected["cells"]:
        _same(_summary(nb_page, f"#cell-{cell['cell_index']} .head"), _numbers(cell["summary"]))
    module = clean_browser.page(url(_page_for(report, "helpers.py")))
    _same(_summary(module, "header.top .totals"), _numbers(expected["files"]["helpers.py"]["summary"]))


def _numbers(summary: dict[str, Any]) -> Numbers:
    return _sum([summary])


def _sum(summaries: list[dict[str, Any]]) -> Numbers:
    total = Numbers(precision=0)
    for s in summaries:
        total += Numbers(
            precision=0, n_files=1, n_statements=s["num_statements"], n_excluded=s["excluded_lines"],
            n_missing=s["missing_lines"], n_branches=s.get("num_branches", 0),
            n_partial_branches=s.get("num_partial_branches", 0), n_missing_branches=s.get("missing_branches", 0),
        )
    return total


def _summary(page: Any, where: str) -> dict[str, str]:
    get = lambda cls: page.text_content(f"{where} .{cls}")  # noqa: E731
    return {"n-stmts": get("n-stmts"), "n-miss": get("n-miss"), "n-exc": get("n-exc"), "n-br": get("n-br"),
            "n-part": get("n-part"), "pc": get("pc")}


def _same(shown: dict[str, str], nums: Numbers) -> None:
    assert shown["n-stmts"] == str(nums.n_statements)
    assert shown["n-miss"] == str(nums.n_missing)
    assert shown["n-exc"] == str(nums.n_excluded)
    assert shown["n-br"] == str(nums.n_branches)
    assert shown["n-part"] == str(nums.n_partial_branches)
    assert shown["pc"] == nums.pc_covered_str + "%"


def test_notebook_page_shows_the_notebook_with_coverage(clean_browser: Browser, report: Path) -> None:
    page = clean_browser.page(url(report / "index.html"))
    shot(page, "index-light")
    page.click("#index td.name a:text-is('analysis.ipynb')")
    page.wait_for_selector("#cell-3")
    assert page.url.endswith(_page_for(report, "analysis.ipynb").name)

    status = lambda anchor: page.get_attribute(f"#{anchor}", "class").split()  # noqa: E731
    assert status("cell-3-L3") == ["l", "run"]  # return "pos": covered
    assert status("cell-3-L6") == ["l", "mis"]  # return "zero": never ran
    assert status("cell-3-L4") == ["l", "par"]  # elif x < 0: never false
    why = page.text_content("#cell-3-L4 .why")
    assert why == "line 4 didn't jump to line 6 because the condition on line 4 was always true"
    assert page.text_content("#cell-3 .cellno") == "Cell 3" and page.text_content("#cell-3 .prompt") == "In [2]"
    # The %load_ext cell is nbcov's own, not a measured cell: shown, not annotated.
    assert "no code to measure" in page.text_content("#cell-1 .head")
    # Markdown rendered, links kept, code highlighted.
    assert page.text_content("#cell-2 h1") == "Analysis"
    assert page.text_content("#cell-2 strong") == "bold"
    assert page.get_attribute("#cell-2 a", "href") == "https://example.org/doc"
    assert page.text_content("#cell-2 pre code") == "x = [1, 2]\n"
    # The jump list names every missed and partial line.
    assert page.eval_on_selector_all("nav.jump a", "as => as.map(a => a.getAttribute('href'))") == [
        "#cell-3-L4", "#cell-3-L6",
    ]
    # Outputs: collapsed until asked for, text and images.
    assert not page.is_visible("#cell-4 pre.out")
    page.click("#toggle-outputs")
    assert page.text_content("#cell-4 pre.out") == "['pos', 'neg', 6]\n"
    assert page.get_attribute("#cell-5 .out img", "src").startswith("data:image/png;base64,")
    page.wait_for_function("document.querySelector('#cell-5 .out img').complete")
    assert page.evaluate("document.querySelector('#cell-5 .out img').naturalWidth") == 1
    shot(page, "notebook-light")
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")

    dark = clean_browser.page(url(_page_for(report, "analysis.ipynb")) + "#cell-3-L6", color_scheme="dark")
    assert dark.evaluate("getComputedStyle(document.body).backgroundColor") != light
    assert dark.get_attribute("#cell-3-L6", "class").split() == ["l", "mis", "cur"]
    shot(dark, "notebook-dark")
    shot(clean_browser.page(url(report / "index.html"), color_scheme="dark"), "index-dark")


def test_keyboard_moves_to_the_next_and_previous_missed_line(clean_browser: Browser, report: Path) -> None:
    page = clean_browser.page(url(_page_for(report, "analysis.ipynb")))
    current = lambda: page.eval_on_selector_all(".l.cur", "ls => ls.map(l => l.id)")  # noqa: E731
    assert current() == []
    page.keyboard.press("j")
    assert current() == ["cell-3-L4"]
    page.keyboard.press("j")
    assert current() == ["cell-3-L6"]
    assert page.evaluate("location.hash") == "#cell-3-L6"
    page.keyboard.press("j")  # the last one stays current
    assert current() == ["cell-3-L6"]
    page.keyboard.press("k")
    assert current() == ["cell-3-L4"]
    page.click("#next-missed")
    assert current() == ["cell-3-L6"]
    assert page.evaluate("(() => { const r = document.getElementById('cell-3-L6').getBoundingClientRect();"
                         " return r.top >= 0 && r.bottom <= innerHeight; })()")


def test_contexts_tell_which_tests_ran_a_line(clean_browser: Browser, report: Path) -> None:
    page = clean_browser.page(url(_page_for(report, "analysis.ipynb")))
    listed = lambda: page.eval_on_selector_all("#ctx-panel li", "ls => ls.map(l => l.textContent)")  # noqa: E731
    page.click("#cell-3-L3 code")
    assert POSITIVE in listed() and NEGATIVE not in listed()
    assert page.text_content("#ctx-panel h3").startswith("Line 3 of cell 3 ran in")
    page.click("#cell-3-L5 code")
    assert NEGATIVE in listed() and POSITIVE not in listed()
    page.click("#cell-3-L2 code")
    assert {POSITIVE, NEGATIVE} <= set(listed())
    page.hover("#cell-3-L5 code")
    assert NEGATIVE in page.get_attribute("#cell-3-L5", "title")
    page.keyboard.press("Escape")
    assert not page.is_visible("#ctx-panel")

    module = clean_browser.page(url(_page_for(report, "helpers.py")))
    module.click("#L4 code")
    assert module.eval_on_selector_all("#ctx-panel li", "ls => ls.map(l => l.textContent)")[-1] == BY_NOTEBOOK
    assert module.get_attribute("#L3", "class").split() == ["l", "mis"]
    assert module.get_attribute("#L2", "class").split() == ["l", "par"]


def test_index_sorts_filters_and_narrows_the_report_to_one_test(clean_browser: Browser, report: Path) -> None:
    page = clean_browser.page(url(report / "index.html"))
    names = lambda: page.eval_on_selector_all(  # noqa: E731
        "#index tbody tr:not([hidden]) td.name a", "as => as.map(a => a.textContent)"
    )
    assert names() == ["analysis.ipynb", "helpers.py"]
    page.click("th.pc button")  # ascending coverage: the module (lower) first
    assert names() == ["helpers.py", "analysis.ipynb"]
    page.click("th.pc button")
    assert names() == ["analysis.ipynb", "helpers.py"]
    page.fill("#filter", "HELP")
    assert names() == ["helpers.py"]
    page.fill("#filter", "nothing like it")
    assert names() == [] and page.is_visible("#no-rows")
    page.fill("#filter", "")

    page.select_option("#test-filter", label=NEGATIVE)
    assert names() == ["analysis.ipynb"]
    statements = page.text_content("#index tbody tr.notebook td.n-stmts")
    assert page.text_content("#index tbody tr.notebook td.by-test") == f"3 of {statements}"
    page.select_option("#test-filter", label=BY_NOTEBOOK)
    assert names() == ["helpers.py"]
    page.select_option("#test-filter", label=NEGATIVE)
    page.click("#index td.name a:text-is('analysis.ipynb')")
    page.wait_for_selector("#cell-3")
    assert "test=" in page.url
    assert page.input_value("#test-filter") == NEGATIVE
    assert "hit" in page.get_attribute("#cell-3-L5", "class") and "dim" in page.get_attribute("#cell-3-L3", "class")


def test_same_data_gives_byte_identical_files(measured: Path, report: Path, tmp_path: Path) -> None:
    assert html("--show-contexts", "-d", str(tmp_path / "again"), "--title", "Analysis coverage", cwd=measured) == 0
    assert _files(tmp_path / "again") == _files(report)
    # Again into the same folder: nothing is rewritten but the index and the manifest.
    before = {p.name: p.stat().st_mtime_ns for p in report.iterdir()}
    assert html("--show-contexts", "-d", "htmlcov", "--title", "Analysis coverage", cwd=measured) == 0
    after = {p.name: p.stat().st_mtime_ns for p in report.iterdir()}
    assert {n for n in before if before[n] != after[n]} <= {"index.html", STATE_FILE}
    assert _files(report) == _files(tmp_path / "again")


def test_analysing_in_worker_processes_gives_the_same_report_and_keeps_the_data(measured: Path, report: Path) -> None:
    before = report_json(measured)
    env = {**os.environ, "NBCOV_HTML_JOBS": "2"}
    result = subprocess.run(
        [*NBCOV, "html", "--show-contexts", "-d", "parallel", "--title", "Analysis coverage"],
        cwd=measured, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert _files(measured / "parallel") == _files(report)
    # A forked reader must never touch the data file (coverage.py would take it for a new process's).
    assert report_json(measured) == before


def _files(folder: Path) -> dict[str, bytes]:
    """The report's files; nbcov's state file is a cache of how it was made, not part of it."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != STATE_FILE}


def test_errors_are_one_line_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert html(cwd=tmp_path) == 2
    assert "No coverage data file at" in capsys.readouterr().err
    (tmp_path / ".coverage").write_text("not a database")
    assert html(cwd=tmp_path) == 2
    assert "not a usable coverage data file" in capsys.readouterr().err
    result = nbcov_cli("html", cwd=tmp_path, check=False)  # and from the command line: no traceback
    assert result.returncode == 2 and "Traceback" not in result.stderr

    # A damaged or missing cell record: which one, and nothing written over the last good report.
    (tmp_path / ".coverage").unlink()
    data_file = build(tmp_path, {"one.ipynb": [{"source": "a = 1"}, {"source": "b = 2"}]})
    assert html(str(data_file), "-d", "out", cwd=tmp_path) == 0
    before = _files(tmp_path / "out")
    record = sorted((tmp_path / ".nbcov").rglob("*.json"))[0]
    for damage, message in ((b'{"source": "a = 1", "code": \xff', "is unreadable"), (None, "its record is missing")):
        if damage is None:
            record.unlink()
        else:
            record.write_bytes(damage)
        result = nbcov_cli("html", str(data_file), "-d", "out", cwd=tmp_path, check=False)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert message in result.stderr and record.name in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert _files(tmp_path / "out") == before


# -- data built directly: any text, edited and missing notebooks ---------------------------------------------


def build(folder: Path, notebooks: dict[str, list[dict[str, Any]]], modules: dict[str, str] | None = None,
          contexts: list[str] | None = None) -> Path:
    """A data file and cell records as a kernel leaves them; lines with "MISSED" never ran.

    A cell is {"source": ..., "type": "code"|"markdown", "outputs": [...], "measured": source or None}
    ("measured" is the source that ran, when it differs from the notebook's, or False: not measured).
    """
    store = CellStore(folder)
    measured: dict[str, list[int]] = {}
    cell_names = []
    for rel, cells in notebooks.items():
        nb_cells = []
        for i, cell in enumerate(cells, start=1):
            if cell.get("type") == "markdown":
                nb_cells.append(new_markdown_cell(cell["source"], id=f"c{i}"))
                continue
            nb_cell = new_code_cell(cell["source"], id=f"c{i}", execution_count=i, outputs=cell.get("outputs", []))
            nb_cells.append(nb_cell)
            ran = cell.get("measured", cell["source"])
            if ran is False:
                continue
            record = CellRecord(source=ran, code=ran, notebook=rel, cell_index=i, cell_id=f"c{i}", key=f"c{i}",
                                execution_count=i)
            name = store.save(record)
            cell_names.append(name)
            measured[name] = _ran(ran)
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        # json with ASCII escapes, so any text (a lone surrogate too) can be stored, as Jupyter could.
        path.write_text(json.dumps(new_notebook(cells=nb_cells), indent=1))
    for rel, text in (modules or {}).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        measured[str(path.resolve())] = _ran(text)
    data = CoverageData(basename=str(folder / ".coverage"))
    data.add_lines(measured)
    for context in contexts or []:
        data.set_context(context)
        data.add_lines(measured)
    data.add_file_tracers({n: TRACER_NAME for n in cell_names})
    data.write()
    return folder / ".coverage"


def _ran(source: str) -> list[int]:
    parser = PythonParser(text=source)
    parser.parse_source()
    lines = source.splitlines()
    return sorted(n for n in parser.statements if "MISSED" not in lines[n - 1])


HOSTILE_TEXT = [
    "<script>window.__pwned = 'script'</script>",
    '<img src=x onerror="window.__pwned = \'onerror\'">',
    "</style><style>body { display: none }</style>",
    "</textarea></title></script><svg onload=\"window.__pwned = 'svg'\">",
    "\"'><iframe src=\"javascript:window.__pwned = 'iframe'\"></iframe>",
    "odd \u202e\u2066 bidi \u200b zero-width \x00 nul \x1b[31m ansi \udc80 surrogate",
]


def test_hostile_content_is_shown_never_executed(clean_browser: Browser, tmp_path: Path) -> None:
    folder = tmp_path / "evil <img src=x onerror=window.__pwned=1> dir"
    folder.mkdir()
    hostile = "\n".join(HOSTILE_TEXT)
    markdown = hostile + textwrap.dedent(
        """
        [click](javascript:window.__pwned='link') [again](JaVaScRiPt:window.__pwned='link2')
        [entity](&#106;avascript:window.__pwned='link3') <javascript:window.__pwned='autolink'>
        ![image](javascript:window.__pwned='image') ![remote](https://example.org/tracker.png)
        <a href="javascript:window.__pwned='raw'">raw</a>
        """
    )
    outputs = [
        new_output("stream", name="stdout", text=hostile),
        new_output("execute_result", execution_count=2, data={
            "text/html": "<script>window.__pwned = 'html output'</script>", "text/plain": hostile}),
        new_output("display_data", data={"image/png": "x\" onerror=\"window.__pwned='png'", "text/plain": "bad png"}),
        new_output("display_data", data={"image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg' onload=\"window.__pwned='svg'\"><script>window.__pwned='svg2'</script></svg>"}),
        new_output("display_data", data={"application/javascript": "window.__pwned = 'js output'"}),
        new_output("error", ename="<script>", evalue=hostile, traceback=["\x1b[31m<script>window.__pwned='tb'</script>\x1b[0m"]),
    ]
    lines = []
    for i, text in enumerate(t.replace("\x00", "").replace("\udc80", "") for t in HOSTILE_TEXT):
        lines += [f"s{i} = {text!r}", f"# {text}"]
    lines += ["if s0:", "    u = 1", "else:", "    u = '</div></section><script>window.__pwned = 9</script>'  # MISSED"]
    source = "\n".join(lines)
    notebook = "n'b\"<script>window.__pwned=2<script>.ipynb"
    data_file = build(
        folder,
        {notebook: [{"type": "markdown", "source": markdown}, {"source": source, "outputs": outputs}]},
        modules={"d <b onmouseover=window.__pwned=3>/evil_mod.py": f"'''{HOSTILE_TEXT[0]}'''\nX = 1\n"},
        contexts=[*(t.replace("\udc80", "") for t in HOSTILE_TEXT), "javascript:window.__pwned='ctx'"],
    )
    assert html(str(data_file), "-d", "out", "--show-contexts", "--title", HOSTILE_TEXT[0] + HOSTILE_TEXT[3],
                cwd=folder) == 0
    pages = sorted((folder / "out").glob("*.html"))
    assert len(pages) == 3
    for page_path in pages:
        for bypass in (True, False):  # with the CSP off, only escaping protects
            page = clean_browser.page(url(page_path), bypass_csp=bypass)
            # Open every output, show every line's contexts (panel and tooltip): all user text on screen.
            page.evaluate("""() => {
                document.querySelectorAll('details').forEach(d => d.open = true);
                document.querySelectorAll('.l[data-c]').forEach(l => {
                    l.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
                    l.click();
                });
            }""")
            assert page.evaluate("window.__pwned") is None, page_path.name
            found = page.evaluate(
                """() => ({
                  scripts: Array.from(document.scripts).map(s => s.getAttribute('src')),
                  handlers: Array.from(document.querySelectorAll('*')).flatMap(
                      e => Array.from(e.attributes).map(a => a.name)).filter(n => n.startsWith('on')),
                  hrefs: Array.from(document.querySelectorAll('[href], [src]')).map(
                      e => e.getAttribute('href') || e.getAttribute('src')),
                  styles: document.querySelectorAll('style').length,
                  frames: document.querySelectorAll('iframe, object, embed, svg, form, base, textarea').length,
                  visible: getComputedStyle(document.body).display,
                })"""
            )
            assert all(s and s.startswith("nbcov_") for s in found["scripts"]), found["scripts"]
            assert found["handlers"] == [] and found["styles"] == 0 and found["frames"] == 0
            assert found["visible"] == "block"
            for ref in found["hrefs"]:
                assert not re.match(r"\s*(javascript|vbscript|data:text)", ref, re.IGNORECASE), ref
                assert not re.match(r"https?://", ref) or ref.startswith("https://example.org/"), ref

    notebook_page = next(p for p in pages if "ipynb" in p.name)
    page = clean_browser.page(url(notebook_page))
    text = page.inner_text("body")
    assert HOSTILE_TEXT[0] in text and HOSTILE_TEXT[1] in text  # shown as text, exactly
    assert page.title().startswith(notebook)
    assert "\\u202e" in text  # a bidi override is made visible in code and outputs
    assert page.eval_on_selector_all(".md-body img", "is => is.length") == 0  # no remote image loaded
    assert page.get_attribute(".md-body a.img-link", "href") == "https://example.org/tracker.png"
    page.click("#toggle-outputs")
    assert page.text_content("pre.out.stdout").startswith(HOSTILE_TEXT[0])
    assert page.eval_on_selector_all(".out img", "is => is.map(i => i.src.slice(0, 26))") == ["data:image/svg+xml;base64,"]
    assert "application/javascript" in page.text_content(".out.skipped")


def test_edited_missing_and_unplaced_cells(clean_browser: Browser, tmp_path: Path) -> None:
    data_file = build(
        tmp_path,
        {
            "kept.ipynb": [
                {"type": "markdown", "source": "# Kept"},
                {"source": "a = 1\nif a:\n    b = 2"},
                {"source": "c = 3\nd = 4", "measured": "c = 3\nif c > 5:\n    d = 4  # MISSED"},
                {"source": "e = 5", "measured": False},
            ],
            "gone.ipynb": [{"source": "x = 1"}, {"source": "y = 2\nz = 3  # MISSED"}],
        },
    )
    (tmp_path / "gone.ipynb").unlink()
    # Terminal IPython: cells with no notebook, named by their prompt.
    name = CellStore(tmp_path).save(CellRecord(source="t = 1\nif t:\n    pass", code="t = 1\nif t:\n    pass", execution_count=7))
    data = CoverageData(basename=str(data_file))
    data.read()
    data.add_lines({name: [1, 2]})
    data.add_file_tracers({name: TRACER_NAME})
    data.write()
    assert html(str(data_file), "-d", "out", cwd=tmp_path) == 0
    out = tmp_path / "out"
    kept = clean_browser.page(url(_page_for(out, "kept.ipynb")))
    assert "edited after it was measured" in kept.text_content("#cell-3")
    assert kept.get_attribute("#cell-3-L3", "class").split() == ["l", "mis"]  # the measured version is shown
    assert "not run while measuring" in kept.text_content("#cell-4")
    assert kept.text_content("#cell-1 h1") == "Kept"
    gone = clean_browser.page(url(_page_for(out, "gone.ipynb")))
    assert "was not found" in gone.text_content("header.top")
    assert gone.eval_on_selector_all("section.cell", "ss => ss.map(s => s.id)") == ["cell-1", "cell-2"]
    assert gone.get_attribute("#cell-2-L2", "class").split() == ["l", "mis"]
    session = clean_browser.page(url(_page_for(out, "IPython session (no notebook)")))
    assert session.text_content(".cell .cellno") == "In [7]"
    assert session.get_attribute("#in-7-L3", "class").split() == ["l", "mis"]
    assert "terminal IPython" in session.text_content("header.top")


def test_a_damaged_or_foreign_state_file_is_started_again(tmp_path: Path) -> None:
    cells = [{"source": "a = 1\nif a:\n    b = 2  # MISSED"}]
    data_file = build(tmp_path, {"one.ipynb": cells}, modules={"mod.py": "X = 1\n"})
    assert html(str(data_file), "-d", "fresh", cwd=tmp_path) == 0
    out = tmp_path / "out"

    # A report folder of an earlier nbcov (JSON manifest): the pages it lists are ours to remove.
    out.mkdir()
    shutil.copy(tmp_path / "fresh" / ".gitignore", out)
    (out / "z_gone_ipynb.html").write_text("old page")
    (out / "nbcov-html.json").write_text(json.dumps({"format": 1, "pages": {"z_gone_ipynb.html": "k"}}))
    (out / "nbcov-html.fragments").write_text("old fragments")
    assert html(str(data_file), "-d", "out", cwd=tmp_path) == 0
    assert _files(out) == _files(tmp_path / "fresh")

    # Damaged, then from another format: one report as if from scratch, and a usable state again.
    for damage in (b"not a database at all", None):
        if damage is None:
            with closing(sqlite3.connect(out / STATE_FILE)) as con, con:
                con.execute("update meta set value = '999' where key = 'format'")
        else:
            (out / STATE_FILE).write_bytes(damage)
        (out / "index.html").unlink()
        assert html(str(data_file), "-d", "out", cwd=tmp_path) == 0
        assert _files(out) == _files(tmp_path / "fresh")
        with closing(sqlite3.connect(out / STATE_FILE)) as con:
            assert con.execute("select count(*) from entry").fetchone() == (2,)

    # Other settings (contexts shown): nothing made without them is reused, and back again.
    assert html(str(data_file), "-d", "out", "--show-contexts", cwd=tmp_path) == 0
    assert html(str(data_file), "-d", "fresh-contexts", "--show-contexts", cwd=tmp_path) == 0
    assert _files(out) == _files(tmp_path / "fresh-contexts")
    assert html(str(data_file), "-d", "out", cwd=tmp_path) == 0
    assert _files(out) == _files(tmp_path / "fresh")


@pytest.mark.unit
def test_tokenizing_once_changes_nothing_coverage_sees() -> None:
    import coverage.parser
    import coverage.phystokens
    from coverage.phystokens import source_token_lines

    from nbcov.html.data import tokenized_once

    originals = (coverage.parser.generate_tokens, coverage.phystokens.generate_tokens)
    sources = [Path(m.__file__).read_text() for m in (textwrap, json.decoder, shutil)] + [
        "x = (\n  1,\n  2)\ny = x \\\n  + 1\n", "def f():\n\tif f:\n\t\treturn 1\n", "s = 'unterminated\n",
        "match x:\n    case 1:\n        pass\n", "if x:\n  y\n else:\n", f"{chr(34) * 3}doc{chr(34) * 3}\nz = f'{{1}}'\n",
    ]

    def facts(text: str) -> Any:
        try:
            parser = PythonParser(text=text, exclude="#pragma: no cover")
            parser.parse_source()
            return parser.statements, parser.excluded, parser.multiline_map, list(source_token_lines(text))
        except Exception as exc:
            return type(exc), str(exc)

    plain = [facts(text) for text in sources * 2]
    with tokenized_once():
        assert [facts(text) for text in sources * 2] == plain
    assert (coverage.parser.generate_tokens, coverage.phystokens.generate_tokens) == originals
    with pytest.raises(ZeroDivisionError), tokenized_once():
        1 / 0
    assert (coverage.parser.generate_tokens, coverage.phystokens.generate_tokens) == originals


@pytest.mark.unit
def test_only_the_named_notebooks_and_the_api(tmp_path: Path) -> None:
    from nbcov.html import write_html
    from nbcov.report import open_coverage

    data_file = build(
        tmp_path,
        {"one.ipynb": [{"source": "a = 1"}], "two.ipynb": [{"source": "b = 2"}], "three.ipynb": [{"source": "c = 3", "measured": False}]},
        modules={"mod.py": "X = 1\n"},
    )
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        index = write_html(open_coverage(str(data_file)), tmp_path / "out", notebooks=["one.ipynb", "three.ipynb"])
    finally:
        os.chdir(cwd)
    assert index == tmp_path / "out" / "index.html"
    text = index.read_text()
    assert ">one.ipynb<" in text and ">three.ipynb<" in text and ">mod.py<" in text and ">two.ipynb<" not in text
    assert "not run while measuring" in _page_for(tmp_path / "out", "three.ipynb").read_text()


@pytest.mark.unit
def test_a_report_keeps_a_live_sessions_parsers_and_leaves_a_command_none(tmp_path: Path) -> None:
    from nbcov import parser as cellparser
    from nbcov.html import write_html
    from nbcov.report import open_coverage

    data_file = build(tmp_path, {"one.ipynb": [{"source": "a = 1"}, {"source": "b = 2"}]})
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        cellparser.forget_parsers()  # as a fresh `nbcov html` process starts
        write_html(open_coverage(str(data_file)), tmp_path / "out")
        assert cellparser.parsers_cached() == 0
        cellparser.make_parser("x = 1", None)  # a session that has analysed cells before
        write_html(open_coverage(str(data_file)), tmp_path / "again")
        assert cellparser.parsers_cached() == 3
    finally:
        os.chdir(cwd)


def test_incremental_rendering_rewrites_only_what_changed(tmp_path: Path) -> None:
    cells = [{"type": "markdown", "source": "# One"}, {"source": "a = 1\nif a:\n    b = 2  # MISSED"}]
    data_file = build(tmp_path, {"one.ipynb": cells, "two.ipynb": [{"source": "c = 3"}]}, modules={"mod.py": "X = 1\n"})
    assert html(str(data_file), "-d", "out", cwd=tmp_path) == 0
    out = tmp_path / "out"
    one, two, mod = (_page_for(out, n) for n in ("one.ipynb", "two.ipynb", "mod.py"))
    before = {p: p.stat().st_mtime_ns for p in (one, two, mod)}

    # The notebook file changes (its markdown): only its page is written again.
    nb = nbformat.read(str(tmp_path / "one.ipynb"), as_version=4)
    nb.cells[0].source = "# One, retitled"
    nbformat.write(nb, str(tmp_path / "one.ipynb"))
    assert html(str(data_file), "-d", "out", cwd=tmp_path) == 0
    assert {p for p in before if p.stat().st_mtime_ns != before[p]} == {one}
    assert "One, retitled" in one.read_text()

    # A cell's data changes (the missed line ran): only that notebook's page changes, and the result
    # is byte-identical to a report written from scratch.
    data = CoverageData(basename=str(data_file))
    data.read()
    name = next(n for n in data.measured_files() if "one.ipynb" in n)
    data.add_lines({name: [3]})
    data.write()
    before = {p: p.stat().st_mtime_ns for p in (one, two, mod)}
    assert html(str(data_file), "-d", "out", cwd=tmp_path) == 0
    assert {p for p in before if p.stat().st_mtime_ns != before[p]} == {one}
    assert 'class="l run" id="cell-2-L3"' in one.read_text()
    assert html(str(data_file), "-d", "fresh", cwd=tmp_path) == 0
    assert _files(out) == _files(tmp_path / "fresh")

    # A notebook that is no longer in the data loses its page.
    shutil.rmtree(tmp_path / ".nbcov")
    two_only = build(tmp_path, {"two.ipynb": [{"source": "c = 3"}]})
    assert html(str(two_only), "-d", "out", cwd=tmp_path) == 0
    assert not one.exists() and two.exists()
    with closing(sqlite3.connect(out / STATE_FILE)) as con:
        assert {name for (name,) in con.execute("select filename from page")} == {two.name}
