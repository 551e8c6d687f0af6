"""The shape a stored validation record must have before a validation is stepped on it.

The record is the validator's own (`validation.py` writes it), so only a hand edit of the state
table, corruption or an older format breaks it: a field removed, of another type, a phase or
verdict the validator does not know. Stepping such a record raised a KeyError, TypeError or
ValueError in the middle of the run, which the platform retried and dead-lettered; now the first
field that is wrong is named (`record_problem`) and the record is left for a person.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from fleet_shared.utc_times import UtcTime
from fleet_shared.validation_errors import first_error
from handlers.change_validator.changes import ChangeKind
from handlers.change_validator.models import VALIDATION_ID_PATTERN


class Phase(StrEnum):
    FOLLOWING = "following"
    BAKING = "baking"
    DONE = "done"


class Verdict(StrEnum):
    PASSED = "passed"
    DEGRADED = "degraded"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    NOT_ENOUGH_BASELINE = "not_enough_baseline"


_PHASE_FIELDS = {
    Phase.BAKING: ("bake_started_at", "bake_until"),
    Phase.DONE: ("verdict", "reason", "judged_at"),
}
"""The fields a record must hold in a phase, besides those of every phase."""


class _Part(BaseModel):
    """A part of the record: the fields read here are checked, the others kept as they are."""

    model_config = ConfigDict(defer_build=True, extra="allow", frozen=True)


class StoredChange(_Part):
    """`change`: the fields `Change.from_record` builds the change from (all of them)."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    validation_id: StrictStr = Field(pattern=VALIDATION_ID_PATTERN)
    account_id: StrictStr
    region: StrictStr
    cluster: StrictStr
    node_group: StrictStr | None
    kind: ChangeKind
    event_id: StrictStr
    event_name: StrictStr
    changed_at: UtcTime
    by_fleet_scaler: StrictBool
    requested: dict[str, Any]


class StoredRollback(_Part):
    kind: StrictStr
    action: StrictStr
    automatic: StrictBool


class StoredValidation(_Part):
    """The record as the validator reads it; a phase's own fields are required in that phase."""

    validation_id: StrictStr = Field(pattern=VALIDATION_ID_PATTERN)
    change: StoredChange
    rollback: StoredRollback
    baseline: dict[str, dict[str, Any]] | None
    phase: Phase
    follow_checks: StrictInt = Field(ge=0)
    update_status: StrictStr | None
    schedules: list[StrictStr]
    started_at: UtcTime
    next_check_at: UtcTime | None = None
    bake_started_at: UtcTime | None = None
    bake_until: UtcTime | None = None
    failed_checks: StrictInt = Field(default=0, ge=0)
    measurement_errors: list[StrictStr] = Field(default_factory=list)
    baseline_started_at: list[StrictStr] = Field(default_factory=list)
    check_started_at: UtcTime | None = None
    verdict: Verdict | None = None
    reason: StrictStr | None = None
    judged_at: UtcTime | None = None
    restore: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _phase_fields(self) -> StoredValidation:
        for name in _PHASE_FIELDS.get(self.phase, ()):
            if getattr(self, name) is None:
                raise ValueError(f"{name}: is required in phase {self.phase.value!r}")
        return self


def record_problem(record: dict[str, Any]) -> str | None:
    """The first field of the stored validation `record` that the validator cannot step on,
    as `<field>: <problem>` (never the value beyond a short prefix); None for a readable one."""
    try:
        StoredValidation.model_validate(record)
    except ValidationError as error:
        # A phase's missing field is found on the whole record, its message naming the field.
        field, problem = first_error(error, "")
        return f"{field}: {problem}" if field else problem
    return None
