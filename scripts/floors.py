"""Print pip constraints that pin every direct dependency to the lowest version pyproject.toml allows.

`make test-floors` installs nbcov with them, so the ranges nbcov declares are the ranges it is tested
on (pip has no "lowest direct" resolution of its own). Only `>=` lower bounds are pinned; the test
extras keep their newest versions unless they are also runtime dependencies.
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
        if match:
            found[match[1]] = match[2]
    return found


if __name__ == "__main__":
    sys.stdout.write("".join(f"{name}=={version}\n" for name, version in floors().items()))
