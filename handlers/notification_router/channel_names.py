"""The names of the delivery channels: a leaf module, so the environment model (which checks the
routes) and the channel registry (which implements them) both import it and not each other."""

from __future__ import annotations

PAGERDUTY = "pagerduty"
SLACK = "slack"
EMAIL = "email"

CHANNEL_NAMES: tuple[str, ...] = (PAGERDUTY, SLACK, EMAIL)
"""Every channel a route may name; `channels.CHANNELS` implements each one."""
