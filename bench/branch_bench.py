"""Branch coverage speed: each way of measuring as a ratio to no coverage, for scripts and notebook cells.

    python bench/branch_bench.py [--quick] [--rounds N] [--only script|notebook] [--bench NAME ...] [--callgrind]

Measures pyperformance's richards, nbody and raytrace (sources from the `pyperformance` package) and an
adversarial loop (an always-true `if` without `else`, followed by a statement, in a hot loop) under:
no coverage, coverage.py's C tracer (line, branch), coverage.py's sysmon core (line), nbcov's branch
engine, and slipcover (branch; the outside reference). Every measurement runs in its own process
(scripts) or kernel (notebooks), rounds are interleaved, and the tables show medians. A script is
timed around the workload after its module was imported under measurement; a notebook is timed
inside the kernel around the cell that runs the workload, after `%load_ext nbcov` and the cell
defining the benchmark. `--callgrind` adds a table of instruction counts for the scripts (valgrind's
callgrind: stable when other processes make wall-clock times noisy; the C tracer is left out there,
it would take hours under valgrind).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

MODES = ["none", "ctrace-line", "ctrace-branch", "sysmon-line", "nbcov-branch", "slipcover-branch"]
BENCHES = ["richards", "nbody", "raytrace", "adversarial"]

ADVERSARIAL = textwrap.dedent(
    """
    def adversarial(n):
        t = 0
        for i in range(n):
            if i >= 0:
                t += 1
            t ^= 2
        return t
    """
)

# (full, quick) workload sizes, each ~0.3-0.5 s (full) without coverage on this machine.
CALLS = {
    "richards": ("Richards().run({n})", (3, 1)),
    "nbody": ("bench_nbody(1, 'sun', {n})", (40000, 10000)),
    "raytrace": ("bench_raytrace(1, {n}, {n}, None)", (60, 30)),
    "adversarial": ("adversarial({n})", (3_000_000, 800_000)),
}


def bench_source(name: str) -> str:
    """The benchmark's module source, without its pyperf command-line driver."""
    if name == "adversarial":
        return ADVERSARIAL
    import pyperformance

    path = Path(pyperformance.__file__).parent / "data-files" / "benchmarks" / f"bm_{name}" / "run_benchmark.py"
    text = path.read_text()
    cut = text.find('\nif __name__ == "__main__"')
    if cut < 0:
        cut = text.find("\nif __name__ == '__main__'")
    return text[:cut] + "\n"


def call(name: str, quick: bool) -> str:
    template, sizes = CALLS[name]
    return template.format(n=sizes[1] if quick else sizes[0])


def mode_env(mode: str) -> dict[str, str]:
    """Environment for one mode (COVERAGE_CORE picks coverage.py's core; nbcov's engine is opt-in here)."""
    env = {"NBCOV_BRANCH_ENGINE": "nbcov" if mode == "nbcov-branch" else "coverage"}
    if mode.startswith("ctrace"):
        env["COVERAGE_CORE"] = "ctrace"
    elif mode == "sysmon-line":
        env["COVERAGE_CORE"] = "sysmon"
    return env


# -- scripts ---------------------------------------------------------------------------------------


def child_script(mode: str, name: str, quick: bool, run: bool = True) -> None:
    """One measurement in this process: print the workload's seconds as JSON."""
    folder = Path(tempfile.mkdtemp(prefix="nbcov-bench-"))
    module = f"bm_{name}_subject"
    path = folder / f"{module}.py"
    path.write_text(bench_source(name))
    sys.path.insert(0, str(folder))
    stop = lambda: None  # noqa: E731
    info = ""
    if mode == "slipcover-branch":
        import slipcover as sc

        sci = sc.Slipcover(branch=True)
        manager = sc.ImportManager(sci, sc.FileMatcher(sources=[str(folder)]))
        manager.__enter__()
        stop = lambda: manager.__exit__(None, None, None)  # noqa: E731
    elif mode != "none":
        import coverage

        from nbcov import engine

        cov = coverage.Coverage(data_file=None, branch=mode.endswith("branch"), include=[str(path)])
        if mode == "nbcov-branch" and not engine.install(cov):
            raise SystemExit("the nbcov engine refused to measure")
        cov.start()
        stop = cov.stop
    namespace: dict = {}
    exec(f"from {module} import *", namespace)
    t0 = time.perf_counter()
    if run:
        exec(call(name, quick), namespace)
    elapsed = time.perf_counter() - t0
    stop()
    if mode not in ("none", "slipcover-branch"):
        info = str(dict(cov.sys_info()).get("core"))
    print(json.dumps({"seconds": elapsed, "core": info}))


def run_script(mode: str, name: str, quick: bool) -> float:
    env = {**os.environ, **mode_env(mode)}
    env.pop("COVERAGE_PROCESS_START", None)
    if "COVERAGE_CORE" not in mode_env(mode):
        env.pop("COVERAGE_CORE", None)
    cmd = [sys.executable, __file__, "--child", mode, name] + (["--quick"] if quick else [])
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise RuntimeError(f"{mode} {name} failed:\n{out.stderr[-2000:]}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def callgrind_script(mode: str, name: str, quick: bool) -> int:
    """Instructions the workload costs (with all one-time work it triggers): a run with it, minus one without."""
    counts = []
    for run in (True, False):
        env = {**os.environ, **mode_env(mode)}
        if "COVERAGE_CORE" not in mode_env(mode):
            env.pop("COVERAGE_CORE", None)
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
               "--child", mode, name] + (["--quick"] if quick else []) + ([] if run else ["--no-run"])
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=7200)
        found = [line for line in out.stderr.splitlines() if "Collected :" in line]
        if out.returncode or not found:
            raise RuntimeError(f"callgrind {mode} {name} failed:\n{out.stderr[-2000:]}")
        counts.append(int(found[-1].split(":")[-1]))
    return counts[0] - counts[1]


# -- notebooks -------------------------------------------------------------------------------------


def notebook_cells(mode: str, names: list[str], quick: bool) -> list[str]:
    cells = []
    if mode == "slipcover-branch":
        cells.append("import ast as _ast, slipcover as _sc, slipcover.branch as _br\n_sci = _sc.Slipcover(branch=True)")
    elif mode != "none":
        cells.append("%load_ext nbcov")
    for name in names:
        source = bench_source(name)
        if mode == "slipcover-branch":
            cells.append(
                f"_src = {source!r}\n_tree = _br.preinstrument(_ast.parse(_src))\n"
                f"exec(_sci.instrument(compile(_tree, '/tmp/bm_{name}_cell.py', 'exec')), globals())"
            )
        else:
            cells.append(source)
        cells.append(
            "import time as _time, json as _json\n_t0 = _time.perf_counter()\n"
            f"{call(name, quick)}\n"
            f"print('NBCOV_BENCH', _json.dumps({{'{name}': _time.perf_counter() - _t0}}))"
        )
    return cells


def run_notebook(mode: str, names: list[str], quick: bool) -> dict[str, float]:
    import nbformat
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    from nbcov.kernel import kernel_manager

    with tempfile.TemporaryDirectory(prefix="nbcov-nbbench-") as tmp:
        folder = Path(tmp)
        branch = "true" if mode.endswith("branch") else "false"
        (folder / ".coveragerc").write_text(f"[run]\nbranch = {branch}\n")
        nb = new_notebook(cells=[new_code_cell(c) for c in notebook_cells(mode, names, quick)])
        path = folder / "bench.ipynb"
        nbformat.write(nb, str(path))
        saved = {k: os.environ.get(k) for k in ("NBCOV_BRANCH_ENGINE", "COVERAGE_CORE", "JPY_SESSION_NAME")}
        os.environ.pop("COVERAGE_CORE", None)
        os.environ.update(mode_env(mode))
        os.environ["JPY_SESSION_NAME"] = str(path)
        try:
            client = NotebookClient(nb, km=kernel_manager(), timeout=900, resources={"metadata": {"path": tmp}})
            client.execute()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        times: dict[str, float] = {}
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                for line in output.get("text", "").splitlines():
                    if line.startswith("NBCOV_BENCH "):
                        times.update(json.loads(line.split(" ", 1)[1]))
        missing = set(names) - set(times)
        if missing:
            errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
            raise RuntimeError(f"notebook {mode}: no time for {missing}: {errors[:1]}")
        return times


# -- driver ----------------------------------------------------------------------------------------


def table(
    title: str,
    results: dict[str, dict[str, list[float]]],
    names: list[str],
    modes: list[str],
    unit: str = "none (s)",
    scale: float = 1.0,
) -> str:
    lines = [title, f"{'benchmark':<13}" + "".join(f"{m:>18}" for m in modes) + f"{unit:>16}"]
    for name in names:
        base = statistics.median(results[name]["none"])
        row = f"{name:<13}"
        for mode in modes:
            samples = results[name].get(mode)
            row += f"{statistics.median(samples) / base:>17.2f}x" if samples else f"{'n/a':>18}"
        lines.append(row + f"{base * scale:>16.3f}")
    return "\n".join(lines)


def slipcover_available() -> str | None:
    try:
        import slipcover  # noqa: F401
    except ImportError as exc:
        return f"slipcover is not installed ({exc}); `pip install slipcover` failed or was not run"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads, fewer rounds")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 2)")
    parser.add_argument("--only", choices=["script", "notebook"])
    parser.add_argument("--bench", nargs="*", choices=BENCHES, default=BENCHES)
    parser.add_argument("--callgrind", action="store_true", help="also count instructions (scripts, slow)")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "BENCH"), help=argparse.SUPPRESS)
    parser.add_argument("--no-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_script(args.child[0], args.child[1], args.quick, run=not args.no_run)
        return
    rounds = args.rounds or (2 if args.quick else 5)
    modes = list(MODES)
    note = slipcover_available()
    if note:
        modes.remove("slipcover-branch")
    print(f"Python {sys.version.split()[0]}, {rounds} interleaved rounds, medians; ratio = time / time without coverage")
    if note:
        print(f"NOTE: {note}")
    if args.only != "notebook":
        results: dict[str, dict[str, list[float]]] = {n: {m: [] for m in modes} for n in args.bench}
        for _ in range(rounds):
            for name in args.bench:
                for mode in modes:
                    results[name][mode].append(run_script(mode, name, args.quick))
        print(table("\nScripts (module imported under measurement, workload timed in-process):", results, args.bench, modes))
    if args.only != "script":
        results = {n: {m: [] for m in modes} for n in args.bench}
        for _ in range(rounds):
            for mode in modes:
                for name, seconds in run_notebook(mode, args.bench, args.quick).items():
                    results[name][mode].append(seconds)
        print(table("\nNotebook cells (nbclient, timed inside the kernel; nbcov via %load_ext nbcov):", results, args.bench, modes))
    if args.callgrind:
        cg_modes = [m for m in modes if not m.startswith("ctrace")]
        results = {n: {m: [float(callgrind_script(m, n, args.quick))] for m in cg_modes} for n in args.bench}
        print(table("\nScripts, instructions counted by callgrind (the C tracer left out):", results, args.bench,
                    cg_modes, unit="none (G instr)", scale=1e-9))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
