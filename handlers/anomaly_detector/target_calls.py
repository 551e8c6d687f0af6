"""The clients of a scan's or an alarm's reads: a member's CloudWatch (GetMetricData) and the
hub's Cost Explorer (GetCostAndUsage), bounded, and given up for the rest of the invocation once
their endpoint left calls unanswered (`AccountSessions.watched_member_client`,
`watched_hub_client`)."""

from __future__ import annotations

from typing import Any

from fleet_shared.cost_explorer import CE_REGION
from fleet_shared.sessions import AccountSessions, bounded_config, longest_hung_call_seconds

TARGET_CONNECT_TIMEOUT_SECONDS = 2
TARGET_READ_TIMEOUT_SECONDS = 10
"""A page of GetMetricData (up to 500 series of four weeks) or of GetCostAndUsage answers within
a few seconds; an endpoint silent this long is not going to answer."""
TARGET_ATTEMPTS = 2
TARGET_CALL_CONFIG = bounded_config(
    connect_seconds=TARGET_CONNECT_TIMEOUT_SECONDS,
    read_seconds=TARGET_READ_TIMEOUT_SECONDS,
    attempts=TARGET_ATTEMPTS,
)
HUNG_TARGET_CALL_SECONDS = longest_hung_call_seconds(TARGET_CALL_CONFIG)
"""The longest one read takes, every attempt timing out (25 s): that account and region (or the
cost, or the alarm) fails naming the timeout, and the scan goes on. A target stops at its first
failed read, so it adds at most this to ANOMALY_TARGET_SECONDS, and a scan starts a target only
with both left. With botocore's defaults (60 s to connect, 60 s to read, 5 retries) one hung
read took about 6 minutes, past the function's 300 s timeout: Lambda ended the scan, and no
anomaly of any account was alerted or resolved."""


def member_cloudwatch(sessions: AccountSessions, account_id: str, region: str) -> Any:
    """CloudWatch in a member account and region, its calls bounded by `TARGET_CALL_CONFIG`."""
    return sessions.watched_member_client("cloudwatch", account_id, region, TARGET_CALL_CONFIG)


def hub_cost_explorer(sessions: AccountSessions) -> Any:
    """Cost Explorer in the hub (`CE_REGION`), its calls bounded by `TARGET_CALL_CONFIG`."""
    return sessions.watched_hub_client("ce", CE_REGION, TARGET_CALL_CONFIG)
