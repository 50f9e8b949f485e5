"""nbcov's branch engine (3.12/3.13): exactly coverage.py's C tracer's reports, at sys.monitoring speed.

The differential tests measure the same code in fresh processes with coverage.py's C tracer and with
the engine (its fast path with markers, and its slow path alone), and compare coverage.py's own JSON
report of every file: executed and missing lines, executed and missing branches.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path
from typing import Any

import pytest

from conftest import cells_by_index, execute_notebook, make_notebook, report_json
from nbcov import engine

HERE = Path(__file__).parent
CORPUS = HERE / "branch_corpus"
CORPUS_TARGETS = [f"corpus:{p.stem}" for p in sorted(CORPUS.glob("c_*.py"))]
STDLIB_TARGETS = [
    "stdlib:textwrap=test.test_textwrap",
    "stdlib:shlex=test.test_shlex",
    "stdlib:fractions=test.test_fractions",
    "stdlib:html.parser=test.test_htmlparser",
    "stdlib:colorsys=test.test_colorsys",
]
BENCH_TARGETS = [
    "bench:richards=Richards().run(1)",
    "bench:nbody=bench_nbody(1, 'sun', 2000)",
    "bench:raytrace=bench_raytrace(1, 12, 12, None)",
]
REPORT_KEYS = ("executed_lines", "missing_lines", "excluded_lines", "executed_branches", "missing_branches")

needs_engine = pytest.mark.skipif(not engine.SUPPORTED, reason="the engine measures on Python 3.12 and 3.13")


def measure(mode: str, *targets: str) -> dict[str, Any]:
    """Run tests/branch_corpus/_measure.py in a fresh process (see its docstring)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "NBCOV_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent / "src"), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, str(CORPUS / "_measure.py"), mode, *targets],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def report_differences(reference: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """Every (file, report key) where two runs disagree."""
    problems = []
    for path in sorted(set(reference["files"]) | set(other["files"])):
        a, b = reference["files"].get(path), other["files"].get(path)
        if a is None or b is None:
            problems.append(f"{path}: measured by only one engine")
            continue
        for key in REPORT_KEYS:
            if a[key] != b[key]:
                only_a = [x for x in a[key] if x not in b[key]]
                only_b = [x for x in b[key] if x not in a[key]]
                problems.append(f"{Path(path).name} {key}: ctrace only {only_a}, engine only {only_b}")
    return problems


@pytest.fixture(scope="module")
def corpus_runs() -> dict[str, dict[str, Any]]:
    return {mode: measure(mode, *CORPUS_TARGETS) for mode in ("ctrace", "nbcov", "slow")}


@needs_engine
def test_corpus_reports_equal_the_c_tracers(corpus_runs: dict[str, dict[str, Any]]) -> None:
    ref = corpus_runs["ctrace"]
    assert ref["stats"]["core"] == "CTracer"
    assert len(ref["files"]) == len(CORPUS_TARGETS)
    for mode in ("nbcov", "slow"):
        run = corpus_runs[mode]
        assert run["stats"]["core"] == engine.ENGINE_NAME
        assert run["stats"]["unexpected"] == []  # every event was foreseen by the analysis
        assert report_differences(ref, run) == [], mode


@needs_engine
def test_slow_path_replays_the_c_tracers_arcs(corpus_runs: dict[str, dict[str, Any]]) -> None:
    """The fallback records the C tracer's very arcs; only same-line arcs (which no report reads:
    coverage.py drops them for branch lines) may differ, from 3.12's legacy backward-jump events."""
    for path, ref in corpus_runs["ctrace"]["files"].items():
        slow = corpus_runs["slow"]["files"][path]
        strip = lambda arcs: sorted((a, b) for a, b in arcs if a != b)  # noqa: E731
        assert strip(slow["arcs"]) == strip(ref["arcs"]), path


@needs_engine
def test_fast_path_measures_nearly_everything(corpus_runs: dict[str, dict[str, Any]]) -> None:
    stats = corpus_runs["nbcov"]["stats"]
    assert stats["slow"] * 8 < stats["fast"], stats["slow_reasons"]
    assert stats["kept"] < 100  # branch events kept alive: a few, not one per loop iteration


@needs_engine
def test_stdlib_modules_and_benchmarks_equal_the_c_tracers() -> None:
    targets = [*STDLIB_TARGETS, *BENCH_TARGETS]  # pyperformance is in the test extras
    ref = measure("ctrace", *targets)
    run = measure("nbcov", *targets)
    assert len(ref["files"]) == len(targets)
    assert run["stats"]["unexpected"] == []
    assert report_differences(ref, run) == []


@needs_engine
def test_markers_change_no_arc_the_c_tracer_records() -> None:
    """The C tracer sees the same line events with and without markers: the same raw arcs."""
    targets = [*CORPUS_TARGETS, "stdlib:textwrap=test.test_textwrap"]
    plain, marked = measure("ctrace", *targets), measure("ctrace-marked", *targets)
    assert plain["files"].keys() == marked["files"].keys()
    for path, entry in plain["files"].items():
        assert marked["files"][path]["arcs"] == entry["arcs"], path


MARKED_MODULE = '''\
def pick(xs, limit):
    total = 0
    for x in xs:
        if x > limit:
            total += x
        total -= 1
    while total > 100:
        total //= 2
    return total


def fail(x):
    if x:
        y = 1
    return 1 / (x - x)
'''


@pytest.mark.unit
def test_markers_keep_behaviour(tmp_path: Path) -> None:
    """Marked code runs, traces, fails and shows its source exactly like unmarked code."""
    from nbcov.engine.markers import compile_marked, install_import_markers

    path = tmp_path / "marked_subject.py"
    path.write_text(MARKED_MODULE)
    undo = install_import_markers(lambda p: p == str(path))
    sys.path.insert(0, str(tmp_path))
    try:
        marked = importlib.import_module("marked_subject")
    finally:
        undo()
        sys.path.remove(str(tmp_path))
        sys.modules.pop("marked_subject", None)
    plain: dict[str, Any] = {}
    exec(compile(MARKED_MODULE, str(path), "exec"), plain)
    assert marked.pick.__code__.co_code != plain["pick"].__code__.co_code  # markers were compiled in
    assert compile_marked(MARKED_MODULE, str(path)).co_consts  # the same helper the hooks use

    def line_events(fn: Any, *args: Any) -> list[tuple[str, int]]:
        events: list[tuple[str, int]] = []

        def tracer(frame: Any, event: str, arg: Any) -> Any:
            if frame.f_code.co_name == fn.__name__:
                events.append((event, frame.f_lineno))
            return tracer

        sys.settrace(tracer)
        try:
            fn(*args)
        except ZeroDivisionError:
            pass
        finally:
            sys.settrace(None)
        return events

    for args in (([1, 5, 9], 4), ([], 0), ([300], 1)):
        assert marked.pick(*args) == plain["pick"](*args)
        assert line_events(marked.pick, *args) == line_events(plain["pick"], *args)  # what a debugger steps through
    assert line_events(marked.fail, 1) == line_events(plain["fail"], 1)
    assert inspect.getsource(marked.pick) == inspect.getsource(plain["pick"])

    def where(fn: Any) -> list[tuple[int, str | None]]:
        try:
            fn(0)
        except ZeroDivisionError as exc:
            return [(f.lineno, f.line) for f in traceback.extract_tb(exc.__traceback__)[1:]]
        raise AssertionError("no exception")

    assert where(marked.fail) == where(plain["fail"]) == [(15, "return 1 / (x - x)")]
    lines = lambda code: sorted({line for _, _, line in code.co_lines() if line})  # noqa: E731
    assert lines(marked.pick.__code__) == lines(plain["pick"].__code__)


@pytest.mark.unit
def test_markers_leave_multi_line_tests_alone() -> None:
    """A test spread over lines jumps from several lines: a marker on any of them would add a line event."""
    from nbcov.engine.markers import mark

    tree = mark(ast.parse("if (a and\n        b):\n    c = 1\nfor x in (\n  y):\n    pass\nif a:\n    c = 2\n"))
    first, loop, last = tree.body  # type: ignore[attr-defined]
    assert first.orelse == [] and loop.orelse == []
    assert isinstance(last.test, ast.UnaryOp) and isinstance(last.body[0], ast.Pass)


@pytest.mark.unit
def test_sketch_covers_coverage_branch_lines() -> None:
    """The cheap AST sketch must call relevant every line coverage.py's parser gives several exits."""
    from coverage.parser import PythonParser

    from nbcov.engine.relevance import Relevance

    sources = [p.read_text() for p in sorted(CORPUS.glob("c_*.py"))]
    for name in ("textwrap", "shlex", "fractions", "difflib", "ipaddress", "argparse", "html.parser"):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin
        sources.append(Path(spec.origin).read_text())
    sources.append("x = 0\ndef f(): return 1\nclass A: y = 1\n@f\nclass B(\n  A): pass\nx = 2\n")  # bodies on the header line
    for text in sources:
        parser = PythonParser(text=text)
        parser.parse_source()
        multi = {line for line, n in parser.exit_counts().items() if n > 1}
        sketch = Relevance(text).sketch()
        assert sketch is not None
        lines_of = {}
        for raw in range(1, text.count("\n") + 2):
            lines_of.setdefault(parser.first_line(raw), []).append(raw)
        for line in multi:
            for raw in lines_of.get(line, [line]):
                assert sketch.branch_line(raw), (line, raw, text.splitlines()[line - 1])


@pytest.mark.unit
@needs_engine
def test_decoder_agrees_with_dis() -> None:
    """Offsets, lines and jump targets as `dis` sees them, for every code object of real modules."""
    import dis
    import types

    from nbcov.engine.bytecode import decode

    def walk(code: types.CodeType) -> Any:
        yield code
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                yield from walk(const)

    paths = [*sorted(CORPUS.glob("c_*.py"))]
    for name in ("argparse", "difflib", "asyncio.tasks"):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin
        paths.append(Path(spec.origin))
    checked = 0
    for path in paths:
        for code in walk(compile(path.read_text(), str(path), "exec")):
            bc = decode(code)
            instructions = list(dis.get_instructions(code))
            assert bc.order == [i.offset for i in instructions]
            for i in instructions:
                if i.opcode in dis.hasjrel or i.opcode in dis.hasjabs:
                    assert bc.instrs[i.offset].target == i.argval, (path, code.co_name, i)
                    checked += 1
    assert checked > 1000


@pytest.mark.unit
def test_engine_choice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import coverage

    def decided(branch: bool = True, **kwargs: Any) -> bool:
        return engine.decide(coverage.Coverage(data_file=None, branch=branch, config_file=False, **kwargs))[0]

    monkeypatch.chdir(tmp_path)
    for name in ("COVERAGE_CORE", engine.ENV_VAR):
        monkeypatch.delenv(name, raising=False)
    assert decided() is engine.SUPPORTED  # auto: branches on 3.12/3.13 only
    assert decided(branch=False) is False  # line coverage stays with coverage.py's cores
    monkeypatch.setenv(engine.ENV_VAR, "coverage")
    assert decided() is False
    monkeypatch.setenv(engine.ENV_VAR, "auto")
    monkeypatch.setenv("COVERAGE_CORE", "sysmon")
    assert decided() is engine.SUPPORTED  # sysmon asks for sys.monitoring: coverage.py would fall back to ctrace
    monkeypatch.setenv("COVERAGE_CORE", "ctrace")
    assert decided() is False  # a tracer core the user picked is respected...
    monkeypatch.setenv(engine.ENV_VAR, "nbcov")
    assert decided() is engine.SUPPORTED  # ...unless the engine is asked for
    monkeypatch.delenv("COVERAGE_CORE")
    if engine.SUPPORTED:
        cov = coverage.Coverage(data_file=None, branch=True, config_file=False)
        cov.set_option("run:dynamic_context", "test_function")  # only coverage.py's cores can do this
        with pytest.warns(RuntimeWarning, match="dynamic_context"):
            assert engine.decide(cov)[0] is False
    monkeypatch.setenv(engine.ENV_VAR, "nonsense")
    with pytest.warns(RuntimeWarning, match="auto"):
        assert decided() is engine.SUPPORTED


SUBJECT = '''\
def f(x):
    if x > 0:
        return "pos"
    for i in range(x, 0):
        if i == -2:
            break
    return "neg"
'''


@needs_engine
def test_dynamic_contexts_record_every_arc_again(tmp_path: Path) -> None:
    """After a context switch every arc is recorded again (nbcov's per-test contexts rely on it)."""
    script = tmp_path / "ctx.py"
    (tmp_path / "subject_mod.py").write_text(SUBJECT)
    script.write_text(textwrap.dedent(f'''
        import json, sys, coverage
        sys.path.insert(0, {str(tmp_path)!r})
        from nbcov import engine
        cov = coverage.Coverage(data_file=None, branch=True, config_file=False, include=["*subject_mod.py"])
        use = sys.argv[1] == "nbcov"
        if use:
            assert engine.install(cov, mark_imports=True)
        cov.start()
        import subject_mod
        for ctx, args in (("a", (3, -5)), ("b", (3, 1, -1))):
            cov.switch_context(ctx)
            if use:
                engine.restart(cov)
            for x in args:
                subject_mod.f(x)
        cov.stop()
        data = cov.get_data()
        out = {{}}
        for ctx in ("a", "b"):
            data.set_query_contexts([ctx])
            path = [p for p in data.measured_files() if p.endswith("subject_mod.py")][0]
            out[ctx] = sorted((a, b) for a, b in data.arcs(path) if a != b and a > 0)
        print(json.dumps(out))
    '''))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "NBCOV_"))}
    results = {}
    for mode in ("ctrace", "nbcov"):
        if mode == "ctrace":
            env["NBCOV_BRANCH_ENGINE"] = "coverage"
        else:
            env["NBCOV_BRANCH_ENGINE"] = "nbcov"
        out = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        results[mode] = json.loads(out.stdout)
    # Arcs leaving the branch lines (2, 4, 5) decide every report: they must match per context.
    for ctx in ("a", "b"):
        keep = lambda arcs: sorted(tuple(a) for a in arcs if a[0] in (2, 4, 5))  # noqa: E731
        assert keep(results["nbcov"][ctx]) == keep(results["ctrace"][ctx]), ctx
    assert (2, 3) in map(tuple, results["nbcov"]["b"])  # seen again under "b" after "a"


@needs_engine
def test_source_and_omit_are_honoured(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def a(x):\n    if x:\n        return 1\n    return 2\n")
    (pkg / "b.py").write_text("def b(x):\n    return x\n")
    (tmp_path / "other.py").write_text("def o(x):\n    if x:\n        return x\n")
    (tmp_path / ".coveragerc").write_text("[run]\nbranch = true\nsource = pkg\nomit = */b.py\n")
    script = (
        "import json, coverage\nfrom nbcov import engine\ncov = coverage.Coverage(data_file=None)\n"
        "engine.install(cov)\ncov.start()\nfrom pkg.a import a\nfrom pkg.b import b\nfrom other import o\n"
        "a(1); b(2); o(3)\ncov.stop()\nprint(json.dumps([dict(cov.sys_info())['core'],"
        " sorted(p.rsplit('/', 2)[-2] + '/' + p.rsplit('/', 1)[-1] for p in cov.get_data().measured_files())]))"
    )
    answers = {}
    for choice in ("coverage", "nbcov"):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "NBCOV_"))}
        env["NBCOV_BRANCH_ENGINE"] = choice
        out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        answers[choice] = json.loads(out.stdout)
    assert answers["nbcov"] == [engine.ENGINE_NAME, answers["coverage"][1]]
    assert answers["coverage"][1] == ["pkg/__init__.py", "pkg/a.py"]


@needs_engine
def test_adversarial_hot_loop_costs_no_callbacks(tmp_path: Path) -> None:
    """An always-true `if` without `else` in a hot loop: its BRANCH event is off after one iteration."""
    (tmp_path / "hot_mod.py").write_text(
        "def hot(n):\n    t = 0\n    for i in range(n):\n        if i >= 0:\n            t += 1\n        t ^= 2\n    return t\n"
    )
    script = (
        "import json, sys, coverage\nsys.path.insert(0, '.')\nfrom nbcov import engine\n"
        "cov = coverage.Coverage(data_file=None, branch=True, config_file=False, include=['*hot_mod.py'])\n"
        "assert engine.install(cov)\ncov.start()\nimport hot_mod\nhot_mod.hot(100000)\ncov.stop()\n"
        "print(json.dumps(engine.active_monitor(cov).stats))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "NBCOV_"))}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert stats["slow"] == 0 and stats["unexpected"] == 0
    assert stats["kept"] <= 2


NOTEBOOK_CELLS = [
    "%load_ext nbcov",
    "import helper_mod\n\ndef classify(xs):\n    out = []\n    for x in xs:\n        if x > 2:\n            out.append(x)\n"
    "        out.append(-x)\n    return out",
    "classify([1, 5])\nfor v in range(3):\n    if v == 1: continue\n    if helper_mod.sign(v) > 0:\n        break",
    "n = 0\nwhile n < 3:\n    n += 1\nelse:\n    n = -n\ntry:\n    if n:\n        raise ValueError(n)\nexcept ValueError:\n    pass",
    "match n:\n    case 1 | 2 if n > 1:\n        k = 'a'\n    case int(m) if m < 0:\n        k = 'b'\n    case _:\n        k = 'c'",
    "%%time\ntotal = 0\nfor i in range(50):\n    if i % 3:\n        total += i",
    "def gen(k):\n    for i in range(k):\n        if i % 2:\n            yield i\nlist(gen(5))",
    "%nbcov status",
]


@needs_engine
def test_notebook_cells_same_as_with_the_c_tracer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = ("cell_index", *REPORT_KEYS)
    runs = {}
    for choice in ("coverage", "auto"):
        folder = tmp_path / choice
        folder.mkdir()
        (folder / ".coveragerc").write_text("[run]\nbranch = true\nsource = .\n")
        (folder / "helper_mod.py").write_text("def sign(x):\n    if x > 0:\n        return 1\n    return 0\n")
        monkeypatch.setenv(engine.ENV_VAR, choice)
        nb = execute_notebook(make_notebook(folder / "nb.ipynb", NOTEBOOK_CELLS))
        status = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
        report = report_json(folder)
        cells = cells_by_index(report)
        runs[choice] = {
            "status": status,
            "cells": [{k: cells[i].get(k) for k in keys} for i in sorted(cells)],
            "helper": {
                Path(name).name: {k: v for k, v in entry.items() if k in REPORT_KEYS}
                for name, entry in report["files"].items()
            },
        }
    assert "core: the C tracer" in runs["coverage"]["status"]
    assert "core: nbcov's branch engine" in runs["auto"]["status"]  # %nbcov status says which engine measured
    assert runs["auto"]["cells"] == runs["coverage"]["cells"]
    assert runs["auto"]["helper"] == runs["coverage"]["helper"]
    assert runs["auto"]["helper"]["helper_mod.py"]["executed_branches"] == [[2, 3], [2, 4]]  # imported, measured
    assert runs["auto"]["cells"][1]["executed_branches"]  # branches were measured at all
