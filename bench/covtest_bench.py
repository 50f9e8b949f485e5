"""Benchmark of `%%covtest` and the inline report (issue: 200 tests with per-test contexts ≤ 1.5x
plain pytest on the notebook without coverage; the session's report ≤ 1 s; a 300-cell notebook ≤ 1 s).

Everything is timed inside one kernel per configuration, around the cell that runs the tests, so
kernel start-up is not counted. Run: `python bench/covtest_bench.py [--quick]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from nbcov.kernel import kernel_manager

CODE = textwrap.dedent(
    """\
    def collatz(n):
        steps = 0
        while n != 1:
            if n % 2:
                n = 3 * n + 1
            else:
                n //= 2
            steps += 1
        return steps
    """
)

TESTS = textwrap.dedent(
    """\
    import pytest

    @pytest.mark.parametrize("n", range(1, {count} + 1))
    def test_collatz(n):
        assert collatz(n) >= 0
    """
)


def timed_cell(body: str) -> str:
    """A cell that times `body` (run as its own cell) inside the kernel and prints the seconds."""
    return (
        "import time as _t\n_t0 = _t.perf_counter()\n"
        f"get_ipython().run_cell({body!r})\n"
        "print('ELAPSED', _t.perf_counter() - _t0)"
    )


def run(cells: list[str], folder: Path, env: dict[str, str]) -> list[float]:
    """Run a notebook and return the ELAPSED values it printed."""
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    path = folder / "bench.ipynb"
    nbformat.write(nb, str(path))
    old = dict(os.environ)
    os.environ.update(env)
    os.environ["JPY_SESSION_NAME"] = str(path)
    try:
        NotebookClient(nb, km=kernel_manager(), timeout=600, resources={"metadata": {"path": str(folder)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    found = []
    for cell in nb.cells:
        text = "".join(out.get("text", "") for out in cell.get("outputs", []))  # streams arrive in pieces
        for line in text.splitlines():
            if line.startswith("ELAPSED "):
                found.append(float(line.split()[1]))
    return found


def bench_tests(count: int, repeat: int, root: Path, core: str | None) -> tuple[float, float, float]:
    """Medians of: plain (coverage=False), covtest with contexts; and the session report's render."""
    env = {"COVERAGE_CORE": core} if core else {}
    covtest = "%%covtest\n" + TESTS.format(count=count)
    render = (
        "import time as _t\n_t0 = _t.perf_counter()\n"
        "_r = get_ipython().run_line_magic('nbcov', 'report'); _r._repr_html_(); _r.text()\n"
        "print('ELAPSED', _t.perf_counter() - _t0)"
    )
    plain, measured, rendering = [], [], []
    for i in range(repeat):
        for mode in ("plain", "measured"):
            folder = root / f"{mode}{i}"
            folder.mkdir(parents=True)
            setup = "import nbcov\nnbcov.autoconfig(coverage=%s, show='none')" % ("False" if mode == "plain" else "True")
            cells = [setup, CODE, timed_cell(covtest)] + ([render] if mode == "measured" else [])
            times = run(cells, folder, env)
            if mode == "plain":
                plain.append(times[0])
            else:
                measured.append(times[0])
                rendering.append(times[1])
    return statistics.median(plain), statistics.median(measured), statistics.median(rendering)


def bench_big_notebook(cells: int, root: Path) -> float:
    """Render time of the inline report for a session of `cells` measured cells."""
    folder = root / "big"
    folder.mkdir()
    body = [
        f"def f{i}(x):\n    if x > {i % 7}:\n        y = x * 2\n    else:\n        y = -x\n    for k in range(3):\n        y += k\n    return y\n\nf{i}({i % 5})"
        for i in range(cells)
    ]
    render = (
        "import time as _t\n_t0 = _t.perf_counter()\n"
        "_r = get_ipython().run_line_magic('nbcov', 'report'); _r._repr_html_(); _r.text()\n"
        "print('ELAPSED', _t.perf_counter() - _t0)"
    )
    return run(["%load_ext nbcov", *body, render], folder, {})[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and tests")
    args = parser.parse_args()
    count, repeat = (50, 1) if args.quick else (200, 3)
    root = Path(tempfile.mkdtemp(prefix="nbcov-bench-"))
    try:
        import coverage

        print(f"Python {sys.version.split()[0]}, coverage {coverage.__version__}; {count} tests, median of {repeat}")
        cores = [None] + (["sysmon"] if sys.version_info >= (3, 12) else [])
        for core in cores:
            plain, measured, render = bench_tests(count, repeat, root / (core or "ctrace"), core)
            ratio = measured / plain
            verdict = "PASS" if ratio <= 1.5 else "MISS"
            print(
                f"core={core or 'ctrace':7}  plain pytest {plain:.3f}s  %%covtest+contexts {measured:.3f}s  "
                f"ratio {ratio:.2f}x (target ≤ 1.5x: {verdict})  report render {render:.3f}s "
                f"(target ≤ 1 s: {'PASS' if render <= 1 else 'MISS'})"
            )
        big = bench_big_notebook(100 if args.quick else 300, root)
        print(f"inline report of a {100 if args.quick else 300}-cell session: {big:.3f}s (target ≤ 1 s: {'PASS' if big <= 1 else 'MISS'})")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
