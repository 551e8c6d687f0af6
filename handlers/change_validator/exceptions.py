"""The change validator's own errors."""

from __future__ import annotations

from fleet_shared.exceptions import UnreadableStateValueError


class ValidationInProgressError(Exception):
    """Another invocation holds the claim of the update's validation, or its lock (a follow-up
    advancing it).

    Deliberately not a `FleetError`: the invocation fails, so the platform retries the event. The
    claim may be a concurrent copy's, whose validation the retry then answers as a duplicate, or
    the leftover of an invocation that failed without releasing it (DynamoDB failing), which
    stands until that invocation's deadline; an error answer would end the retries and lose the
    validation.
    """

    def __init__(self, update_id: str, doing: str = "claimed by another invocation") -> None:
        self.update_id = update_id
        super().__init__(f"the validation of update {update_id} is {doing}")


class UnreadableValidationError(UnreadableStateValueError):
    """A validation record the validator cannot step on (`record_shape.record_problem`): a hand
    edit, corruption or an older format. A `FleetError`, so the invocation answers an error
    naming the record and the field rather than fail and be retried on a record no retry can
    read; its warning is sent once before (`validation._reported_if_unreadable`)."""

    def __init__(self, key: str, name: str, problem: str, validation_id: str) -> None:
        super().__init__(key, name, problem)
        self.validation_id = validation_id
