"""The event scaling_optimizer accepts: the daily schedule's `optimize`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class OptimizeEvent(BaseModel):
    """Recommend sizes, scaler settings and memory from the last days of history."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    action: Literal["optimize"]
