"""notification_router when the record of an alert's newest notice in the state table cannot be
read as a time (a hand edit, corruption): PagerDuty is the local receiver."""

from __future__ import annotations

import json
from typing import Any

from fleet_shared.alerts import Alert
from tests.handlers.notification_router.test_notification_router import (
    Invoke,
    fleet_alert,
    sqs_event,
    statuses,
)


def test_an_alert_whose_newest_notice_record_has_no_readable_time_is_paged_and_resolved(
    invoke: Invoke, receiver: Any, fake_clock: Any, state_table: Any
) -> None:
    # GIVEN the record of an alert's newest notice holding a timestamp that is no time with a
    # zone (a hand edit, corruption), kept 14 days
    critical = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    key = f"notification_router/{critical.id}"
    state_table.put_value(
        key,
        "last_notice",
        {"phase": "resolved", "episode": 3, "timestamp": "yesterday"},
        ttl_seconds=14 * 24 * 3600,
    )
    # WHEN the alert and then its resolution are routed
    paged = invoke(sqs_event(("m-1", json.loads(critical.model_dump_json()))))
    resolution = critical.resolution("ok", fake_clock.advance(300))
    resolved = invoke(sqs_event(("m-2", json.loads(resolution.model_dump_json()))))
    # THEN the record is taken as none and replaced, instead of failing every notice of the
    # alert to the dead-letter queue until it expires: PagerDuty is paged, then resolved
    assert (statuses(paged), statuses(resolved)) == (["sent"], ["sent"])
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == [
        "trigger",
        "resolve",
    ]
    assert state_table.get_value(key, "last_notice")["phase"] == "resolved"
