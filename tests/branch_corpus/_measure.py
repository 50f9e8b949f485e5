"""Measure torture-corpus modules or stdlib modules (driven by their CPython tests) with one engine; print JSON.

Usage: python _measure.py MODE [corpus:NAME ...] [stdlib:MODULE=TESTMODULE ...] [bench:NAME=CALL ...]

MODE is one of: ctrace (coverage.py's C tracer), nbcov (the engine, markers included), nbcov-nomark
(the engine without markers), slow (the engine's exact slow path for every code object), ctrace-marked
(the C tracer on code compiled with markers). Prints {"files": {path: report}, "stats": {...}} where
report is coverage.py's JSON report entry (lines and branches) plus the raw recorded "arcs". A bench
target measures a pyperformance benchmark's source (copied into a temporary folder) running CALL.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    mode, targets = sys.argv[1], sys.argv[2:]
    import coverage

    from nbcov import engine

    bench_dir = tempfile.mkdtemp(prefix="nbcov-corpus-bench-")
    include, corpus, stdlib, benches = parse_targets(targets, bench_dir)
    os.environ["COVERAGE_CORE"] = "ctrace" if mode.startswith("ctrace") else ""
    if not os.environ["COVERAGE_CORE"]:
        del os.environ["COVERAGE_CORE"]
    os.environ["NBCOV_BRANCH_ENGINE"] = "coverage" if mode.startswith("ctrace") else "nbcov"
    cov = coverage.Coverage(data_file=None, branch=True, include=include, config_file=False)
    monitor_wanted = not mode.startswith("ctrace")
    if monitor_wanted:
        assert engine.install(cov, force_slow=(mode == "slow"), mark_imports=(mode == "nbcov"))
    elif mode == "ctrace-marked":
        from nbcov.engine.markers import install_import_markers

        install_import_markers(lambda path: path in include)
    cov.start()
    try:
        run_targets(corpus, stdlib, benches)
    finally:
        cov.stop()
    stats: dict = {"core": dict(cov.sys_info())["core"]}
    monitor = engine.active_monitor(cov)
    if monitor is not None:
        stats.update(monitor.stats)
        stats["unexpected"] = monitor.unexpected
        stats["slow_reasons"] = monitor.slow_reasons
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "report.json")
        with contextlib.redirect_stdout(io.StringIO()):
            cov.json_report(outfile=out)
        with open(out) as f:
            report = json.load(f)
    keys = ("executed_lines", "missing_lines", "excluded_lines", "executed_branches", "missing_branches")
    data = cov.get_data()
    files = {
        # Benchmarks live in a new temporary folder each run: name them by file name.
        (f"bench/{os.path.basename(path)}" if path.startswith(bench_dir) else path): {
            **{k: entry.get(k) for k in keys},
            "arcs": sorted(data.arcs(path) or []),
        }
        for path, entry in report["files"].items()
    }
    json.dump({"files": files, "stats": stats}, sys.stdout)


def parse_targets(
    targets: list[str], bench_dir: str
) -> tuple[list[str], list[str], list[tuple[str, str]], list[tuple[str, str]]]:
    """(files to measure, corpus modules, (stdlib module, its tests), (bench module, call)) of the arguments."""
    include: list[str] = []
    corpus: list[str] = []
    stdlib: list[tuple[str, str]] = []
    benches: list[tuple[str, str]] = []
    for target in targets:
        kind, _, name = target.partition(":")
        if kind == "bench":
            bench, _, call = name.partition("=")
            source = _bench_source(bench)
            path = os.path.join(bench_dir, f"bm_{bench}.py")
            with open(path, "w") as f:
                f.write(source)
            include.append(path)
            benches.append((f"bm_{bench}", call))
        elif kind == "corpus":
            corpus.append(name)
            include.append(os.path.join(HERE, f"{name}.py"))
        else:
            module, _, tests = name.partition("=")
            stdlib.append((module, tests))
            spec = importlib.util.find_spec(module)
            assert spec is not None and spec.origin
            include.append(spec.origin)
    sys.path.insert(0, HERE)
    sys.path.insert(0, bench_dir)
    return include, corpus, stdlib, benches


def run_targets(corpus: list[str], stdlib: list[tuple[str, str]], benches: list[tuple[str, str]]) -> None:
    """Run the targets once (a corpus module that already ran runs again, reloaded)."""
    for name in corpus:
        with contextlib.redirect_stdout(io.StringIO()):
            if name in sys.modules:
                importlib.reload(sys.modules[name])
            else:
                importlib.import_module(name)
    for module, call in benches:
        namespace: dict = {}
        with contextlib.redirect_stdout(io.StringIO()):
            exec(f"from {module} import *", namespace)
            exec(call, namespace)
    for module, tests in stdlib:
        importlib.import_module(module)
        suite = unittest.defaultTestLoader.loadTestsFromName(tests)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(suite)


def _bench_source(name: str) -> str:
    """A pyperformance benchmark's module source, without its pyperf command-line driver."""
    import pyperformance

    path = os.path.join(os.path.dirname(pyperformance.__file__), "data-files", "benchmarks", f"bm_{name}",
                        "run_benchmark.py")
    with open(path) as f:
        text = f.read()
    return text[: text.find("\nif __name__ ==")] + "\n"


if __name__ == "__main__":
    main()
