"""The EventBridge event envelope, as a model a function subclasses with its typed `detail`.

The fleet's own, in place of Powertools' `EventBridgeModel`: importing that one model runs the
parser package (its functions and TypeAdapter cache) and builds the model's schema at import,
about 15 ms of a cold start (docs/architecture.md). Same fields, types, aliases and order as
Powertools' model, so a subclass validates and names the first wrong field as before; built on
first validation (`defer_build`) like the fleet's other models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

SCHEDULER_SOURCE = "aws.scheduler"


class EventBridgeEvent(BaseModel):
    """An EventBridge event; subclasses narrow `source`, `detail_type` and `detail`."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True)

    version: str
    id: str
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any]
    replay_name: str | None = Field(default=None, alias="replay-name")

    @field_validator("detail", mode="before")
    @classmethod
    def _scheduler_empty_detail(cls, value: object, info: ValidationInfo) -> object:
        # EventBridge Scheduler sends an empty payload as the string "{}".
        return {} if info.data.get("source") == SCHEDULER_SOURCE and value == "{}" else value
