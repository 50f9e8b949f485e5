"""Print pip constraints that pin every direct dependency to the lowest version pyproject.toml allows.

`make test-floors` installs nbcov with them, so the ranges nbcov declares are the ranges it is tested
on (pip has no "lowest direct" resolution of its own). The bounds are read from pyproject.toml, so
raising a floor is one edit there. Every runtime dependency must have a `>=` bound; the test extras
keep their newest versions, except pytest (nbcov's pytest plugin supports its floor too).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_LOWER = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*.*?>=\s*([0-9][^,;\s]*)")


def floors(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """{distribution: lowest allowed version} for the runtime dependencies and pytest."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    # pytest is a dependency of the pytest plugin nbcov ships, so its floor is a supported version too.
    wanted += [r for r in project["optional-dependencies"]["test"] if r.strip().startswith("pytest>")]
    found = {}
    for requirement in wanted:
        match = _LOWER.match(requirement)
        if match is None:
            # A dependency without a floor would be tested only at its newest version.
            raise SystemExit(f"floors.py: {requirement!r} in pyproject.toml has no '>=' lower bound")
        found[match[1]] = match[2]
    return found


if __name__ == "__main__":
    sys.stdout.write("".join(f"{name}=={version}\n" for name, version in floors().items()))
