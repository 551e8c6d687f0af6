"""Behaviour of fleet_shared.state_table against moto DynamoDB, with a manual clock."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.parsers import ResponseParserError

from fleet_shared import state_table as state_table_module
from fleet_shared.clock import ManualClock
from fleet_shared.exceptions import (
    LockNotAcquiredError,
    RequestIdReusedError,
    RequestInProgressError,
    UnreadableRequestRecordError,
    UnreadableStateRecordError,
    UnreadableStateValueError,
)
from fleet_shared.later_answers import may_pass_on_retry
from fleet_shared.page_tokens import RepeatedPageTokenError
from fleet_shared.sessions import AccountSessions
from fleet_shared.state_table import StateTable, VersionedValue
from fleet_shared.timestamps import iso_z
from fleet_shared.unanswered_endpoints import EndpointNotAnsweringError, UnansweredEndpoints
from fleetctl.local_state_table import create_state_table as create_local_state_table
from tests.handlers.conftest import HUB_ACCOUNT_ID, REGION, START_TIME, STATE_TABLE_NAME
from tests.handlers.deadlines import LambdaTime, hang_every_attempt
from tests.handlers.faults import (
    answer_malformed,
    answer_the_same_page_token,
    fail_every_attempt,
    lose_first_answer,
)
from tests.handlers.unreadable_state_entries import (
    SECRET,
    UNREADABLE_SHAPES,
    UNREADABLE_VALUE_DATA,
    unreadable_entry,
    unreadable_value,
)

# Locks ---------------------------------------------------------------------------------------


def test_second_owner_is_refused_while_the_lease_runs(state_table: StateTable) -> None:
    # GIVEN a lock held by scaler-a
    assert state_table.acquire_lock("dev-apps", "scaler-a", lease_seconds=60)
    # WHEN scaler-b tries within the lease THEN it is refused
    assert not state_table.acquire_lock("dev-apps", "scaler-b", lease_seconds=60)


def test_expired_lease_lets_another_owner_in(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN a lock whose 60 s lease has run out (the owner crashed)
    state_table.acquire_lock("dev-apps", "scaler-a", lease_seconds=60)
    fake_clock.advance(61)
    # WHEN another owner asks THEN it gets the lock, and the former owner no longer has it
    assert state_table.acquire_lock("dev-apps", "scaler-b", lease_seconds=60)
    assert not state_table.acquire_lock("dev-apps", "scaler-a", lease_seconds=60)


def test_only_the_owner_releases_the_lock(state_table: StateTable) -> None:
    # GIVEN a lock held by scaler-a
    state_table.acquire_lock("dev-apps", "scaler-a", lease_seconds=60)
    # WHEN scaler-b releases it THEN nothing happens and scaler-b still cannot take it
    assert not state_table.release_lock("dev-apps", "scaler-b")
    assert not state_table.acquire_lock("dev-apps", "scaler-b", lease_seconds=60)
    # WHEN scaler-a releases it THEN scaler-b can take it
    assert state_table.release_lock("dev-apps", "scaler-a")
    assert state_table.acquire_lock("dev-apps", "scaler-b", lease_seconds=60)


def test_owner_renews_its_own_lease(state_table: StateTable, fake_clock: ManualClock) -> None:
    # GIVEN a lock renewed by its owner 50 s into a 60 s lease
    state_table.acquire_lock("dev-apps", "scaler-a", lease_seconds=60)
    fake_clock.advance(50)
    assert state_table.acquire_lock("dev-apps", "scaler-a", lease_seconds=60)
    # WHEN another owner asks after the first lease would have ended THEN it is still refused
    fake_clock.advance(20)
    assert not state_table.acquire_lock("dev-apps", "scaler-b", lease_seconds=60)


def test_a_lease_is_renewed_only_while_no_other_owner_took_the_lock(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN locks whose 60 s leases ran out: one nobody took since, one taken by scaler-b, and
    # one taken and released by scaler-b
    for name in ("untouched", "held", "taken-and-released"):
        assert state_table.acquire_lock(name, "spot-a", lease_seconds=60)
    fake_clock.advance(61)
    assert state_table.acquire_lock("held", "scaler-b", lease_seconds=60)
    assert state_table.acquire_lock("taken-and-released", "scaler-b", lease_seconds=60)
    assert state_table.release_lock("taken-and-released", "scaler-b")
    # WHEN spot-a renews each THEN only the untouched one is still its own, and now held again
    assert state_table.renew_lock("untouched", "spot-a", lease_seconds=60)
    assert not state_table.renew_lock("held", "spot-a", lease_seconds=60)
    assert not state_table.renew_lock("taken-and-released", "spot-a", lease_seconds=60)
    assert not state_table.acquire_lock("untouched", "scaler-b", lease_seconds=60)


@pytest.mark.parametrize(
    "expires_at",
    [
        None,
        {"S": "2025-06-02T09:05:00Z"},
        {"NULL": True},
        {"N": "253402300799"},
        {"N": "9e125"},
        {"N": str(int(START_TIME.timestamp()) + 900 + 61)},
    ],
    ids=[
        "no-expiry",
        "expiry-a-string",
        "expiry-null",
        "expiry-in-year-9999",
        "expiry-past-the-calendar",
        "expiry-past-the-longest-lease-and-skew",
    ],
)
def test_a_lock_item_no_holder_wrote_is_taken_and_reported_once_rather_than_held_for_good(
    state_table: StateTable,
    dynamodb_client: Any,
    expires_at: dict[str, Any] | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN a lock item that a hand edit or corruption left without a Number expires_at, or with
    # one further ahead than any holder's lease (900 s) and clock skew (60 s), which DynamoDB's
    # TTL never deletes in time and which no holder writes
    item = {"pk": {"S": "LOCK#dev-apps"}, "sk": {"S": "LOCK"}, "owner": {"S": SECRET * 10}}
    if expires_at is not None:
        item["expires_at"] = expires_at
    dynamodb_client.put_item(TableName=state_table.table_name, Item=item)
    # WHEN scaler-b takes the lock, releases it and takes it again
    # THEN it gets it (instead of the node group being locked until someone deletes the item),
    # with a lease that holds it against scaler-a
    with state_table.lock("dev-apps", "scaler-b", lease_seconds=60) as held:
        assert held.owner == "scaler-b"
        assert not state_table.acquire_lock("dev-apps", "scaler-a", lease_seconds=60)
    with state_table.lock("dev-apps", "scaler-b", lease_seconds=60):
        pass
    # AND the corrupt item is reported once, naming the lock and only a short prefix of its owner
    reports = [record.getMessage() for record in caplog.records]
    reports = [report for report in reports if "no holder" in report]
    assert len(reports) == 1
    assert "lock dev-apps taken from an item no holder wrote" in reports[0]
    assert SECRET * 3 not in reports[0]


def test_a_lock_is_held_through_the_longest_lease_and_no_longer_one_is_taken(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN a lock held with the longest lease, 900 s (the longest invocation)
    assert state_table.acquire_lock("report", "report-a", lease_seconds=900)
    # WHEN another owner asks 899 s later THEN it is still held
    fake_clock.advance(899)
    assert not state_table.acquire_lock("report", "report-b", lease_seconds=900)
    # AND a longer lease, which would read as an item no holder wrote, is refused
    with pytest.raises(ValueError, match="longer than 900 s"):
        state_table.acquire_lock("other", "report-b", lease_seconds=901)


def test_lock_context_raises_naming_the_holder(state_table: StateTable) -> None:
    # GIVEN a lock held by scaler-a
    state_table.acquire_lock("dev-apps", "scaler-a", lease_seconds=60)
    # WHEN scaler-b enters the lock context THEN LockNotAcquiredError names the holder
    with (
        pytest.raises(LockNotAcquiredError) as raised,
        state_table.lock("dev-apps", "scaler-b", lease_seconds=60),
    ):
        pytest.fail("the block must not run")
    assert raised.value.holder == "scaler-a"
    assert raised.value.expires_at is not None


def test_a_lock_taken_with_a_wait_is_tried_again_until_its_holder_releases_it(
    state_table: StateTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a lock held by report-a, which releases it during report-b's third wait
    state_table.acquire_lock("latest", "report-a", lease_seconds=60)
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            state_table.release_lock("latest", "report-a")

    monkeypatch.setattr(state_table_module.time, "sleep", wait)
    # WHEN report-b takes it, waiting up to 30 s THEN it holds it after the third wait
    with state_table.lock("latest", "report-b", lease_seconds=60, wait_seconds=30):
        assert not state_table.acquire_lock("latest", "report-c", lease_seconds=60)
    assert waits == [state_table_module.LOCK_POLL_SECONDS] * 3
    # AND with a wait shorter than the holder's, it gives up naming the holder
    state_table.acquire_lock("latest", "report-a", lease_seconds=60)
    with (
        pytest.raises(LockNotAcquiredError) as raised,
        state_table.lock("latest", "report-b", lease_seconds=60, wait_seconds=2),
    ):
        pytest.fail("the block must not run")
    assert raised.value.holder == "report-a"
    assert len(waits) == 5


def test_lock_context_releases_on_exception(state_table: StateTable) -> None:
    # GIVEN work inside the lock that fails
    with pytest.raises(ValueError), state_table.lock("dev-apps", "scaler-a", 60):
        raise ValueError("boom")
    # WHEN another owner asks THEN the lock is free
    assert state_table.acquire_lock("dev-apps", "scaler-b", lease_seconds=60)


def test_a_lock_whose_release_fails_leaves_the_blocks_outcome_and_frees_at_its_lease(
    state_table: StateTable, dynamodb_client: Any, fake_clock: ManualClock
) -> None:
    # GIVEN DynamoDB refusing every attempt to delete the lock when the block leaves
    fault = fail_every_attempt(dynamodb_client, "dynamodb", "DeleteItem")
    done: list[str] = []
    # WHEN work inside the lock succeeds, and other work inside it fails
    with state_table.lock("dev-apps", "scaler-a", 60):
        done.append("resized")
    with pytest.raises(ValueError, match="boom"), state_table.lock("dev-apps", "scaler-a", 60):
        raise ValueError("boom")
    # THEN the first block's outcome stands and the second's own error is the one raised, not
    # the failed release; the lock stays held until its lease runs out, then frees
    assert done == ["resized"]
    assert fault.attempts > 0
    assert not state_table.acquire_lock("dev-apps", "scaler-b", lease_seconds=60)
    fake_clock.advance(61)
    assert state_table.acquire_lock("dev-apps", "scaler-b", lease_seconds=60)


# Idempotency ---------------------------------------------------------------------------------


def run_once(table: StateTable, request_id: str, calls: list[str]) -> dict[str, Any]:
    """A handler body: acts and records the call unless the request is a repeat."""
    with table.idempotent("eks_scaler", request_id, ttl_seconds=3600) as request:
        if request.is_repeat:
            assert request.result is not None
            return request.result
        calls.append(request_id)
        result = {"status": "ok", "scaled": len(calls)}
        request.complete(result)
        return result


def test_repeated_request_returns_the_stored_result_without_acting(
    state_table: StateTable,
) -> None:
    # GIVEN a request that was completed once
    calls: list[str] = []
    first = run_once(state_table, "req-1", calls)
    # WHEN the same request id comes again
    second = run_once(state_table, "req-1", calls)
    # THEN the stored result is returned and the work ran once
    assert second == first == {"status": "ok", "scaled": 1}
    assert calls == ["req-1"]


def test_other_request_ids_and_expired_results_act_again(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN a completed request
    calls: list[str] = []
    run_once(state_table, "req-1", calls)
    # WHEN another id comes, and the first id again after its TTL
    run_once(state_table, "req-2", calls)
    fake_clock.advance(3601)
    run_once(state_table, "req-1", calls)
    # THEN each of them acted
    assert calls == ["req-1", "req-2", "req-1"]


def test_a_request_id_reused_for_another_request_is_refused_done_or_running(
    state_table: StateTable,
) -> None:
    # GIVEN request req-1 completed asking "a", and req-2 running asking "a"
    with state_table.idempotent("eks_scaler", "req-1", 3600, fingerprint="a") as done:
        done.complete({"scaled": 1})
    with state_table.idempotent("eks_scaler", "req-2", 3600, fingerprint="a"):
        # WHEN a request asking "b" comes under either id
        # THEN it is refused as a reused id, not answered as done nor as in progress
        for request_id in ("req-1", "req-2"):
            with (
                pytest.raises(RequestIdReusedError, match=f"request {request_id} of eks_scaler"),
                state_table.idempotent("eks_scaler", request_id, 3600, fingerprint="b"),
            ):
                pytest.fail("the block must not run")
    # AND the same request is a repeat with its result, and a record kept without a fingerprint
    # (written before, or by a caller that gives none) matches any request
    with state_table.idempotent("eks_scaler", "req-1", 3600, fingerprint="a") as repeat:
        assert repeat.result == {"scaled": 1}
    with state_table.idempotent("eks_scaler", "req-3", 3600) as unprinted:
        unprinted.complete({"scaled": 3})
    with state_table.idempotent("eks_scaler", "req-3", 3600, fingerprint="b") as repeat:
        assert repeat.result == {"scaled": 3}


@pytest.mark.parametrize(
    ("data", "problem"), UNREADABLE_VALUE_DATA.values(), ids=UNREADABLE_VALUE_DATA.keys()
)
def test_a_repeat_whose_completed_record_cannot_be_read_is_refused_never_run_again(
    state_table: StateTable, dynamodb_client: Any, data: dict[str, Any] | None, problem: str
) -> None:
    # GIVEN a completed request whose stored result a hand edit or corruption made unreadable
    calls: list[str] = []
    run_once(state_table, "req-1", calls)
    key = {"pk": {"S": "IDEMPOTENCY#eks_scaler"}, "sk": {"S": "req-1"}}
    item = dynamodb_client.get_item(TableName=state_table.table_name, Key=key)["Item"]
    item = {name: value for name, value in item.items() if name != "data"}
    dynamodb_client.put_item(
        TableName=state_table.table_name, Item={**item, **({"data": data} if data else {})}
    )
    # WHEN the same request id comes again, and its result is read without a claim
    with pytest.raises(UnreadableRequestRecordError) as repeated:
        run_once(state_table, "req-1", calls)
    with pytest.raises(UnreadableRequestRecordError) as read:
        state_table.completed_result("eks_scaler", "req-1")
    # THEN it is refused with an error naming the request and what is wrong, never the data,
    # and the work ran once; a repeat that needs no result (a delivery made) is a repeat still
    for error in (repeated.value, read.value):
        assert str(error) == (
            f"request req-1 of eks_scaler completed, but its recorded result cannot be read: "
            f"{problem}; it is not run again under this request id"
        )
        assert SECRET not in str(error)
    assert calls == ["req-1"]
    with state_table.idempotent("eks_scaler", "req-1", ttl_seconds=3600) as repeat:
        assert repeat.is_repeat


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        ({"S": SECRET * 20}, f"status '{SECRET}"),
        ({"S": "completed"}, "status 'completed' is neither"),
        ({"N": "1"}, "status (none) is neither"),
        (None, "status (none) is neither"),
    ],
    ids=["long-unknown", "lower-case", "a-number", "missing"],
)
def test_a_request_record_of_unknown_status_is_taken_over_and_reported_once(
    state_table: StateTable,
    dynamodb_client: Any,
    caplog: pytest.LogCaptureFixture,
    status: dict[str, str] | None,
    shown: str,
) -> None:
    # GIVEN a request's record whose status a hand edit or corruption made one the table never
    # writes, without an expiry (TTL never frees it), which read as in progress for good
    calls: list[str] = []
    run_once(state_table, "req-1", calls)
    key = {"pk": {"S": "IDEMPOTENCY#eks_scaler"}, "sk": {"S": "req-1"}}
    item = dynamodb_client.get_item(TableName=state_table.table_name, Key=key)["Item"]
    item = {name: value for name, value in item.items() if name not in {"status", "expires_at"}}
    dynamodb_client.put_item(
        TableName=state_table.table_name, Item={**item, **({"status": status} if status else {})}
    )
    # WHEN the same request id comes twice more
    with caplog.at_level(logging.WARNING, logger="fleet_shared.state_table"):
        first = run_once(state_table, "req-1", calls)
        second = run_once(state_table, "req-1", calls)
    # THEN the first takes the record over as a lapsed claim and runs (the work of a request is
    # made to be run again, as after an invocation Lambda killed), the second is its repeat;
    # the status is reported once, naming the field and a short prefix of its value
    assert calls == ["req-1", "req-1"]
    assert second == first == {"status": "ok", "scaled": 2}
    [report] = [record.getMessage() for record in caplog.records]
    assert "request eks_scaler/req-1 taken from a record whose " + shown in report
    assert SECRET * 20 not in report


def test_a_completed_result_is_read_without_a_claim_only_once_completed_and_until_it_expires(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN a request in progress
    with state_table.idempotent("backup_scheduler", "day-1", ttl_seconds=3600) as request:
        # WHEN its result is read THEN there is none yet
        assert state_table.completed_result("backup_scheduler", "day-1") is None
        request.complete({"copies": ["snap-1"]})
    # WHEN it is read once completed THEN it is the stored result, and reading claims nothing
    assert state_table.completed_result("backup_scheduler", "day-1") == {"copies": ["snap-1"]}
    with state_table.idempotent("backup_scheduler", "day-1", ttl_seconds=3600) as repeat:
        assert repeat.is_repeat
    # AND another request id, another scope, and the request past its TTL have none
    assert state_table.completed_result("backup_scheduler", "day-2") is None
    assert state_table.completed_result("eks_scaler", "day-1") is None
    fake_clock.advance(3601)
    assert state_table.completed_result("backup_scheduler", "day-1") is None


def test_a_request_is_in_progress_only_while_its_claim_is_held_and_unexpired(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN a request being processed
    with state_table.idempotent("router", "alert-1", 3600) as request:
        # WHEN it is asked about THEN it is in progress (another id, another scope are not)
        assert state_table.request_in_progress("router", "alert-1")
        assert not state_table.request_in_progress("router", "alert-2")
        assert not state_table.request_in_progress("eks_scaler", "alert-1")
        request.complete({"status": "sent"})
    # AND it no longer is once completed, nor is one whose claim was released
    assert not state_table.request_in_progress("router", "alert-1")
    with state_table.idempotent("router", "alert-2", 3600):
        pass
    assert not state_table.request_in_progress("router", "alert-2")
    # AND nor is one whose claim of 60 s expired (its invocation died holding it)
    with state_table.idempotent("router", "alert-3", 3600, in_progress_seconds=60):
        fake_clock.advance(61)
        assert not state_table.request_in_progress("router", "alert-3")


def test_concurrent_repeat_is_refused_while_in_progress(state_table: StateTable) -> None:
    # GIVEN a request still being processed
    with state_table.idempotent("eks_scaler", "req-1", ttl_seconds=3600) as first:
        assert not first.is_repeat
        # WHEN the same id arrives meanwhile THEN it is refused as in progress
        with (
            pytest.raises(RequestInProgressError),
            state_table.idempotent("eks_scaler", "req-1", ttl_seconds=3600),
        ):
            pytest.fail("the block must not run")
        first.complete({"status": "ok"})


def test_failed_request_releases_its_claim_for_a_retry(state_table: StateTable) -> None:
    # GIVEN a request whose work raised
    with (
        pytest.raises(RuntimeError),
        state_table.idempotent("eks_scaler", "req-1", ttl_seconds=3600),
    ):
        raise RuntimeError("EKS throttled")
    # WHEN it is retried THEN it acts again
    calls: list[str] = []
    run_once(state_table, "req-1", calls)
    assert calls == ["req-1"]


def test_a_claim_whose_release_fails_leaves_the_blocks_error_and_frees_at_its_expiry(
    state_table: StateTable, dynamodb_client: Any, fake_clock: ManualClock
) -> None:
    # GIVEN DynamoDB refusing every attempt to delete a claim
    fault = fail_every_attempt(dynamodb_client, "dynamodb", "DeleteItem")
    # WHEN the work of a claimed request fails
    # THEN its own error is the one raised, not the failed release (a caller that fails the
    # invocation on it, so the platform retries, would otherwise answer a botocore error)
    with (
        pytest.raises(RuntimeError, match="EKS throttled"),
        state_table.idempotent("eks_scaler", "req-1", ttl_seconds=3600, in_progress_seconds=60),
    ):
        raise RuntimeError("EKS throttled")
    assert fault.attempts > 0
    # AND the claim blocks a repeat until it expires, then the repeat acts
    fault.healed = True
    calls: list[str] = []
    with pytest.raises(RequestInProgressError):
        run_once(state_table, "req-1", calls)
    fake_clock.advance(61)
    run_once(state_table, "req-1", calls)
    assert calls == ["req-1"]


def test_dead_invocation_claim_is_taken_over_after_in_progress_seconds(
    state_table: StateTable, dynamodb_client: Any, fake_clock: ManualClock
) -> None:
    # GIVEN an IN_PROGRESS claim left by an invocation that timed out, in the documented layout
    dynamodb_client.put_item(
        TableName=state_table.table_name,
        Item={
            "pk": {"S": "IDEMPOTENCY#eks_scaler"},
            "sk": {"S": "req-1"},
            "status": {"S": "IN_PROGRESS"},
            "token": {"S": "dead-invocation"},
            "expires_at": {"N": str(int(fake_clock.now().timestamp()) + 60)},
        },
    )
    calls: list[str] = []
    # WHEN the same id comes within the claim THEN it is refused
    with pytest.raises(RequestInProgressError):
        run_once(state_table, "req-1", calls)
    # WHEN it comes after the claim expired THEN it acts
    fake_clock.advance(61)
    run_once(state_table, "req-1", calls)
    assert calls == ["req-1"]


def test_a_renewed_claim_blocks_a_repeat_past_its_first_expiry(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN a 45 s claim renewed by its invocation 40 s into it
    with state_table.idempotent(
        "eks_scaler", "i-1", ttl_seconds=3600, in_progress_seconds=45
    ) as claim:
        fake_clock.advance(40)
        assert claim.renew()
        # WHEN a repeat arrives 50 s after the claim was taken THEN it is refused
        fake_clock.advance(10)
        with pytest.raises(RequestInProgressError):
            run_once(state_table, "i-1", [])
        claim.complete({"status": "ok"})


def test_a_claim_is_renewed_only_while_no_other_invocation_took_it_over(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN two 45 s claims that lapsed: one nobody took since, one a repeat took over
    with (
        state_table.idempotent(
            "eks_scaler", "i-1", ttl_seconds=3600, in_progress_seconds=45
        ) as kept,
        state_table.idempotent(
            "eks_scaler", "i-2", ttl_seconds=3600, in_progress_seconds=45
        ) as lost,
    ):
        fake_clock.advance(46)
        with state_table.idempotent("eks_scaler", "i-2", ttl_seconds=3600) as repeat:
            assert not repeat.is_repeat
            # WHEN each first invocation renews its claim
            # THEN only the untaken one is still its own, and blocks a repeat again
            assert kept.renew()
            assert not lost.renew()
            with pytest.raises(RequestInProgressError):
                run_once(state_table, "i-1", [])
            repeat.complete({"status": "ok"})
        kept.complete({"status": "ok"})


def test_a_claim_taken_over_cannot_complete_over_the_invocation_that_took_it(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN a 45 s claim that lapsed and that a repeat took over
    with state_table.idempotent(
        "eks_scaler", "i-1", ttl_seconds=3600, in_progress_seconds=45
    ) as lapsed:
        fake_clock.advance(46)
        with state_table.idempotent("eks_scaler", "i-1", ttl_seconds=3600) as repeat:
            assert not repeat.is_repeat
            # WHEN the first invocation completes its request
            # THEN it is told another invocation has it, and its result is not stored
            with pytest.raises(RequestInProgressError):
                lapsed.complete({"status": "first"})
            with pytest.raises(RequestInProgressError):
                run_once(state_table, "i-1", [])
            # AND the invocation that took it over completes it with its own result
            repeat.complete({"status": "repeat"})
    assert run_once(state_table, "i-1", []) == {"status": "repeat"}


# Changes and cooldowns -----------------------------------------------------------------------


def test_no_cooldown_before_any_change(state_table: StateTable) -> None:
    # GIVEN a key never changed WHEN asked THEN no change time and no cooldown
    assert state_table.last_change_at("dev-apps/system") is None
    assert state_table.cooldown_remaining("dev-apps/system", 300) == 0


def test_cooldown_counts_down_from_the_last_change(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN a change recorded now
    state_table.record_change("dev-apps/system", {"desired": 3}, history_ttl_seconds=86400)
    assert state_table.last_change_at("dev-apps/system") == fake_clock.now()
    # WHEN time passes THEN the cooldown shrinks and ends
    assert state_table.cooldown_remaining("dev-apps/system", 300) == 300
    fake_clock.advance(120.5)
    assert state_table.cooldown_remaining("dev-apps/system", 300) == 180
    fake_clock.advance(200)
    assert state_table.cooldown_remaining("dev-apps/system", 300) == 0


def test_a_change_recorded_late_is_dated_and_expires_as_of_when_it_was_made(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN a change made 10 minutes ago, recorded only now, with a 1 h history TTL
    made_at = fake_clock.now() - timedelta(minutes=10)
    state_table.record_change("dev-apps/system", {"desired": 3}, 3600, changed_at=made_at)
    # WHEN the cooldown and the history are read
    # THEN the change is the latest, dated when it was made, and the cooldown counts from then
    assert state_table.last_change_at("dev-apps/system") == made_at
    assert state_table.cooldown_remaining("dev-apps/system", 900) == 300
    [change] = state_table.query_history("dev-apps/system", since=made_at)
    assert change.changed_at == made_at
    # WHEN 51 minutes more pass THEN its history entry has expired (an hour after it was made)
    fake_clock.advance(51 * 60)
    assert state_table.query_history("dev-apps/system", since=made_at) == []


def test_history_lists_changes_since_a_time_and_drops_expired_ones(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN three changes an hour apart, with a 2.5 h history TTL
    start = fake_clock.now()
    for desired in (1, 2, 3):
        state_table.record_change("dev-apps/system", {"desired": desired}, 9000)
        fake_clock.advance(3600)
    # WHEN history is queried THEN the changes come oldest first, from `since` on
    history = state_table.query_history("dev-apps/system", since=start + timedelta(minutes=30))
    assert [change.record for change in history] == [{"desired": 2}, {"desired": 3}]
    assert history[0].changed_at == start + timedelta(hours=1)
    # WHEN the first two have expired THEN only the last is listed, and LATEST never is
    fake_clock.advance(3600)
    assert [c.record for c in state_table.query_history("dev-apps/system", since=start)] == [
        {"desired": 3}
    ]
    latest = state_table.latest_change("dev-apps/system")
    assert latest is not None
    assert latest.record == {"desired": 3}


def test_changes_newest_first_reads_on_page_by_page_only_as_far_as_the_caller_goes(
    state_table: StateTable, dynamodb_client: Any, fake_clock: ManualClock
) -> None:
    # GIVEN 25 changes a minute apart (more than two pages of newest-first reads)
    for desired in range(25):
        state_table.record_change("dev-apps/system", {"desired": desired}, 86400)
        fake_clock.advance(60)
    pages: list[int] = []
    dynamodb_client.meta.events.register(
        "after-call.dynamodb.Query", lambda parsed, **_: pages.append(len(parsed["Items"]))
    )
    # WHEN the newest 3 are taken THEN they come newest first, from one short page
    changes = state_table.changes_newest_first("dev-apps/system")
    assert [next(changes).record["desired"] for _ in range(3)] == [24, 23, 22]
    assert len(pages) == 1
    # WHEN all are read THEN every change comes once, newest first, and LATEST is not among them
    assert [change.record["desired"] for change in changes] == list(range(21, -1, -1))
    assert sum(pages) == 25


def test_readable_history_returns_a_record_that_is_no_object_as_unreadable_and_reads_on(
    state_table: StateTable, dynamodb_client: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a change, then a history entry whose record is a JSON list (a hand edit), then
    # another change, a minute apart
    start = fake_clock.now()
    state_table.record_change("dev-apps/system", {"desired": 1}, 86400)
    fake_clock.advance(60)
    written_at = "2025-06-02T03:31:00.000000Z"
    dynamodb_client.put_item(
        TableName=state_table.table_name,
        Item={
            "pk": {"S": "STATE#dev-apps/system"},
            "sk": {"S": f"HISTORY#{written_at}"},
            "data": {"S": '["i-secret"]'},
            "changed_at": {"S": written_at},
        },
    )
    fake_clock.advance(60)
    state_table.record_change("dev-apps/system", {"desired": 2}, 86400)
    # WHEN its history is read by a reader that can go on without one record
    history = state_table.readable_history("dev-apps/system", start)
    # THEN both changes come, oldest first, and the list is named by key, time and what it is,
    # never its data; query_history refuses it
    assert [change.record for change in history.changes] == [{"desired": 1}, {"desired": 2}]
    [unreadable] = history.unreadable
    assert (unreadable.key, unreadable.changed_at) == ("dev-apps/system", written_at)
    assert unreadable.problem == "its data is a JSON list, not an object"
    assert "i-secret" not in str(unreadable)
    with pytest.raises(UnreadableStateRecordError):
        state_table.query_history("dev-apps/system", start)


def _write_between_two_changes(
    state_table: StateTable, dynamodb_client: Any, fake_clock: ManualClock, shape: Any
) -> str:
    """A change, a minute later a history entry of `shape`, a minute later another change, all
    of dev-apps/system; the entry's sort-key time."""
    state_table.record_change("dev-apps/system", {"desired": 1}, 86400)
    fake_clock.advance(60)
    written_at = iso_z(fake_clock.now(), "microseconds")
    dynamodb_client.put_item(
        TableName=state_table.table_name,
        Item=unreadable_entry("dev-apps/system", f"HISTORY#{written_at}", written_at, shape),
    )
    fake_clock.advance(60)
    state_table.record_change("dev-apps/system", {"desired": 2}, 86400)
    return written_at


@pytest.mark.parametrize(
    ("shape", "problem"), UNREADABLE_SHAPES.values(), ids=UNREADABLE_SHAPES.keys()
)
def test_every_reader_of_history_refuses_an_unreadable_entry_naming_its_key_and_time(
    state_table: StateTable,
    dynamodb_client: Any,
    fake_clock: ManualClock,
    shape: Any,
    problem: str,
) -> None:
    # GIVEN a history entry whose time or record cannot be read (a hand edit, corruption, an
    # older format) between two changes
    start = fake_clock.now()
    written_at = _write_between_two_changes(state_table, dynamodb_client, fake_clock, shape)
    # WHEN the history is read oldest first, or newest first
    # THEN each read raises the error its callers handle, naming the key and the entry's
    # sort-key time and what is wrong, never the bad value, instead of a KeyError,
    # ValueError or RecursionError that fails every reader's whole run
    expected = f"state record of dev-apps/system at {written_at}: {problem}"
    with pytest.raises(UnreadableStateRecordError) as oldest_first:
        state_table.query_history("dev-apps/system", start)
    with pytest.raises(UnreadableStateRecordError) as newest_first:
        list(state_table.changes_newest_first("dev-apps/system"))
    for error in (oldest_first.value, newest_first.value):
        assert str(error) == expected
        assert (error.key, error.changed_at, error.problem) == (
            "dev-apps/system",
            written_at,
            problem,
        )
        assert SECRET not in str(error)


@pytest.mark.parametrize(
    ("shape", "problem"), UNREADABLE_SHAPES.values(), ids=UNREADABLE_SHAPES.keys()
)
def test_readable_history_returns_an_unreadable_entry_as_unreadable_and_reads_on(
    state_table: StateTable,
    dynamodb_client: Any,
    fake_clock: ManualClock,
    shape: Any,
    problem: str,
) -> None:
    # GIVEN a history entry whose time or record cannot be read between two changes
    start = fake_clock.now()
    written_at = _write_between_two_changes(state_table, dynamodb_client, fake_clock, shape)
    # WHEN its history is read by a reader that can go on without one entry
    history = state_table.readable_history("dev-apps/system", start)
    # THEN both changes come, oldest first, and the entry is named by key, time and problem
    assert [change.record for change in history.changes] == [{"desired": 1}, {"desired": 2}]
    [unreadable] = history.unreadable
    assert (unreadable.key, unreadable.changed_at, unreadable.problem) == (
        "dev-apps/system",
        written_at,
        problem,
    )
    assert SECRET not in str(unreadable)


@pytest.mark.parametrize(
    ("shape", "problem"), UNREADABLE_SHAPES.values(), ids=UNREADABLE_SHAPES.keys()
)
def test_an_unreadable_latest_change_raises_naming_its_time_only_where_it_can_be_read(
    state_table: StateTable,
    dynamodb_client: Any,
    fake_clock: ManualClock,
    shape: Any,
    problem: str,
) -> None:
    # GIVEN a key's latest change entry whose time or record cannot be read
    written_at = iso_z(fake_clock.now(), "microseconds")
    dynamodb_client.put_item(
        TableName=state_table.table_name,
        Item=unreadable_entry("dev-apps/system", "LATEST", written_at, shape),
    )
    # WHEN its latest change, its time or its cooldown is read
    # THEN each raises the error its callers handle; it names the entry's time when its
    # changed_at is one (the latest entry's sort key holds none), never the bad value
    time_read = "changed_at" not in shape
    expected = (
        f"state record of dev-apps/system at {written_at}: {problem}"
        if time_read
        else f"state record of dev-apps/system: {problem}"
    )
    for read in (
        lambda: state_table.latest_change("dev-apps/system"),
        lambda: state_table.last_change_at("dev-apps/system"),
        lambda: state_table.cooldown_remaining("dev-apps/system", 600),
    ):
        with pytest.raises(UnreadableStateRecordError) as raised:
            read()
        assert str(raised.value) == expected
        assert raised.value.changed_at == (written_at if time_read else None)


@pytest.mark.parametrize(
    ("expires_at", "kept"),
    [
        ({"S": "1717300000"}, True),
        ({"NULL": True}, True),
        ({"N": "1e3"}, False),
        ({"N": "1717300000.5"}, False),
        # Within a lease of now: one further ahead is no holder's (LONGEST_LOCK_LEASE_SECONDS).
        ({"N": f"{int(START_TIME.timestamp()) + 100}.5"}, True),
    ],
    ids=["a-string", "a-null", "an-exponent", "past-decimal", "future-decimal"],
)
def test_an_expiry_dynamodb_ttl_reads_as_no_number_or_as_a_decimal_is_read_as_ttl_reads_it(
    state_table: StateTable,
    dynamodb_client: Any,
    fake_clock: ManualClock,
    expires_at: dict[str, Any],
    kept: bool,
) -> None:
    # GIVEN a saved value, a history entry and a lock whose expires_at was written by hand: not
    # a Number (DynamoDB's TTL ignores the item: it never expires) or a Number that is no whole
    # count of seconds (DynamoDB's TTL reads it as the number it is)
    key = {"pk": {"S": "STATE#dev-apps/system"}}
    written_at = iso_z(fake_clock.now(), "microseconds")
    for item in (
        {**key, "sk": {"S": "VALUE#previous_size"}, "data": {"S": '{"desired": 4}'}},
        {
            **key,
            "sk": {"S": f"HISTORY#{written_at}"},
            "data": {"S": '{"desired": 3}'},
            "changed_at": {"S": written_at},
        },
        {"pk": {"S": "LOCK#dev-apps"}, "sk": {"S": "LOCK"}, "owner": {"S": "scaler-a"}},
    ):
        dynamodb_client.put_item(
            TableName=state_table.table_name, Item={**item, "expires_at": expires_at}
        )
    # WHEN each is read
    value = state_table.get_value("dev-apps/system", "previous_size")
    history = state_table.query_history("dev-apps/system", fake_clock.now() - timedelta(days=1))
    # THEN each is kept or expired as DynamoDB's TTL treats it, instead of a KeyError or
    # ValueError failing every read of the key
    assert (value is not None) == kept
    assert (len(history) == 1) == kept
    # AND a lock whose expiry is a Number is taken once it passed, and refused naming its
    # holder before (moto, unlike DynamoDB, cannot compare a string with a number in the lock's
    # condition)
    if "N" not in expires_at:
        return
    if not kept:
        assert state_table.acquire_lock("dev-apps", "scaler-b", lease_seconds=60)
        return
    lock = state_table.lock("dev-apps", "scaler-b", lease_seconds=60)
    with pytest.raises(LockNotAcquiredError, match="scaler-a"), lock:
        pass


READERS_OF_QUERY_PAGES = {
    "query_history": lambda table, clock: table.query_history("dev-apps/system", clock.now()),
    "readable_history": lambda table, clock: table.readable_history("dev-apps/system", clock.now()),
    "changes_newest_first": lambda table, _: list(table.changes_newest_first("dev-apps/system")),
    "values_named": lambda table, _: table.values_named("dev-apps/system", "part#"),
}
"""The state table's reads that follow Query pages, each reading a node group's state."""


@pytest.mark.parametrize("reader", READERS_OF_QUERY_PAGES.values(), ids=READERS_OF_QUERY_PAGES)
def test_a_query_answering_a_last_evaluated_key_it_followed_fails_instead_of_asking_forever(
    state_table: StateTable,
    dynamodb_client: Any,
    fake_clock: ManualClock,
    reader: Callable[[StateTable, ManualClock], object],
) -> None:
    # GIVEN a node group's change and saved part, and DynamoDB (or a proxy replaying one answer)
    # answering every Query page with the same LastEvaluatedKey
    state_table.record_change("dev-apps/system", {"desired": 3}, 86400)
    state_table.put_value("dev-apps/system", "part#0", {"apps": 3})
    replayed = answer_the_same_page_token(
        dynamodb_client,
        "Query",
        "LastEvaluatedKey",
        {"pk": {"S": "STATE#dev-apps/system"}, "sk": {"S": "HISTORY#2025-06-02T03:30:00Z"}},
    )
    # WHEN the state is read page by page
    # THEN the read fails as a failed call naming Query and the repeated key, after asking for
    # the page it already followed once, instead of asking until Lambda ends the run
    with pytest.raises(RepeatedPageTokenError, match="Query answered the LastEvaluatedKey"):
        reader(state_table, fake_clock)
    assert replayed.pages == 2


# Saved values and dedup ----------------------------------------------------------------------


def test_saved_value_is_read_back_and_replaced(state_table: StateTable) -> None:
    # GIVEN a saved previous size WHEN it is replaced THEN the newest value is read back
    assert state_table.get_value("dev-apps/system", "previous_size") is None
    state_table.put_value("dev-apps/system", "previous_size", {"desired": 4})
    state_table.put_value("dev-apps/system", "previous_size", {"desired": 5})
    assert state_table.get_value("dev-apps/system", "previous_size") == {"desired": 5}


def test_saved_value_with_ttl_disappears_when_expired(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN a counter saved for 10 minutes
    state_table.put_value("spot/m7g.large", "interruptions", {"count": 2}, ttl_seconds=600)
    # WHEN 11 minutes pass (DynamoDB may not have deleted it yet) THEN it reads as absent
    fake_clock.advance(599)
    assert state_table.get_value("spot/m7g.large", "interruptions") == {"count": 2}
    fake_clock.advance(2)
    assert state_table.get_value("spot/m7g.large", "interruptions") is None


def test_values_named_alike_are_read_together_past_a_query_page_without_the_expired_ones(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN three values of 350 KB whose names share a prefix (together past a Query's 1 MB
    # page), one of them expiring, and a value of the same key named otherwise
    key = "cleanup_manager/notices/111111111111/2026-12-01"
    digests = {
        f"part#{index}": [f"{index}{number:015x}" for number in range(18_000)] for index in range(3)
    }
    for name, entries in digests.items():
        ttl = 60 if name == "part#1" else None
        state_table.put_value(key, name, {"resources": entries}, ttl_seconds=ttl)
    state_table.put_value(key, "other", {"resources": []})
    # WHEN they are read THEN all three come back whole, by name
    assert state_table.values_named(key, "part#") == {
        name: {"resources": entries} for name, entries in digests.items()
    }
    # WHEN one has expired (DynamoDB may keep the item for days) THEN it is left out
    fake_clock.advance(61)
    assert set(state_table.values_named(key, "part#")) == {"part#0", "part#2"}


def test_keys_holding_a_value_are_found_across_the_table_without_the_expired_ones(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN values named `open` under three keys of a prefix, one expiring, a value of another
    # name under the prefix and one of the same name under another prefix
    for key in ("scan/b", "scan/a", "scan/c"):
        state_table.put_value(key, "open", {}, ttl_seconds=60 if key == "scan/c" else None)
    state_table.put_value("scan/d", "closed", {})
    state_table.put_value("other/a", "open", {})
    # WHEN the keys holding `open` under the prefix are looked for THEN those three come back,
    # the Scan having reached the table's end
    assert state_table.keys_holding_value("open", "scan/") == (["scan/a", "scan/b", "scan/c"], None)
    # WHEN one has expired (DynamoDB may keep the item for days) THEN it is left out
    fake_clock.advance(61)
    assert state_table.keys_holding_value("open", "scan/")[0] == ["scan/a", "scan/b"]


def test_a_search_for_keys_told_to_stop_resumes_where_it_stopped_and_misses_none(
    state_table: StateTable,
) -> None:
    # GIVEN values named `open` under five keys
    expected = [f"scan/{letter}" for letter in "abcde"]
    for key in expected:
        state_table.put_value(key, "open", {})
    # WHEN a search reading one item a page is told to stop after each page, and each next one
    # starts after where the last stopped
    found: list[str] = []
    start_after = None
    searches = 0
    while searches < 3 * len(expected):
        searches += 1
        keys, start_after = state_table.keys_holding_value(
            "open", "scan/", start_after=start_after, page_items=1, go_on=lambda: False
        )
        found += keys
        if start_after is None:
            break
    # THEN every search stopped after one page, and together they found every key once
    assert start_after is None, "the searches never reached the table's end"
    assert searches >= len(expected)
    assert sorted(found) == expected


def test_a_value_is_replaced_only_if_unchanged_since_it_was_read(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN nothing saved, read by two writers
    key, name = "alert/abc123", "last_notice"
    assert state_table.get_versioned_value(key, name) is None
    # WHEN both write THEN only the first one's value is saved
    assert state_table.replace_value(key, name, {"episode": 0}, read=None, ttl_seconds=60)
    assert not state_table.replace_value(key, name, {"episode": 7}, read=None)
    first = state_table.get_versioned_value(key, name)
    assert first is not None and first.value == {"episode": 0}
    # WHEN two writers read that value and both replace it THEN the second, reading a value that
    # has changed since, writes nothing
    assert state_table.replace_value(key, name, {"episode": 1}, read=first, ttl_seconds=60)
    assert not state_table.replace_value(key, name, {"episode": 2}, read=first, ttl_seconds=60)
    assert state_table.get_value(key, name) == {"episode": 1}
    # WHEN the value has expired (DynamoDB may keep the item for days) THEN it counts as absent
    fake_clock.advance(61)
    assert state_table.get_versioned_value(key, name) is None
    assert state_table.replace_value(key, name, {"episode": 3}, read=None)
    assert state_table.get_value(key, name) == {"episode": 3}


@pytest.mark.parametrize("data", [None, {"N": "1717300000"}], ids=["no-data", "data-a-number"])
def test_a_value_stored_with_no_text_is_replaced_only_while_it_still_has_none(
    state_table: StateTable, dynamodb_client: Any, data: dict[str, Any] | None
) -> None:
    # GIVEN a saved value with no text (a hand edit, corruption), read by two writers
    key, name = "alert/abc123", "last_notice"
    dynamodb_client.put_item(
        TableName=state_table.table_name, Item=unreadable_value(key, name, data)
    )
    with pytest.raises(UnreadableStateValueError) as raised:
        state_table.get_versioned_value(key, name)
    read = VersionedValue({}, version=raised.value.version)
    # WHEN both replace it as they read it THEN only the first one's value is saved
    assert state_table.replace_value(key, name, {"episode": 0}, read=read)
    assert not state_table.replace_value(key, name, {"episode": 1}, read=read)
    assert state_table.get_value(key, name) == {"episode": 0}
    # WHEN it is gone THEN a replace of it as read writes nothing either
    state_table.delete_value(key, name)
    assert not state_table.replace_value(key, name, {"episode": 2}, read=read)
    assert state_table.get_versioned_value(key, name) is None


def test_values_named_alike_are_each_replaced_only_if_unchanged_since_they_were_read(
    state_table: StateTable,
) -> None:
    # GIVEN two parts of one record, read together by two writers
    key = "anomaly/open-series"
    state_table.put_value(key, "part#0", {"series": {"a": None}})
    state_table.put_value(key, "part#1", {"series": {"b": None}})
    read = state_table.versioned_values_named(key, "part#")
    assert {name: saved.value for name, saved in read.items()} == {
        "part#0": {"series": {"a": None}},
        "part#1": {"series": {"b": None}},
    }
    # WHEN the first writer replaces part 0 THEN the second, replacing part 0 as it read it,
    # writes nothing, and still replaces part 1, which nobody changed since
    assert state_table.replace_value(key, "part#0", {"series": {}}, read=read["part#0"])
    assert not state_table.replace_value(
        key, "part#0", {"series": {"c": None}}, read=read["part#0"]
    )
    assert state_table.replace_value(key, "part#1", {"series": {"d": None}}, read=read["part#1"])
    assert state_table.values_named(key, "part#") == {
        "part#0": {"series": {}},
        "part#1": {"series": {"d": None}},
    }


def test_a_value_a_writer_just_saved_is_its_read_for_the_next_replace_without_reading_it(
    state_table: StateTable,
) -> None:
    # GIVEN a value a writer saved, and that writer's own account of it (not read back)
    key, name = "anomaly/series", "open_episodes"
    saved = {"episodes": {}, "spans": {"k": {"start": "2025-06-02T03:00:00Z"}}}
    assert state_table.replace_value(key, name, saved, read=None)
    as_saved = VersionedValue.saved(saved)
    # WHEN the writer replaces it as it saved it THEN the replace goes through
    assert state_table.replace_value(key, name, {"episodes": {"k": {}}}, read=as_saved)
    # WHEN another writer changed it since THEN the same replace writes nothing
    assert not state_table.replace_value(key, name, {"episodes": {}}, read=as_saved)
    assert state_table.get_value(key, name) == {"episodes": {"k": {}}}


def test_claim_once_is_true_once_within_its_ttl_and_again_after(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN a dedup key claimed for 5 minutes
    assert state_table.claim_once("alert/abc123", ttl_seconds=300)
    # WHEN it is claimed again within the TTL THEN it is refused
    fake_clock.advance(299)
    assert not state_table.claim_once("alert/abc123", ttl_seconds=300)
    # WHEN the TTL has passed (item still present in the table) THEN it is claimed again
    fake_clock.advance(2)
    assert state_table.claim_once("alert/abc123", ttl_seconds=300)
    assert not state_table.claim_once("alert/abc123", ttl_seconds=300)


_VALUE_READERS: dict[str, Callable[[StateTable], object]] = {
    "get_value": lambda table: table.get_value("dev-apps/system", "sizes"),
    "get_versioned_value": lambda table: table.get_versioned_value("dev-apps/system", "sizes"),
    "values_named": lambda table: table.values_named("dev-apps/system", "si"),
    "versioned_values_named": lambda table: table.versioned_values_named("dev-apps/system", "si"),
}


@pytest.mark.parametrize("reader", _VALUE_READERS.values(), ids=_VALUE_READERS.keys())
@pytest.mark.parametrize(
    ("data", "problem"), UNREADABLE_VALUE_DATA.values(), ids=UNREADABLE_VALUE_DATA.keys()
)
def test_every_reader_of_saved_values_refuses_an_unreadable_value_naming_its_key_and_name(
    state_table: StateTable,
    dynamodb_client: Any,
    reader: Callable[[StateTable], object],
    data: dict[str, Any] | None,
    problem: str,
) -> None:
    # GIVEN a saved value whose data is missing, no string, no JSON or no JSON object (a hand
    # edit, corruption, an older format), written straight into the table
    dynamodb_client.put_item(
        TableName=state_table.table_name, Item=unreadable_value("dev-apps/system", "sizes", data)
    )
    # WHEN a reader of saved values reads it
    # THEN it raises the error callers isolate per target, naming the key, the value's name and
    # what is wrong, never the bad value, instead of a KeyError, TypeError, ValueError or
    # RecursionError that fails the caller's whole run
    with pytest.raises(UnreadableStateValueError) as raised:
        reader(state_table)
    assert (raised.value.key, raised.value.name) == ("dev-apps/system", "sizes")
    assert raised.value.problem == problem
    assert str(raised.value) == f"saved value sizes of dev-apps/system: {problem}"
    assert SECRET not in str(raised.value)
    # AND it carries the stored text, when there is one, as the version `replace_value` compares
    assert raised.value.version == (data or {}).get("S")


@pytest.mark.parametrize(
    ("data", "problem"), UNREADABLE_VALUE_DATA.values(), ids=UNREADABLE_VALUE_DATA.keys()
)
def test_readable_values_named_returns_an_unreadable_value_as_unreadable_and_reads_on(
    state_table: StateTable, dynamodb_client: Any, data: dict[str, Any] | None, problem: str
) -> None:
    # GIVEN a value that cannot be read between two readable values named alike
    state_table.put_value("dev-apps/system", "part#1", {"n": 1})
    dynamodb_client.put_item(
        TableName=state_table.table_name,
        Item=unreadable_value("dev-apps/system", "part#2", data),
    )
    state_table.put_value("dev-apps/system", "part#3", {"n": 3})
    # WHEN they are read by a reader that can go on without one value
    read = state_table.readable_values_named("dev-apps/system", "part#")
    # THEN both readable values come with their versions, and the other is named by key, name
    # and problem, never its data
    assert {name: value.value for name, value in read.values.items()} == {
        "part#1": {"n": 1},
        "part#3": {"n": 3},
    }
    assert state_table.replace_value(
        "dev-apps/system", "part#3", {"n": 4}, read=read.values["part#3"]
    )
    [(name, error)] = read.unreadable.items()
    assert (name, error.key, error.name, error.problem) == (
        "part#2",
        "dev-apps/system",
        "part#2",
        problem,
    )
    assert SECRET not in str(error)


# Writes whose answer was lost ----------------------------------------------------------------


@pytest.mark.usefixtures("no_retry_waits")
def test_a_once_claim_whose_answer_was_lost_is_still_the_first_claim(
    state_table: StateTable, dynamodb_client: Any
) -> None:
    # GIVEN DynamoDB applying the first claim of a key but its answer never arriving
    fault = lose_first_answer(dynamodb_client, "dynamodb", "PutItem")
    # WHEN the key is claimed (botocore sends the put again), then claimed again
    first = state_table.claim_once("report-ready#2025-06-02", ttl_seconds=3600)
    repeat = state_table.claim_once("report-ready#2025-06-02", ttl_seconds=3600)
    # THEN the first claim is the one that counts, as if its answer had arrived, and only the
    # repeat is refused
    assert fault.lost == 1
    assert (first, repeat) == (True, False)


@pytest.mark.usefixtures("no_retry_waits")
def test_a_request_whose_claims_answer_was_lost_acts_once_and_completes(
    state_table: StateTable, dynamodb_client: Any
) -> None:
    # GIVEN DynamoDB applying a request's IN_PROGRESS claim but its answer never arriving
    fault = lose_first_answer(dynamodb_client, "dynamodb", "PutItem", body_with=(b"IN_PROGRESS",))
    calls: list[str] = []
    # WHEN the request runs (botocore sends the claim again), then comes again
    first = run_once(state_table, "req-1", calls)
    repeat = run_once(state_table, "req-1", calls)
    # THEN it acted and completed as if the answer had arrived, and the repeat gets its result
    assert fault.lost == 1
    assert first == repeat == {"status": "ok", "scaled": 1}
    assert calls == ["req-1"]


@pytest.mark.usefixtures("no_retry_waits")
@pytest.mark.parametrize("saved_before", [None, {"sizes": {"apps": 2}}], ids=["new", "changed"])
def test_a_value_replacement_whose_answer_was_lost_counts_as_saved(
    state_table: StateTable, dynamodb_client: Any, saved_before: dict[str, Any] | None
) -> None:
    # GIVEN a saved value read (or none), and DynamoDB applying its replacement but its answer
    # never arriving
    if saved_before is not None:
        state_table.put_value("dev", "sizes", saved_before)
    read = state_table.get_versioned_value("dev", "sizes")
    fault = lose_first_answer(dynamodb_client, "dynamodb", "PutItem")
    # WHEN the value is replaced (botocore sends the put again)
    replaced = state_table.replace_value("dev", "sizes", {"sizes": {"apps": 5}}, read=read)
    # THEN the replacement counts as saved, as if its answer had arrived
    assert fault.lost == 1
    assert replaced
    assert state_table.get_value("dev", "sizes") == {"sizes": {"apps": 5}}


@pytest.mark.usefixtures("no_retry_waits")
def test_lock_writes_whose_answer_was_lost_have_the_effect_of_one_write(
    state_table: StateTable, dynamodb_client: Any
) -> None:
    # GIVEN DynamoDB applying the first take, renewal and release of a lock but losing each answer
    faults = [
        lose_first_answer(dynamodb_client, "dynamodb", operation)
        for operation in ("PutItem", "UpdateItem", "DeleteItem")
    ]
    # WHEN spot-a takes and renews the lock (botocore sends each write again)
    # THEN both hold, and scaler-b is refused, as if the answers had arrived
    assert state_table.acquire_lock("dev-apps", "spot-a", lease_seconds=60)
    assert state_table.renew_lock("dev-apps", "spot-a", lease_seconds=60)
    assert not state_table.acquire_lock("dev-apps", "scaler-b", lease_seconds=60)
    # WHEN spot-a releases it THEN the lock is free
    state_table.release_lock("dev-apps", "spot-a")
    assert state_table.acquire_lock("dev-apps", "scaler-b", lease_seconds=60)
    assert [fault.lost for fault in faults] == [1, 1, 1]


@pytest.mark.usefixtures("no_retry_waits")
def test_claim_writes_whose_answer_was_lost_have_the_effect_of_one_write(
    state_table: StateTable, dynamodb_client: Any
) -> None:
    # GIVEN DynamoDB applying a claim's renewal, a claim's release and a completion but losing
    # each answer
    faults = [
        lose_first_answer(dynamodb_client, "dynamodb", "UpdateItem"),
        lose_first_answer(dynamodb_client, "dynamodb", "DeleteItem"),
        lose_first_answer(dynamodb_client, "dynamodb", "PutItem", body_with=(b"COMPLETED",)),
    ]
    # WHEN a request renews its claim, then fails and releases it (botocore sends each again)
    with (
        pytest.raises(RuntimeError, match="EKS throttled"),
        state_table.idempotent("eks_scaler", "req-1", ttl_seconds=3600) as request,
    ):
        assert request.renew()
        raise RuntimeError("EKS throttled")
    # AND its retry acts and completes (sent again too), then comes once more
    calls: list[str] = []
    retried = run_once(state_table, "req-1", calls)
    repeat = run_once(state_table, "req-1", calls)
    # THEN the renewal held, the release freed the request, and the completion stands
    assert retried == repeat == {"status": "ok", "scaled": 1}
    assert calls == ["req-1"]
    assert [fault.lost for fault in faults] == [1, 1, 1]


@pytest.mark.usefixtures("no_retry_waits")
def test_a_change_whose_record_lost_its_answer_is_recorded_once(
    state_table: StateTable, dynamodb_client: Any, fake_clock: ManualClock
) -> None:
    # GIVEN DynamoDB applying a change's transaction but losing its answer
    fault = lose_first_answer(dynamodb_client, "dynamodb", "TransactWriteItems")
    # WHEN the change is recorded (botocore sends the transaction again)
    state_table.record_change("dev-apps", {"desired": 4}, history_ttl_seconds=3600)
    # THEN it is the latest change and in the history once
    assert fault.lost == 1
    latest = state_table.latest_change("dev-apps")
    assert latest is not None and latest.record == {"desired": 4}
    history = state_table.query_history("dev-apps", since=fake_clock.now() - timedelta(minutes=1))
    assert [change.record for change in history] == [{"desired": 4}]


# A table that does not answer -----------------------------------------------------------------


@pytest.mark.usefixtures("no_retry_waits")
def test_a_table_that_did_not_answer_is_not_asked_again_until_forgotten(
    state_table: StateTable, dynamodb_client: Any, unanswered_endpoints: UnansweredEndpoints
) -> None:
    # GIVEN DynamoDB timing out every attempt of a read
    hang = hang_every_attempt(dynamodb_client, "dynamodb", "GetItem", LambdaTime(900))
    with pytest.raises(ReadTimeoutError):
        state_table.get_value("dev-apps", "sizes")
    attempts = hang.attempts
    # WHEN the same invocation writes and reads
    # THEN each call fails at once naming the table and the timeout, without being sent
    with pytest.raises(EndpointNotAnsweringError, match="lambda-fleet-state did not answer"):
        state_table.put_value("dev-apps", "sizes", {"apps": 3})
    with pytest.raises(EndpointNotAnsweringError, match="Read timeout") as refused:
        state_table.get_value("dev-apps", "sizes")
    assert hang.attempts == attempts
    # AND a refusal is a failure a later retry may pass, as the timeout is
    assert may_pass_on_retry(refused.value)
    # WHEN DynamoDB answers again and the next invocation starts
    dynamodb_client.meta.events.unregister("before-send.dynamodb.GetItem", hang.hang)
    unanswered_endpoints.forget()
    # THEN the table is asked again
    state_table.put_value("dev-apps", "sizes", {"apps": 3})
    assert state_table.get_value("dev-apps", "sizes") == {"apps": 3}


@pytest.mark.usefixtures("no_retry_waits")
def test_a_table_that_refused_a_connection_is_asked_again_at_once(
    state_table: StateTable, dynamodb_client: Any
) -> None:
    # GIVEN DynamoDB refusing every connection of one write (which fails at once, costing no time)
    fault = fail_every_attempt(dynamodb_client, "dynamodb", "PutItem")
    with pytest.raises(EndpointConnectionError):
        state_table.put_value("dev-apps", "sizes", {"apps": 3})
    assert fault.attempts > 0
    # WHEN the same invocation reads THEN DynamoDB is asked, and answers
    assert state_table.get_value("dev-apps", "sizes") is None


# Answers that are not DynamoDB's -------------------------------------------------------------

GATEWAY_PAGE = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


@pytest.fixture
def fleet_sessions(mocked_aws: None) -> AccountSessions:
    """The hub's sessions as every function builds them, with their answer checks."""
    return AccountSessions("eks_scaler", None, HUB_ACCOUNT_ID, home_region=REGION)


@pytest.fixture
def fleet_dynamodb(fleet_sessions: AccountSessions) -> Any:
    """The hub's DynamoDB client as every function builds it, holding the state table."""
    dynamodb = fleet_sessions.hub_client("dynamodb")
    create_local_state_table(dynamodb, STATE_TABLE_NAME)
    return dynamodb


@pytest.fixture
def fleet_state_table(
    fleet_sessions: AccountSessions, fleet_dynamodb: Any, fake_clock: ManualClock
) -> StateTable:
    """The state table on `fleet_dynamodb`."""
    return StateTable(
        STATE_TABLE_NAME, fleet_dynamodb, fake_clock, unanswered=fleet_sessions.unanswered_endpoints
    )


def test_a_conditional_put_answered_with_a_gateways_html_page_is_neither_a_lock_nor_a_claim(
    fleet_state_table: StateTable, fleet_dynamodb: Any
) -> None:
    # GIVEN a lock held by scaler-a and an alert already claimed, and a gateway answering every
    # conditional put with its own page (HTTP 200, text/html) where DynamoDB refuses it
    assert fleet_state_table.acquire_lock("dev-apps", "scaler-a", lease_seconds=60)
    assert fleet_state_table.claim_once("alert/abc123", ttl_seconds=300)
    page = answer_malformed(
        fleet_dynamodb,
        "dynamodb",
        "PutItem",
        GATEWAY_PAGE,
        content_type="text/html; charset=utf-8",
    )
    # WHEN scaler-b takes the lock, and another invocation claims the alert
    # THEN each put fails with ResponseParserError naming PutItem and the start of the page,
    # rather than taking the lock or the claim a second time
    with pytest.raises(ResponseParserError, match=r"PutItem answered with text/html.*502 Bad"):
        fleet_state_table.acquire_lock("dev-apps", "scaler-b", lease_seconds=60)
    with pytest.raises(ResponseParserError, match=r"PutItem answered with text/html.*502 Bad"):
        fleet_state_table.claim_once("alert/abc123", ttl_seconds=300)
    assert page.answered == 2
    # AND once DynamoDB answers again, scaler-a still holds the lock and the alert is claimed
    fleet_dynamodb.meta.events.unregister("before-send.dynamodb.PutItem", page)
    assert not fleet_state_table.acquire_lock("dev-apps", "scaler-b", lease_seconds=60)
    assert not fleet_state_table.claim_once("alert/abc123", ttl_seconds=300)


def test_a_lock_release_answered_with_a_gateways_html_page_leaves_the_blocks_outcome(
    fleet_state_table: StateTable, fleet_dynamodb: Any
) -> None:
    # GIVEN a gateway answering the lock's release (DeleteItem) with its own page (HTTP 200,
    # text/html)
    page = answer_malformed(
        fleet_dynamodb, "dynamodb", "DeleteItem", GATEWAY_PAGE, content_type="text/html"
    )
    done: list[str] = []
    # WHEN work inside the lock succeeds
    with fleet_state_table.lock("dev-apps", "scaler-a", 60):
        done.append("resized")
    # THEN the refused release is handled as any failed release (logged, the lease frees the
    # lock): the block's outcome stands
    assert page.answered == 1
    assert done == ["resized"]


def test_a_lease_renewal_answered_with_a_gateways_html_page_is_not_a_renewal(
    fleet_state_table: StateTable, fleet_dynamodb: Any, fake_clock: ManualClock
) -> None:
    # GIVEN spot-a's lock, taken over by scaler-b once its lease ran out, and a gateway answering
    # spot-a's renewal (a conditional UpdateItem) with its own page (HTTP 200, text/html)
    assert fleet_state_table.acquire_lock("dev-apps", "spot-a", lease_seconds=60)
    fake_clock.advance(61)
    assert fleet_state_table.acquire_lock("dev-apps", "scaler-b", lease_seconds=60)
    answer_malformed(
        fleet_dynamodb, "dynamodb", "UpdateItem", GATEWAY_PAGE, content_type="text/html"
    )
    # WHEN spot-a renews its lease before acting on what it read under the lock
    # THEN the renewal fails naming UpdateItem, rather than telling spot-a the lock is still its
    with pytest.raises(ResponseParserError, match=r"UpdateItem answered with text/html"):
        fleet_state_table.renew_lock("dev-apps", "spot-a", lease_seconds=60)
