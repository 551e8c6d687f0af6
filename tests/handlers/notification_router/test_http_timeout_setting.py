"""ROUTER_HTTP_TIMEOUT_SECONDS against the router's own timeout: one channel attempt, and the
recording of what the channel took, must fit in an invocation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from catalog import function_spec
from fleet_shared.environment import load_environment
from fleet_shared.exceptions import ConfigurationError
from handlers.notification_router.environment import ROUTER_TIMEOUT_SECONDS, RouterEnvironment
from tests.handlers.notification_router.test_notification_router import (
    channels_of,
    fleet_alert,
    sqs_event,
)

Invoke = Callable[..., dict[str, Any]]


@pytest.mark.parametrize("value", ["45", "50", "300"])
def test_an_http_timeout_leaving_no_attempt_room_in_the_invocation_is_refused_naming_it(
    router_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    # GIVEN an HTTP timeout that, with the 15 s kept to record a send and return, is as long as
    # the router's 60 s invocation or longer: no message would ever be started, every one
    # handed back until its dead-letter queue
    monkeypatch.setenv("ROUTER_HTTP_TIMEOUT_SECONDS", value)
    # WHEN the environment is loaded THEN it is refused, naming the variable and the bound
    with pytest.raises(ConfigurationError) as raised:
        load_environment(RouterEnvironment)
    assert str(raised.value).startswith("environment variable ROUTER_HTTP_TIMEOUT_SECONDS: ")
    assert "45" in str(raised.value)


def test_the_longest_http_timeout_allowed_still_delivers_in_a_fresh_invocation(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the longest HTTP timeout allowed
    monkeypatch.setenv("ROUTER_HTTP_TIMEOUT_SECONDS", "44")
    # WHEN a critical alert comes from the queue to an invocation with its 60 s ahead
    result = invoke(sqs_event(("m-1", fleet_alert("critical"))))
    # THEN every channel took it
    channels = channels_of(result["results"][0])
    assert {name: channel["status"] for name, channel in channels.items()} == {
        "pagerduty": "sent",
        "slack": "sent",
        "email": "sent",
    }
    assert result["batchItemFailures"] == []


def test_the_timeout_the_http_timeout_is_bounded_by_is_the_catalogs() -> None:
    # GIVEN the router's catalog entry WHEN its timeout is read THEN it is the one its
    # environment bounds the HTTP timeout by
    assert function_spec("notification_router").timeout_seconds == ROUTER_TIMEOUT_SECONDS
