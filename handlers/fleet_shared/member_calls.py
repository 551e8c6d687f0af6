"""The calls of each member account answered with success, and those IAM refused, in one
invocation: the evidence a member access episode is opened and resolved on
(`fleet_shared.access_episodes`).

A call is named `<service>:<Operation>` (`call_name`, botocore's service id and operation name:
`ec2:CreateSnapshot`, `dynamodb:ListTables`), as IAM names most actions. A watched member client
(`AccountSessions.watched_member_client`) notes each of its calls its member's endpoint answered:
with success (`answered`), or with IAM's refusal (`refused`: ACCESS_DENIED_CODES); the sessions
note a member's AssumeRole STS refused (`ASSUME_ROLE`), made through the hub's STS client. An
error answer of any other kind, or no answer, is neither: it tells nothing of the member's
grants.

The record is the container's one (`UnansweredEndpoints.member_calls`), forgotten as each
invocation starts, with the endpoints that did not answer.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
"""The error codes of a call IAM refused: STS's and most services', DynamoDB's, EC2's."""
ASSUME_ROLE = "sts:AssumeRole"
"""The call that assumes a member's role, refused when the role does not exist or does not
trust the function's."""
HTTP_ERROR_STATUS = 300
"""The lowest HTTP status of an answer botocore raises as the call's error."""


def call_name(service: str, operation: str) -> str:
    """The name of a call of `operation` of `service` (botocore's hyphenized service id)."""
    return f"{service}:{operation}"


class MemberCalls:
    """The calls of each member account answered and refused in this invocation; safe to share
    between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answered: dict[str, set[str]] = {}
        self._refused: dict[str, set[str]] = {}

    def watch(self, client: Any, account_id: str) -> None:
        """Note every call of `client`, a member client of `account_id`, its endpoint answers
        with success or IAM refuses; registered once per client."""
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(
            f"after-call.{service}",
            partial(self._note_answer_hook, account_id, service),
            unique_id=f"{__name__}.note-answer",
        )

    def note_answered(self, account_id: str, call: str) -> None:
        """Note that the member answered `call` (`call_name`) with success."""
        with self._lock:
            self._answered.setdefault(account_id, set()).add(call)

    def note_refused(self, account_id: str, call: str) -> None:
        """Note that IAM refused the member's `call` (`call_name`)."""
        with self._lock:
            self._refused.setdefault(account_id, set()).add(call)

    def answered(self, account_id: str) -> frozenset[str]:
        """The calls of `account_id` answered with success in this invocation."""
        with self._lock:
            return frozenset(self._answered.get(account_id, ()))

    def refused(self, account_id: str) -> frozenset[str]:
        """The calls of `account_id` IAM refused in this invocation."""
        with self._lock:
            return frozenset(self._refused.get(account_id, ()))

    def forget(self) -> None:
        """Forget every call noted: for the start of an invocation."""
        with self._lock:
            self._answered.clear()
            self._refused.clear()

    def _note_answer_hook(
        self,
        account_id: str,
        service: str,
        http_response: Any,
        parsed: dict[str, Any],
        model: Any,
        **_: Any,
    ) -> None:
        call = call_name(service, model.name)
        if http_response.status_code < HTTP_ERROR_STATUS:
            self.note_answered(account_id, call)
        elif parsed.get("Error", {}).get("Code") in ACCESS_DENIED_CODES:
            self.note_refused(account_id, call)
