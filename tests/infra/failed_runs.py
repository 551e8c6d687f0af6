"""Running a program that fails, and collecting what the failure leaves, in the test that ran it."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

import pytest

from fleetctl.exceptions import ProgramFailedError
from fleetctl.mocked_program import run_program


def failed_run(stack: str, project: Path) -> ProgramFailedError:
    """The failure of the program of `stack` in `project`.

    A run that fails in an output's apply leaves coroutines it never awaited, which Pulumi's
    runtime lets go of when the next program runs; collected in a later test, each warns there
    that it was never awaited. An empty program's run and a collection take them here, quietly.
    """
    with pytest.raises(ProgramFailedError) as raised:
        run_program(stack, project)
    empty = project / "empty"
    empty.mkdir()
    (empty / "__main__.py").write_text("")
    (empty / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        run_program(stack, empty)
        gc.collect()
    return raised.value
