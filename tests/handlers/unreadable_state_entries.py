"""State table change entries no reader can read, as a hand edit, corruption or an older format
writes them straight into the table: each shape with the problem the state table names for it.

Every shape but the number carries SECRET in its bad value, so a test sees that no message
repeats it.
"""

from __future__ import annotations

from typing import Any

SECRET = "i-0secret0secret0"
"""In every bad value: an error or log line holding it repeated the value."""

DEEPLY_NESTED = "[" * 50_000 + f'"{SECRET}"' + "]" * 50_000
"""JSON (100 KB: an item holds 400 KB) nested deeper than Python's decoder recurses."""

UNREADABLE_SHAPES: dict[str, tuple[dict[str, dict[str, Any] | None], str]] = {
    "no-changed-at": ({"changed_at": None}, "it has no changed_at"),
    "changed-at-a-number": (
        {"changed_at": {"N": "1717300000"}},
        "its changed_at is a DynamoDB N, not a string",
    ),
    "changed-at-no-time": (
        {"changed_at": {"S": f"yesterday {SECRET}"}},
        "its changed_at is not an ISO 8601 time with a time zone",
    ),
    "changed-at-without-zone": (
        {"changed_at": {"S": "2025-06-02T03:31:00"}},
        "its changed_at is not an ISO 8601 time with a time zone",
    ),
    "no-data": ({"data": None}, "it has no data"),
    "data-binary": ({"data": {"B": SECRET.encode()}}, "its data is a DynamoDB B, not a string"),
    "data-a-string-set": ({"data": {"SS": [SECRET]}}, "its data is a DynamoDB SS, not a string"),
    "data-not-json": ({"data": {"S": f"{{{SECRET}"}}, "its data is not JSON"),
    "data-a-list": (
        {"data": {"S": f'["{SECRET}"]'}},
        "its data is a JSON list, not an object",
    ),
    "data-a-string": (
        {"data": {"S": f'"{SECRET}"'}},
        "its data is a JSON string, not an object",
    ),
    "data-a-number": ({"data": {"S": "7.25"}}, "its data is a JSON number, not an object"),
    "data-nested-too-deep": ({"data": {"S": DEEPLY_NESTED}}, "its data is nested too deep to read"),
}
"""By test id: the attributes that replace (None: remove) a readable entry's, and the problem."""


def unreadable_entry(
    key: str, sort_key: str, changed_at: str, shape: dict[str, dict[str, Any] | None]
) -> dict[str, Any]:
    """The item of `key`'s change entry `sort_key` (`LATEST` or `HISTORY#<time>`) written at
    `changed_at` with an object as its record, then changed by `shape`."""
    item: dict[str, Any] = {
        "pk": {"S": f"STATE#{key}"},
        "sk": {"S": sort_key},
        "data": {"S": '{"desired": 3}'},
        "changed_at": {"S": changed_at},
    }
    for name, value in shape.items():
        if value is None:
            del item[name]
        else:
            item[name] = value
    return item


UNREADABLE_VALUE_DATA: dict[str, tuple[dict[str, Any] | None, str]] = {
    "no-data": (None, "it has no data"),
    "data-a-number": ({"N": "1717300000"}, "its data is a DynamoDB N, not a string"),
    "data-binary": ({"B": SECRET.encode()}, "its data is a DynamoDB B, not a string"),
    "data-not-json": ({"S": f"{{{SECRET}"}, "its data is not JSON"),
    "data-nested-too-deep": ({"S": DEEPLY_NESTED}, "its data is nested too deep to read"),
    "data-a-list": ({"S": f'["{SECRET}"]'}, "its data is a JSON list, not an object"),
    "data-a-string": ({"S": f'"{SECRET}"'}, "its data is a JSON string, not an object"),
    "data-null": ({"S": "null"}, "its data is JSON null, not an object"),
}
"""By test id: the `data` attribute of a saved value no reader can read (None: none), and the
problem the state table names for it."""


def unreadable_value(key: str, name: str, data: dict[str, Any] | None) -> dict[str, Any]:
    """The item of the value saved under (`key`, `name`) with `data` as its data attribute."""
    item: dict[str, Any] = {
        "pk": {"S": f"STATE#{key}"},
        "sk": {"S": f"VALUE#{name}"},
        "updated_at": {"S": "2025-06-02T03:31:00.000000Z"},
    }
    if data is not None:
        item["data"] = data
    return item
