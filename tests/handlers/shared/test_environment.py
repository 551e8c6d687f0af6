"""Behaviour of fleet_shared.environment: variables in, one frozen validated model out."""

from __future__ import annotations

import importlib

import pytest
from pydantic import TypeAdapter, ValidationError

from catalog.functions import FUNCTIONS_BY_NAME
from fleet_shared.environment import DEFAULT_INVENTORY_KEY, FunctionEnvironment, load_environment
from fleet_shared.exceptions import ConfigurationError
from fleet_shared.field_types import PositiveInt, TimeZoneName

TOPIC = "arn:aws:sns:ap-south-1:111111111111:fleet-alerts"


class ScalerEnvironment(FunctionEnvironment):
    state_table_name: str
    member_role_name: str
    forecaster_function_name: str
    max_parallel_accounts: PositiveInt = 4


SCALER_REQUIRED_VARIABLES = {
    "STATE_TABLE_NAME": "s",
    "MEMBER_ROLE_NAME": "m",
    "FORECASTER_FUNCTION_NAME": "f",
}
"""ScalerEnvironment's required variables, each set."""


class ReportEnvironment(FunctionEnvironment):
    schedule_time_zone: TimeZoneName = "UTC"


def test_base_environment_accepts_an_empty_environment_with_defaults() -> None:
    # GIVEN no variables at all
    # WHEN the base model is loaded
    environment = load_environment(FunctionEnvironment, {})
    # THEN optional variables are None and defaulted ones have their defaults
    assert environment.state_table_name is None
    assert environment.fleet_dry_run is False
    assert environment.fleet_inventory_key == DEFAULT_INVENTORY_KEY


def test_field_names_map_to_upper_case_variables() -> None:
    # GIVEN the common variables and one of the handler's own
    environ = {
        "STATE_TABLE_NAME": "state",
        "MEMBER_ROLE_NAME": "member",
        "FORECASTER_FUNCTION_NAME": "forecaster",
        "ALERT_TOPIC_ARN": TOPIC,
        "HUB_ACCOUNT_ID": "111111111111",
        "MAX_PARALLEL_ACCOUNTS": "8",
    }
    # WHEN the handler's model is loaded
    environment = load_environment(ScalerEnvironment, environ)
    # THEN each field holds its variable, converted to the field's type
    assert environment.state_table_name == "state"
    assert environment.forecaster_function_name == "forecaster"
    assert environment.alert_topic_arn == TOPIC
    assert environment.hub_account_id == "111111111111"
    assert environment.max_parallel_accounts == 8


def test_missing_required_variable_is_named_in_one_line() -> None:
    # GIVEN a handler model that requires MEMBER_ROLE_NAME, which is not set
    environ = {"STATE_TABLE_NAME": "state", "FORECASTER_FUNCTION_NAME": "forecaster"}
    # WHEN it is loaded
    with pytest.raises(ConfigurationError) as raised:
        load_environment(ScalerEnvironment, environ)
    # THEN the error names the variable and says it is missing, without a pydantic dump
    assert raised.value.variable == "MEMBER_ROLE_NAME"
    assert str(raised.value) == "environment variable MEMBER_ROLE_NAME: is required but not set"


def test_empty_variable_counts_as_unset() -> None:
    # GIVEN a required variable set to the empty string
    environ = {"STATE_TABLE_NAME": "", "MEMBER_ROLE_NAME": "m", "FORECASTER_FUNCTION_NAME": "f"}
    # WHEN it is loaded
    with pytest.raises(ConfigurationError) as raised:
        load_environment(ScalerEnvironment, environ)
    # THEN it is reported as not set
    assert raised.value.variable == "STATE_TABLE_NAME"


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("FALSE", False), ("True", True)])
def test_dry_run_accepts_true_or_false_in_any_case(raw: str, expected: bool) -> None:
    # GIVEN FLEET_DRY_RUN spelled in some case WHEN loaded THEN it is the boolean it says
    assert load_environment(FunctionEnvironment, {"FLEET_DRY_RUN": raw}).fleet_dry_run is expected


@pytest.mark.parametrize("raw", ["1", "yes", "on", "tru"])
def test_dry_run_rejects_anything_but_true_or_false(raw: str) -> None:
    # GIVEN a value that is probably a typo WHEN loaded THEN the variable is named
    with pytest.raises(ConfigurationError) as raised:
        load_environment(FunctionEnvironment, {"FLEET_DRY_RUN": raw})
    assert raised.value.variable == "FLEET_DRY_RUN"
    assert "must be true or false" in raised.value.problem


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("HUB_ACCOUNT_ID", "12345", "12-digit"),
        ("ALERT_TOPIC_ARN", "fleet-alerts", "must be an ARN"),
        ("MAX_PARALLEL_ACCOUNTS", "0", "greater than 0"),
        # Digits of another script (a paste from a document in another locale): AWS would
        # refuse them only at the first call.
        ("HUB_ACCOUNT_ID", "\u0661" * 12, "12-digit"),
        ("HUB_ACCOUNT_ID", "\uff11" * 12, "12-digit"),
        ("ALERT_TOPIC_ARN", "arn:aws:sns:ap-south-1:" + "\u0661" * 12 + ":x", "must be an ARN"),
    ],
)
def test_invalid_values_are_reported_with_their_variable(
    variable: str, value: str, problem: str
) -> None:
    # GIVEN otherwise valid variables and one invalid value
    environ = dict(SCALER_REQUIRED_VARIABLES)
    environ[variable] = value
    # WHEN loaded THEN the error names that variable and what is wrong
    with pytest.raises(ConfigurationError) as raised:
        load_environment(ScalerEnvironment, environ)
    assert raised.value.variable == variable
    assert problem in raised.value.problem


def test_reads_os_environ_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a variable in the process environment
    monkeypatch.setenv("DATA_BUCKET_NAME", "fleet-data")
    # WHEN loaded without a mapping THEN the process environment is read
    assert load_environment(FunctionEnvironment).data_bucket_name == "fleet-data"


def test_loaded_environment_is_frozen() -> None:
    # GIVEN a loaded environment WHEN a field is assigned THEN pydantic refuses
    environment = load_environment(FunctionEnvironment, {})
    with pytest.raises(ValidationError):
        environment.fleet_dry_run = True  # type: ignore[misc]


def test_required_names_the_variable_a_shared_component_needs() -> None:
    # GIVEN an environment without ALERT_TOPIC_ARN
    environment = load_environment(FunctionEnvironment, {"STATE_TABLE_NAME": "state"})
    # WHEN a component requires it THEN the error names ALERT_TOPIC_ARN; a set one is returned
    with pytest.raises(ConfigurationError) as raised:
        environment.required("alert_topic_arn")
    assert raised.value.variable == "ALERT_TOPIC_ARN"
    assert environment.required("state_table_name") == "state"


@pytest.mark.parametrize("zone", ["US", "Europe", "Asia/" + "Kolkata" * 60])
def test_a_time_zone_that_is_a_folder_of_the_zone_database_or_too_long_names_its_variable(
    zone: str,
) -> None:
    # GIVEN SCHEDULE_TIME_ZONE set to a region of the zone database rather than a zone in it
    # (US for US/Eastern), or to a name longer than any file name
    environ = {"SCHEDULE_TIME_ZONE": zone}
    # WHEN the environment is loaded
    with pytest.raises(ConfigurationError) as raised:
        load_environment(ReportEnvironment, environ)
    # THEN the error names the variable and quotes the start of the value, as for an unknown
    # zone, where the zone database's OSError (a folder, a name too long) escaped unnamed
    assert raised.value.variable == "SCHEDULE_TIME_ZONE"
    assert "must be an IANA time zone like Asia/Kolkata" in raised.value.problem
    assert zone[:20] in raised.value.problem
    assert len(raised.value.problem) <= 100


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HUB_ACCOUNT_ID", "1" * 5000),
        ("ALERT_TOPIC_ARN", "arn:" + "x" * 5000),
        ("FLEET_DRY_RUN", "maybe" * 1000),
    ],
)
def test_a_long_refused_value_is_quoted_by_its_start_only(variable: str, value: str) -> None:
    # GIVEN a variable holding a refused value thousands of characters long
    environ = dict(SCALER_REQUIRED_VARIABLES)
    environ[variable] = value
    # WHEN loaded
    with pytest.raises(ConfigurationError) as raised:
        load_environment(ScalerEnvironment, environ)
    # THEN the problem quotes a short start of the value, not 200 characters of it
    assert raised.value.variable == variable
    assert value[:20] in raised.value.problem
    assert len(raised.value.problem) <= 120


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("STATE_TABLE_NAME", "lambda fleet state", "a DynamoDB table name"),
        ("STATE_TABLE_NAME", "st", "a DynamoDB table name"),
        ("DATA_BUCKET_NAME", "Lambda_Fleet_Data", "an S3 bucket name"),
        ("DATA_BUCKET_NAME", "arn:aws:s3:::lambda-fleet-data", "an S3 bucket name"),
        ("MEMBER_ROLE_NAME", "fleet/lambda-fleet-member", "an IAM role name without a path"),
        ("MEMBER_ROLE_NAME", "r" * 65, "an IAM role name without a path"),
    ],
)
def test_a_resource_name_aws_would_refuse_is_reported_with_its_variable(
    variable: str, value: str, problem: str
) -> None:
    # GIVEN a table, bucket or role name that breaks AWS's own naming rule (a space, two
    # characters, upper case and '_', an ARN, a role path, 65 characters)
    # WHEN the environment is loaded
    with pytest.raises(ConfigurationError) as raised:
        load_environment(FunctionEnvironment, {variable: value})
    # THEN the variable is named with the rule, where the first AWS call named only its own
    # parameter (TableName, Bucket, RoleArn)
    assert raised.value.variable == variable
    assert problem in raised.value.problem
    assert len(raised.value.problem) <= 150


RESOURCE_NAME_FIELDS = {
    "state_table_name": "lambda fleet state",
    "data_bucket_name": "Lambda_Fleet_Data",
    "cost_cur_bucket": "Lambda_Fleet_Cur",
    "member_role_name": "fleet/member",
    "scaler_member_role_name": "fleet/scaler-member",
}
"""Each resource-name field a function's environment may have, with a name AWS refuses."""


@pytest.mark.parametrize("function", sorted(FUNCTIONS_BY_NAME))
def test_every_functions_resource_name_variables_are_checked_as_aws_names(function: str) -> None:
    # GIVEN a function's own environment model (each re-declares the names it requires)
    module = importlib.import_module(f"handlers.{function}.environment")
    [model] = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, FunctionEnvironment)
        and value.__module__ == module.__name__
    ]
    for name, refused in RESOURCE_NAME_FIELDS.items():
        if name not in model.model_fields:
            continue
        field = model.model_fields[name]
        # WHEN a name AWS refuses is validated as that field
        # THEN it is refused, and a name AWS takes is kept
        checked = TypeAdapter(field.rebuild_annotation())
        with pytest.raises(ValidationError):
            checked.validate_python(refused)
        assert checked.validate_python("lambda-fleet-dev") == "lambda-fleet-dev"
