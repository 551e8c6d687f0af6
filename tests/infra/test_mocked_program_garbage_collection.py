"""The offline run pauses automatic garbage collection and leaves it as it found it."""

from __future__ import annotations

import gc

from fleetctl.mocked_program import garbage_collection_paused


def test_collection_is_paused_during_a_run_and_resumes_after() -> None:
    # GIVEN automatic collection is on
    gc.enable()
    # WHEN a run is under way THEN it is off
    with garbage_collection_paused():
        assert not gc.isenabled()
    # AND once the run is over it is on again
    assert gc.isenabled()


def test_collection_switched_off_by_the_caller_stays_off() -> None:
    # GIVEN a caller that switched automatic collection off
    gc.disable()
    try:
        # WHEN a run starts and ends
        with garbage_collection_paused():
            pass
        # THEN collection is still off
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_collection_resumes_when_the_run_fails() -> None:
    # GIVEN automatic collection is on WHEN a run raises
    gc.enable()
    try:
        with garbage_collection_paused():
            raise RuntimeError("the program failed")
    except RuntimeError:
        pass
    # THEN collection is on again
    assert gc.isenabled()
