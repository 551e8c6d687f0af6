"""Whether an earlier attempt of a mutation botocore sent again may have been applied.

botocore's standard retry mode sends a request again after a read timeout or a closed
connection, when AWS may already have applied the attempt whose answer never arrived, and
raises only the last attempt's error: an update whose first attempt AWS applied and whose
second could not connect ends in a connection error, as one AWS never received. Two questions
tell such a call from one that changed nothing, and each caller asks the one it needs:

- "did an attempt get no answer?" (`watched_attempts`, `Attempts.answer_lost`): the precise one,
  noted attempt by attempt through botocore's `needs-retry` event. A throttled or refused attempt
  was answered, and not applied. One answered with a server or gateway failure
  (`SERVER_FAILED_STATUSES`) got no answer of what AWS did, which may have acted before failing,
  so it counts as one whose answer was lost. A create's hunt for the duplicate its retry made, or
  a change that counts as made by a lost attempt, rests on it: after a mere throttle there is
  nothing to hunt, and nothing made.
- "did botocore send it more than once?" (`gone_on_retry`): `RetryAttempts` in the answer's
  metadata. A delete's "not found" to a retry counts as deleted whatever the earlier attempts
  met: the resource is gone either way, so the looser question is enough, and the answer carries
  it (no watch around deletes spread over several clients and operations).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

ANSWER_LOST = (ReadTimeoutError, ConnectionClosedError)
"""An attempt that was sent and got no answer back: AWS may have acted on it (a connection that
failed or timed out, a call refused unsent, or a refusal, throttling included, was not)."""
SERVER_FAILED_STATUSES = frozenset({500, 502, 504})
"""HTTP statuses of an answer that says the service (500) or a gateway in front of it (502, 504)
failed while handling the attempt, which botocore retries: AWS may have acted on it before
failing, as on one whose answer was lost (503 is the service declining work, throttling)."""


@dataclass
class Attempts:
    """What botocore's attempts at one call met: the errors of those that got no answer (or a
    server failure's, `SERVER_FAILED_STATUSES`)."""

    unanswered: list[Exception] = field(default_factory=list)

    @property
    def answer_lost(self) -> bool:
        """Whether an attempt was sent and got no answer of what AWS did: AWS may have applied
        it."""
        return bool(self.unanswered)


_WATCHED: ContextVar[Attempts | None] = ContextVar("watched_attempts", default=None)
"""The attempts of the watched call in progress in this thread (a ContextVar: two threads
calling through one client note their own attempts)."""


@contextmanager
def watched_attempts(client: Any) -> Iterator[Attempts]:
    """Note the attempts of the one call made through `client` inside the block (botocore's
    `needs-retry` event, emitted after each attempt), the last one's included."""
    client.meta.events.register("needs-retry", _note_attempt, unique_id=f"{__name__}.note")
    attempts = Attempts()
    token = _WATCHED.set(attempts)
    try:
        yield attempts
    finally:
        _WATCHED.reset(token)


def _note_attempt(
    caught_exception: Exception | None = None,
    response: tuple[Any, dict[str, Any]] | None = None,
    operation: Any = None,
    **_: Any,
) -> None:
    attempts = _WATCHED.get()
    if attempts is None:
        return
    if isinstance(caught_exception, ANSWER_LOST):
        attempts.unanswered.append(caught_exception)
    elif response is not None and response[0].status_code in SERVER_FAILED_STATUSES:
        attempts.unanswered.append(ClientError(response[1], operation.name))


def gone_on_retry(error: ClientError, not_found_codes: Collection[str]) -> bool:
    """Whether `error` answers a delete that botocore sent more than once with one of
    `not_found_codes`: an earlier attempt, whose answer was lost, deleted the resource (or,
    after a throttled one, something else did: gone all the same). A "not found" to the first
    attempt is not one: something else deleted the resource before this call."""
    code = error.response.get("Error", {}).get("Code")
    retries = int(error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
    return code in not_found_codes and retries > 0
