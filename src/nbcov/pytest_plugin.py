"""The pytest plugin: `pytest --nbcov` runs notebooks as tests, their coverage joined to pytest-cov's."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    # Imported where used: pytest loads this plugin in every run in an environment with nbcov, and
    # the runner brings nbclient and nbformat (with jsonschema: up to seconds) that only --nbcov needs.
    from nbcov import runner

_counter = itertools.count()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nbcov", "coverage of notebook cells")
    group.addoption("--nbcov", action="store_true", help="collect .ipynb files as tests and measure their cells")
    group.addoption("--nbcov-timeout", type=float, default=None, metavar="S", help="seconds a cell may run (default 600)")
    group.addoption(
        "--nbcov-kernels", action="store_true",
        help="measure the kernels other plugins start (nbmake, nbval, testbook); with pytest-cov, one report",
    )
    parser.addini("nbcov_timeout", "seconds a notebook cell may run under --nbcov", default="600")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Any:
    if parent.config.getoption("nbcov") and file_path.suffix == ".ipynb" and ".ipynb_checkpoints" not in file_path.parts:
        return NotebookFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if not (config.getoption("nbcov") or config.getoption("nbcov_kernels")):
        return
    controller = _pytest_cov(config)
    if controller is not None:
        # pytest-cov reports with a Coverage object it creates but has not used yet: naming the plugin
        # there lets its report show notebook cells (their data joins through its combine).
        for cov in (getattr(controller, "combining_cov", None), getattr(controller, "cov", None)):
            if cov is not None:
                plugins = list(cov.get_option("run:plugins") or [])
                if "nbcov" not in plugins:
                    cov.set_option("run:plugins", [*plugins, "nbcov"])
    from nbcov.contract import ContractError

    try:
        run_config = config.stash[_CONFIG] = _run_config(config, controller)
    except ContractError as exc:  # e.g. a --cov path the kernels could not be handed
        raise pytest.UsageError(f"--nbcov: {exc}") from None
    if config.getoption("nbcov_kernels"):
        config.stash[_KERNELS] = _KernelsPlugin(config, run_config)
        config.pluginmanager.register(config.stash[_KERNELS], "nbcov-kernels")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Without pytest-cov, combine the kernels' data into the data file, as `nbcov run` does."""
    config = session.config
    if _pytest_cov(config) is not None or hasattr(config, "workerinput"):
        return
    run_config = config.stash.get(_CONFIG, None)
    if run_config is None:
        return
    from nbcov import runs

    # A half-written piece (a process killed while it saved) is left out, not the whole session's data.
    pieces = runs.usable_pieces(
        run_config.data_file, warn=lambda message: print(f"nbcov: warning: {message}", file=sys.stderr)
    )
    if pieces:
        from nbcov.combine import combine

        combine(run_config.data_file, pieces)  # as `nbcov run`: the data file is this session's data


_CONFIG = pytest.StashKey["runner.RunConfig"]()


class _KernelsPlugin:
    """`--nbcov-kernels`: every kernel this session starts (nbmake, nbval, testbook...) measures itself.

    Through the environment the kernels inherit (`attach.attach`, as `nbcov exec`), set for the whole
    session: their pieces lie beside pytest-cov's data file, so its combine (or, without it, ours)
    takes them. While a test's body runs, kernels record what it runs under the test's id.
    """

    def __init__(self, config: pytest.Config, run_config: runner.RunConfig) -> None:
        from nbcov import attach

        self.attachment = attach.attach(
            run_config.data_file, branch=run_config.branch, source=run_config.source, rcfile=run_config.rcfile,
            notebooks=attach.command_notebooks(config.args), test_contexts=True,
        )
        self._saved = {name: os.environ.get(name) for name in self.attachment.env}
        os.environ.update(self.attachment.env)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Any:
        if not isinstance(item, pytest.Function):
            # nbmake's and nbval's items run a notebook: its lines are executed, not tested (cell contexts).
            return (yield)
        self.attachment.set_test(item.nodeid)
        try:
            return (yield)
        finally:
            self.attachment.set_test("")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for reason in self.attachment.unmeasured():
            terminalreporter.write_line(f"nbcov: a kernel was not measured: {reason}")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.attachment.remove()


_KERNELS = pytest.StashKey[_KernelsPlugin]()


def _pytest_cov(config: pytest.Config) -> Any:
    plugin = config.pluginmanager.getplugin("_cov")
    return getattr(plugin, "cov_controller", None) if plugin is not None else None


def _run_config(config: pytest.Config, controller: Any) -> runner.RunConfig:
    """Kernels measure what pytest-cov measures (source, branch, configuration, data file)."""
    from nbcov import runner, runs

    timeout = config.getoption("nbcov_timeout") or float(config.getini("nbcov_timeout"))
    if controller is not None:
        cov = controller.cov
        data_file = Path(os.path.abspath(cov.config.data_file))
        rc = cov.config.config_file
        return runner.RunConfig(
            data_file=data_file,
            timeout=timeout,
            branch=bool(controller.cov_branch) if controller.cov_branch is not None else None,
            source=[s for s in (controller.cov_source or []) if s],
            rcfile=Path(rc).resolve() if rc else runs.kernel_rcfile(data_file),
            root=Path(str(config.rootpath)),
        )
    import coverage

    data_file = Path(os.path.abspath(str(coverage.Coverage().get_option("run:data_file") or ".coverage")))
    if not hasattr(config, "workerinput"):
        runs.start_over(data_file)
    return runner.RunConfig(
        data_file=data_file, timeout=timeout, rcfile=runs.kernel_rcfile(data_file), root=Path(str(config.rootpath))
    )


class NotebookFile(pytest.File):
    def collect(self) -> Any:
        yield NotebookItem.from_parent(self, name=self.path.name)


class NotebookFailure(Exception):
    def __init__(self, result: runner.NotebookResult) -> None:
        super().__init__(result.message)
        self.result = result


class NotebookItem(pytest.Item):
    """A whole notebook, executed in a fresh kernel measured from its start."""

    def runtest(self) -> None:
        from nbcov import runner
        from nbcov.notebook import NotebookError

        try:
            nb = runner.read_notebook(self.path)
        except NotebookError as exc:
            raise NotebookFailure(runner.NotebookResult(self.path, "invalid", message=str(exc))) from None
        if (nb.metadata.get("nbcov") or {}).get("skip") or (nb.metadata.get("execution") or {}).get("skip"):
            pytest.skip("skipped by the notebook's metadata")
        config = self.config.stash[_CONFIG]
        result = asyncio.run(runner.run_notebook(self.path, config, next(_counter)))
        if not result.ok:
            raise NotebookFailure(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if not isinstance(excinfo.value, NotebookFailure):
            return super().repr_failure(excinfo)
        result = excinfo.value.result
        where = f"cell {result.cell_index}" if result.cell_index else "the notebook"
        lines = [f"{self.path.name} · {where}: {result.status}"]
        if result.cell_source:
            lines += ["-" * 40, result.cell_source, "-" * 40]
        lines.append(result.message)
        return "\n".join(lines)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"notebook {self.name}"
