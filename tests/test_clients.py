"""nbcov in the real clients, end to end: JupyterLab and Notebook 7 in headless Chromium, terminal IPython in a pty.

Each client test starts a real server (`jupyter lab` / `jupyter notebook`) on 127.0.0.1 with a fixed token,
isolated from the machine's Jupyter (its own config, data, runtime and IPython dirs), serving a temporary
folder that holds a copy of notebooks/analysis.ipynb and notebooks/units.py. Debian's Chromium, driven by
Playwright (tests/browser.py), opens the notebook and runs it as a user would; `nbcov report` then reads the
data in another process.

JupyterLab: run all, the inline report in the page, the mapping in `nbcov report`, a cell edited in the browser
and run again, a kernel restarted from the toolbar, the notebook saved, then reopened untrusted (its signature
taken out of the server's data dir, as for a notebook from someone else's machine). Notebook 7: the core flow,
the notebook in a folder below the root. Terminal IPython: typed into a pseudo-terminal.

Every step is named, timed and ends with a screenshot in test-artifacts/clients/py3.X/ (a failed step keeps a
`…-FAILED.png` and its failure names the step; `<client>-steps.log` has the timings). Every wait is on a
condition, with a timeout. `-m "not e2e"` leaves this module out. `NBCOV_UPDATE_DOCS=1` also writes the
README's screenshot, docs/jupyterlab.png.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import termios
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from coverage import CoverageData
from nbformat.sign import NotebookNotary

from browser import ARTIFACTS, Browser, Steps, WatchedPage, chromium_missing
from conftest import NBCOV, ROOT, WaitTimeout, wait_for

# One worker runs the whole module where pytest-xdist can group it (one browser, one set of servers).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300), pytest.mark.xdist_group("clients")]

# One folder per Python: `make test` runs the module on three, and each run's screenshots stay.
ARTIFACT_DIR = ARTIFACTS / "clients" / f"py{sys.version_info.major}.{sys.version_info.minor}"
TOKEN = "nbcov-e2e-token"
NOTEBOOK = "analysis.ipynb"
CODE_CELLS = [2, 4, 5, 7, 9, 10, 12, 13]  # 1-based positions of the code cells in analysis.ipynb
COVTEST_CELL = 12
CLASSIFY_CELL = 9  # classify(): line 5 `if temp is None:` runs, line 6 `return "unknown"` never does
MISSED_RED = "rgba(248, 81, 73, 0.28)"  # inline style of a missed line (src/nbcov/inline.py)
COVERED_GREEN = "rgba(46, 160, 67, 0.16)"
NB7_FOLDER = "notebooks"  # Notebook 7 serves the notebook from a folder below its root
NOTEBOOK7_HARMLESS = r"reading 'schema'"  # Notebook 7 always logs three of these page errors

# -- servers ----------------------------------------------------------------------------------------------


class JupyterServer:
    """A real `jupyter lab` or `jupyter notebook` for one test, with its own Jupyter and IPython dirs."""

    APPS = {"lab": ("jupyterlab", "LabApp"), "notebook": ("notebook", "JupyterNotebookApp")}

    def __init__(self, app: str, root: Path, home: Path) -> None:
        self.app, self.root, self.home = app, root, home
        self.dirs = {name: home / name for name in ("config", "data", "runtime", "ipython")}
        self.log_path = home / f"{app}-server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            # Nothing of the test run leaks into the server and its kernels: no Jupyter dirs, no session,
            # no coverage of the test process, no pytest options (%%covtest runs pytest in the kernel).
            if not k.startswith(("JUPYTER", "JPY_", "NBCOV_", "COVERAGE_", "COV_CORE_", "PYTEST_", "IPYTHON"))
        }
        env.update(
            JUPYTER_CONFIG_DIR=str(self.dirs["config"]),
            JUPYTER_DATA_DIR=str(self.dirs["data"]),
            JUPYTER_RUNTIME_DIR=str(self.dirs["runtime"]),
            IPYTHONDIR=str(self.dirs["ipython"]),
        )
        return env

    def launch(self) -> JupyterServer:
        """Start the server's process (`wait_ready()` waits for it to answer)."""
        for d in self.dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        # No news or update checks (they would ask to go online and put a toast over the screenshots).
        settings = self.dirs["config"] / "lab/user-settings/@jupyterlab/apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
        module, app_class = self.APPS[self.app]
        args = [
            sys.executable, "-m", module, "--no-browser", "--allow-root",
            f"--IdentityProvider.token={TOKEN}", "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0",
            f"--ServerApp.root_dir={self.root}", f"--{app_class}.expose_app_in_browser=True",
        ]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, cwd=self.root, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self, timeout: float = 90) -> JupyterServer:
        assert self.proc is not None
        info_file = self.dirs["runtime"] / f"jpserver-{self.proc.pid}.json"

        def listening() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.app} server exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.port is None:
                self.port = json.loads(info_file.read_text())["port"]
            with urllib.request.urlopen(f"{self.base_url}/api/status?token={TOKEN}", timeout=5) as response:
                return response.status == 200

        try:
            # Not yet: no info file, half a JSON file, connection refused (URLError is an OSError).
            wait_for(listening, timeout, f"the {self.app} server to answer", retry_on=(OSError, ValueError))
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}?token={TOKEN}"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    def stop(self, timeout: float = 30) -> int | None:
        """Shut the server down as a user would (it shuts its kernels down first); bounded, then signals."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        if self.port is not None:
            request = urllib.request.Request(
                f"{self.base_url}/api/shutdown", method="POST", headers={"Authorization": f"token {TOKEN}"}
            )
            try:
                urllib.request.urlopen(request, timeout=10).close()
            except (urllib.error.URLError, OSError):
                pass  # the server may close the connection as it stops
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(10)


def notebook_root(tmp_path: Path, folder: str = "") -> Path:
    """The server's root: a copy of the example notebook and the module it imports, in `folder` below it."""
    root = tmp_path / "root"
    (root / folder).mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, root / folder / NOTEBOOK)
    shutil.copy(ROOT / "notebooks" / "units.py", root / folder / "units.py")
    return root


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    why = chromium_missing()
    if why:
        pytest.fail(why)
    with Browser() as b:
        yield b


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, JupyterServer]]:
    """The module's servers, launched together when a test first needs one (they start in parallel, and each
    test waits only for its own); every one is shut down, bounded, when the module ends, whatever happened."""
    base = tmp_path_factory.mktemp("clients")
    pool = {
        "lab": JupyterServer("lab", notebook_root(base / "lab"), base / "lab" / "home"),
        "notebook7": JupyterServer("notebook", notebook_root(base / "notebook7", NB7_FOLDER), base / "notebook7" / "home"),
    }
    try:
        for server in pool.values():
            server.launch()
        yield pool
    finally:
        for server in pool.values():
            server.stop()


# -- the notebook in the page -----------------------------------------------------------------------------

_CURRENT = "const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"

JS_READY = _CURRENT + """
const dialog = document.querySelector('.jp-Dialog');
if (dialog) return {dialog: dialog.innerText};  // e.g. "Select Kernel": nothing would run
const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
return !!(k && w.content && w.content.widgets.length === n
          && document.querySelectorAll('.jp-Notebook .jp-Cell').length === n
          && k.status === 'idle' && k.connectionStatus === 'connected') && {ready: true};
"""

JS_RUN_STATE = _CURRENT + """
const errors = [];
w.content.widgets.forEach((cell, i) => {
  if (cell.model.type !== 'code') return;
  for (let j = 0; j < cell.model.outputs.length; j++) {
    const o = cell.model.outputs.get(j).toJSON();
    if (o.output_type === 'error') errors.push(`cell ${i + 1}: ${o.ename}: ${o.evalue}`);
  }
});
const prompts = [...w.node.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(e => e.textContent.trim());
const k = w.sessionContext.session && w.sessionContext.session.kernel;
return {errors, prompts, idle: !!k && k.status === 'idle'};
"""

JS_WATCH_STATUS = "window.__nbcovStatuses = []; w.sessionContext.statusChanged.connect((_, s) => window.__nbcovStatuses.push(s));"
JS_RESTARTED = """
const k = w.sessionContext.session && w.sessionContext.session.kernel;
return window.__nbcovStatuses.includes('restarting') && !!k && k.status === 'idle' && k.connectionStatus === 'connected';
"""


def js(body: str) -> str:
    return f"(n) => {{ {body} }}"


class NotebookPage:
    """A notebook open in JupyterLab or Notebook 7 (both expose `window.jupyterapp`)."""

    def __init__(self, watched: WatchedPage, n_cells: int) -> None:
        self.watched = watched
        self.page = watched.page
        self.n_cells = n_cells

    def open(self, url: str, timeout: float = 120) -> None:
        self.page.goto(url, timeout=timeout * 1000)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 120) -> None:
        """The notebook is shown with all its cells, its kernel connected and idle."""
        state = self.page.wait_for_function(js(JS_READY), arg=self.n_cells, timeout=timeout * 1000).json_value()
        assert "dialog" not in state, f"a dialog instead of a notebook with a kernel: {state['dialog']!r}"

    def cell(self, index: int) -> Any:
        """The cell at a 1-based position."""
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index - 1)

    def command(self, command: str, args: dict[str, Any] | None = None) -> None:
        """Start a command; never awaited (a command's promise may not settle until a dialog is answered)."""
        self.page.evaluate(
            "([c, a]) => { window.jupyterapp.commands.execute(c, a).catch(e => console.error(`command ${c}: ${e}`)); }",
            [command, args or {}],
        )

    def run_state(self) -> dict[str, Any]:
        return self.page.evaluate(js(JS_RUN_STATE), self.n_cells)

    def wait_prompts(self, expected: list[str], timeout: float = 120) -> list[str]:
        """Wait until the code cells' prompts read `expected` and the kernel is idle; fail at once on an error."""
        def done() -> list[str] | None:
            state = self.run_state()
            if state["errors"]:
                raise AssertionError(f"a cell raised: {state['errors']}")
            return state["prompts"] if state["prompts"] == expected and state["idle"] else None

        try:
            return wait_for(done, timeout, f"prompts {expected}", interval=0.25)
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}; prompts are {self.run_state()['prompts']}") from None

    def wait_all_run(self, timeout: float = 150) -> list[str]:
        """Every code prompt reads `[n]:` (and in order: 1, 2, 3...)."""
        return self.wait_prompts([f"[{i}]:" for i in range(1, len(CODE_CELLS) + 1)], timeout)

    def edit_line(self, index: int, line_text: str, typed: str, chars_from_end: int) -> None:
        """Click into a cell's editor on the line reading `line_text` and type `typed` there."""
        line = self.cell(index).locator(".cm-line", has_text=re.compile("^" + re.escape(line_text) + "$"))
        line.click()
        self.page.keyboard.press("End")
        for _ in range(chars_from_end):
            self.page.keyboard.press("ArrowLeft")
        self.page.keyboard.type(typed)

    def cell_source(self, index: int) -> str:
        return self.page.evaluate(js(_CURRENT + "return w.content.widgets[n - 1].model.sharedModel.getSource();"), index)

    def stream_text(self, index: int) -> str:
        """What a cell printed (its stream outputs), from the notebook model."""
        return self.page.evaluate(js(_CURRENT + """
            const outs = w.content.widgets[n - 1].model.outputs, parts = [];
            for (let j = 0; j < outs.length; j++) {
              const o = outs.get(j).toJSON();
              if (o.output_type === 'stream') parts.push(Array.isArray(o.text) ? o.text.join('') : o.text);
            }
            return parts.join('');"""), index)

    def is_trusted(self, index: int) -> bool:
        return self.page.evaluate(js(_CURRENT + "return w.content.model.cells.get(n - 1).trusted;"), index)


# -- what the inline report must show ---------------------------------------------------------------------


def check_inline_report(nb: NotebookPage, trusted: bool) -> dict[str, Any]:
    """The %%covtest cell's inline report: summary table, a missed and a covered line of classify(), who ran it."""
    out = nb.cell(COVTEST_CELL).locator(".jp-OutputArea-output", has=nb.page.locator(".nbcov-report"))
    report = out.locator(".nbcov-report")
    report.wait_for(state="attached", timeout=30_000)
    report.scroll_into_view_if_needed()
    table = report.locator("table.nbcov-summary")
    rows = table.evaluate("t => [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent.trim()))")
    names = [r[0] for r in rows]
    assert f"{NOTEBOOK} · cell {CLASSIFY_CELL}" in names and "units.py" in names and names[-1] == "TOTAL", rows
    classify = report.locator("details.nbcov-file", has_text=f"{NOTEBOOK} · cell {CLASSIFY_CELL} —")
    assert classify.count() == 1, report.inner_text()
    missed = classify.locator("div.nbcov-line", has_text='return "unknown"')
    covered = classify.locator("div.nbcov-line", has_text="if temp is None:")
    missed.scroll_into_view_if_needed()
    facts = {
        "missed_class": missed.get_attribute("class"),
        "missed_title": missed.get_attribute("title"),
        "missed_colour": missed.evaluate("e => getComputedStyle(e).backgroundColor"),
        "missed_text": missed.text_content(),
        "covered_class": covered.get_attribute("class"),
        "covered_title": covered.get_attribute("title"),
        "covered_colour": covered.evaluate("e => getComputedStyle(e).backgroundColor"),
        "font": missed.evaluate("e => getComputedStyle(e).fontFamily"),
        "output_trusted": "jp-mod-trusted" in (out.get_attribute("class") or ""),
    }
    assert facts["missed_text"].split() == ["6", "!", "return", '"unknown"'], facts
    assert "nbcov-missed" in facts["missed_class"] and facts["missed_title"] == "missed", facts
    assert facts["missed_colour"] == MISSED_RED, facts  # the colour is an inline style: it survives sanitizing
    assert "nbcov-covered" in facts["covered_class"] and facts["covered_colour"] == COVERED_GREEN, facts
    ran_by = facts["covered_title"]
    assert ran_by.startswith("run — ran by: "), facts
    for test in ("test_classify[-3-freezing]", "test_classify[5-cold]", "test_classify[30-hot]"):
        assert f"{NOTEBOOK}::{test}" in ran_by, facts
    assert facts["output_trusted"] is trusted, facts
    # The tests that ran each line, in a collapsible list: open it as a user would.
    listed = classify.locator("ul.nbcov-tests li", has_text=re.compile(r"^line 5: "))
    classify.locator("details summary", has_text="tests that ran each line").click()
    listed.wait_for(state="visible", timeout=10_000)
    assert f"{NOTEBOOK}::test_classify[30-hot]" in listed.text_content()
    missed.scroll_into_view_if_needed()
    return facts


# -- what `nbcov report` must say -------------------------------------------------------------------------


def nbcov(*commands: list[str], cwd: Path) -> list[str]:
    """Run `nbcov` commands at once, each in a fresh process; their outputs."""
    procs = [
        (args, subprocess.Popen([*NBCOV, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for args in commands
    ]
    outputs = []
    for args, proc in procs:
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        assert proc.returncode == 0, f"nbcov {' '.join(args)}: {proc.returncode}\n{out}\n{err}"
        outputs.append(out)
    return outputs


def measured_files(data_file: Path) -> list[str]:
    """The file names in the coverage data file, read with coverage.py itself."""
    data = CoverageData(str(data_file))
    data.read()
    return sorted(data.measured_files())


def report_args(data_file: str = ".coverage") -> list[str]:
    return ["report", "--format", "json", "--data-file", data_file]


def by_index(report_json: str) -> dict[int, dict[str, Any]]:
    """`nbcov report --format json` output: cells by position, and 0: the modules and totals."""
    data = json.loads(report_json)
    cells = {c["cell_index"]: c for c in data["cells"]}
    assert len(cells) == len(data["cells"]), [c["name"] for c in data["cells"]]  # no cell twice
    cells[0] = {"files": data["files"], "totals": data["totals"]}
    return cells


def report(root: Path, data_file: str = ".coverage") -> dict[int, dict[str, Any]]:
    """`nbcov report --format json` in the server's root, from a fresh process."""
    return by_index(nbcov(report_args(data_file), cwd=root)[0])


def check_mapping(root: Path, prompts: list[str], folder: str = "") -> dict[int, dict[str, Any]]:
    """Cells are named by the notebook's path relative to the root, their positions, and the ids in the file."""
    ref = f"{folder}/{NOTEBOOK}" if folder else NOTEBOOK
    saved = nbformat.read(str(root / ref), as_version=4)
    data_file = f"{folder}/.coverage" if folder else ".coverage"
    cells = report(root, data_file)
    in_data_file = measured_files(root / data_file)
    measured = {i for i in cells if i}
    assert {4, 5, 7, 9, 10, COVTEST_CELL} <= measured <= set(CODE_CELLS), sorted(measured)
    counts = {index: int(p.strip("[]:")) for index, p in zip(CODE_CELLS, prompts)}
    for index in measured:
        cell = cells[index]
        assert cell["notebook"] == ref, cell
        assert cell["name"] == f"{ref} · cell {index}", cell
        assert cell["cell_id"] == saved.cells[index - 1].id == f"c{index:02d}", cell
        assert cell["source"] == saved.cells[index - 1].source, cell
        assert cell["execution_count"] == counts[index], (cell, prompts)
        # The data file holds the cell under the id the frontend sent: .nbcov/cells/<notebook>/<id>-<hash>.json
        assert cell["data_file_name"] in in_data_file, (cell["data_file_name"], in_data_file)
        assert re.search(rf"/{re.escape(NOTEBOOK)}/c{index:02d}-[0-9a-f]+\.json$", cell["data_file_name"]), cell
    assert cells[CLASSIFY_CELL]["missing_lines"] == [6], cells[CLASSIFY_CELL]
    assert 5 in cells[CLASSIFY_CELL]["executed_lines"]
    assert ("units.py" if not folder else f"{folder}/units.py") in cells[0]["files"], cells[0]["files"].keys()
    return cells


# -- JupyterLab --------------------------------------------------------------------------------------------


def test_jupyterlab_end_to_end(browser: Browser, servers: dict[str, JupyterServer]) -> None:
    server = servers["lab"]
    root = server.root
    n_cells = len(nbformat.read(str(root / NOTEBOOK), as_version=4).cells)
    steps = Steps(ARTIFACT_DIR, "lab")

    with steps("start jupyter lab"):
        server.wait_ready()
    with steps("open the notebook"):
        steps.page = watched = browser.new_page()
        nb = NotebookPage(watched, n_cells)
        nb.open(server.url(f"/lab/workspaces/e2e-{uuid.uuid4().hex[:8]}/tree/{NOTEBOOK}"))
    with steps("run all cells"):
        nb.command("notebook:run-all-cells")
        prompts = nb.wait_all_run()
    with steps("inline report under the covtest cell"):
        covtest_output = nb.stream_text(COVTEST_CELL)
        assert "10 passed" in covtest_output, covtest_output
        facts = check_inline_report(nb, trusted=True)
        assert "monospace" in facts["font"], facts
        readme_screenshot(nb)
    with steps("report maps cells to the notebook and the ids JupyterLab sent"):
        check_mapping(root, prompts)

    with steps("edit a branch of classify in the browser and run the cell again"):
        nb.edit_line(CLASSIFY_CELL, "    if temp is None:", " or temp > 20", chars_from_end=1)
        assert "    if temp is None or temp > 20:\n" in nb.cell_source(CLASSIFY_CELL)
        nb.page.keyboard.press("Shift+Enter")
        nb.wait_prompts(["[1]:", "[2]:", "[3]:", "[4]:", "[9]:", "[6]:", "[7]:", "[8]:"])
    with steps("report shows the edited cell only, with its new numbers"):
        edited = report(root)
        new = edited[CLASSIFY_CELL]
        # The edited cell is not in the saved file: only the id JupyterLab sent can place it at cell 9.
        assert new["cell_id"] == "c09" and new["name"] == f"{NOTEBOOK} · cell {CLASSIFY_CELL}", new
        assert "temp > 20" in new["source"], new["source"]
        # oslo (about 5 °C) is "cold", lima (about 22 °C) is now "unknown": line 6 ran, the rest of the ladder did not.
        assert {5, 6, 7, 9, 10} <= set(new["executed_lines"]), new["executed_lines"]
        assert new["missing_lines"] == [8, 11, 12, 13], new["missing_lines"]
        assert new["execution_count"] == 9, new
        assert not any("if temp is None:\n" in c.get("source", "") for c in edited.values()), "old version kept"
        versions = [f for f in measured_files(root / ".coverage") if f"/{NOTEBOOK}/c09-" in f]
        assert versions == [new["data_file_name"]], versions

    with steps("restart the kernel from the toolbar and confirm"):
        nb.page.evaluate(js(_CURRENT + JS_WATCH_STATUS))
        nb.cell(CLASSIFY_CELL).locator(".jp-InputArea-prompt").click()  # command mode, as a user clicking around
        nb.page.locator(".jp-NotebookPanel-toolbar [data-command='notebook:restart-kernel']").click()
        dialog = nb.page.locator(".jp-Dialog")
        dialog.wait_for(state="visible", timeout=30_000)
        assert "Restart" in dialog.inner_text(), dialog.inner_text()
        steps.screenshot("restart-dialog")
        dialog.locator("button.jp-mod-accept").click()
        nb.page.wait_for_function(js(_CURRENT + JS_RESTARTED), timeout=90_000)
    with steps("load nbcov in the new kernel and ask it who ran a line"):
        for index in (2, 13):
            nb.cell(index).locator(".jp-InputArea-prompt").click()
            nb.page.keyboard.press("Control+Enter")  # run in place (Shift+Enter on the last cell adds one)
        # Execution counts start again at 1: these ran in the new kernel.
        nb.wait_prompts(["[1]:", "[2]:", "[3]:", "[4]:", "[9]:", "[6]:", "[7]:", "[2]:"])
    with steps("nothing measured before the restart was lost"):
        report_json, who = nbcov(report_args(), ["who", f"{NOTEBOOK}:10:4"], cwd=root)
        after = by_index(report_json)
        for index, cell in edited.items():
            if index == 0:
                continue
            for key in ("source", "executed_lines", "missing_lines", "cell_id"):
                assert after[index][key] == cell[key], (index, key, cell[key], after[index][key])
        assert after[0] == edited[0], "module and total numbers changed"
        # `%nbcov who` (cell 13), run in the new kernel, answered from the same data file; like `%load_ext
        # nbcov` it is nbcov's own magic, never a measured cell.
        assert 13 not in after, after[13]
        assert f"{NOTEBOOK}::test_windiest" in who, who

    with steps("save the notebook"):
        nb.cell(10).locator(".jp-InputArea-prompt").click()
        nb.page.keyboard.press("Control+s")
        def saved_with_edit() -> Any:
            on_disk = nbformat.read(str(root / NOTEBOOK), as_version=4)
            return on_disk if "temp > 20" in on_disk.cells[CLASSIFY_CELL - 1].source else None

        saved = wait_for(saved_with_edit, 30, "the notebook saved with the edited cell", retry_on=(OSError, ValueError))
        html = "".join(o.get("data", {}).get("text/html", "") for o in saved.cells[COVTEST_CELL - 1].outputs)
        assert 'class="nbcov-line nbcov-missed"' in html, "the saved %%covtest cell has no inline report"
        assert [c.id for c in saved.cells] == [f"c{i:02d}" for i in range(1, n_cells + 1)]
    with steps("take the trust signature away and reopen the notebook"):
        # As for a notebook from someone else's machine: its signature is not in this server's data dir.
        nb.command("application:close")
        nb.page.wait_for_function("() => !document.querySelector('.jp-NotebookPanel')", timeout=30_000)
        notary = NotebookNotary(data_dir=str(server.dirs["data"]))
        on_disk = nbformat.read(str(root / NOTEBOOK), as_version=4)
        assert notary.check_signature(on_disk), "saving in JupyterLab should have signed the notebook"
        notary.unsign(on_disk)
        assert not notary.check_signature(on_disk)
        nb.command("docmanager:open", {"path": NOTEBOOK})
        nb.wait_ready()
        assert nb.is_trusted(COVTEST_CELL) is False
    with steps("the stored report still marks the missed line, untrusted"):
        untrusted_font = check_inline_report(nb, trusted=False)["font"]
    with steps("shut the server down"):
        nb.page.context.close()
        steps.page = None
        assert server.stop() == 0, server.log_tail()
        assert nb.watched.unexpected_errors() == [], nb.watched.errors
    with steps("after the server is gone, the data holds the same"):
        final = report(root)
        assert {i: (c.get("source"), c.get("executed_lines")) for i, c in final.items()} == {
            i: (c.get("source"), c.get("executed_lines")) for i, c in after.items()
        }
    print(steps.summary())
    # Checked last, so that a regression here does not hide what the steps above show. (They were
    # separate tests reading what this one saw, which pytest-xdist's loadgroup no longer keeps on one
    # worker with pytest 9.2: pytest-dev/pytest-xdist#1386; they were skipped, not run.)
    assert "warning" not in covtest_output, covtest_output  # %%covtest's pytest run warns about nothing
    assert "monospace" in untrusted_font, untrusted_font  # JupyterLab's sanitizer keeps the code font


def readme_screenshot(nb: NotebookPage) -> Path:
    """The report under the %%covtest cell, as the README shows it (docs/jupyterlab.png with NBCOV_UPDATE_DOCS=1)."""
    report = nb.cell(COVTEST_CELL).locator(".nbcov-report")
    # Fold the other annotated cell, as a user would, so the table and classify() show together.
    other = report.locator("details.nbcov-file", has_text=f"{NOTEBOOK} · cell 5 —")
    other.locator("summary").first.click()
    nb.page.wait_for_function("(e) => !e.open", arg=other.element_handle(), timeout=10_000)
    report.evaluate("e => e.scrollIntoView({block: 'start'})")
    box = nb.page.locator("#jp-main-dock-panel").bounding_box()
    path = ARTIFACT_DIR / "lab-readme.png"
    nb.page.screenshot(path=str(path), clip={**box, "height": min(box["height"], 720)})
    if os.environ.get("NBCOV_UPDATE_DOCS"):
        shutil.copy(path, ROOT / "docs" / "jupyterlab.png")
    return path


# -- Notebook 7 --------------------------------------------------------------------------------------------


def test_notebook7_core_flow(browser: Browser, servers: dict[str, JupyterServer]) -> None:
    """The notebook sits in a folder below the server's root here: the report names it by its path from the root."""
    server = servers["notebook7"]
    root, folder = server.root, NB7_FOLDER
    n_cells = len(nbformat.read(str(root / folder / NOTEBOOK), as_version=4).cells)
    steps = Steps(ARTIFACT_DIR, "notebook7")

    with steps("start jupyter notebook"):
        server.wait_ready()
    with steps("open the notebook"):
        steps.page = watched = browser.new_page()
        nb = NotebookPage(watched, n_cells)
        nb.open(server.url(f"/notebooks/{folder}/{NOTEBOOK}"))
    with steps("run all cells from the Run menu"):
        nb.page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        nb.page.locator(".lm-Menu-item", has_text=re.compile(r"^Run All Cells")).click()
        prompts = nb.wait_all_run()
    with steps("inline report under the covtest cell"):
        check_inline_report(nb, trusted=True)
    with steps("report maps cells to the notebook and the ids Notebook 7 sent"):
        check_mapping(root, prompts, folder)
    with steps("shut the server down"):
        nb.page.context.close()
        steps.page = None
        assert server.stop() == 0, server.log_tail()
        assert nb.watched.unexpected_errors(harmless=NOTEBOOK7_HARMLESS) == [], nb.watched.errors
    print(steps.summary())


# -- terminal IPython --------------------------------------------------------------------------------------


def prompt(n: int) -> str:
    """IPython's `In [n]: ` prompt, whatever colours the terminal draws it with."""
    sgr = r"(?:\x1b\[[0-9;]*m)*"
    return rf"In \[{sgr}{n}{sgr}\]: "


def test_terminal_ipython_in_a_pty(tmp_path: Path) -> None:
    """Typed into a real terminal: the coloured text report names the cell `In [2]` and shows its missed line red."""
    fdpexpect = pytest.importorskip("pexpect.fdpexpect")
    import pexpect

    steps = Steps(ARTIFACT_DIR, "ipython")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "NBCOV_", "COVERAGE_", "COV_CORE_"))}
    env.update(TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", IPYTHONDIR=str(tmp_path / "ipython"))
    master, slave = os.openpty()
    proc: subprocess.Popen[bytes] | None = None
    transcript = open(ARTIFACT_DIR / "ipython-terminal.txt", "w")
    try:
        with steps("start ipython in a pty"):
            # A 60x200 pty with IPython on its slave side. subprocess, not pexpect.spawn: forking a process that
            # has threads (Playwright's) is unsafe, and subprocess execs at once.
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 200, 0, 0))
            proc = subprocess.Popen(
                [sys.executable, "-m", "IPython", "--no-banner", "--no-autoindent", "--HistoryManager.hist_file=:memory:"],
                stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path, env=env, start_new_session=True,
            )
            os.close(slave)
            slave = -1
            child = fdpexpect.fdspawn(master, timeout=60, encoding="utf-8")
            child.logfile_read = transcript
        with steps("type %load_ext nbcov, a function with a branch, a call, %nbcov report"):
            def typed(line: str, then_prompt: int) -> str:
                child.send(line + "\r")
                child.expect(prompt(then_prompt))
                return child.before

            child.expect(prompt(1))
            typed("%load_ext nbcov", 2)
            for line in ("def sign(x):", "    if x > 0:", "        return 1", "    return -1"):
                child.send(line + "\r")
            typed("", 3)  # an empty line ends the block
            typed("sign(5)", 4)
            out = typed("%nbcov report", 5)
        with steps("the coloured report shows In [2] and its missed line in red"):
            assert re.search(r"In \[2\] +4 +1 +75%", out), out
            assert "In [2] — 75%" in out, out
            assert "\x1b[31m   4 !     return -1\x1b[0m" in out, out
            assert "\x1b[32m   2 >     if x > 0:\x1b[0m" in out, out
        with steps("exit"):
            child.send("exit\r")
            child.expect(pexpect.EOF, timeout=60)
            assert proc.wait(30) == 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for fd in (master, slave):
            if fd >= 0:
                os.close(fd)
        transcript.close()
    with steps("nbcov report, from another process, has In [2]"):
        cells = json.loads(nbcov(report_args(), cwd=tmp_path)[0])["cells"]
        assert {c["name"]: c["missing_lines"] for c in cells}.get("In [2]") == [4], cells
