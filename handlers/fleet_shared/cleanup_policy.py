"""The cleanup policy: what cleanup_manager may clean in member accounts, and whether it deletes.

A stack writes it under `functions.cleanup_manager.policy`; the program validates it with this
model and passes it whole, as JSON, in the function's `CLEANUP_POLICY` variable, where the
function validates it again with the same model. The module is pure pydantic, no boto3, so the
program may import it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from fleet_shared.field_types import PositiveInt
from fleet_shared.validation_errors import shown_value

ResourceKind = Literal["snapshots", "volumes", "lambda_versions"]
SNAPSHOTS: ResourceKind = "snapshots"
VOLUMES: ResourceKind = "volumes"
LAMBDA_VERSIONS: ResourceKind = "lambda_versions"
ALL_RESOURCE_KINDS: tuple[ResourceKind, ...] = (SNAPSHOTS, VOLUMES, LAMBDA_VERSIONS)

CleanupMode = Literal["notify", "delete"]
NOTIFY: CleanupMode = "notify"
DELETE: CleanupMode = "delete"

TagKey = Annotated[str, StringConstraints(min_length=1, max_length=128)]
TagValue = Annotated[str, StringConstraints(max_length=256)]


def _not_a_flag(value: Any) -> Any:
    # pydantic reads `true` as 1: `snapshot_max_age_days: true` would make every snapshot a day
    # old a candidate, which `true` never meant.
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {shown_value(value)} (bool)")
    return value


Count = Annotated[PositiveInt, BeforeValidator(_not_a_flag)]
MAX_DAYS = 36_500
"""The longest age or notice (100 years, as backup retention): the run dates a mark today plus
the notice, and compares ages as timedeltas, neither of which reaches past the year 9999."""


class CleanupPolicy(BaseModel):
    """What is a candidate, after how long, and what happens once its notice has run out."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    resources: list[ResourceKind] = Field(
        default_factory=lambda: list(ALL_RESOURCE_KINDS),
        min_length=1,
        description="The resource kinds cleaned; any other kind is not even listed.",
    )
    snapshot_max_age_days: Count = Field(
        default=30,
        le=MAX_DAYS,
        description="Snapshots at least this old (days, 1-36500) are candidates.",
    )
    volume_min_age_days: Count = Field(
        default=7,
        le=MAX_DAYS,
        description=(
            "Unattached volumes created at least this long ago (days, 1-36500) are candidates; EC2 "
            "does not record when a volume was detached."
        ),
    )
    keep_lambda_versions: Count = Field(
        default=3, description="The newest published versions kept per Lambda function."
    )
    notice_days: Count = Field(
        default=7,
        le=MAX_DAYS,
        description=(
            "Days between marking a candidate and deleting it, and at least between the notice "
            "announcing its deletion and the deletion (1-36500)."
        ),
    )
    require_tags: dict[TagKey, TagValue] = Field(
        default_factory=dict,
        description=(
            "When given, only resources carrying every one of these tags with these values are "
            "candidates (a Lambda version: its function's tags)."
        ),
    )
    keep_tag: TagKey = Field(
        default="keep",
        description=(
            "A snapshot or volume tagged `<tag>=true` is never a candidate, nor is any version "
            "of a Lambda function so tagged (nor one whose value is neither true nor false, "
            "which is reported as its error); the tag's key is matched in any case and with "
            "blanks around it (`Keep`)."
        ),
    )
    mode: CleanupMode = Field(
        default=NOTIFY,
        description=(
            "`notify` marks candidates and sends notices but never deletes; `delete` also "
            "deletes a candidate once its notice has run out."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _deleting_names_its_resources(cls, data: Any) -> Any:
        # Deleting is opted into per resource kind: the default list is for notices only.
        if isinstance(data, Mapping) and data.get("mode") == DELETE and "resources" not in data:
            kinds = ", ".join(ALL_RESOURCE_KINDS)
            raise ValueError(f"mode delete needs `resources`, the kinds it may delete ({kinds})")
        return data

    @field_validator("resources", mode="before")
    @classmethod
    def _known_kinds(cls, value: Any) -> Any:
        # A near miss (`snapshot`) is named with the kind it resembles.
        for kind in value if isinstance(value, list) else ():
            if isinstance(kind, str) and kind not in ALL_RESOURCE_KINDS:
                close = difflib.get_close_matches(kind, ALL_RESOURCE_KINDS, n=1)
                hint = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else f"known: {', '.join(ALL_RESOURCE_KINDS)}"
                )
                raise ValueError(f"unknown resource kind {shown_value(kind)}; {hint}")
        return value

    @field_validator("resources")
    @classmethod
    def _resources_unique(cls, resources: list[ResourceKind]) -> list[ResourceKind]:
        seen: set[str] = set()
        for kind in resources:
            if kind in seen:
                raise ValueError(f"duplicate resource kind {kind!r}")
            seen.add(kind)
        return resources

    def cleans(self, kind: ResourceKind) -> bool:
        """Whether the policy names `kind`."""
        return kind in self.resources

    @property
    def deletes(self) -> bool:
        """Whether a candidate whose notice has run out is deleted (else it stays marked)."""
        return self.mode == DELETE
