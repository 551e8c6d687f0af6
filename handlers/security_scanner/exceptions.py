"""Errors of the security scanner."""

from __future__ import annotations

from fleet_shared.validation_errors import escaped_echo

NAMED_TARGETS_MAX = 10
"""The most targets an error names (the log line of the run names them all)."""


class SecurityHubImportError(Exception):
    """Security Hub refused some findings (`refused`: the reason by finding id, of those whose
    refusal named one); the others were imported. A scan imports the refused ones again next
    time; an archive of a left account keeps its states.

    The message quotes Security Hub's (or a proxy's) text, which reaches the target's error and
    the report: it is cut to `ECHO_LIMIT` characters, its control characters escaped."""

    def __init__(self, message: str, refused: dict[str, str] | None = None) -> None:
        self.refused = refused or {}
        super().__init__(escaped_echo(message))


class UnreadableScanStateError(Exception):
    """A target's saved findings, or its account's global ones, that cannot be read (corruption,
    a hand edit, the format of another version). The target fails alone, naming the state's key
    and what is wrong, never its content, and nothing is imported, saved or alerted for it: its
    previous findings cannot be told from new ones, so reading the state as empty would alert
    every critical finding again and resolve none of the open ones."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(
            f"saved findings {key} cannot be read ({problem}): the target is not scanned until "
            "they are repaired"
        )


class TargetScanFailedError(Exception):
    """A queued target could not be scanned; raised to the batch processor, which returns the
    message to the queue for another try."""

    def __init__(self, message_id: str, error: str) -> None:
        self.message_id = message_id
        self.error = error
        super().__init__(f"message {message_id}: {error}")


class EventInProgressError(Exception):
    """Another invocation holds the claim of the same security event (or died holding it).

    Deliberately not a `FleetError`: the invocation fails, so the platform retries the event
    after the claim's short lease, instead of answering an error and dropping an alert.
    """

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        super().__init__(f"security event {event_id} is being handled by another invocation")


class CountriesContendedError(Exception):
    """Other invocations saved a principal's countries every time this one tried to.

    Not a `FleetError`: the invocation fails and the platform retries the event, which then
    learns its country from what the others saved.
    """

    def __init__(self, principal: str, attempts: int) -> None:
        self.principal = principal
        super().__init__(
            f"the countries of {principal} changed under each of {attempts} attempts to save them"
        )


class UnreadableCountriesError(Exception):
    """A principal's saved countries the state table cannot read (a hand edit, corruption).

    Not a `FleetError`: the invocation fails, so the platform retries the event, keeps it in the
    dead-letter queue once the retries are spent, and the Errors alarm tells people; answered as
    an error result, the finding would be dropped unscored and unannounced.
    """

    def __init__(self, unreadable: Exception) -> None:
        super().__init__(f"the countries of the event's principal cannot be read: {unreadable}")


class FindingRecordContendedError(Exception):
    """Other invocations saved a GuardDuty finding's record every time this one tried to.

    Not a `FleetError`: the invocation fails and the platform retries the event, whose alert
    claim (if it alerted) keeps the retry from alerting again.
    """

    def __init__(self, finding_id: str, attempts: int) -> None:
        self.finding_id = finding_id
        super().__init__(
            f"the record of finding {finding_id[:80]} changed under each of {attempts} attempts"
            " to save it"
        )


class FanOutIncompleteError(Exception):
    """The fan-out could not send the messages of some targets (SQS refused them, or did not
    answer).

    Not a `FleetError`: the invocation fails, so the platform retries the run, and the retry
    sends only the targets this one did not.
    """

    def __init__(self, not_sent: list[str], total: int, cause: str) -> None:
        self.not_sent = not_sent
        named = ", ".join(not_sent[:NAMED_TARGETS_MAX])
        more = len(not_sent) - NAMED_TARGETS_MAX
        super().__init__(
            f"{len(not_sent)} of {total} targets not sent to the scan queue: {named}"
            f"{f' and {more} more' if more > 0 else ''} ({cause})"
        )
