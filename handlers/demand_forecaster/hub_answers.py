"""A hub service that did not answer is not asked again in the same invocation.

The fleet run calls the hub's state table and SNS once or more per cluster (the forecast's save,
a warning per node group short of capacity, the predictive decision's record and its alert).
Their clients give up a call after `fleet_shared.sessions.HUB_CALL_SECONDS`, but a service
whose endpoint hangs would cost every one of those calls that long, and a fleet of clusters the
run's time. So once a call of a hub service got no answer (no connection, or no answer read,
after every attempt) every later call of that service fails at once with
`HubServiceNotAnsweringError`, until the next invocation: a run spends at most one bounded call
per hub service on an endpoint that hangs, which is what `cluster_forecasts.cluster_seconds`
reserves.

The record is per container, like the clients it watches (cached by the sessions, shared by every
invocation of the container): the handler forgets it at the start of each invocation, so a
service that did not answer an hour ago is asked again.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachableError

NO_ANSWER = (EndpointUnreachableError, HTTPClientError)
"""What botocore raises for an endpoint that did not answer (connection refused or timed out, no
answer read) after every attempt."""
CAUSE_CHARS = 200
"""The most of the first error a refused call repeats."""


class HubServiceNotAnsweringError(BotoCoreError):
    """A hub service call refused without being sent: the service did not answer an earlier
    call of this invocation. A `BotoCoreError`, so every caller handles it as it handles the
    timeout it stands for."""

    fmt = "{service} did not answer earlier in this invocation ({cause}); not asked again"


class UnansweredHubServices:
    """The hub services that did not answer a call of this invocation, and the hooks on their
    clients that refuse the calls after it."""

    def __init__(self) -> None:
        self._causes: dict[str, str] = {}

    def watch(self, client: Any) -> Any:
        """`client`, whose calls are refused once its service did not answer (hooks registered
        once per client)."""
        service = client.meta.service_model.service_id.hyphenize()
        events = client.meta.events
        events.register(
            f"before-call.{service}", self._refuse_unanswered, unique_id=f"{__name__}.refuse"
        )
        events.register(
            f"after-call-error.{service}", self._note_no_answer, unique_id=f"{__name__}.note"
        )
        return client

    def forget(self) -> None:
        """Ask every service again: for the start of an invocation."""
        self._causes.clear()

    def _refuse_unanswered(self, event_name: str, **_: Any) -> None:
        service = _service_of(event_name)
        cause = self._causes.get(service)
        if cause is not None:
            raise HubServiceNotAnsweringError(service=service, cause=cause)

    def _note_no_answer(self, event_name: str, exception: Exception, **_: Any) -> None:
        if isinstance(exception, NO_ANSWER):
            self._causes.setdefault(_service_of(event_name), str(exception)[:CAUSE_CHARS])


def _service_of(event_name: str) -> str:
    """The service id of a client event's name (`before-call.dynamodb.PutItem`: dynamodb)."""
    return event_name.split(".")[1]


UNANSWERED_HUB_SERVICES = UnansweredHubServices()
"""The container's record, watched by every hub client the forecaster builds."""
