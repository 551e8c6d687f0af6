"""What a local run needs to show a validated change: the CloudTrail record of an EKS call, and
the validator's callback schedules that are due.

In AWS, CloudTrail records the scaler's UpdateNodegroupConfig and EventBridge forwards it to
change_validator; EventBridge Scheduler fires the validator's one-time callbacks. A local world
(a moto server) does neither, so a demo or a test plays both parts::

    event = cloudtrail_change_event("UpdateNodegroupConfig", account_id=..., region=...,
        cluster="dev-apps", update_id=result["update_id"], at=now,
        request_parameters={"nodegroupName": "system", "scalingConfig": {"desiredSize": 3}},
        role_name=environment["SCALER_MEMBER_ROLE_NAME"])
    invoke("change_validator", event)
    ...  # later, at each step of the clock:
    for payload in take_due_callbacks(scheduler, environment["VALIDATION_SCHEDULE_GROUP"], now):
        invoke("change_validator", payload)

The schedule group must exist first (`create_schedule_group(Name=VALIDATION_SCHEDULE_GROUP)`), as
the program creates it. moto has no DescribeUpdate: the validator keeps such a check as status
`Unknown` and asks again, so a local run needs that operation answered to reach a verdict.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from fleet_shared.timestamps import iso_z

AT_EXPRESSION = re.compile(r"^at\((?P<moment>[0-9T:-]+)\)$")


def cloudtrail_change_event(
    event_name: str,
    *,
    account_id: str,
    region: str,
    cluster: str,
    update_id: str,
    at: datetime,
    request_parameters: dict[str, Any],
    role_name: str,
) -> dict[str, Any]:
    """The EventBridge event of an EKS call made through `role_name`, as CloudTrail records it
    and the member's forwarding rule delivers it to the hub bus."""
    return {
        "version": "0",
        "id": f"event-{update_id}",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.eks",
        "account": account_id,
        "time": iso_z(at),
        "region": region,
        "resources": [],
        "detail": {
            "userIdentity": {
                "type": "AssumedRole",
                "arn": f"arn:aws:sts::{account_id}:assumed-role/{role_name}/session",
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "arn": f"arn:aws:iam::{account_id}:role/{role_name}",
                        "userName": role_name,
                    }
                },
            },
            "eventTime": iso_z(at),
            "eventSource": "eks.amazonaws.com",
            "eventName": event_name,
            "awsRegion": region,
            "requestParameters": {"name": cluster, **request_parameters},
            "responseElements": {"update": {"id": update_id, "status": "InProgress"}},
            "eventID": f"cloudtrail-{update_id}",
        },
    }


def schedule_time(expression: str) -> datetime:
    """The UTC moment of a one-time schedule's `at(yyyy-mm-ddThh:mm:ss)` expression."""
    match = AT_EXPRESSION.match(expression)
    if match is None:
        raise ValueError(f"not a one-time schedule expression: {expression!r}")
    return datetime.fromisoformat(match.group("moment")).replace(tzinfo=UTC)


def take_due_callbacks(scheduler: Any, group: str, now: datetime) -> list[dict[str, Any]]:
    """The payloads of the group's schedules due by `now`, oldest first (those due at the same
    moment in the order they were created: their names hold random update ids), each schedule
    deleted as `ActionAfterCompletion: DELETE` would delete it once fired."""
    due: list[tuple[tuple[datetime, datetime], str, dict[str, Any]]] = []
    for summary in scheduler.list_schedules(GroupName=group)["Schedules"]:
        schedule = scheduler.get_schedule(Name=summary["Name"], GroupName=group)
        moment = schedule_time(schedule["ScheduleExpression"])
        if moment <= now:
            order = (moment, schedule["CreationDate"])
            due.append((order, schedule["Name"], json.loads(schedule["Target"]["Input"])))
    for _, name, _ in due:
        scheduler.delete_schedule(Name=name, GroupName=group)
    return [payload for _, _, payload in sorted(due, key=lambda item: item[0])]
