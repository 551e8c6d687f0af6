"""What the router works with, beyond the fleet's services: secrets, SNS per region, backoff.

Secrets come from Powertools' parameters utility, cached for ROUTER_SECRET_TTL_SECONDS: every
alert would otherwise cost one GetSecretValue per channel, and a rotated webhook URL or routing
key is still picked up within that time without a redeploy. A secret may be named or given as an
ARN; an ARN naming another region is read through a provider bound to a hub client of that
region.
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider, get_secret

from fleet_shared.function_services import FunctionServices
from handlers.notification_router.environment import RouterEnvironment


class RouterServices(FunctionServices[RouterEnvironment]):
    """The router's container; channels and routing read everything through it."""

    def secret(self, secret_id: str) -> str:
        """The secret's string; raises Powertools' `GetParameterError` when it cannot be read."""
        max_age = self.environment.router_secret_ttl_seconds
        region = _region_of(secret_id)
        if region is None or region == self.sessions.home_region:
            return str(get_secret(secret_id, max_age=max_age))
        provider = self._secrets_by_region.get(region)
        if provider is None:
            provider = SecretsProvider(boto3_client=self.hub_client("secretsmanager", region))
            self._secrets_by_region[region] = provider
        return str(provider.get(secret_id, max_age=max_age))

    def sns_client(self, region: str) -> Any:
        """An SNS client of the hub account in `region` (the e-mail topic's)."""
        return self.hub_client("sns", region)

    def sleep(self, seconds: float) -> None:
        """Wait between delivery attempts (tests record the waits instead)."""
        time.sleep(seconds)

    @cached_property
    def _secrets_by_region(self) -> dict[str, SecretsProvider]:
        return {}


def _region_of(secret_id: str) -> str | None:
    parts = secret_id.split(":")
    return parts[3] if secret_id.startswith("arn:") and len(parts) > 3 and parts[3] else None
