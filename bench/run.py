#!/usr/bin/env python
"""What nbcov's measurement costs: pyperformance workloads run as notebook cells, with and without nbcov.

For every workload and configuration a fresh kernel (or, for the .py reference, a fresh process) runs
the workload once; the time is taken *inside* the kernel with time.perf_counter around the workload
call, so kernel start-up, imports and nbcov's per-cell save are not counted. Configurations are
interleaved across repetitions and medians are reported, as ratios against the no-coverage run of the
same kind (notebook configurations against the plain notebook, .py configurations against the plain
script).

    python bench/run.py            # 3 workloads x 5 repetitions (about 5 minutes)
    python bench/run.py --quick    # nbody x 3 repetitions (under a minute on a quiet machine)

Always exits 0 (a benchmark reports, it does not fail), except 2 when pyperformance cannot be installed.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import datetime
import importlib
import importlib.metadata
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

SYSMON_TARGET = 1.15  # the issue: nbcov line coverage under sysmon on 3.12/3.13 costs at most 15%
HAS_SYSMON = sys.version_info >= (3, 12)
MARK = "NBCOV-BENCH"  # prefix of the lines the workload prints for this script to read
LOAD = "%load_ext nbcov"  # the first cell of the notebooks measured by nbcov (see --setup)


# -- workloads --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    bench_dir: str  # under pyperformance/data-files/benchmarks
    call: str  # the expression the "run" cell times; sized for ~0.3-1 s without coverage
    drop: tuple[str, ...] = ()  # top-level functions that only serve pyperf's Runner


WORKLOADS = [
    # Object-heavy: many small method calls and attribute accesses.
    Workload("richards", "bm_richards", "Richards().run(3)"),
    # Float arithmetic in tight loops: few calls, many lines per call.
    Workload("nbody", "bm_nbody", "bench_nbody(1, 'sun', 40000)", drop=("add_cmdline_args",)),
    # A mix: classes, small methods, list comprehensions, branches, float maths.
    Workload("raytrace", "bm_raytrace", "bench_raytrace(1, 70, 70, None)", drop=("add_cmdline_args",)),
]
QUICK_WORKLOADS = ["nbody"]  # the cheapest to trace: keeps --quick under a minute


def ensure_pyperformance() -> Path:
    """The pyperformance benchmark sources, installing pyperformance into this Python if needed."""
    try:
        import pyperformance  # noqa: F401
    except ImportError:
        print(f"pyperformance is not installed in {sys.prefix}; installing it with pip ...", flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "pyperformance"],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            print(proc.stdout + proc.stderr, file=sys.stderr)
            print(
                "ERROR: `pip install pyperformance` failed; the benchmark needs its workload sources. "
                "Install it by hand (pip install pyperformance) and run again.",
                file=sys.stderr,
            )
            sys.exit(2)
        importlib.invalidate_caches()
        try:
            import pyperformance  # noqa: F401
        except ImportError as exc:
            print(f"ERROR: pyperformance installed but cannot be imported: {exc}", file=sys.stderr)
            sys.exit(2)
    import pyperformance

    root = Path(pyperformance.__file__).parent / "data-files" / "benchmarks"
    if not root.is_dir():
        print(f"ERROR: no benchmark sources in {root} (unexpected pyperformance layout)", file=sys.stderr)
        sys.exit(2)
    return root


def _is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def _imports_only_pyperf(node: ast.stmt) -> bool:
    return isinstance(node, ast.Import) and all(alias.name == "pyperf" for alias in node.names)


def workload_cells(workload: Workload, root: Path) -> list[str]:
    """The benchmark's code without its pyperf Runner parts, split into notebook cells.

    Cells break at top-level statements (keeping comments with the statement they precede); a new
    cell starts at a def/class once the current one is ~40 lines long, so a workload becomes a
    handful of definition cells, as a notebook would have.
    """
    path = root / workload.bench_dir / "run_benchmark.py"
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)

    chunks: list[tuple[ast.stmt, str]] = []
    start = 0  # first line (0-based) not yet given to a statement
    for node in tree.body:
        text = "\n".join(lines[start : node.end_lineno])
        start = node.end_lineno
        if _is_main_guard(node) or _imports_only_pyperf(node):
            continue
        if isinstance(node, ast.FunctionDef) and node.name in workload.drop:
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and node is tree.body[0]:
            continue  # the module docstring (credited in the first cell's comment instead)
        chunks.append((node, text.strip("\n")))

    code = "\n\n".join(text for _, text in chunks)
    uses_perf_counter = "pyperf.perf_counter" in code
    chunks = [(node, text.replace("pyperf.perf_counter", "time.perf_counter")) for node, text in chunks]
    leftover = [n.id for n in ast.walk(ast.parse("\n\n".join(t for _, t in chunks))) if isinstance(n, ast.Name)]
    if "pyperf" in leftover:
        raise RuntimeError(f"{path}: pyperf is still used after removing the Runner parts")

    header = f"# {workload.name}: from pyperformance's {workload.bench_dir}/run_benchmark.py (pyperf Runner parts removed)"
    if uses_perf_counter:
        header += "\nimport time"
    cells: list[list[str]] = [[header]]
    size = 0
    for node, text in chunks:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and size >= 40:
            cells.append([])
            size = 0
        cells[-1].append(text)
        size += text.count("\n") + 1
    return ["\n\n".join(parts) for parts in cells]


def run_code(workload: Workload) -> str:
    """The timed part: the same text is the notebook's "run" cell and the end of the .py script."""
    return (
        "import time as _bench_time\n"
        "_bench_t0 = _bench_time.perf_counter()\n"
        "_bench_c0 = _bench_time.thread_time()\n"
        f"_bench_result = {workload.call}\n"
        "_bench_cpu = _bench_time.thread_time() - _bench_c0\n"
        "_bench_elapsed = _bench_time.perf_counter() - _bench_t0\n"
        f"print('{MARK} elapsed=%r' % _bench_elapsed)\n"
        f"print('{MARK} cpu=%r' % _bench_cpu)\n"
    )


# Not timed: which coverage.py core measured the run (the running Coverage object says).
CORE_CODE = (
    "import coverage as _bench_coverage\n"
    "_bench_cov = _bench_coverage.Coverage.current()\n"
    "_bench_core = dict(_bench_cov.sys_info()).get('core', '?') if _bench_cov is not None else 'none'\n"
    "_bench_core = {'CTracer': 'ctrace', 'SysMonitor': 'sysmon', 'PyTracer': 'pytrace'}.get(_bench_core, _bench_core)\n"
    f"print('{MARK} core=%s' % _bench_core)\n"
)


# -- configurations ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Config:
    key: str
    label: str
    kind: str  # "notebook" or "script"
    core: str | None  # None: no coverage at all
    branch: bool = False

    @property
    def baseline(self) -> str:
        return "nb-plain" if self.kind == "notebook" else "py-plain"


def configurations() -> list[Config]:
    configs = [
        Config("nb-plain", "notebook, no coverage", "notebook", None),
        Config("nb-ctrace", "notebook, nbcov line (ctrace)", "notebook", "ctrace"),
    ]
    if HAS_SYSMON:
        configs.append(Config("nb-sysmon", "notebook, nbcov line (sysmon)", "notebook", "sysmon"))
    configs += [
        Config("nb-branch", "notebook, nbcov branch (ctrace)", "notebook", "ctrace", branch=True),
        Config("py-plain", ".py script, no coverage", "script", None),
        Config("py-ctrace", ".py script, coverage.py line (ctrace)", "script", "ctrace"),
    ]
    if HAS_SYSMON:
        configs.append(Config("py-sysmon", ".py script, coverage.py line (sysmon)", "script", "sysmon"))
    configs.append(Config("py-branch", ".py script, coverage.py branch (ctrace)", "script", "ctrace", branch=True))
    return configs


def coveragerc(config: Config) -> str:
    # Written into the run folder: nbcov's kernel finds it as the user's .coveragerc in its working
    # directory; `coverage run` is pointed at the same file, so both measure with the same settings.
    return f"[run]\ncore = {config.core}\nbranch = {'true' if config.branch else 'false'}\n"


def clean_env() -> dict[str, str]:
    """This environment without COVERAGE_* settings that would override the configuration under test."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}


# -- running ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Result:
    elapsed: float | None = None  # seconds of time.perf_counter, timed inside the kernel/process
    cpu: float | None = None  # seconds of time.thread_time around the same call: CPU time of that thread
    core: str = "?"
    cell_extra: float | None = None  # seconds the run cell took beyond `elapsed` (nbcov: hooks + save)
    error: str | None = None


def _parse_marks(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        if line.startswith(MARK + " ") and "=" in line:
            key, _, value = line[len(MARK) + 1 :].partition("=")
            found[key] = value.strip()
    return found


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _kernel_time(stamp: str) -> datetime.datetime:
    return datetime.datetime.strptime(stamp.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")


def _check_data(folder: Path, config: Config) -> str | None:
    """Make sure a coverage run really measured the workload (a no-op would look very fast)."""
    from coverage import CoverageData

    path = folder / ".coverage"
    if not path.exists():
        return f"no coverage data file in {folder}"
    data = CoverageData(str(path))
    data.read()
    files = data.measured_files()
    lines = sum(len(data.lines(f) or ()) for f in files)
    if lines < 20:
        return f"coverage data in {path} has only {lines} lines measured in {len(files)} files"
    if config.branch and not data.has_arcs():
        return f"{path} has no branch data although branch = true"
    return None


def _has_error(cell: Any) -> bool:
    return any(out.get("output_type") == "error" for out in cell.get("outputs", []))


def run_notebook(config: Config, cells: list[str], workload: Workload, folder: Path, setup: str) -> Result:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from nbcov.kernel import kernel_manager
    from nbcov.text import strip_ansi

    sources = ([setup] if config.core else []) + cells + [run_code(workload), CORE_CODE]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    nb_path = folder / f"{workload.name}.ipynb"
    nbformat.write(nb, nb_path)
    env = clean_env()
    env["NBCOV_NOTEBOOK"] = str(nb_path)  # as `nbcov run` does: lets nbcov map cells to the notebook
    log = folder / "kernel.log"
    run_index = len(sources) - 2
    with open(log, "w") as log_file:
        client = NotebookClient(
            nb,
            km=kernel_manager(),
            resources={"metadata": {"path": str(folder)}},
            timeout=600,
            record_timing=True,
        )
        try:
            client.execute(env=env, stdout=log_file, stderr=log_file)
        except CellExecutionError as exc:
            failed = next((i for i, c in enumerate(nb.cells) if _has_error(c)), None)
            where = "a cell" if failed is None else f"cell {failed + 1} ({sources[failed].splitlines()[0][:60]!r} ...)"
            return Result(error=f"{where} raised {exc.ename}: {strip_ansi(exc.evalue)}")
        except Exception as exc:
            return Result(error=f"{type(exc).__name__}: {exc}\n{_tail(log)}")
    text = "".join(
        out.get("text", "") for cell in nb.cells for out in cell.get("outputs", []) if out.get("output_type") == "stream"
    )
    marks = _parse_marks(text)
    if "elapsed" not in marks:
        return Result(error=f"the run cell printed no timing; outputs:\n{text}\n{_tail(log)}")
    result = Result(elapsed=float(marks["elapsed"]), cpu=_float(marks.get("cpu")), core=marks.get("core", "?"))
    timing = nb.cells[run_index].metadata.get("execution", {})
    with contextlib.suppress(KeyError, ValueError):
        wall = _kernel_time(timing["shell.execute_reply"]) - _kernel_time(timing["iopub.execute_input"])
        result.cell_extra = wall.total_seconds() - result.elapsed
    if config.core:
        result.error = _check_data(folder, config)
    return result


def run_script(config: Config, cells: list[str], workload: Workload, folder: Path) -> Result:
    script = folder / f"{workload.name}.py"
    script.write_text("\n\n".join([*cells, run_code(workload), CORE_CODE]))
    if config.core:
        cmd = [sys.executable, "-m", "coverage", "run", "--rcfile=.coveragerc"]
        cmd += ["--branch"] if config.branch else []
        cmd.append(script.name)
    else:
        cmd = [sys.executable, script.name]
    proc = subprocess.run(cmd, cwd=folder, env=clean_env(), capture_output=True, text=True, timeout=600)
    marks = _parse_marks(proc.stdout)
    if proc.returncode != 0 or "elapsed" not in marks:
        return Result(error=f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    result = Result(elapsed=float(marks["elapsed"]), cpu=_float(marks.get("cpu")), core=marks.get("core", "?"))
    if config.core:
        result.error = _check_data(folder, config)
    return result


def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    lines = [line for line in lines if "running over TCP without encryption" not in line]
    return "kernel log:\n  " + "\n  ".join(lines[-n:]) if lines else ""


def run_one(config: Config, cells: list[str], workload: Workload, folder: Path, setup: str = LOAD) -> Result:
    folder.mkdir(parents=True)
    if config.core:
        (folder / ".coveragerc").write_text(coveragerc(config))
    try:
        if config.kind == "notebook":
            return run_notebook(config, cells, workload, folder, setup)
        return run_script(config, cells, workload, folder)
    except Exception:
        return Result(error=traceback.format_exc())


def warm_up(folder: Path, setup: str) -> None:
    """One untimed kernel and one coverage.py process, so the first timed run is not the one that fills caches."""
    w = Workload("warmup", "", "sum(range(1000))")
    run_one(Config("warm-nb", "", "notebook", "ctrace"), ["x = 1"], w, folder / "nb", setup)
    run_one(Config("warm-py", "", "script", "ctrace"), ["x = 1"], w, folder / "py")


# -- reporting --------------------------------------------------------------------------------------


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def spread(values: list[float]) -> float | None:
    """(max - min) / median: how much one configuration's runs disagreed."""
    if len(values) < 2:
        return None
    return (max(values) - min(values)) / statistics.median(values)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def fmt(value: float | None, spec: str, suffix: str = "", width: int = 6) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{format(value, spec)}{suffix}".rjust(width)


def verdict(ok: bool | None) -> str:
    return "n/a " if ok is None else ("PASS" if ok else "MISS")


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def load_1min() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


class Report:
    def __init__(self, workloads: list[Workload], configs: list[Config], results: dict) -> None:
        self.workloads = workloads
        self.configs = configs
        self.keys = {c.key for c in configs}
        self.results = results
        self.ok = {k: [r for r in v if r.elapsed is not None and not r.error] for k, v in results.items()}

    def values(self, workload: str, key: str, clock: str = "wall") -> list[float]:
        runs = self.ok.get((workload, key), [])
        values = [r.elapsed if clock == "wall" else r.cpu for r in runs]
        return [v for v in values if v is not None]

    def median(self, workload: str, key: str, clock: str = "wall") -> float | None:
        return median(self.values(workload, key, clock))

    def ratio(self, workload: str, key: str, clock: str = "wall") -> float | None:
        baseline = next((c.baseline for c in self.configs if c.key == key), None)
        if baseline is None:
            return None  # a configuration this Python does not run (sysmon before 3.12)
        return ratio(self.median(workload, key, clock), self.median(workload, baseline, clock))

    def waiting_share(self) -> float:
        """The share of the timed wall-clock time in which the workload's thread was not running."""
        pairs = [(r.elapsed, r.cpu) for runs in self.ok.values() for r in runs if r.cpu is not None]
        wall = sum(w for w, _ in pairs)
        return 1 - sum(c for _, c in pairs) / wall if wall else 0.0

    def table(self) -> None:
        header = (
            f"{'workload':<9} {'configuration':<40} {'core':<6} {'median':>7} {'spread':>6} {'ratio':>6}"
            f"  {'cpu':>7} {'ratio':>6}  {'cell extra':>10}"
        )
        print(f"{'':<57} {'--- wall clock ---':^21}  {'--- CPU time ---':^15}")
        print(header)
        print("-" * len(header))
        for w in self.workloads:
            for i, config in enumerate(self.configs):
                runs = self.results[(w.name, config.key)]
                ok = self.ok[(w.name, config.key)]
                cores = sorted({r.core for r in ok})
                core = "-" if config.core is None else ("/".join(cores) or "?")
                if config.core and cores and cores != [config.core]:
                    core += "(!)"  # coverage.py measured with another core than the one configured
                extra = median([r.cell_extra for r in ok if r.cell_extra is not None])
                failed = f"  ({len(runs) - len(ok)} of {len(runs)} runs failed)" if len(ok) < len(runs) else ""
                sp = spread(self.values(w.name, config.key))
                print(
                    f"{w.name if i == 0 else '':<9} {config.label:<40} {core:<6}"
                    f" {fmt(self.median(w.name, config.key), '.3f', 's', 7)}"
                    f" {fmt(None if sp is None else sp * 100, '.0f', '%')}"
                    f" {fmt(self.ratio(w.name, config.key), '.2f', 'x')}"
                    f"  {fmt(self.median(w.name, config.key, 'cpu'), '.3f', 's', 7)}"
                    f" {fmt(self.ratio(w.name, config.key, 'cpu'), '.2f', 'x')}"
                    f"  {'' if extra is None else fmt(extra * 1000, '.0f', ' ms', 10)}{failed}"
                )
            if w is not self.workloads[-1]:
                print()
        print(
            "\n"
            "median: seconds of time.perf_counter around the workload call, inside the kernel (or script),\n"
            "  median over the runs; spread: (max - min) / median of those runs.\n"
            "ratio: median / median of the no-coverage run of the same kind (notebook rows against\n"
            "  'notebook, no coverage', .py rows against '.py script, no coverage').\n"
            "cpu: the same with time.thread_time (CPU time of the thread running the workload), which other\n"
            "  processes competing for the CPUs inflate far less than the wall clock.\n"
            "cell extra: how much longer the run cell took than the timed call (kernel timestamps of\n"
            "  execute_input and execute_reply): IPython's and nbcov's per-cell work, including nbcov's save."
        )

    def targets(self) -> None:
        print("Targets (from the issue), judged on the wall-clock median ratios; the same on CPU time in brackets:")
        print(f"  1. nbcov line coverage under sysmon <= {SYSMON_TARGET:.2f}x (Python 3.12/3.13)")
        for w in self.workloads:
            r = self.ratio(w.name, "nb-sysmon")
            if not HAS_SYSMON:
                print(f"     {w.name:<9} n/a (no sys.monitoring before Python 3.12)")
            elif r is None:
                print(f"     {w.name:<9} n/a (runs failed)")
            else:
                r_cpu = self.ratio(w.name, "nb-sysmon", "cpu")
                print(
                    f"     {w.name:<9} wall {r:5.2f}x {verdict(r <= SYSMON_TARGET)}"
                    f"   [cpu {fmt(r_cpu, '.2f', 'x', 5)} {verdict(None if r_cpu is None else r_cpu <= SYSMON_TARGET)}]"
                )
        if HAS_SYSMON and sys.version_info[:2] not in ((3, 12), (3, 13)):
            print(f"     (the target is stated for 3.12/3.13; this is {platform.python_version()})")

        print("  2. nbcov never slower than coverage.py measuring the same code as a .py file, same core")
        pairs = [
            ("nb-ctrace", "py-ctrace", "line ctrace"),
            ("nb-sysmon", "py-sysmon", "line sysmon"),
            ("nb-branch", "py-branch", "branch ctrace"),  # not named in the issue; same rule
        ]
        for nb_key, py_key, what in pairs:
            if nb_key not in self.keys:
                print(f"     {what:<13} n/a (no sys.monitoring before Python 3.12)")
                continue
            for w in self.workloads:
                a, b = self.ratio(w.name, nb_key), self.ratio(w.name, py_key)
                if a is None or b is None:
                    print(f"     {what:<13} {w.name:<9} n/a (runs failed)")
                    continue
                a_cpu, b_cpu = self.ratio(w.name, nb_key, "cpu"), self.ratio(w.name, py_key, "cpu")
                cpu_ok = None if a_cpu is None or b_cpu is None else a_cpu <= b_cpu
                print(
                    f"     {what:<13} {w.name:<9} wall: nbcov {a:5.2f}x vs .py {b:5.2f}x {verdict(a <= b)}"
                    f"   [cpu: {fmt(a_cpu, '.2f', 'x', 5)} vs {fmt(b_cpu, '.2f', 'x', 5)} {verdict(cpu_ok)}]"
                )


# -- main -------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: nbody only, 3 repetitions")
    parser.add_argument("--repeat", type=int, help="repetitions (default 5, --quick 3)")
    parser.add_argument("--workload", action="append", choices=[w.name for w in WORKLOADS], help="only these")
    parser.add_argument(
        "--setup",
        default=LOAD,
        metavar="CODE",
        help=f"the first cell of the nbcov notebooks (default {LOAD!r}), e.g. to compare nbcov options",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    args = parser.parse_args()

    repeat = max(1, args.repeat or (3 if args.quick else 5))
    names = args.workload or (QUICK_WORKLOADS if args.quick else [w.name for w in WORKLOADS])
    workloads = [w for w in WORKLOADS if w.name in names]

    root = ensure_pyperformance()
    import coverage
    from coverage import core as coverage_core

    import nbcov

    configs = configurations()
    print(f"Python {platform.python_version()} ({sys.executable})")
    print(
        f"coverage {coverage.__version__} (C tracer {'available' if coverage_core.CTRACER_FILE else 'MISSING'}),"
        f" nbcov {nbcov.__version__}, pyperformance {importlib.metadata.version('pyperformance')}"
    )
    print(
        f"{len(workloads)} workload(s) x {len(configs)} configurations x {repeat} repetitions,"
        f" each run in a fresh kernel / process, configurations interleaved; {os.cpu_count()} CPUs,"
        f" load average {load_average()}"
    )
    if args.setup != LOAD:
        print(f"nbcov notebooks start with {args.setup!r} instead of {LOAD!r}")
    if not HAS_SYSMON:
        print("sys.monitoring needs Python 3.12+: the sysmon configurations are skipped.")
    print(flush=True)

    cells = {w.name: workload_cells(w, root) for w in workloads}
    results: dict[tuple[str, str], list[Result]] = {(w.name, c.key): [] for w in workloads for c in configs}
    tmp = Path(tempfile.mkdtemp(prefix="nbcov-bench-"))
    started = time.perf_counter()
    peak_load = load_1min()
    errors: set[str] = set()
    try:
        warm_up(tmp / "warmup", args.setup)
        for rep in range(repeat):
            for workload in workloads:
                # Rotate the order each repetition, so no configuration always runs right after another.
                shift = rep % len(configs)
                for config in configs[shift:] + configs[:shift]:
                    folder = tmp / f"rep{rep}" / workload.name / config.key
                    result = run_one(config, cells[workload.name], workload, folder, args.setup)
                    results[(workload.name, config.key)].append(result)
                    peak_load = max(peak_load, load_1min())
                    if result.error:
                        again = result.error in errors
                        errors.add(result.error)
                        print(
                            f"  ! {workload.name} / {config.label}: "
                            + ("the same error again" if again else result.error),
                            flush=True,
                        )
            print(f"  repetition {rep + 1}/{repeat} done ({time.perf_counter() - started:.0f} s)", flush=True)
    finally:
        if args.keep:
            print(f"(kept {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print()

    report = Report(workloads, configs, results)
    report.table()
    print()
    report.targets()
    print()
    print(f"Took {time.perf_counter() - started:.0f} s; load average at the end {load_average()}.")
    # The workload never waits, so wall time beyond its thread's CPU time is time it spent waiting for
    # a CPU that other processes had: the machine was busy and the wall clock is inflated (unevenly).
    waited = report.waiting_share()
    if waited > 0.03:
        print(
            f"WARNING: the machine was busy: the workloads spent {waited * 100:.0f}% of their wall-clock time"
            f" waiting for a CPU\n(1-minute load average up to {peak_load:.1f} on {os.cpu_count()} CPUs)."
            " The wall-clock ratios are noisy; trust the CPU-time\nratios, or run again on a quiet machine."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
