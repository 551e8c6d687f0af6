"""The fleet's state table in a local world (moto): the keys the program declares
(components/state_table.py), created once here for the demo, the benchmarks and the tests."""

from __future__ import annotations

from typing import Any

from components.state_table import PARTITION_KEY, SORT_KEY


def create_state_table(dynamodb: Any, table_name: str) -> None:
    """Create `table_name` with the state table's string partition and sort keys, on demand."""
    dynamodb.create_table(
        TableName=table_name,
        KeySchema=[
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": SORT_KEY, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
