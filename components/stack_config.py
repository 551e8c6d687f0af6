"""Read the stack's settings from Pulumi config and validate them before anything is registered."""

from __future__ import annotations

import json
from typing import Any

import pulumi

from components.settings import PROJECT, SETTING_KEYS, FleetSettings, load_settings


def read_settings_document(config: pulumi.Config) -> dict[str, Any]:
    """The raw settings as the stack file has them; missing keys are left to validation.

    Pulumi keeps structured values as JSON text and plain strings as they are, so each value is
    decoded as JSON when it is JSON. Missing keys are not required here: validation reports them
    in the same one-line form as every other mistake, instead of as a config exception.
    """
    document: dict[str, Any] = {}
    for key in SETTING_KEYS:
        raw = config.get(key)
        if raw is None:
            continue
        try:
            document[key] = json.loads(raw)
        except json.JSONDecodeError:
            document[key] = raw
    return document


def load_stack_settings() -> FleetSettings:
    """The validated settings of the current stack (raises StackSettingsError)."""
    return load_settings(pulumi.get_stack(), read_settings_document(pulumi.Config(PROJECT)))
