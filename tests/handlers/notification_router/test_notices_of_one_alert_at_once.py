"""notification_router handling two notices of one alert at the same moment (a check failing, then
passing again while the failure is still being delivered): the resolution must reach every channel
that shows the alert, and only after it, so that no incident is left open."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from fleet_shared.alerts import Alert, alert_id
from handlers.notification_router import app
from handlers.notification_router.exceptions import UndeliveredAlertError
from tests.handlers.notification_router.test_notification_router import (
    fleet_alert,
    published_again,
    sns_event,
    statuses,
)

Invoke = Callable[..., dict[str, Any]]


def alert_and_resolution(fake_clock: Any) -> tuple[Alert, Alert]:
    """A critical alert raised now, and its resolution 30 seconds later."""
    alert = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    return alert, alert.resolution("4 of 4 ready", alert.timestamp + timedelta(seconds=30))


def message(alert: Alert) -> dict[str, Any]:
    return json.loads(alert.model_dump_json())


def handled_meanwhile(invoke: Invoke, fake_clock: Any, notice: Alert) -> Callable[[], None]:
    """Another invocation routing `notice` 30 seconds on, the first time it is called; its result,
    or the `UndeliveredAlertError` it raised (Lambda retries it), in `outcomes`."""
    outcomes: list[dict[str, Any] | UndeliveredAlertError] = []
    started: list[bool] = []

    def route_once() -> None:
        if started:
            return
        started.append(True)
        fake_clock.advance(30)
        try:
            outcomes.append(invoke(sns_event(message(notice))))
        except UndeliveredAlertError as error:
            outcomes.append(error)

    route_once.outcomes = outcomes  # type: ignore[attr-defined]
    return route_once


def test_a_resolution_handled_while_its_alert_is_paged_waits_and_then_closes_the_incident(
    invoke: Invoke, receiver: Any, fake_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a critical alert, and PagerDuty answering its trigger only after another invocation
    # handled the alert's resolution (the check passed again while the page was on its way; a
    # timeout long enough that the wait is none)
    monkeypatch.setenv("ROUTER_HTTP_TIMEOUT_SECONDS", "30")
    alert, resolution = alert_and_resolution(fake_clock)
    meanwhile = handled_meanwhile(invoke, fake_clock, resolution)
    receiver.answer_slowly("/pagerduty", meanwhile)
    # WHEN the alert is routed
    first = invoke(sns_event(message(alert)))
    # THEN the alert went out on every channel, and the resolution handled meanwhile did not
    # judge by the channels the alert had reached so far (none): it failed its invocation, so
    # Lambda retries it
    assert statuses(first) == ["sent"]
    [outcome] = meanwhile.outcomes  # type: ignore[attr-defined]
    assert isinstance(outcome, UndeliveredAlertError), outcome
    # WHEN Lambda retries the resolution a minute later
    fake_clock.advance(60)
    retried = invoke(sns_event(message(resolution)))
    # THEN every channel that shows the alert shows it resolved: PagerDuty's incident is closed
    assert statuses(retried) == ["sent"]
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == [
        "trigger",
        "resolve",
    ]
    assert [body["text"][:10] for body in receiver.bodies("/slack")] == [
        "[CRITICAL]",
        "[RESOLVED]",
    ]


def test_an_alert_whose_resolution_was_delivered_before_it_took_its_claim_is_not_sent_after(
    invoke: Invoke, receiver: Any, fake_clock: Any
) -> None:
    # GIVEN a critical alert, and another invocation handling the alert's resolution whole after
    # this one recorded the alert as its newest notice and before it claimed the alert
    alert, resolution = alert_and_resolution(fake_clock)
    meanwhile = handled_meanwhile(invoke, fake_clock, resolution)
    # (an info alert of another title, e-mailed alone, starts the container the hook goes on)
    assert statuses(invoke(sns_event(fleet_alert("info", title="warm-up")))) == ["sent"]

    def before_the_first_claim(params: dict[str, Any], **_: Any) -> None:
        if params["Item"]["pk"]["S"].startswith("IDEMPOTENCY#"):
            meanwhile()

    router_client = app.FUNCTION.services().hub_client("dynamodb")
    router_client.meta.events.register(
        "before-parameter-build.dynamodb.PutItem", before_the_first_claim
    )
    # WHEN the alert is routed
    first = invoke(sns_event(message(alert)))
    # THEN the resolution went out first (to every channel: nothing said which took the alert)
    [resolved] = meanwhile.outcomes  # type: ignore[attr-defined]
    assert statuses(resolved) == ["sent"]
    # AND the alert, older than the resolution now recorded, is a late copy: PagerDuty is not
    # paged after its resolve, which would open an incident nothing closes
    assert statuses(first) == ["duplicate"]
    assert first["results"][0]["late"] is True
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == ["resolve"]
    assert [body["text"][:10] for body in receiver.bodies("/slack")] == ["[RESOLVED]"]


def test_a_failure_again_handled_while_the_resolve_is_on_its_way_waits_and_then_pages(
    invoke: Invoke, receiver: Any, fake_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a critical alert that paged, and PagerDuty answering its resolve only after another
    # invocation handled a new failure of the check (a timeout long enough that the wait is none)
    monkeypatch.setenv("ROUTER_HTTP_TIMEOUT_SECONDS", "30")
    alert, resolution = alert_and_resolution(fake_clock)
    assert statuses(invoke(sns_event(message(alert)))) == ["sent"]
    fake_clock.advance(30)
    again = Alert.model_validate(
        fleet_alert("critical", timestamp=resolution.timestamp + timedelta(seconds=30))
    )
    meanwhile = handled_meanwhile(invoke, fake_clock, again)
    receiver.answer_slowly("/pagerduty", meanwhile)
    # WHEN the resolution is routed
    resolved = invoke(sns_event(message(resolution)))
    # THEN it went out, and the failure handled meanwhile did not page before the resolve was
    # done (PagerDuty would have closed the new incident with it): it failed its invocation
    assert statuses(resolved) == ["sent"]
    [outcome] = meanwhile.outcomes  # type: ignore[attr-defined]
    assert isinstance(outcome, UndeliveredAlertError), outcome
    # WHEN Lambda retries the failure a minute later
    fake_clock.advance(60)
    assert statuses(invoke(sns_event(message(again)))) == ["sent"]
    # THEN PagerDuty got the resolve before the new trigger: the new incident is open
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == [
        "trigger",
        "resolve",
        "trigger",
    ]


def test_duplicates_counted_at_once_are_all_carried_by_the_next_notice(
    invoke: Invoke, receiver: Any, fake_clock: Any, state_table: Any
) -> None:
    # GIVEN a critical alert sent once, and another invocation counting a copy of it as a
    # duplicate after this one read the duplicate counter and before it wrote it
    alert = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    counter_key = f"notification_router/{alert_id(alert.source, alert.resource, alert.title)}"
    counter_key += "/critical"
    assert statuses(invoke(sns_event(message(alert)))) == ["sent"]
    meanwhile: list[dict[str, Any]] = []
    started: list[bool] = []

    def before_the_first_count(params: dict[str, Any], **_: Any) -> None:
        if not started and params["Item"]["pk"]["S"] == f"STATE#{counter_key}":
            started.append(True)
            meanwhile.append(invoke(published_again(message(alert))))

    router_client = app.FUNCTION.services().hub_client("dynamodb")
    router_client.meta.events.register(
        "before-parameter-build.dynamodb.PutItem", before_the_first_count
    )
    # WHEN a copy of the alert is routed
    copy = invoke(published_again(message(alert)))
    # THEN both copies are counted: the write that came second read the counter again
    assert [statuses(result) for result in (*meanwhile, copy)] == [["duplicate"]] * 2
    assert copy["results"][0]["suppressed_duplicates"] == 2
    assert state_table.get_value(counter_key, "suppressed") == {"count": 2}
    # GIVEN then another duplicate counted while the alert goes out again after the window
    fake_clock.advance(901)
    receiver.answer_slowly(
        "/pagerduty",
        lambda: state_table.put_value(counter_key, "suppressed", {"count": 3}, ttl_seconds=3600),
    )
    # WHEN it is sent, carrying the two counted before
    later = invoke(published_again(message(alert)))
    assert statuses(later) == ["sent"]
    assert later["results"][0]["suppressed_duplicates"] == 2
    # THEN only those two are taken off the counter: the one counted meanwhile stays
    assert state_table.get_value(counter_key, "suppressed") == {"count": 1}
