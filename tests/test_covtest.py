"""`%%covtest`, `nbcov.autoconfig` and who-tests-what, in real kernels."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from nbclient.exceptions import CellExecutionError

from conftest import cells_by_index, execute_notebook, make_notebook, nbcov_cli, report_json

CODE = "def classify(x):\n    if x > 0:\n        return 'pos'\n    elif x < 0:\n        return 'neg'\n    return 'zero'"
TESTS = """%%covtest
import pytest

@pytest.fixture
def three():
    return 3

def test_pos(three):
    assert classify(three) == 'pos'

@pytest.mark.parametrize('x', [-1, -2])
def test_neg(x):
    assert classify(x) == 'neg'

class TestZero:
    @pytest.mark.slow
    def test_zero(self):
        assert classify(0) == 'zero'
"""
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def outputs(nb, index: int) -> tuple[str, str]:
    """(text, html) of the outputs of cell `index` (1-based)."""
    text, html = "", ""
    for out in nb.cells[index - 1].outputs:
        text += out.get("text", "") + out.get("data", {}).get("text/plain", "")
        if out.get("output_type") == "error":
            text += "\n".join(out["traceback"])
        html += out.get("data", {}).get("text/html", "")
    return ANSI.sub("", text), html


def test_covtest_runs_the_cell_s_tests_with_coverage_and_contexts(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("def double(x):\n    if x is None:\n        return 0\n    return 2 * x\n")
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        ["import nbcov\nnbcov.autoconfig()", CODE + "\nfrom helper import double", TESTS + "\ndef test_double():\n    assert double(2) == 4\n"],
    )
    executed = execute_notebook(nb)
    text, html = outputs(executed, 3)
    assert "5 passed" in text
    # The inline report: the code under test (cell 2 and the module), not the test cell itself.
    assert "nbcov · 5 of 5 tests passed" in text and "nb.ipynb · cell 2" in text and "helper.py" in text
    assert "nb.ipynb · cell 3" not in text
    assert 'class="nbcov-summary"' in html and "helper.py" in html
    # helper.py misses line 3: it is annotated in the table, not as a cell
    cells = cells_by_index(report_json(tmp_path))
    assert cells[2]["executed_lines"] == [1, 2, 3, 4, 5, 6, 7]
    who = nbcov_cli("who", "nb.ipynb:2:6", cwd=tmp_path).stdout.split()
    assert who == ["nb.ipynb::TestZero::test_zero"]
    assert nbcov_cli("who", "nb.ipynb:2:5", cwd=tmp_path).stdout.split() == ["nb.ipynb::test_neg[-1]", "nb.ipynb::test_neg[-2]"]
    ran = nbcov_cli("who", "--test", "nb.ipynb::test_double", cwd=tmp_path).stdout
    assert "helper.py: 2, 4" in ran
    assert nbcov_cli("who", "--redundant", cwd=tmp_path).stdout.split() == ["nb.ipynb::test_neg[-1]", "nb.ipynb::test_neg[-2]"]


def test_failures_report_and_raise_on_error(tmp_path: Path) -> None:
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        [
            "import nbcov\nnbcov.autoconfig(raise_on_error=True)",
            CODE,
            "%%covtest\ndef test_ok():\n    assert classify(1) == 'pos'\n\ndef test_bad():\n    value = classify(0)\n    assert value == 'pos'",
        ],
    )
    with pytest.raises(CellExecutionError) as failure:
        execute_notebook(nb)
    message = ANSI.sub("", str(failure.value))
    assert "1 of 2 tests failed: nb.ipynb::test_bad" in message
    executed = failure.value  # the notebook object is not returned on failure: re-run allowing errors
    nb2 = execute_notebook(nb, allow_errors=True)
    text, html = outputs(nb2, 3)
    assert "AssertionError: assert 'zero' == 'pos'" in text  # pytest's rewritten assert
    assert "nb.ipynb · cell 3:7" in text  # failure location named by the cell, not a temp file
    assert "ipykernel_" not in text
    assert "1 of 2 tests passed" in text and "nb.ipynb · cell 2" in html  # the report is still shown
    assert executed is not None


def test_pytest_arguments_pass_through_and_old_tests_are_cleaned(tmp_path: Path) -> None:
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        [
            "%load_ext nbcov",
            CODE,
            "%%covtest -k neg\ndef test_old():\n    pass\n\ndef test_neg():\n    assert classify(-1) == 'neg'",
            "%%covtest -v\ndef test_new():\n    assert classify(0) == 'zero'",
        ],
    )
    executed = execute_notebook(nb)
    first, _ = outputs(executed, 3)
    assert "1 passed, 1 deselected" in first
    second, _ = outputs(executed, 4)
    assert "nb.ipynb::test_new PASSED" in second
    assert "test_old" not in second and "test_neg" not in second  # cleaned before the cell ran


def test_show_all_includes_the_test_cell(tmp_path: Path) -> None:
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        ["import nbcov\nnbcov.autoconfig(show='all')", CODE, "%%covtest\ndef test_pos():\n    assert classify(1) == 'pos'"],
    )
    text, _ = outputs(execute_notebook(nb), 3)
    assert "nb.ipynb · cell 2" in text and "nb.ipynb · cell 3" in text


def test_coverage_only_while_tests_run(tmp_path: Path) -> None:
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        [
            "import nbcov\nnbcov.autoconfig(coverage='tests')",
            CODE,
            "classify(5)  # runs unmeasured",
            "%%covtest\ndef test_neg():\n    assert classify(-1) == 'neg'",
        ],
    )
    execute_notebook(nb)
    cells = cells_by_index(report_json(tmp_path))
    assert cells[2]["not_measured_lines"] == [1]  # the def ran before measurement: never "missed"
    assert cells[2]["executed_lines"] == [2, 4, 5]
    assert cells[2]["missing_lines"] == [3, 6]
    assert 3 not in cells  # the unmeasured call is not reported


def test_autoconfig_without_coverage_and_twice(tmp_path: Path) -> None:
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        [
            "import nbcov\nnbcov.autoconfig(coverage=False)\nnbcov.autoconfig(coverage=False, addopts='-q')",
            CODE,
            "%%covtest\ndef test_pos():\n    assert classify(1) == 'pos'",
        ],
    )
    text, html = outputs(execute_notebook(nb), 3)
    assert "1 passed" in text and html == ""
    assert not (tmp_path / ".coverage").exists()


@pytest.mark.slow  # two kernels and twelve `nbcov who` processes
@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is Python 3.12+")
def test_per_test_contexts_are_exact_under_sysmon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {}
    for core in ("ctrace", "sysmon"):
        monkeypatch.setenv("COVERAGE_CORE", core)
        folder = tmp_path / core
        nb = make_notebook(folder / "nb.ipynb", ["%load_ext nbcov", CODE, TESTS])
        text, _ = outputs(execute_notebook(nb), 3)
        assert ("sys.monitoring" if core == "sysmon" else "the C tracer") in text  # the report says which core measured
        answers[core] = [nbcov_cli("who", f"nb.ipynb:2:{line}", cwd=folder).stdout for line in range(1, 7)]
    assert answers["sysmon"] == answers["ctrace"]
    assert answers["sysmon"][1].split() == [
        "nb.ipynb::TestZero::test_zero", "nb.ipynb::test_neg[-1]", "nb.ipynb::test_neg[-2]", "nb.ipynb::test_pos",
    ]


def test_asserts_are_rewritten_in_covtest_cells_only(tmp_path: Path) -> None:
    nb = make_notebook(
        tmp_path / "nb.ipynb",
        [
            "%load_ext nbcov",
            "# a comment first: pytest's added imports once broke such cells\nimport sys\nplain = sys.modules['__main__']",
            "try:\n    assert 1 == 2\nexcept AssertionError as e:\n    print('plain:', repr(str(e)))",
            "%%covtest\n# comment first here too\ndef test_eq():\n    assert [1, 2] == [1, 3]",
        ],
    )
    executed = execute_notebook(nb)
    assert "plain: ''" in outputs(executed, 3)[0]  # the notebook's own code keeps plain asserts
    text, _ = outputs(executed, 4)
    assert "assert [1, 2] == [1, 3]" in text and "At index 1 diff: 2 != 3" in text
