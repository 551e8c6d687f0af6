"""The events the backup scheduler accepts, as validated models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, StrictBool


class BackupRequest(BaseModel):
    """The schedule's payload; `dry_run` reports what would be created and deleted."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    action: Literal["backup"]
    dry_run: StrictBool = False
