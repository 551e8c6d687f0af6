"""The function's environment variables, read once into a frozen, validated model.

Design: `FunctionEnvironment` declares every variable the catalog gives all functions, and each is
optional there (or has a default), so the base never rejects a function for a variable it does not
use. A handler states what it needs by subclassing and re-declaring those fields without a
default; the narrower type is then checked when the environment is loaded, and the handler reads
a plain `str` with no `None` checks afterwards::

    class ScalerEnvironment(FunctionEnvironment):
        state_table_name: DynamoDbTableName
        member_role_name: IamRoleName
        forecaster_function_name: str  # a variable only this function gets

    environment = load_environment(ScalerEnvironment)

Field names are the variable names in lower case (`state_table_name` <- `STATE_TABLE_NAME`); the
alias generator upper-cases them, so a new field needs no explicit alias. Shared components that
need a variable the handler may have left optional (the alert publisher needs `ALERT_TOPIC_ARN`)
call `FunctionEnvironment.required(...)`, which raises the same `ConfigurationError`.

An empty variable counts as unset: deployment tools often write `""` for "no value".
Reusable field types (flags, ARNs, account ids, positive ints) are in `fleet_shared.field_types`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fleet_shared.exceptions import ConfigurationError
from fleet_shared.field_types import (
    AccountId,
    Arn,
    BoolFlag,
    DynamoDbTableName,
    IamRoleName,
    S3BucketName,
)
from fleet_shared.validation_errors import first_error

DEFAULT_INVENTORY_KEY = "config/fleet-inventory.json"

EnvironmentT = TypeVar("EnvironmentT", bound="FunctionEnvironment")


class FunctionEnvironment(BaseModel):
    """Variables every fleet function receives; extend it to make some of them required."""

    model_config = ConfigDict(
        defer_build=True,
        frozen=True,
        extra="ignore",
        alias_generator=str.upper,
        validate_by_name=True,
        validate_by_alias=True,
    )

    state_table_name: DynamoDbTableName | None = Field(
        default=None,
        description="The DynamoDB state table (locks, idempotency, cooldowns, saved values).",
    )
    member_role_name: IamRoleName | None = Field(
        default=None, description="The role assumed in each member account."
    )
    hub_account_id: AccountId | None = Field(
        default=None, description="The hub account; when unset, `AccountSessions` asks STS once."
    )
    alert_topic_arn: Arn | None = Field(
        default=None,
        description=(
            "The default alert topic, used for warnings and for any severity without its own topic."
        ),
    )
    alert_topic_critical_arn: Arn | None = Field(
        default=None,
        description="The topic for critical alerts, when it differs from `ALERT_TOPIC_ARN`.",
    )
    alert_topic_info_arn: Arn | None = Field(
        default=None,
        description="The topic for info alerts, when it differs from `ALERT_TOPIC_ARN`.",
    )
    fleet_dry_run: BoolFlag = Field(
        default=False,
        description="When true, functions report what they would change and change nothing.",
    )
    data_bucket_name: S3BucketName | None = Field(
        default=None, description="The fleet's data bucket (inventory, reports)."
    )
    fleet_inventory_key: str = Field(
        default=DEFAULT_INVENTORY_KEY,
        description="The key of the fleet inventory object in the data bucket.",
    )

    def required(self, field_name: str) -> str:
        """The value of an optional text variable that the caller cannot work without.

        Raises `ConfigurationError` naming the variable when it is unset, so the message is the
        same whether the handler's model or a shared component found it missing.
        """
        value = getattr(self, field_name)
        if value is None:
            raise ConfigurationError(field_name.upper(), "is required by this function but not set")
        if not isinstance(value, str):
            raise TypeError(f"{field_name} is not a text variable")
        return value


def load_environment(
    model_cls: type[EnvironmentT], environ: Mapping[str, str] | None = None
) -> EnvironmentT:
    """Validate the variables `model_cls` declares, from `environ` or else `os.environ`.

    Only the declared variables are read, so the rest of the process environment (credentials
    included) never lands in the model or in an error message. Raises `ConfigurationError` naming
    the first missing or invalid variable.
    """
    source = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for name, field in model_cls.model_fields.items():
        variable = field.alias or name.upper()
        value = source.get(variable)
        if value:
            values[variable] = value
    try:
        return model_cls.model_validate(values)
    except ValidationError as error:
        variable, problem = first_error(error, root="environment")
        if error.errors()[0]["type"] == "missing":
            problem = "is required but not set"
        raise ConfigurationError(variable, problem) from None
