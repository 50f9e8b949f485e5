"""The NBCOV_* contract between a runner and its kernels: what one side writes, the other reads back."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import make_notebook, nbcov_cli
from nbcov import contract, runner
from nbcov.contract import ContractError, KernelContract
from nbcov.session import Session

_TEXT = st.text(st.characters(blacklist_characters=os.pathsep + "\0", blacklist_categories=("Cs",)), min_size=1)
CONTRACTS = st.builds(
    KernelContract,
    data_file=st.none() | _TEXT,
    branch=st.none() | st.booleans(),
    source=st.lists(_TEXT, max_size=4).map(tuple),
    cell_contexts=st.booleans(),
    subprocess=st.booleans(),
    notebooks=st.lists(_TEXT, max_size=3).map(tuple),
    test_file=st.none() | _TEXT,
).flatmap(  # a piece needs the data file it is a piece of
    lambda c: st.just(c) if c.data_file is None else st.sampled_from([c, dataclasses.replace(c, piece=True)])
)
VARIABLES = (
    contract.DATA_FILE, contract.BRANCH, contract.SOURCE, contract.CELL_CONTEXTS, contract.SUBPROCESS, contract.PIECE,
    contract.NOTEBOOKS, contract.TEST_FILE,
)


@given(CONTRACTS)
def test_what_a_runner_writes_a_kernel_reads_back(written: KernelContract) -> None:
    env = written.to_env()
    assert set(env) <= set(VARIABLES) and all(isinstance(v, str) and v for v in env.values())
    assert KernelContract.from_env(env) == written


def test_a_kernel_nobody_configured_gets_the_defaults() -> None:
    assert KernelContract.from_env({}) == KernelContract()
    assert KernelContract.from_env({name: "" for name in VARIABLES}) == KernelContract()


def test_unset_fields_are_left_out_so_the_callers_environment_still_reaches_the_kernel() -> None:
    assert KernelContract().to_env() == {contract.CELL_CONTEXTS: "0", contract.SUBPROCESS: "0", contract.PIECE: "0"}


@pytest.mark.parametrize(
    "name, value, message",
    [
        (contract.BRANCH, "yes", "NBCOV_BRANCH='yes' is not 0 or 1"),
        (contract.BRANCH, "true", "NBCOV_BRANCH='true' is not 0 or 1"),
        (contract.CELL_CONTEXTS, "2", "NBCOV_CELL_CONTEXTS='2' is not 0 or 1"),
        (contract.SUBPROCESS, " 1", "NBCOV_SUBPROCESS=' 1' is not 0 or 1"),
        (contract.SOURCE, f"a{os.pathsep}{os.pathsep}b", "has an empty entry"),
    ],
)
def test_a_bad_value_is_one_line_naming_it(name: str, value: str, message: str) -> None:
    with pytest.raises(ContractError, match=f"^{name}=") as caught:
        KernelContract.from_env({name: value})
    assert message in str(caught.value) and "\n" not in str(caught.value)
    said: list[str] = []
    # A kernel still measures: the bad variable is said and read as unset, the others are kept.
    read = KernelContract.from_env({name: value, contract.DATA_FILE: "/d/.coverage"}, complain=said.append)
    assert read == KernelContract(data_file="/d/.coverage")
    assert said == [f"{caught.value}; it is ignored"]


@pytest.mark.parametrize(
    "fields",
    [
        {"source": (f"a{os.pathsep}b",)},
        {"source": ("",)},
        {"source": "mypkg"},  # a string is not a tuple of one path
        {"data_file": ""},
        {"data_file": "a\0b"},
        {"piece": True},  # a piece of no data file
        {"notebooks": (f"a{os.pathsep}b.ipynb",)},
        {"test_file": ""},
    ],
)
def test_a_value_the_kernel_could_not_read_back_is_refused_when_written(fields: dict[str, object]) -> None:
    with pytest.raises(ContractError):
        KernelContract(**fields)  # type: ignore[arg-type]


def test_the_runner_hands_its_kernels_the_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.BRANCH, "1")  # set by whoever started the runner: passed through when not set
    monkeypatch.delenv(contract.SOURCE, raising=False)
    config = runner.RunConfig(data_file=tmp_path / ".coverage", source=["pkg", "other"], cell_contexts=False)
    piece = tmp_path / ".coverage.nb0-x"
    env = runner._kernel_env(tmp_path / "nb.ipynb", piece, config)
    assert KernelContract.from_env(env) == KernelContract(
        data_file=str(piece), branch=True, source=("pkg", "other"), cell_contexts=False, subprocess=True
    )
    config.branch = False
    assert KernelContract.from_env(runner._kernel_env(tmp_path / "nb.ipynb", piece, config)).branch is False


def test_the_kernel_side_reads_the_contract_and_says_a_bad_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(contract.DATA_FILE, "/d/.coverage.nb1-x")
    monkeypatch.setenv(contract.CELL_CONTEXTS, "1")
    monkeypatch.setenv(contract.BRANCH, "on")
    session = Session(shell=None)
    assert session.contract == KernelContract(data_file="/d/.coverage.nb1-x", cell_contexts=True)
    assert capsys.readouterr().err == "nbcov: NBCOV_BRANCH='on' is not 0 or 1; it is ignored\n"


def test_nbcov_run_refuses_a_source_its_kernels_could_not_read(tmp_path: Path) -> None:
    make_notebook(tmp_path / "nb.ipynb", ["x = 1"])
    (tmp_path / ".coverage").write_bytes(b"kept")
    result = nbcov_cli("run", "nb.ipynb", "--source", f"a{os.pathsep}b", cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("nbcov: error: NBCOV_SOURCE:") and result.stderr.count("\n") == 1
    assert (tmp_path / ".coverage").read_bytes() == b"kept"  # refused before anything was written


def test_a_kernel_reads_the_running_test_from_the_runners_file(tmp_path: Path) -> None:
    assert KernelContract().running_test() is None  # not told of tests
    told = KernelContract(test_file=str(tmp_path / "test"))
    assert told.running_test() == ""  # no file yet (or the session is over): no test runs
    (tmp_path / "test").write_text("tests/test_nb.py::test_total[a b]\n")
    assert told.running_test() == "tests/test_nb.py::test_total[a b]"
