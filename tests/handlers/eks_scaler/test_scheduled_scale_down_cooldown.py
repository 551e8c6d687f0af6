"""The evening scale-down against the cooldown: a change shortly before the run (an HTTP request,
the forecast, the spot optimizer) must not leave the node group at its daytime size all night.
The run waits out the cooldown while its invocation can, else fails for Lambda's retry, and the
node group is scaled down once."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from scaler_helpers import event
from scaling_harness import Scaling

from catalog.functions import FUNCTIONS_BY_NAME
from fleet_shared.timestamps import iso_z
from handlers.eks_scaler import app
from handlers.eks_scaler.exceptions import ScheduledRunUnfinishedError
from tests.handlers.deadlines import PLATFORM_RETRY_SECONDS, LambdaTime

EVENTS = Path(__file__).resolve().parents[3] / "events" / "eks_scaler"
TIMEOUT_SECONDS = FUNCTIONS_BY_NAME["eks_scaler"].timeout_seconds
COOLDOWN_SECONDS = 300
"""SCALER_COOLDOWN_SECONDS's default, which the tests' environment keeps."""
EVENING = timedelta(hours=9)
"""From START_TIME (09:00 in Asia/Kolkata) to the evening run at 18:00."""
SECOND_RETRY_SECONDS = 2 * PLATFORM_RETRY_SECONDS
"""Lambda waits two minutes between the second and the third attempt of a failed event."""


def http_scale_up(desired_size: int) -> dict[str, Any]:
    """`POST /scale` raising the system group to `desired_size`, as API Gateway sends it."""
    request: dict[str, Any] = json.loads((EVENTS / "http_api_scale_up.json").read_text())
    body = event("scale_up", {"name": "system", "desired_size": desired_size}, request_id="ops-1")
    request["body"] = json.dumps(body)
    return request


def evening_scale_down(scaling: Scaling) -> dict[str, Any]:
    """The cluster schedule's 18:00 run, as EventBridge Scheduler sends it (at the clock's now)."""
    run = iso_z(scaling.clock.now())
    return event(
        "scale_down",
        {"name": "system", "desired_size": 1},
        scheduled=True,
        request_id=f"schedule-scale_down-{run}",
        run=run,
    )


def test_the_evening_run_two_minutes_after_an_http_change_waits_out_the_cooldown_and_scales_down(
    scaling: Scaling,
) -> None:
    # GIVEN an engineer raised the system group from 2 to 3 over HTTP at 17:58
    scaling.clock.advance(EVENING.total_seconds() - 120)
    answer = scaling.scaler(http_scale_up(3))
    assert answer["statusCode"] == 200
    assert scaling.desired_size("system") == 3
    scaling.notice_titles()
    # WHEN the evening scale-down runs at 18:00, 120 s into the 300 s cooldown
    scaling.clock.advance(120)
    run_at = scaling.clock.now()
    run = evening_scale_down(scaling)
    result = scaling.scaler(run, "evening-1")
    # THEN it waited the 180 s left of the cooldown and scaled the group down to its night size
    [item] = result["results"]
    assert item["status"] == "scaling_initiated", item["reason"]
    assert scaling.clock.now() - run_at >= timedelta(seconds=COOLDOWN_SECONDS - 120)
    assert scaling.desired_size("system") == 1
    # AND it is one change: one scaling call and one history entry besides the HTTP change's,
    # announced once
    assert scaling.calls == ["system", "system"]
    assert [change.record["action"] for change in scaling.changes("system")] == [
        "scale_up",
        "scale_down",
    ]
    assert len(scaling.notice_titles()) == 1
    # AND a repeat of the run is answered from its stored result, changing nothing
    repeat = scaling.scaler(run, "evening-1-again")
    assert repeat["repeated_request"] is True
    assert scaling.calls == ["system", "system"]
    assert scaling.history("system") == 2


def test_a_cooldown_outlasting_the_invocation_fails_the_run_and_a_retry_scales_down_once(
    scaling: Scaling, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an HTTP change at the very instant of the evening run: its whole cooldown of 300 s
    # is ahead, more than the scaler's 120 s timeout; each wait spends the invocation's time
    scaling.clock.advance(EVENING.total_seconds())
    assert scaling.scaler(http_scale_up(3))["statusCode"] == 200
    scaling.notice_titles()
    run = evening_scale_down(scaling)
    services = scaling.services
    attempts: list[LambdaTime] = []

    def pause(_: object, seconds: float) -> None:
        attempts[-1].spend(seconds)
        scaling.clock.advance(seconds)

    monkeypatch.setattr(type(services), "pause", pause)
    app.FUNCTION.use_services(services)

    def attempt() -> dict[str, Any]:
        attempts.append(LambdaTime(TIMEOUT_SECONDS))
        result: dict[str, Any] = app.lambda_handler(run, attempts[-1].context())
        return result

    # WHEN the schedule invokes the scaler
    with pytest.raises(ScheduledRunUnfinishedError) as first:
        attempt()
    # THEN it waited what the invocation could spare, then failed in time naming the cooldown,
    # with nothing changed, so Lambda retries the run
    assert 0 < attempts[0].spent < TIMEOUT_SECONDS
    assert "cooldown" in str(first.value)
    assert scaling.desired_size("system") == 3
    # WHEN Lambda retries a minute later, and again two minutes after that one failed too
    scaling.clock.advance(PLATFORM_RETRY_SECONDS)
    with pytest.raises(ScheduledRunUnfinishedError):
        attempt()
    scaling.clock.advance(SECOND_RETRY_SECONDS)
    result = attempt()
    # THEN the last retry, past the cooldown, scaled the group down: one call, one history
    # entry and one notice for the run
    [item] = result["results"]
    assert item["status"] == "scaling_initiated", item["reason"]
    assert scaling.desired_size("system") == 1
    assert scaling.calls == ["system", "system"]
    assert [change.record["action"] for change in scaling.changes("system")] == [
        "scale_up",
        "scale_down",
    ]
    assert len(scaling.notice_titles()) == 1
    assert all(time.spent < TIMEOUT_SECONDS for time in attempts)


def test_an_http_scale_down_marked_scheduled_is_answered_at_once_within_the_cooldown(
    scaling: Scaling,
) -> None:
    # GIVEN the system group raised over HTTP 100 s ago
    scaling.clock.advance(EVENING.total_seconds() - 100)
    assert scaling.scaler(http_scale_up(3))["statusCode"] == 200
    scaling.clock.advance(100)
    asked_at = scaling.clock.now()
    # WHEN a caller posts the evening scale-down with `scheduled: true` to POST /scale, whose
    # answer API Gateway gives up on after 30 s
    request: dict[str, Any] = json.loads((EVENTS / "http_api_scale_up.json").read_text())
    request["body"] = json.dumps(evening_scale_down(scaling))
    answer = scaling.scaler(request)
    # THEN it is answered at once, held by the cooldown, with nothing changed
    assert answer["statusCode"] == 200
    [item] = json.loads(answer["body"])["results"]
    assert item["status"] == "scale_down_blocked"
    assert item["cooldown_remaining_seconds"] == COOLDOWN_SECONDS - 100
    assert scaling.clock.now() == asked_at
    assert scaling.desired_size("system") == 3


def test_a_dry_run_of_the_evening_run_within_the_cooldown_reports_it_at_once_and_succeeds(
    scaling: Scaling,
) -> None:
    # GIVEN the system group raised over HTTP 120 s before the evening run
    scaling.clock.advance(EVENING.total_seconds() - 120)
    assert scaling.scaler(http_scale_up(3))["statusCode"] == 200
    scaling.clock.advance(120)
    run_at = scaling.clock.now()
    # WHEN the evening scale-down comes as a dry run
    result = scaling.scaler({**evening_scale_down(scaling), "dry_run": True}, "evening-dry")
    # THEN it reports the group held by the cooldown without waiting for it or failing the
    # invocation (a dry run that failed would be retried into the dead-letter queue), and
    # changes nothing
    assert result["dry_run"] is True
    [item] = result["results"]
    assert item["status"] == "scale_down_blocked"
    assert item["cooldown_remaining_seconds"] == COOLDOWN_SECONDS - 120
    assert scaling.clock.now() == run_at
    assert scaling.desired_size("system") == 3
    assert scaling.calls == ["system"]


def test_an_http_request_named_as_the_evening_run_does_not_stand_in_for_the_run(
    scaling: Scaling,
) -> None:
    # GIVEN a caller who, at 17:50, raised the system group to 3 over HTTP under the request id
    # the evening's scheduled run carries
    scaling.clock.advance(EVENING.total_seconds() - 600)
    run_at = iso_z(scaling.clock.now() + timedelta(seconds=600))
    request = http_scale_up(3)
    body = json.loads(request["body"])
    request["body"] = json.dumps({**body, "request_id": f"schedule-scale_down-{run_at}"})
    assert scaling.scaler(request)["statusCode"] == 200
    assert scaling.desired_size("system") == 3
    # WHEN the evening run comes at 18:00 under that id
    scaling.clock.advance(600)
    result = scaling.scaler(evening_scale_down(scaling), "evening-1")
    # THEN it is a request of its own, not a repeat of the HTTP one: it scales the group down
    assert "repeated_request" not in result
    [item] = result["results"]
    assert item["status"] == "scaling_initiated", item["reason"]
    assert scaling.desired_size("system") == 1
