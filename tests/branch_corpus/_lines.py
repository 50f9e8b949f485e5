"""Line coverage of the torture corpus and stdlib modules (driven by their CPython tests); print JSON.

Usage: python _lines.py MODE [corpus:NAME ...] [stdlib:MODULE=TESTMODULE ...]  (targets as for _measure.py)

MODE events: a bare sys.monitoring tool that never disables an event records every line each code
object reports; prints the code objects where a reported line is missing from
`nbcov.engine.lines.lines_to_record` (must be none) and how many code objects reported all of theirs.
MODE ctrace / sysmon / nbcov: coverage.py (C tracer / its SysMonitor / nbcov's LineMonitor) runs the
targets twice, under contexts "first" and "second"; prints each file's lines per context.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from _measure import parse_targets, run_targets  # this folder is on sys.path: the script's own

HERE = os.path.dirname(os.path.abspath(__file__))


def events(include: list[str], corpus: list[str], stdlib: list[tuple[str, str]]) -> dict[str, Any]:
    from nbcov.engine.lines import lines_to_record

    mon = sys.monitoring
    tool = 4
    seen: dict[Any, set[int]] = {}
    wanted = set(include)

    def start(code: Any, offset: int) -> Any:
        if code.co_filename in wanted:
            mon.set_local_events(tool, code, mon.events.LINE)
        return mon.DISABLE

    def line(code: Any, number: int) -> None:
        seen.setdefault(code, set()).add(number)  # never DISABLE: every report of every line

    mon.use_tool_id(tool, "nbcov-test")
    mon.register_callback(tool, mon.events.PY_START, start)
    mon.register_callback(tool, mon.events.LINE, line)
    mon.set_events(tool, mon.events.PY_START)
    try:
        run_targets(corpus, stdlib, [])
    finally:
        mon.set_events(tool, 0)
        mon.free_tool_id(tool)
    unsafe = [
        f"{code.co_filename}:{code.co_firstlineno}:{code.co_name}: {sorted(lines - lines_to_record(code))}"
        for code, lines in seen.items()
        if not lines <= lines_to_record(code)
    ]
    complete = sum(1 for code, lines in seen.items() if lines == lines_to_record(code))
    return {"unsafe": unsafe, "codes": len(seen), "complete": complete}


def measure(mode: str, include: list[str], corpus: list[str], stdlib: list[tuple[str, str]]) -> dict[str, Any]:
    import coverage

    from nbcov import engine

    cov = coverage.Coverage(data_file=None, include=include, config_file=False)
    cov.set_option("run:core", "ctrace" if mode == "ctrace" else "sysmon")
    if mode == "nbcov":
        assert engine.install_lines(cov)
    cov.start()
    try:
        for context in ("first", "second"):
            cov.switch_context(context)
            if mode != "ctrace":
                engine.restart(cov)
            run_targets(corpus, stdlib, [])
    finally:
        cov.stop()
    data = cov.get_data()
    files = {}
    for path in sorted(data.measured_files()):
        by_context: dict[str, list[int]] = {}
        for number, contexts in data.contexts_by_lineno(path).items():
            for context in contexts:
                by_context.setdefault(context, []).append(number)
        files[path] = {c: sorted(lines) for c, lines in sorted(by_context.items())}
    return {"core": dict(cov.sys_info())["core"], "tracer": type(cov._collector.tracers[0]).__qualname__
            if cov._collector and cov._collector.tracers else None, "files": files}


def main() -> None:
    mode, targets = sys.argv[1], sys.argv[2:]
    include, corpus, stdlib, _benches = parse_targets(targets, HERE)
    result = events(include, corpus, stdlib) if mode == "events" else measure(mode, include, corpus, stdlib)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
