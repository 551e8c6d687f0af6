"""Loading a stack file into `FleetSettings`: its keys, and one message per problem that names
the field and shows a short prefix of the bad value."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ValidationError,
)

from components.exceptions import FieldValueError, StackSettingsError
from components.settings.fleet_settings import FleetSettings
from components.settings.value_checks import (
    ACCOUNT_ID_DIGITS,
    ACCOUNT_ID_PATTERN,
    CLOCK_TIME_PATTERN,
    LABEL_VALUE_PATTERN,
    PROJECT,
    REGION_PATTERN,
    STACK_NAME_PATTERN,
    TAINT_VALUE_PATTERN,
    shown_key,
    unknown_name_problem,
)
from fleet_shared.validation_errors import shown_value

_INTERNAL_LOCATION = re.compile(r"[A-Z]\w*|(function|tagged)-\w+\[.*\]|\[key\]")


def _field_path(location: tuple[int | str, ...], document: Mapping[str, Any]) -> str:
    """Render a pydantic error location as `members[1].clusters[0].node_groups[2].min_size`.

    pydantic adds validator and union-member names to locations (`CreatedNetwork`), and `[key]`
    after a mapping key that breaks the key's rule; those are dropped because they are not keys
    the user wrote.
    """
    parts: list[str] = []
    node: Any = document
    for part in location:
        if isinstance(part, int):
            parts.append(f"[{part}]")
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        is_key = isinstance(node, Mapping) and part in node
        if not is_key and _INTERNAL_LOCATION.fullmatch(part):
            continue
        parts.append(f".{shown_key(part)}")
        node = node.get(part) if is_key else None
    return "".join(parts).lstrip(".")


def _whole_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or value.is_integer()


def _quote_hint(key: str, value: Any) -> str:
    """What to write instead of a number or flag where the setting is text.

    YAML reads an unquoted account id as a number and `1.30` as 1.3, so the fix is to quote;
    the hint shows the quoted form. (`8:00` unquoted is text in the Pulumi CLI's YAML 1.2.)
    """
    if key.endswith("account_id") and _whole_number(value):
        # The CLI reads `012345678901` (a leading 0, then an 8 or 9) as a number that is no
        # integer; it reaches the program as the integer, the local tools as the float.
        value = int(value)
        digits = len(str(abs(value)))
        if digits > ACCOUNT_ID_DIGITS:
            # Quoting keeps every digit: the hint to quote would only lead to the next error.
            return (
                f"expected a 12-digit account id as text, got the number {shown_value(value)}, "
                f"which has {digits} digits"
            )
        hint = (
            f"expected a 12-digit account id as text, got the number {shown_value(value)}; "
            f'quote it in YAML: "{str(value).zfill(ACCOUNT_ID_DIGITS)}"'
        )
        as_octal = f"0{value:o}"
        if value >= 0 and len(as_octal) <= ACCOUNT_ID_DIGITS:
            # YAML reads digits 0-7 after a leading 0 as an octal number: the id as written
            # may have been this one.
            hint += (
                f', or "{as_octal.zfill(ACCOUNT_ID_DIGITS)}" if it was written with a leading 0 '
                "(YAML reads 0 and digits 0-7 as an octal number)"
            )
        return hint
    if key.endswith("_time") and isinstance(value, int | float) and not isinstance(value, bool):
        return f'expected HH:MM as text, got the number {shown_value(value)}; write it like "08:00"'
    if key == "kubernetes_version" and isinstance(value, float):
        # Said only where YAML dropped a digit (`1.30` is 1.3).
        dropped = f" (YAML reads {value:.2f} as {value})" if f"{value:.2f}" != str(value) else ""
        return (
            f"expected a version as text, got the number {value}{dropped}; quote it in YAML: "
            f'"{value:.2f}"'
        )
    return f"expected text, got {shown_value(value)} ({type(value).__name__}); quote it in YAML"


def _problem(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    value = error.get("input")
    location = error["loc"]
    key = str(location[-1]) if location else ""
    if kind == "missing":
        return "required setting is missing"
    if kind == "string_pattern_mismatch":
        return (
            f"{shown_value(value)} is not valid here: {_pattern_hint(str(error['ctx']['pattern']))}"
        )
    if kind == "string_type" and isinstance(value, int | float):
        return _quote_hint(key, value)
    message = str(error["msg"])
    if kind in ("value_error", "assertion_error"):
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        return message
    return f"{message}, got {shown_value(value)}"


def _pattern_hint(pattern: str) -> str:
    hints = {
        ACCOUNT_ID_PATTERN: "an AWS account id is 12 digits, quoted in YAML",
        CLOCK_TIME_PATTERN: "times are HH:MM on a 24-hour clock",
        REGION_PATTERN: "expected an AWS region such as ap-south-1",
        STACK_NAME_PATTERN: (
            "expected a Pulumi stack reference such as acme/network/dev: organization, project "
            "and stack, in letters, digits, '_', '.' and '-'"
        ),
        r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$": "expected an S3 bucket name",
        r"^[a-z0-9_]{1,255}$": "Glue names are lower-case letters, digits and underscores",
        LABEL_VALUE_PATTERN: (
            "Kubernetes label values are 1-63 letters, digits, '-', '_' and '.', beginning and "
            "ending with a letter or digit"
        ),
        TAINT_VALUE_PATTERN: (
            "taint values follow Kubernetes label values: at most 63 letters, digits, '-', '_' "
            "and '.', beginning and ending with a letter or digit"
        ),
    }
    if pattern in hints:
        return hints[pattern]
    if ":iam::" in pattern:
        return "expected an IAM role ARN such as arn:aws:iam::123456789012:role/name"
    if ":layer:" in pattern:
        return "expected a Lambda layer version ARN"
    if "a-z0-9-]{0,38}" in pattern:
        return "names are lower-case letters, digits and dashes, starting with a letter"
    return f"must match {pattern}"


def settings_document(config: Mapping[str, Any]) -> dict[str, Any]:
    """The `lambda-fleet:` settings of a stack file's `config:` mapping, keyed without the
    namespace; other namespaces (`pulumi:`, `aws:`) are not the fleet's."""
    namespace = f"{PROJECT}:"
    return {
        key.removeprefix(namespace): value
        for key, value in config.items()
        if key.startswith(namespace)
    }


PULUMI_NAMESPACE = "pulumi"
# Pulumi's own settings that share a name with one of ours (`pulumi:tags`, the stack's tags in
# Pulumi Cloud); any other of our names in Pulumi's namespace is ours misplaced.
PULUMI_SETTINGS_NAMED_AS_OURS = ("tags",)
# How close a config namespace must be to the project's to be taken for its misspelling;
# Pulumi's and the providers' namespaces (`pulumi`, `aws`, `eks`) are nowhere near it.
NAMESPACE_RESEMBLANCE = 0.8


def misspelt_namespace(config: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first key (in file order) of a stack file's `config:` whose namespace is a
    misspelling of `lambda-fleet:`, or that names one of its settings in another namespace
    (Pulumi's own included, but for the settings Pulumi has too), as (key, problem): nothing
    would ever read its setting.

    Other keys belong to Pulumi and the providers, which judge their own.
    """
    for key in config:
        namespace, _, setting = str(key).partition(":")
        if namespace == PROJECT:
            continue
        if namespace == PULUMI_NAMESPACE:
            if (
                setting in FleetSettings.model_fields
                and setting not in PULUMI_SETTINGS_NAMED_AS_OURS
            ):
                return (
                    shown_key(key),
                    f"Pulumi has no setting {shown_value(setting)}; did you mean "
                    f"{shown_value(f'{PROJECT}:{setting}')}?",
                )
            continue
        # `lambda:dry_run` or `fleet:members` is no provider's key, only ours misplaced.
        if setting in FleetSettings.model_fields or difflib.get_close_matches(
            namespace, [PROJECT], n=1, cutoff=NAMESPACE_RESEMBLANCE
        ):
            return (
                shown_key(key),
                f"unknown namespace {shown_value(namespace)}; did you mean "
                f"{shown_value(f'{PROJECT}:{setting}')}?",
            )
    return None


def _model_of(annotation: Any, value: Any) -> type[BaseModel] | None:
    """The settings model that `value` is checked against, for an annotation naming models.

    Of a union of models (the two network forms) the one sharing most keys with `value` is
    taken (counting near misspellings), so an unknown key is reported against the form the
    user meant.
    """
    models = [
        candidate
        for candidate in _models_in(annotation)
        if isinstance(candidate, type) and issubclass(candidate, BaseModel)
    ]
    if not models or not isinstance(value, Mapping):
        return None
    return max(models, key=lambda model: _resemblance(model, value))


def _resemblance(model: type[BaseModel], value: Mapping[str, Any]) -> int:
    """How many of the keys are the model's fields, or near misspellings of them."""
    fields = list(model.model_fields)
    return sum(
        1 for key in value if key in fields or difflib.get_close_matches(str(key), fields, n=1)
    )


def _models_in(annotation: Any) -> list[Any]:
    if get_origin(annotation) is Annotated:
        return _models_in(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        return [model for member in get_args(annotation) for model in _models_in(member)]
    return [annotation]


def _unknown_key(annotation: Any, value: Any, path: str) -> tuple[str, str] | None:
    """The first key (in file order) that no settings model declares: (field path, problem)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unknown_key(get_args(annotation)[0], value, path)
    if origin is list and isinstance(value, list):
        for index, item in enumerate(value):
            found = _unknown_key(get_args(annotation)[0], item, f"{path}[{index}]")
            if found:
                return found
        return None
    if origin is dict and isinstance(value, Mapping):
        for key, item in value.items():
            found = _unknown_key(
                get_args(annotation)[1], item, f"{path}.{shown_key(key)}".lstrip(".")
            )
            if found:
                return found
        return None
    model = _model_of(annotation, value)
    if model is None:
        return None
    for key, item in value.items():
        field_path = f"{path}.{shown_key(key)}".lstrip(".")
        field = model.model_fields.get(key)
        if field is None:
            return field_path, unknown_name_problem("setting", str(key), list(model.model_fields))
        found = _unknown_key(field.annotation, item, field_path)
        if found:
            return found
    return None


def load_settings(stack: str, document: Mapping[str, Any]) -> FleetSettings:
    """Validate the stack's settings; raise one StackSettingsError naming stack and field.

    Unknown keys are looked for first, so that a misspelt required key is reported as the
    misspelling (with the key it resembles) rather than as a missing setting.
    """
    unknown = _unknown_key(FleetSettings, document, "")
    if unknown is not None:
        field, problem = unknown
        raise StackSettingsError(stack=stack, field=field, problem=problem)
    try:
        return FleetSettings.model_validate(dict(document))
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        field = _field_path(tuple(first["loc"]), document)
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, FieldValueError):
            field = f"{field}.{cause.field}" if field else cause.field
        raise StackSettingsError(stack=stack, field=field, problem=_problem(first)) from None
