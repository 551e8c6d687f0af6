"""The offline program run reports a failure once: as ProgramFailedError, not per output future."""

from __future__ import annotations

import asyncio
import gc
import logging
import warnings

import pytest

from fleetctl.exceptions import ProgramFailedError
from fleetctl.mocked_program import ProgramEventLoop, run_program

STACK_FILE = 'config:\n  pulumi:disable-default-providers: ["*"]\n'


def test_a_failed_run_leaves_no_unretrieved_future_to_report(
    tmp_path, caplog: pytest.LogCaptureFixture
):
    # GIVEN a program whose resource registration fails (no provider, defaults disabled)
    failing, passing = tmp_path / "failing", tmp_path / "passing"
    for project, program in ((failing, "aws.s3.Bucket('orphan')"), (passing, "")):
        project.mkdir()
        (project / "__main__.py").write_text(f"import pulumi_aws as aws\n{program}\n")
        (project / "Pulumi.dev.yaml").write_text(STACK_FILE)
    # WHEN it runs a few times, then another program runs (Pulumi's runtime lets go of the
    # earlier runs' futures) and the leftovers are garbage-collected
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        for _ in range(3):
            with pytest.raises(ProgramFailedError, match="'orphan'"):
                run_program("dev", failing)
            gc.collect()
        run_program("dev", passing)
        gc.collect()
    # THEN the failure was raised once and asyncio reported nothing about its output futures
    assert [record.getMessage() for record in caplog.records if record.name == "asyncio"] == []


def test_a_failed_run_leaves_no_pending_task_to_report(caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a run's loop with a task waiting on an output that never resolves, as the applies
    # waiting on one that raised are, when the run fails
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        with pytest.raises(ProgramFailedError), ProgramEventLoop() as program_loop:
            never_resolved = program_loop.loop.create_future()
            waiting = program_loop.loop.create_task(_wait_for(never_resolved))
            program_loop.loop.run_until_complete(asyncio.sleep(0))
            raise ProgramFailedError("stopped in an apply", [])
        # WHEN the run's loop is closed and the task collected
        del waiting, never_resolved
        gc.collect()
    # THEN asyncio reported nothing about it
    assert [record.getMessage() for record in caplog.records if record.name == "asyncio"] == []


def test_a_failed_run_leaves_no_unstarted_apply_to_warn_when_collected() -> None:
    # GIVEN a run's loop with an apply's task created but not yet started when the run fails, as
    # the applies scheduled in the failing run's last loop iteration are
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        with pytest.raises(ProgramFailedError), ProgramEventLoop() as program_loop:
            unstarted = program_loop.loop.create_task(_wait_for(program_loop.loop.create_future()))
            raise ProgramFailedError("stopped in an apply", [])
        # WHEN the failure's leftovers are garbage-collected, later (the test that kept the
        # failure's exception lets go of them only when it ends)
        del unstarted
        gc.collect()
    # THEN no coroutine warns that it was never awaited
    assert [str(warning.message) for warning in caught] == []


async def _wait_for(future: asyncio.Future[None]) -> None:
    await future
