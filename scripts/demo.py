"""`make demo`: run the bundled notebooks headless with nbcov measuring, then write the reports.

Each notebook starts with `%load_ext nbcov`, exactly as a person would use it in JupyterLab. The
kernel is told its notebook through JPY_SESSION_NAME, as jupyter_server tells it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
from jupyter_core.utils import run_sync
from nbclient import NotebookClient

from nbcov.kernel import kernel_manager

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
REPORTS = ROOT / "reports"


def run(notebook: Path) -> None:
    nb = nbformat.read(str(notebook), as_version=4)
    os.environ["JPY_SESSION_NAME"] = str(notebook)
    km = kernel_manager()
    try:
        NotebookClient(nb, km=km, timeout=120, resources={"metadata": {"path": str(notebook.parent)}}).execute()
    finally:
        # nbclient leaves running a kernel it was given; shut down, it also saves its coverage.
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=False)
    nbformat.write(nb, str(REPORTS / notebook.name))
    print(f"ran {notebook.relative_to(ROOT)}")


def main() -> int:
    REPORTS.mkdir(exist_ok=True)
    data_file = NOTEBOOKS / ".coverage"
    data_file.unlink(missing_ok=True)  # a fresh demo each time, like `coverage run`
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        run(notebook)
    nbcov = [sys.executable, "-m", "nbcov"]
    # The kernels wrote beside the notebook, as in JupyterLab. A copy combined into the repository's
    # root (as CI combines its runs' data) makes the README's commands work as printed from there.
    root_data = ROOT / ".coverage"
    subprocess.run([*nbcov, "combine", str(data_file), "--keep", "--data-file", str(root_data)], cwd=ROOT, check=True)
    report = [*nbcov, "report", "--data-file", str(data_file)]
    subprocess.run(report, cwd=ROOT, check=True)
    subprocess.run([*report, "--format", "json", "-o", str(REPORTS / "coverage.json")], cwd=ROOT, check=True)
    html = [*nbcov, "html", str(data_file), "-d", str(REPORTS / "nbcov-html"), "--show-contexts", "--title", "nbcov demo"]
    subprocess.run(html, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    # coverage.py's own HTML report, with the plugin named in a configuration made for it.
    rc = REPORTS / "coveragerc"
    rc.write_text(f"[run]\nplugins = nbcov\ndata_file = {data_file}\n")
    subprocess.run(
        [sys.executable, "-m", "coverage", "html", f"--rcfile={rc}", "-d", str(REPORTS / "htmlcov"), "-q"],
        cwd=ROOT,
        check=True,
    )
    print(
        f"\nreports written to {REPORTS.relative_to(ROOT)}/: nbcov-html/index.html (the notebooks as notebooks),"
        " htmlcov/index.html (coverage.py's own report, through nbcov's plugin), coverage.json, executed notebooks"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
