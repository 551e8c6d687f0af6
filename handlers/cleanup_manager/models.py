"""The events the cleanup manager accepts, as validated models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, StrictBool


class CleanupRequest(BaseModel):
    """The schedule's payload; `dry_run` reports what would be marked, deleted or spared."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    action: Literal["cleanup"]
    dry_run: StrictBool = False
