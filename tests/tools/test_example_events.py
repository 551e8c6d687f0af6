"""Every function has example events for `fleetctl invoke`, and every example is an object."""

from __future__ import annotations

import json

import pytest

from catalog import FUNCTIONS
from fleetctl.mocked_program import REPO_ROOT

EVENTS = REPO_ROOT / "events"


@pytest.mark.parametrize("name", [spec.name for spec in FUNCTIONS])
def test_each_function_has_example_events_that_are_json_objects(name: str):
    files = sorted((EVENTS / name).glob("*.json"))
    assert files, f"no example event under events/{name}/"
    for path in files:
        assert isinstance(json.loads(path.read_text()), dict), path.name


def test_no_example_events_for_functions_the_catalog_does_not_have():
    known = {spec.name for spec in FUNCTIONS}
    assert {folder.name for folder in EVENTS.iterdir() if folder.is_dir()} <= known
