"""What measuring the processes a notebook starts costs: a CPU-bound pool cell under `nbcov run`, against no coverage.

    python bench/process_bench.py [--quick] [--rounds N] [--method fork|spawn|forkserver ...] [--mode MODE ...]

A notebook imports a module of branchy CPU-bound work and runs it in a `multiprocessing` pool of two
workers (4 tasks); the pool cell times itself inside the kernel (wall clock, and the CPU time of the
workers it waited for, `os.times().children_user + children_system`). Each sample is a fresh kernel:
plain nbclient for "none", `nbcov run --source <folder>` (with `--branch` for "branch") otherwise;
`NBCOV_BRANCH_ENGINE=coverage` gives "branch-ctrace", coverage.py's own C tracer in the kernel and
its workers (how spawn/forkserver workers were measured before nbcov handed them its engine, and the
reference for coverage.py's cost). Rounds are interleaved;
the table shows medians and the ratio to "none" for the same start method. Pool start-up (spawn
and forkserver start fresh Pythons, which then import coverage.py) is part of the timed cell, as a
notebook pays it. Target (issue): "branch" ≤ 1.3x on Python 3.12/3.13. Exits 0 whatever the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

MODES = ["none", "line", "branch", "branch-ctrace"]
METHODS = ["fork", "spawn", "forkserver"]

WORK = '''\
def spin(n):
    total = 0
    for i in range(n):
        if i % 3:
            total += i
        elif i % 5 == 0:
            total -= 2
        else:
            total -= 1
    return total
'''

POOL_CELL = '''\
import json, multiprocessing as mp, os, time
before, started = os.times(), time.perf_counter()
with mp.get_context({method!r}).Pool(2) as pool:
    pool.map(work.spin, [{n}] * 4)
after = os.times()
print("RESULT " + json.dumps({{"wall": time.perf_counter() - started,
    "cpu": after.children_user + after.children_system - before.children_user - before.children_system}}))
'''

PLAIN = '''\
import json, sys
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[3])
'''


def notebook(folder: Path, method: str, n: int) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    path = folder / f"pool-{method}.ipynb"
    cells = [new_code_cell("import work"), new_code_cell(POOL_CELL.format(method=method, n=n))]
    nbformat.write(new_notebook(cells=cells), str(path))
    return path


def result_of(executed: Path) -> dict[str, float]:
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    for output in nb.cells[1].outputs:
        for line in output.get("text", "").splitlines():
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT "):])
    raise SystemExit(f"no timing in {executed}: {nb.cells[1].outputs}")


def sample(folder: Path, nb: Path, mode: str) -> dict[str, float]:
    """One fresh kernel running the notebook under `mode`."""
    out = folder / "out" / mode
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "NBCOV_"))}
    if mode == "none":
        cmd = [sys.executable, "-c", PLAIN, str(nb), str(folder), str(out / nb.name)]
    else:
        cmd = [sys.executable, "-m", "nbcov.cli", "run", str(nb), "--source", str(folder),
               "--data-file", str(folder / f".coverage-{mode}"), "--output-notebook", str(out), "--report", "json"]
        if mode.startswith("branch"):
            cmd.append("--branch")
        if mode == "branch-ctrace":
            env["NBCOV_BRANCH_ENGINE"] = "coverage"
    done = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"{mode}: {' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    if mode != "none":
        measured = json.loads((folder / "coverage.json").read_text())["files"]
        work = next(f for name, f in measured.items() if name.endswith("work.py"))
        if work["missing_lines"]:  # the workers' lines must really have been measured
            raise SystemExit(f"{mode}: work.py lines {work['missing_lines']} were not measured in the workers")
    return result_of(out / nb.name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller work, 2 rounds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--method", action="append", choices=METHODS)
    parser.add_argument("--mode", action="append", choices=MODES)
    args = parser.parse_args()
    methods = args.method or METHODS
    modes = ["none", *[m for m in (args.mode or MODES) if m != "none"]]
    rounds = args.rounds or (2 if args.quick else 5)
    n = 600_000 if args.quick else 2_000_000
    import coverage

    print(f"Python {sys.version.split()[0]}, coverage.py {coverage.__version__}, "
          f"load {os.getloadavg()[0]:.1f}, {rounds} rounds, 4 x spin({n}) in a pool of 2")
    with tempfile.TemporaryDirectory(prefix="nbcov-process-bench-") as tmp:
        folder = Path(tmp)
        (folder / "work.py").write_text(WORK)
        samples: dict[tuple[str, str], list[dict[str, float]]] = {}
        for _ in range(rounds):
            for method in methods:
                nb = notebook(folder, method, n)
                for mode in modes:
                    samples.setdefault((method, mode), []).append(sample(folder, nb, mode))
    print(f"\n{'method':11} {'mode':14} {'wall':>7} {'ratio':>7} {'cpu':>7} {'ratio':>7}")
    for method in methods:
        base = samples[(method, "none")]
        base_wall = statistics.median(s["wall"] for s in base)
        base_cpu = statistics.median(s["cpu"] for s in base)
        for mode in modes:
            wall = statistics.median(s["wall"] for s in samples[(method, mode)])
            cpu = statistics.median(s["cpu"] for s in samples[(method, mode)])
            # forkserver workers are the forkserver's children, not the kernel's: no CPU time for them.
            cpu_text = f"{cpu:6.2f}s {cpu / base_cpu:6.2f}x" if base_cpu > 0 else f"{'-':>7} {'-':>7}"
            print(f"{method:11} {mode:14} {wall:6.2f}s {wall / base_wall:6.2f}x {cpu_text}")
    print("\ntarget: branch <= 1.3x on Python 3.12/3.13 (wall; cpu when the machine is busy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
