"""Benchmark of `nbcov exec` (issue targets: ≤ 1.15x the runner alone on a CPU-bound notebook, and ≤ 0.3 s
start-up added per notebook, on 3.12 and 3.13).

The runner is `jupyter execute` (nbclient's command; papermill and nbmake drive kernels the same way), run
alone and under `nbcov exec`, each in a fresh process, interleaved; medians:
  python bench/exec_bench.py [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

CPU_CELLS = [
    "def collatz(n):\n    steps = 0\n    while n != 1:\n        n = 3 * n + 1 if n % 2 else n // 2\n        steps += 1\n    return steps",
    "total = 0\nfor i in range(1, {n}):\n    total += collatz(i)\ntotal",
]
BIN = Path(sys.executable).parent


def write(path: Path, cells: list[str]) -> Path:
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), str(path))
    return path


def timed(command: list[str], cwd: Path) -> float:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as an installed nbcov runs (see README)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller work, 3 repetitions")
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 7)
    with tempfile.TemporaryDirectory(prefix="nbcov-exec-bench-") as tmp:
        folder = Path(tmp)
        cpu = write(folder / "cpu.ipynb", [CPU_CELLS[0], CPU_CELLS[1].format(n=60_000 if args.quick else 200_000)])
        tiny = write(folder / "tiny.ipynb", ["x = 1"])
        plain = [BIN / "jupyter", "execute"]
        measured = [sys.executable, "-m", "nbcov.cli", "exec", "--", *map(str, plain)]
        timed([*map(str, measured), tiny.name], folder)  # warm the bytecode caches
        times: dict[str, list[float]] = {k: [] for k in ("cpu plain", "cpu nbcov", "tiny plain", "tiny nbcov")}
        for _ in range(repeat):
            for name, command in (("plain", list(map(str, plain))), ("nbcov", measured)):
                times[f"cpu {name}"].append(timed([*command, cpu.name], folder))
                times[f"tiny {name}"].append(timed([*command, tiny.name], folder))
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"Python {sys.version.split()[0]}, load {os.getloadavg()[0]:.2f}, {repeat} repetitions (medians)")
    for kind in ("cpu", "tiny"):
        print(f"  {kind:5} jupyter execute {median[f'{kind} plain']:6.2f} s   nbcov exec {median[f'{kind} nbcov']:6.2f} s")
    print(f"CPU-bound notebook: {median['cpu nbcov'] / median['cpu plain']:.2f}x the runner alone (target ≤ 1.15x)")
    added = median["tiny nbcov"] - median["tiny plain"]
    print(f"Start-up added per notebook (one-cell notebook): {added:+.2f} s (target ≤ 0.3 s; includes the combine and summary)")


if __name__ == "__main__":
    main()
