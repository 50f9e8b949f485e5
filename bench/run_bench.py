"""Benchmark of `nbcov run` (issue targets: ≤ 1.15x plain nbclient on a CPU-bound notebook in line mode on
3.12/3.13, branch mode no slower than coverage.py's ctrace; kernel start-up added by nbcov ≤ 0.3 s; 8 small notebooks with -j 2 ≥ 1.6x faster than -j 1).

All three are measured in this script against plain nbclient runs measured here too (each run a fresh
process, as `nbcov run` is), interleaved, medians:
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

from typing import Any

CPU_CELLS = [
    "def collatz(n):\n    steps = 0\n    while n != 1:\n        n = 3 * n + 1 if n % 2 else n // 2\n        steps += 1\n    return steps",
    "total = 0\nfor i in range(1, {n}):\n    total += collatz(i)\ntotal",
]


def write(path: Path, cells: list[str]) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), str(path))
    return path


def plain_nbclient(paths: list[Path]) -> float:
    """Wall time of executing the notebooks one after another with plain nbclient, in a fresh process.

    A process of its own, like `nbcov run`'s, so both pay a process start and the Jupyter imports;
    both hide jsonschema's slow optional IRI checker the same way (see nbcov.cli).
    """
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--plain", *map(str, paths)], check=True, capture_output=True)
    return time.perf_counter() - started


def _plain_child(paths: list[str]) -> None:
    from nbcov.cli import hide_slow_iri_checker

    hide_slow_iri_checker()
    import nbformat
    from nbclient import NotebookClient

    from nbcov.kernel import kernel_manager

    for name in paths:
        path = Path(name)
        nb = nbformat.read(str(path), as_version=4)
        client = NotebookClient(nb, km=kernel_manager(), timeout=600, resources={"metadata": {"path": str(path.parent)}})
        asyncio.run(_execute_and_shutdown(client))


async def _execute_and_shutdown(client: Any) -> None:
    try:
        await client.async_execute()
    finally:
        await client.km.shutdown_kernel(now=False)


def nbcov_run(paths: list[Path], jobs: int = 1, extra: tuple[str, ...] = (), env: dict[str, str] | None = None) -> float:
    """Wall time of `nbcov run` (kernels, measurement, combining; reports left out)."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "nbcov.cli", "run", *map(str, paths), "-j", str(jobs), "--report", "json", *extra],
        cwd=paths[0].parent, capture_output=True, text=True, env={**os.environ, **(env or {})},
    )
    if result.returncode != 0:
        raise SystemExit(f"nbcov run failed:\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--plain", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        _plain_child(args.plain)
        return 0
    repeat = 2 if args.quick else 5
    # Commands and kernels run with Python's bytecode cache, as an installed nbcov (whose .pyc files
    # pip writes) runs for users; PYTHONDONTWRITEBYTECODE would make every fresh process compile
    # nbcov's modules again (~40 ms each, more in kernels).
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        print("(PYTHONDONTWRITEBYTECODE unset for the measured processes: bytecode is cached as after pip install)")
    root = Path(tempfile.mkdtemp(prefix="nbcov-runbench-"))
    try:
        cpu = write(root / "cpu.ipynb", [CPU_CELLS[0], CPU_CELLS[1].format(n=60_000 if args.quick else 200_000)])
        empty = write(root / "empty.ipynb", ["x = 1"])
        smalls = [write(root / f"small{i}.ipynb", ["import time", "sum(range(200_000))", "x = [i * i for i in range(50_000)]"]) for i in range(8)]
        env_core = f"COVERAGE_CORE={os.environ['COVERAGE_CORE']}" if "COVERAGE_CORE" in os.environ else "no core chosen"
        print(f"Python {sys.version.split()[0]}, {env_core}; medians of {repeat}, interleaved")
        plain, measured, plain_empty, measured_empty, plain8, j1, j2 = [], [], [], [], [], [], []
        nbcov_run([empty])  # warm-up: writes the bytecode cache of what the CLI and the kernels import
        branch, branch_ctrace = [], []
        ctrace = {"NBCOV_BRANCH_ENGINE": "coverage", "COVERAGE_CORE": "ctrace"}
        for _ in range(repeat):
            plain.append(plain_nbclient([cpu]))
            measured.append(nbcov_run([cpu]))
            branch.append(nbcov_run([cpu], extra=("--branch",)))
            branch_ctrace.append(nbcov_run([cpu], extra=("--branch",), env=ctrace))
            plain_empty.append(plain_nbclient([empty]))
            measured_empty.append(nbcov_run([empty]))
            plain8.append(plain_nbclient(smalls))
            j1.append(nbcov_run(smalls, jobs=1))
            j2.append(nbcov_run(smalls, jobs=2))
        p, m = statistics.median(plain), statistics.median(measured)
        br, brc = statistics.median(branch), statistics.median(branch_ctrace)
        pe, me = statistics.median(plain_empty), statistics.median(measured_empty)
        p8, a, b = statistics.median(plain8), statistics.median(j1), statistics.median(j2)
        per_notebook = (a - p8) / len(smalls)
        ok = lambda good: "PASS" if good else "MISS"  # noqa: E731
        print(f"CPU-bound notebook: nbclient {p:.2f}s, nbcov run {m:.2f}s -> {m / p:.2f}x (target ≤ 1.15x on 3.12/3.13: {ok(m / p <= 1.15)})")
        print(f"  branch: nbcov run --branch {br:.2f}s ({br / p:.2f}x), with coverage.py's ctrace instead {brc:.2f}s ({brc / p:.2f}x) (target: no slower than ctrace: {ok(br <= brc)})")
        print(f"start-up added per notebook: 8 small notebooks nbclient {p8:.2f}s, nbcov run -j 1 {a:.2f}s -> +{per_notebook:.2f}s each (target ≤ 0.3 s: {ok(per_notebook <= 0.3)})")
        print(f"  one-cell notebook, whole command: nbclient {pe:.2f}s, nbcov run {me:.2f}s -> +{me - pe:.2f}s (incl. combining and the report once)")
        print(f"8 small notebooks: -j 1 {a:.2f}s, -j 2 {b:.2f}s -> {a / b:.2f}x faster (target ≥ 1.6x: {ok(a / b >= 1.6)})")
        print("(nbcov run's time includes combining the kernels' data and its process start. With no core")
        print(" chosen, nbcov measures lines with sysmon on 3.12/3.13; COVERAGE_CORE=ctrace shows coverage.py's default.)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
