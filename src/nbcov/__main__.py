"""`python -m nbcov`: the `nbcov` command, for environments whose scripts folder is not on PATH."""

import sys

from nbcov.cli import main

sys.exit(main())
