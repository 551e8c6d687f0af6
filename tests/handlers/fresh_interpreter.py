"""Run a probe script in a fresh interpreter, as a cold start sees the repository: what a
function's import leaves out can only be seen where nothing has imported it yet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def probe_output(probe: str, argument: str) -> list[str]:
    """The words `probe` prints, run with `argument` as `sys.argv[1]` in a new interpreter
    whose path holds the repository and its `handlers` directory (as the layer does)."""
    completed = subprocess.run(
        [sys.executable, "-c", probe, argument],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPOSITORY,
        env={
            "PYTHONPATH": os.pathsep.join([str(REPOSITORY), str(REPOSITORY / "handlers")]),
            "PATH": "",
        },
    )
    return completed.stdout.split()
