"""Entries of a list of incidents (`incidents.ALARM_INCIDENTS`, `incidents.CHECK_INCIDENTS`) no
run can read, as a hand edit or a half-written value leaves them: one of each bad shape."""

from __future__ import annotations

import json
from typing import Any

from tests.handlers.conftest import STATE_TABLE_NAME
from tests.handlers.unreadable_state_entries import SECRET, unreadable_value


def put_bad_incident_entries(dynamodb_client: Any, key: str, fields: tuple[str, ...]) -> list[str]:
    """Write into the list of incidents `key`, whose entries name `fields` as text, one entry
    no JSON, one JSON that is no object, one without its first field and one whose first field
    is a number, each holding SECRET; the error the state table or the reader names each by,
    in name order."""
    first, *others = fields
    named = dict.fromkeys(others, SECRET)
    names_none = f"names no {' and '.join(fields)} as text"
    bad = {
        "bad-a-list": (json.dumps([SECRET]), "its data is a JSON list, not an object"),
        "bad-field-a-number": (json.dumps({first: 7, **named, "note": SECRET}), names_none),
        "bad-field-missing": (json.dumps({**named, "note": SECRET}), names_none),
        "bad-no-json": (f"{{{SECRET}", "its data is not JSON"),
    }
    for name, (data, _) in bad.items():
        dynamodb_client.put_item(
            TableName=STATE_TABLE_NAME, Item=unreadable_value(key, name, {"S": data})
        )
    return [f"saved value {name} of {key}: {problem}" for name, (_, problem) in sorted(bad.items())]
