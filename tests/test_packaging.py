"""The package as users meet it: the wheel's contents and metadata, `python -m nbcov`."""

from __future__ import annotations

import email.parser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """nbcov's wheel, built from this checkout as `pip install .` builds it."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return zipfile.ZipFile(next(out.glob("nbcov-*.whl")))


def test_the_wheel_ships_the_license_the_html_assets_and_python_m(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert "nbcov/__main__.py" in names
    assert any(n.endswith(".css") for n in names) and any(n.endswith(".js") for n in names)


def test_a_plain_install_brings_pytest_for_covtest(wheel: zipfile.ZipFile) -> None:
    """`%%covtest` and `pytest --nbcov` need pytest; `pip install nbcov` alone must give it."""
    meta_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    meta = email.parser.Parser().parsestr(wheel.read(meta_name).decode())
    plain = [r for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r]
    assert any(r.replace(" ", "").startswith("pytest>=") for r in plain)
    assert meta["License-Expression"] == "MIT"
    assert {"Homepage", "Issues"} <= {url.split(",")[0] for url in meta.get_all("Project-URL") or []}
    assert "Programming Language :: Python :: 3.13" in (meta.get_all("Classifier") or [])


def test_python_m_nbcov_is_the_nbcov_command(tmp_path: Path) -> None:
    helped = subprocess.run([sys.executable, "-m", "nbcov", "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert helped.returncode == 0 and "usage: nbcov" in helped.stdout
    missing = subprocess.run([sys.executable, "-m", "nbcov", "report"], capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.startswith("nbcov: error: No coverage data file")
