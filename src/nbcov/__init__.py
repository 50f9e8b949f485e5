"""nbcov: code coverage for Jupyter notebook cells (PYTEST_DONT_REWRITE)."""

# PYTEST_DONT_REWRITE (pytest's documented marker): pytest marks every package with a pytest plugin
# for assertion rewriting when it starts, and warns about one already imported, as nbcov always is in
# a measured kernel: every `%%ipytest` run would print "Module already imported so cannot be
# rewritten; nbcov". nbcov has no asserts for pytest to rewrite.

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def autoconfig(**options: Any) -> None:
    """Set nbcov up in the running notebook in one call: magics, assert rewriting, coverage.

    `nbcov.autoconfig(coverage=True, branch=None, source=None, subprocess=None, contexts=True, show="code",
    addopts=("-q", "--color=yes"), clean="[Tt]est*", raise_on_error=False, rewrite_asserts=True)`;
    see `nbcov.options.Options` and the README. Calling it again only updates the options.
    """
    from nbcov.magics import autoconfig as _autoconfig

    _autoconfig(**options)


def load_ipython_extension(shell: Any) -> None:
    """`%load_ext nbcov`: start measuring every cell run from now on, and add the `%nbcov` magic."""
    from nbcov.magics import load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    """`%unload_ext nbcov`: save, stop measuring and take nbcov's hooks out of the shell."""
    from nbcov.magics import unload

    unload(shell)


def coverage_init(reg: Any, options: dict[str, str]) -> None:
    """`plugins = nbcov` in a coverage.py configuration: report notebook cells measured by nbcov."""
    from nbcov.cov_plugin import NbcovPlugin

    # A configurer, not a file tracer: coverage.py asks it for file reporters of the files the data
    # file names it for, and it never slows measurement or gets disabled under `sysmon`.
    reg.add_configurer(NbcovPlugin())
