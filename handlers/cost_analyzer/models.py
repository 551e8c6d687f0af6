"""The event the cost analyzer accepts, as a validated model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class AnalyzeRequest(BaseModel):
    """`{"action": "analyze"}`: the daily analysis (the schedule)."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    action: Literal["analyze"]
