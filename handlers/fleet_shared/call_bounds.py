"""Every call of a bounded client ends within its bound, whatever its endpoint answers.

`sessions.longest_hung_call_seconds(config)` is the longest one call takes when every attempt
times out: botocore then waits at most 50 ms, doubling, between the attempts. After a throttling
answer it waits up to 20 s instead (1 s, doubling, full jitter), and up to 5 s more after an
answer with an `x-amz-retry-after` header, so an endpoint that throttles each attempt just before
its read timeout held one call of backup_scheduler's 6 attempts of 15 s for up to 121 s (146 s
with that header), past its 92 s bound and every reserve built on it.

`hold_to_bound` makes the bound hold for any answer (but for an attempt that overruns its own
timeouts, as `longest_hung_call_seconds` says): ahead of botocore's own retry handler (its
`needs-retry` event), a call botocore would retry is ended instead when botocore's longest wait
for what the attempt met, plus one more attempt's connect and read timeouts, could end past the
bound. The call then ends as when its attempts run out, with its last attempt's own error (an
error answer's message says why it was not retried), so every caller handles it as before; and
the later `needs-retry` handlers still see that attempt (`lost_answers` notes a lost answer or a
server failure, so a mutation an earlier attempt may have applied is still told from one
refused). botocore's retry handler, which runs all the same, charges its retry quota as for a
retry that failed, which is what the call did.

Such a call ran to its bound; so did one whose attempts ran out on an error botocore retries
after at least as long as their timeouts (a client of 2 attempts, each throttled as its timeouts
run out, spends its whole bound so and is never ended early). `ran_to_bound` tells either from
its last error answer, whose `ResponseMetadata` carries `RAN_TO_BOUND` (as botocore's own
`MaxAttemptsReached` is carried; the error raised is unchanged), and
`fleet_shared.unanswered_endpoints` counts the call as one its endpoint did not answer: an
endpoint that throttles each attempt at the last moment would otherwise cost every call of the
invocation its bound.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from botocore.retries.standard import (
    RetryContext,
    RetryEventAdapter,
    StandardRetryConditions,
    ThrottlingErrorDetector,
)

TIMEOUT_RETRY_WAIT_SECONDS = 0.05
"""botocore's scale of the wait after an attempt that was not throttled (a timeout, a connection
error, a server failure; 25 ms for DynamoDB, counted here as 50)."""
THROTTLING_RETRY_WAIT_SECONDS = 1
"""botocore's scale of the wait after a throttling answer."""
LONGEST_RETRY_WAIT_SECONDS = 20
"""botocore's cap on the doubling wait."""
RETRY_AFTER_EXTRA_SECONDS = 5
"""The most an `x-amz-retry-after` header adds to botocore's wait."""
RAN_TO_BOUND = "RanToBound"
"""The key, in the `ResponseMetadata` of a call's last error answer, set when the call ran to its
bound."""
_RETRY_AFTER_HEADER = "x-amz-retry-after"
_STARTED = f"{__name__}.started"
"""The key of the call's start (`time.monotonic()`) in botocore's request context."""

_logger = logging.getLogger(__name__)


def longest_retry_wait_seconds(
    attempt: int, *, throttled: bool, retry_after: float | None
) -> float:
    """The longest botocore's standard mode waits after attempt `attempt` (from 1) of a call:
    full jitter on a doubling scale capped at 20 s, and an `x-amz-retry-after` of `retry_after`
    seconds raising it by at most 5 s (`botocore.retries.standard.ExponentialBackoff`)."""
    scale = THROTTLING_RETRY_WAIT_SECONDS if throttled else TIMEOUT_RETRY_WAIT_SECONDS
    wait = min(scale * 2 ** (attempt - 1), LONGEST_RETRY_WAIT_SECONDS)
    if retry_after is None:
        return wait
    return max(wait, min(retry_after, wait + RETRY_AFTER_EXTRA_SECONDS))


def ran_to_bound(response: Mapping[str, Any] | None) -> bool:
    """Whether `response` (a call's parsed answer: `after-call`'s `parsed`, a `ClientError`'s
    `response`) is the last error answer of a call that ran to its bound, on an error botocore
    retries: ended by its bound, or out of attempts after as long as their timeouts."""
    metadata = (response or {}).get("ResponseMetadata")
    return isinstance(metadata, Mapping) and metadata.get(RAN_TO_BOUND) is True


def hold_to_bound(client: Any, *, attempts: int, attempt_seconds: float, bound_seconds: int) -> Any:
    """`client`, whose calls (of at most `attempts` attempts of `attempt_seconds`, connect and
    read timeouts) botocore retries only while the retry cannot end past `bound_seconds` after
    the call started; registered once per client."""
    service = client.meta.service_model.service_id.hyphenize()
    bound = _CallBound(service, attempts, attempt_seconds, bound_seconds)
    events = client.meta.events
    events.register_first(f"before-call.{service}", _note_start, unique_id=f"{__name__}.start")
    # First on botocore's own event: its answer (False, no retry) is the one botocore takes,
    # and the handlers after it, botocore's retry handler and `lost_answers` among them, still
    # see the attempt.
    events.register_first(
        f"needs-retry.{service}", bound.end_past_bound, unique_id=f"{__name__}.bound"
    )
    return client


def _note_start(context: dict[str, Any], **_: Any) -> None:
    context[_STARTED] = time.monotonic()


class _CallBound:
    """Ends a call of one client before a retry that could end past its bound."""

    def __init__(
        self, service: str, attempts: int, attempt_seconds: float, bound_seconds: int
    ) -> None:
        self._service = service
        self._attempts = attempts
        self._attempt_seconds = attempt_seconds
        self._bound_seconds = bound_seconds
        self._adapter = RetryEventAdapter()
        # botocore's own conditions and throttling detector: the call is ended only where
        # botocore would retry it, and the wait counted is the one botocore would draw from.
        self._retried = StandardRetryConditions(max_attempts=attempts)
        # The same conditions one attempt further, for the last attempt: whether its error is
        # one botocore retries. The `max` they note for botocore's retry header reaches no
        # request, since none is sent after the last attempt.
        self._retried_if_attempts_left = StandardRetryConditions(max_attempts=attempts + 1)
        self._throttling = ThrottlingErrorDetector(self._adapter)

    def end_past_bound(self, **kwargs: Any) -> bool | None:
        """False (no retry) when botocore would retry the call and the retry could end past the
        bound; None (botocore decides) otherwise. A call so ended, or ended by botocore out of
        attempts after as long as their timeouts, is marked as one that ran to its bound
        (`ran_to_bound`)."""
        attempt = self._adapter.create_retry_context(**kwargs)
        started = attempt.request_context.get(_STARTED)
        if started is None:
            return None
        elapsed = time.monotonic() - started
        if attempt.attempt_number >= self._attempts:
            # botocore ends the call: it ran to its bound when it cost what its attempts all
            # timing out would.
            if (
                self._retried_if_attempts_left.is_retryable(attempt)
                and elapsed >= self._attempts * self._attempt_seconds
            ):
                _mark_ran_to_bound(attempt)
            return None
        if not self._retried.is_retryable(attempt):
            return None
        wait = longest_retry_wait_seconds(
            attempt.attempt_number,
            throttled=self._throttling.is_throttling_error_from_context(attempt),
            retry_after=_retry_after_seconds(attempt),
        )
        if elapsed + wait + self._attempt_seconds <= self._bound_seconds:
            return None
        reason = (
            f"{self._service} {attempt.operation_model.name} not retried after"
            f" {elapsed:.1f} s: a wait of up to {wait:g} s and one more attempt of"
            f" {self._attempt_seconds:g} s could end past the call's bound of"
            f" {self._bound_seconds} s"
        )
        _logger.warning(reason)
        error = (attempt.parsed_response or {}).get("Error")
        if isinstance(error, dict):
            error["Message"] = f"{error.get('Message') or ''} ({reason})".lstrip()
        _mark_ran_to_bound(attempt)
        return False


def _mark_ran_to_bound(attempt: RetryContext) -> None:
    """Mark the attempt's error answer as the last of a call that ran to its bound. An attempt
    without an answer ends the call with botocore's exception instead: a timeout is counted by
    its type (`unanswered_endpoints.NO_ANSWER`), a connection error is not marked."""
    answer = attempt.parsed_response
    if isinstance(answer, dict) and "Error" in answer:
        answer.setdefault("ResponseMetadata", {})[RAN_TO_BOUND] = True


def _retry_after_seconds(attempt: RetryContext) -> float | None:
    """The answer's `x-amz-retry-after` in seconds, as botocore reads it (None when absent or
    not a count of milliseconds)."""
    if attempt.http_response is None:
        return None
    header = attempt.http_response.headers.get(_RETRY_AFTER_HEADER)
    try:
        milliseconds = int(header)
    except (TypeError, ValueError):
        return None
    return milliseconds / 1000 if milliseconds >= 0 else None
