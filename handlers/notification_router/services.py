"""What the router works with, beyond the fleet's services: secrets, SNS per region, backoff,
the channels' Retry-After holds, its queue, and the bounded clients its channels call.

Secrets come from Powertools' parameters utility, cached for ROUTER_SECRET_TTL_SECONDS: every
alert would otherwise cost one GetSecretValue per channel, and a rotated webhook URL or routing
key is still picked up within that time without a redeploy. A secret whose cached content gave no
usable value, or whose value the channel refused for good, is read again at its next use
(`forget_secret`), so that the fix reaches the retry of the alert it failed. A secret may be named
or given as an ARN; an ARN naming another region is read in that region.

Every call a channel makes is bounded by ROUTER_HTTP_TIMEOUT_SECONDS: for Slack and PagerDuty a
deadline on the whole request (`bounded_http`), and for the e-mail topic, the secrets and the
router's queue, botocore clients whose connect and read timeouts add up to it, each call's
whole answer within them (`bounded_http.bound_whole_answers`: an endpoint that trickles its
answer held the call as long as it trickled), with no retries of their own (the delivery loop
retries, within the time left). An unreadable message sent to the
dead-letter queue goes through the hub's bounded client config (`HUB_CALL_CONFIG`: two attempts,
at most `HUB_CALL_SECONDS`): nothing retries it within the invocation.
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.config import Config

from fleet_shared.aws_answers import answer_field
from fleet_shared.bounded_http import bound_whole_answers
from fleet_shared.function_services import FunctionServices
from fleet_shared.sessions import HUB_CALL_CONFIG, bounded_config
from handlers.notification_router.delivery_policy import DeliveryPolicy, attempt_seconds
from handlers.notification_router.environment import RouterEnvironment
from handlers.notification_router.exceptions import UnreadableSecretAnswerError
from handlers.notification_router.rate_limits import ChannelHolds


class SecretTextProvider(SecretsProvider):
    """Powertools' Secrets Manager provider, taking from a GetSecretValue answer only a
    SecretString that is text, or a SecretBinary. botocore hands a JSON answer's values on
    unchecked: a SecretString that was a number, a boolean, an array or an object (a proxy's
    answer, a corrupt one) was made text (`12345`, a Python repr) and posted as the routing key,
    and cached for ROUTER_SECRET_TTL_SECONDS; an answer with neither field failed as a bare
    `'SecretBinary'`. Either now raises `UnreadableSecretAnswerError`, naming the field and the
    JSON type it held, never the value; Powertools raises it as `GetParameterError`, a read that
    failed, and caches nothing, so the channel's next attempt reads the secret again."""

    def _get(self, name: str, **sdk_options: Any) -> str | bytes:
        answer = self.client.get_secret_value(**{**sdk_options, "SecretId": name})
        if "SecretString" in answer:
            text = answer["SecretString"]
            if not isinstance(text, str):
                raise UnreadableSecretAnswerError(
                    f"GetSecretValue answered SecretString as {_json_kind(text)}, not text"
                )
            return text
        if "SecretBinary" in answer:
            return answer["SecretBinary"]
        raise UnreadableSecretAnswerError(
            "GetSecretValue answered without a SecretString or a SecretBinary"
        )


def _json_kind(value: object) -> str:
    """The JSON type of a value botocore read from a JSON answer, as an error names it."""
    if isinstance(value, bool):
        return "a JSON boolean"
    if isinstance(value, int | float):
        return "a JSON number"
    return "a JSON array" if isinstance(value, list) else "a JSON object"


class RouterServices(FunctionServices[RouterEnvironment]):
    """The router's container; channels and routing read everything through it."""

    def secret(self, secret_id: str) -> str | bytes:
        """The secret's value: its SecretString, or the bytes of its SecretBinary. Raises
        Powertools' `GetParameterError` when it cannot be read. A secret forgotten
        (`forget_secret`) is read from Secrets Manager again, not from the cache."""
        region = _region_of(secret_id) or self.sessions.home_region
        provider = self._secrets_by_region.get(region)
        if provider is None:
            provider = SecretTextProvider(boto3_client=self.secrets_client(region))
            self._secrets_by_region[region] = provider
        value = provider.get(
            secret_id,
            max_age=self.environment.router_secret_ttl_seconds,
            force_fetch=secret_id in self._forgotten_secrets,
        )
        # Forgotten until read anew: a read that failed left the unusable value in the cache.
        self._forgotten_secrets.discard(secret_id)
        return value if isinstance(value, bytes) else str(value)

    def forget_secret(self, secret_id: str) -> None:
        """Read `secret_id` from Secrets Manager on its next use: its cached value gave no usable
        webhook URL or routing key, or the channel refused it for good. The operator fixes the
        secret, and the message's retry (Lambda's a minute later, in this container) must read
        the fix, not the cached value for ROUTER_SECRET_TTL_SECONDS."""
        self._forgotten_secrets.add(secret_id)

    def secrets_client(self, region: str) -> Any:
        """A Secrets Manager client of the hub account in `region`, bounded in time."""
        return self._channel_client("secretsmanager", region)

    def sns_client(self, region: str) -> Any:
        """An SNS client of the hub account in `region` (the e-mail topic's), bounded in time."""
        return self._channel_client("sns", region)

    def sleep(self, seconds: float) -> None:
        """Wait between delivery attempts (tests record the waits instead)."""
        time.sleep(seconds)

    @cached_property
    def delivery_policy(self) -> DeliveryPolicy:
        """Attempts and backoff from the environment; an attempt may take the HTTP timeout and
        the recording of what the channel took (`delivery_policy.attempt_seconds`)."""
        environment = self.environment
        return DeliveryPolicy(
            max_attempts=environment.router_max_attempts,
            backoff_seconds=environment.router_backoff_seconds,
            attempt_seconds=attempt_seconds(environment.router_http_timeout_seconds),
            longest_wait_seconds=environment.router_http_timeout_seconds,
        )

    @cached_property
    def channel_holds(self) -> ChannelHolds:
        """The channels that asked (Retry-After) not to be called yet: per container."""
        return ChannelHolds(self.clock)

    def delay_queue_message(self, receipt_handle: str, seconds: int) -> None:
        """Make a message of the router's queue (ROUTER_QUEUE_URL) visible again only after
        `seconds`, instead of the queue's visibility timeout; raises botocore's errors."""
        self._channel_client("sqs", self.sessions.home_region).change_message_visibility(
            QueueUrl=self.environment.router_queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=seconds,
        )

    def keep_in_dead_letter_queue(self, body: str, attributes: dict[str, str]) -> str:
        """Send `body` with the text `attributes` to the router queue's dead-letter queue
        (ROUTER_DEAD_LETTER_QUEUE_URL); SQS's id of the message. Raises `ConfigurationError`
        naming the variable when it is unset, and botocore's errors."""
        client = self.sessions.client(
            "sqs", self.sessions.hub_account_id, self.sessions.home_region, HUB_CALL_CONFIG
        )
        answer = client.send_message(
            QueueUrl=self.environment.required("router_dead_letter_queue_url"),
            MessageBody=body,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in attributes.items()
            },
        )
        return str(answer_field(answer, "SendMessage", "MessageId"))

    def _channel_client(self, service: str, region: str) -> Any:
        key = (service, region)
        client = self._channel_clients.get(key)
        if client is None:
            session = self.sessions.session(self.sessions.hub_account_id, region)
            client = bound_whole_answers(
                session.client(service, config=self._channel_client_config)
            )
            self._channel_clients[key] = client
        return client

    @cached_property
    def _channel_client_config(self) -> Config:
        # Half the timeout each: together they bound the whole attempt, connecting and the
        # answer read to its end (`bound_whole_answers`), within the one timeout the delivery
        # loop keeps for an attempt.
        half = self.environment.router_http_timeout_seconds / 2
        return bounded_config(connect_seconds=half, read_seconds=half, attempts=1)

    @cached_property
    def _secrets_by_region(self) -> dict[str, SecretsProvider]:
        return {}

    @cached_property
    def _forgotten_secrets(self) -> set[str]:
        return set()

    @cached_property
    def _channel_clients(self) -> dict[tuple[str, str], Any]:
        return {}


def _region_of(secret_id: str) -> str | None:
    parts = secret_id.split(":")
    return parts[3] if secret_id.startswith("arn:") and len(parts) > 3 and parts[3] else None
