"""Benchmark of `nbcov run` (issue targets: ≤ 1.15x plain nbclient on a CPU-bound notebook in line mode on
3.12/3.13; kernel start-up added by nbcov ≤ 0.3 s; 8 small notebooks with -j 2 ≥ 1.6x faster than -j 1).

All three are measured in this script against a plain run measured here too, interleaved, medians:
  python bench/run_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from nbcov.kernel import kernel_manager

CPU_CELLS = [
    "def collatz(n):\n    steps = 0\n    while n != 1:\n        n = 3 * n + 1 if n % 2 else n // 2\n        steps += 1\n    return steps",
    "total = 0\nfor i in range(1, {n}):\n    total += collatz(i)\ntotal",
]


def write(path: Path, cells: list[str]) -> Path:
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), str(path))
    return path


def plain_nbclient(path: Path) -> float:
    """Wall time of executing the notebook with nbclient alone, kernel start included."""
    nb = nbformat.read(str(path), as_version=4)
    started = time.perf_counter()
    client = NotebookClient(nb, km=kernel_manager(), timeout=600, resources={"metadata": {"path": str(path.parent)}})
    asyncio.run(_execute_and_shutdown(client))
    return time.perf_counter() - started


async def _execute_and_shutdown(client: NotebookClient) -> None:
    try:
        await client.async_execute()
    finally:
        await client.km.shutdown_kernel(now=False)


def nbcov_run(paths: list[Path], jobs: int = 1, extra: tuple[str, ...] = ()) -> float:
    """Wall time of `nbcov run` (kernels, measurement, combining; reports left out)."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "nbcov.cli", "run", *map(str, paths), "-j", str(jobs), "--report", "json", *extra],
        cwd=paths[0].parent, capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"nbcov run failed:\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeat = 2 if args.quick else 5
    root = Path(tempfile.mkdtemp(prefix="nbcov-runbench-"))
    try:
        cpu = write(root / "cpu.ipynb", [CPU_CELLS[0], CPU_CELLS[1].format(n=60_000 if args.quick else 200_000)])
        empty = write(root / "empty.ipynb", ["x = 1"])
        smalls = [write(root / f"small{i}.ipynb", ["import time", "sum(range(200_000))", "x = [i * i for i in range(50_000)]"]) for i in range(8)]
        env_core = os.environ.get("COVERAGE_CORE", "default core")
        print(f"Python {sys.version.split()[0]}, {env_core}; medians of {repeat}, interleaved")
        plain, measured, plain_empty, measured_empty, j1, j2 = [], [], [], [], [], []
        for _ in range(repeat):
            plain.append(plain_nbclient(cpu))
            measured.append(nbcov_run([cpu]))
            plain_empty.append(plain_nbclient(empty))
            measured_empty.append(nbcov_run([empty]))
            j1.append(nbcov_run(smalls, jobs=1))
            j2.append(nbcov_run(smalls, jobs=2))
        p, m = statistics.median(plain), statistics.median(measured)
        pe, me = statistics.median(plain_empty), statistics.median(measured_empty)
        a, b = statistics.median(j1), statistics.median(j2)
        ok = lambda good: "PASS" if good else "MISS"  # noqa: E731
        print(f"CPU-bound notebook: nbclient {p:.2f}s, nbcov run {m:.2f}s -> {m / p:.2f}x (target ≤ 1.15x with sysmon: {ok(m / p <= 1.15)})")
        print(f"one-cell notebook (start-up): nbclient {pe:.2f}s, nbcov run {me:.2f}s -> +{me - pe:.2f}s (target ≤ 0.3 s: {ok(me - pe <= 0.3)})")
        print(f"8 small notebooks: -j 1 {a:.2f}s, -j 2 {b:.2f}s -> {a / b:.2f}x faster (target ≥ 1.6x: {ok(a / b >= 1.6)})")
        print("(nbcov run's time includes combining the kernels' data and its process start; run with")
        print(" COVERAGE_CORE=sysmon on 3.12+ for the line-mode target.)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
