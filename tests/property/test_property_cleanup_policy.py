"""Property of the cleanup policy's way from the stack file to cleanup_manager
(`fleet_shared.cleanup_policy`): the program writes the policy it validated as JSON into
`CLEANUP_POLICY` and the function validates that JSON again with the same model; whatever policy
the program accepts, the function reads the very same policy, with the same deletions allowed."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from fleet_shared.cleanup_policy import ALL_RESOURCE_KINDS, CleanupPolicy

TAG_TEXT = st.text(min_size=0, max_size=12)
DAYS = st.integers(min_value=-1, max_value=36_501) | st.booleans()


@st.composite
def written_policies(draw: st.DrawFn) -> dict[str, Any]:
    """A policy as a stack file may write it: any subset of its keys, values in and out of their
    ranges."""
    written: dict[str, Any] = {}
    if draw(st.booleans()):
        written["resources"] = draw(st.lists(st.sampled_from(ALL_RESOURCE_KINDS), max_size=3))
    for key in (
        "snapshot_max_age_days",
        "volume_min_age_days",
        "keep_lambda_versions",
        "notice_days",
    ):
        if draw(st.booleans()):
            written[key] = draw(DAYS)
    if draw(st.booleans()):
        written["require_tags"] = draw(st.dictionaries(TAG_TEXT, TAG_TEXT, max_size=3))
    if draw(st.booleans()):
        written["keep_tag"] = draw(TAG_TEXT)
    if draw(st.booleans()):
        written["mode"] = draw(st.sampled_from(("notify", "delete")))
    return written


@given(written=written_policies())
def test_the_function_reads_the_very_policy_the_program_accepted(written: dict[str, Any]) -> None:
    # GIVEN a policy as written in a stack file, accepted by the program's validation
    try:
        accepted = CleanupPolicy.model_validate(written)
    except ValidationError:
        return
    # WHEN the program passes it as JSON and the function validates that again
    read = CleanupPolicy.model_validate_json(accepted.model_dump_json())
    # THEN the function reads the same policy: the same kinds, ages, tags and mode
    assert read == accepted
    assert read.deletes == accepted.deletes
